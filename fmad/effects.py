"""What calls and methods do to their arguments: the tables of :mod:`fmad.mutation`.

Which methods change their receiver in place (and what to write instead), which numpy
functions write into an argument or return a view of one, which calls have no effect worth
modelling (output, logging, warnings), where ``out`` arguments hide, whether a helper's
source changes anything in place, and the texts of the pass's refusals.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import logging
import types
import warnings

import numpy as np

from fmad import rules
from fmad import runtime as fmad_runtime
from fmad.resolve import MISSING
from fmad.source import read_function

# -- the tables ----------------------------------------------------------------------------
# Methods that change their receiver in place (lists, arrays, dicts, sets), with what to
# write instead. Only the first three are modelled, on a list the function owns.
MODELLED_METHODS = {"append", "extend", "insert"}
MUTATING_METHODS: dict[str, str] = {
    "append": "build a new list: {n} = {n} + [value]",
    "extend": "build a new list: {n} = {n} + other",
    "insert": "build a new list: {n} = {n}[:i] + [value] + {n}[i:]",
    "pop": "read the item ({n}[-1]) and build a new list ({n} = {n}[:-1])",
    "remove": "build a new list without the item",
    "clear": "start a new list: {n} = []",
    "sort": "compute a sorted copy instead of sorting '{n}' in place",
    "reverse": "reverse into a new list: {n} = {n}[::-1]",
    "fill": "compute a new array (for example with np.where) instead of filling '{n}'",
    "resize": "compute a new array (np.reshape, np.concatenate) instead of resizing '{n}'",
    "itemset": "build a new array (np.where) instead of setting an item of '{n}'",
    "put": "build a new array (np.where) instead of writing into '{n}'",
    "partition": "compute a new array instead of partitioning '{n}' in place",
    "setfield": "compute a new array instead of changing '{n}' in place",
    "byteswap": "compute a new array instead of changing '{n}' in place",
    "update": "build a new value instead of updating '{n}' in place",
    "setdefault": "build a new value instead of updating '{n}' in place",
    "popitem": "build a new value instead of changing '{n}' in place",
    "add": "build a new value instead of changing '{n}' in place",
    "discard": "build a new value instead of changing '{n}' in place",
    "__setitem__": "build a new list or array instead of changing '{n}' in place",
    "__delitem__": "build a new list or array instead of changing '{n}' in place",
}
# What fmad.mutation says when it refuses (``str.format`` fields: ``what``, the user's
# statement; ``name``, the variable changed; the rest as named).
REFUSALS = {
    "dropped expression": "'{what}' calls a function inside an expression whose value is "
    "dropped, for its effect, which fmad does not follow; write the call as a statement of "
    "its own (a for loop that appends, say)",
    "discarded helper": "'{what}' discards the result of '{name}', which changes its "
    "arguments or other state in place ({effect}); fmad does not model changes made inside "
    "a callee; make '{name}' return the new value and assign it (build new lists with '+' "
    "instead of append)",
    "discarded call": "'{what}' calls '{name}' with a value that carries a derivative and "
    "discards the result, so it is called for an effect (such as changing an argument in "
    "place) that fmad cannot see; fmad does not model it; compute a new value and assign "
    "it, or move the call out of the differentiated function",
    "test": "the test '{test}' changes a value that carries a derivative in place "
    "('{call}'); fmad does not model in-place changes; compute the value in a statement "
    "before the test",
    "not owned list": "'{what}' changes the list '{name}' in place, but {reason}; fmad "
    "models append, extend and insert only on a list the function builds itself ([...] or "
    "a comprehension) that no other name, container or function sees; {instead}",
    "out argument": "'{what}' writes its result into '{name}' (an out= argument), changing "
    "it in place; fmad does not model out= arguments; assign the result instead ({name} = "
    "{call})",
    "item assignment": "'{what}' changes the list or array '{name}' in place, and it "
    "carries a derivative; fmad does not model item assignment; build a new list (append) "
    "and convert it with np.array, or use np.where",
    "in place": "'{what}' changes '{name}' in place, and it carries a derivative; fmad does "
    "not model in-place changes (other than append, extend and insert on a list the "
    "function builds itself); {instead}",
    "changed after use": "'{what}' changes '{name}' in place after line {line} used it in "
    "a computation that carries a derivative; fmad's derivative code may read '{name}' after "
    "that line and would see the new values; change '{name}' before that use, or change a "
    "copy ('{name} = {name}.copy()' first)",
    "shared list": "'{what}' extends the list '{name}' in place, but {reason}; fmad rewrites "
    "it as '{plain}', which leaves that other reference unchanged; write '{plain}' if that "
    "is what you mean, or keep one name for the list",
}
# numpy functions that write into an argument (its position)
MUTATING_FUNCTIONS = {
    np.copyto: 0,
    np.put: 0,
    np.place: 0,
    np.putmask: 0,
    np.fill_diagonal: 0,
    np.random.shuffle: 0,
}
# functions with a rule (or none needed) whose result may be (a view of) an argument
ALIASING_FUNCTIONS = {
    *(np.asarray, np.asanyarray, np.ascontiguousarray, np.reshape, np.ravel, np.transpose),
    *(np.squeeze, np.expand_dims, np.moveaxis, np.swapaxes, np.broadcast_to, np.diagonal),
    *(np.atleast_1d, np.atleast_2d, np.atleast_3d, np.real, np.imag, np.flip, np.fliplr),
    *(np.flipud, builtins.max, builtins.min),
}
# methods whose result is a new object (the others may return a view of their receiver)
FRESH_METHODS = {
    *("copy", "sum", "mean", "prod", "max", "min", "dot", "clip", "flatten", "item", "tolist"),
    *("argmax", "argmin", "argsort", "nonzero", "count", "index", "all", "any", "std", "var"),
    *("cumsum", "cumprod", "round"),
}
# methods with no effect on anything (a discarded call to them does nothing)
PURE_METHODS = FRESH_METHODS | set(rules.METHOD_RULES) | rules.ZERO_METHODS
# callables with an effect fmad can ignore: output, logging, warnings, fmad's own checks
PURE_CALLABLES = {
    builtins.print,
    warnings.warn,
    fmad_runtime.check_rebind,
    fmad_runtime.check_distinct,
}


def mutating_method(name: str) -> bool:
    """A method that changes its receiver: the table, or an in-place operator (``__iadd__``)."""
    return name in MUTATING_METHODS or name in IN_PLACE_DUNDERS


def effect_free(obj: object) -> bool:
    """Known to change none of its arguments (output, logging, warnings)."""
    try:
        if obj in PURE_CALLABLES:
            return True
    except TypeError:
        return False
    module = getattr(obj, "__module__", None) or ""
    if module == "logging" or module.startswith("numpy.testing"):
        return True
    return isinstance(getattr(obj, "__self__", None), logging.Logger | logging.LoggerAdapter)


# array methods that take ``out`` positionally: its position
METHOD_OUT = {
    **dict.fromkeys(("sum", "mean", "prod", "cumsum", "cumprod", "std", "var", "clip", "take"), 2),
    **dict.fromkeys(("max", "min", "round", "all", "any", "dot", "choose", "argmax", "argmin"), 1),
}


def out_arguments(obj: object, call: ast.Call, method: str | None) -> list[ast.expr]:
    """The ``out`` targets of a call: ``out=``, a ufunc's positional outputs, or the
    positional ``out`` of a reduction or an array method."""
    outs = [k.value for k in call.keywords if k.arg == "out"]
    if isinstance(obj, np.ufunc) and len(call.args) > obj.nin:
        outs += call.args[obj.nin :]
    position = rules.REDUCTION_OUT.get(obj) if rules.hashable(obj) else None
    if method is not None:  # the receiver is not among the arguments
        position = METHOD_OUT.get(method)
    if position is not None and len(call.args) > position:
        outs.append(call.args[position])
    flat: list[ast.expr] = []
    for o in outs:
        flat += o.elts if isinstance(o, ast.Tuple) else [o]
    return [o for o in flat if not isinstance(o, ast.Constant)]  # out=None writes nothing


def source_text(filename: str, node: ast.AST, fallback: ast.AST) -> str:
    """The user's own text of statement ``node`` when it is on one line, else the
    flattened code."""
    lineno, end = getattr(node, "lineno", 0), getattr(node, "end_lineno", None)
    line = linecache.getline(filename, lineno)
    if line and end == lineno and node.end_col_offset is not None:
        text = line.encode()[node.col_offset : node.end_col_offset].decode(errors="replace")
        if text.strip():
            return text.strip()
    return ast.unparse(fallback)


OPERATOR_DUNDERS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "truediv",
    ast.FloorDiv: "floordiv",
    ast.Mod: "mod",
    ast.Pow: "pow",
    ast.MatMult: "matmul",
    ast.BitAnd: "and",
    ast.BitOr: "or",
    ast.BitXor: "xor",
    ast.LShift: "lshift",
    ast.RShift: "rshift",
}


IN_PLACE_DUNDERS = {f"__i{op}__" for op in OPERATOR_DUNDERS.values()}


def out_free(text: str, call: ast.Call, obj: object) -> str:
    """The call of ``text`` (the user's statement, else the flattened ``call``) without its
    out arguments, for the message."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        tree = None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)] if tree else []
    call = next(iter(calls), call)
    keywords = [k for k in call.keywords if k.arg != "out"]
    args = call.args[: obj.nin] if isinstance(obj, np.ufunc) else call.args
    return ast.unparse(ast.Call(func=call.func, args=args, keywords=keywords))


def changes_state(tree: ast.FunctionDef, filename: str, fn, seen: set) -> str | None:
    """The first statement of a helper that may change its arguments or other state in
    place (``file:line: text``), looking into the helpers it calls; None if there is none."""
    if id(tree) in seen:
        return None
    seen.add(id(tree))
    params = {a.arg for a in ast.walk(tree.args) if isinstance(a, ast.arg)}

    def where(node: ast.AST) -> str:
        return f"{filename}:{node.lineno}: '{source_text(filename, node, node)}'"

    dropped = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal):
            return where(node)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Subscript | ast.Attribute) for t in targets):
                return where(node)
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                if node.target.id in params:
                    return where(node)
        if not isinstance(node, ast.Call):
            continue
        if any(k.arg == "out" for k in node.keywords):
            return where(node)
        func = node.func
        if isinstance(func, ast.Attribute) and mutating_method(func.attr):
            return where(node)
        obj = lookup_global(fn, func)
        if rules.hashable(obj) and obj in MUTATING_FUNCTIONS:
            return where(node)
        if isinstance(obj, types.FunctionType):
            if obj is fn:
                continue
            try:
                src = read_function(obj)
            except Exception:  # noqa: BLE001 - no source: it could do anything
                return where(node)
            found = changes_state(src.tree, src.filename, src.function, seen)
            if found is not None:
                return found
        elif id(node) in dropped and not (
            effect_free(obj) or rules.rule_for(obj) or rules.has_zero_derivative(obj)
        ):
            return where(node)  # called for an effect fmad cannot see
    return None


def lookup_global(fn, func: ast.expr) -> object:
    if isinstance(func, ast.Name):
        return fn.__globals__.get(func.id, getattr(builtins, func.id, MISSING))
    if isinstance(func, ast.Attribute):
        base = lookup_global(fn, func.value)
        return MISSING if base is MISSING else getattr(base, func.attr, MISSING)
    return MISSING
