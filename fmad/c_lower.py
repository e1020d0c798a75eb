"""One generated unit as a C function (see :mod:`fmad.export_c`).

The unit is fmad's first-order code (``Variant.units``): flat statements, each operation
alone on the right of an assignment, tangents right after their primal. Each statement
becomes one C statement in the same order, so that C computes the same operations in the
same order as Python: the value and the tangents are Python's bit for bit (where libm is
what Python calls). Where Python raises (see :mod:`fmad.c_support`) the C code jumps to
``fm_fail``: the function returns NaN (the top function fills ``grad`` with NaN too).
A ``for`` loop runs over a hidden counter (``range`` is evaluated once, as in Python); an
``else`` of a loop runs unless a ``break`` set its flag.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from fmad import runtime
from fmad.c_assign import C_TYPE, INDENT, Assignments
from fmad.c_calls import Calls
from fmad.c_expr import literal
from fmad.c_flow import loads, maybe_unbound, stores
from fmad.c_loops import Loops
from fmad.c_types import SCALARS, CType, Resolver, Tup, join
from fmad.transform import Unit


class Lowerer(Assignments, Loops, Calls):
    """Lowers one unit. ``params``: its parameter types (``arr1``, ``arr2`` or a scalar
    type); ``names``: Python name -> C name; ``callee(unit, arg_types, node, n_tangents)``:
    the C name of a helper unit it calls; ``outputs``: where a ``return`` writes each
    tangent; ``lengths``: the C names of each array parameter's lengths."""

    def __init__(
        self,
        unit: Unit,
        params: dict[str, CType],
        names: Callable[[str], str],
        callee: Callable[[Unit, list[CType], ast.AST, int], str],
        outputs: list[str],
        lengths: dict[str, list[str]],
    ) -> None:
        self.unit = unit
        self.tree = unit.tree
        self.filename = unit.filename
        self.resolver = Resolver(unit)
        self.cname = names  # type: ignore[method-assign]
        self.callee = callee
        self.outputs = outputs  # the top function: grad->w...; a helper: *fm_out_1...
        self.used: set[str] = set()
        self.checked = False
        self.fails = False
        self.loops: list[str | None] = []  # the break flag of each enclosing loop
        self.counter = 0
        self.line = unit.tree.lineno  # of the statement being lowered, for refusals
        self.types: dict[str, CType | None] = dict(params)
        self.lengths = lengths
        self.params = set(params)
        self.infer()
        self.unbound = maybe_unbound(self.tree, set(self.types) - self.params)

    # -- types of the locals -----------------------------------------------------------------
    def assignments(self) -> list[tuple[ast.expr, Any]]:
        """(target, what it is assigned: an expression, or a type)."""
        found: list[tuple[ast.expr, Any]] = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.FunctionDef) and node is not self.tree:
                raise self.no(node, "a nested function", "define the helper at module level")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    found.append((target, node.value))
            elif isinstance(node, ast.AugAssign):
                found.append((node.target, ast.BinOp(node.target, node.op, node.value)))
            elif isinstance(node, ast.For):
                found.append((node.target, node))  # bound again on each pass of infer
        return found

    def infer(self) -> None:
        pairs = self.assignments()
        for _ in range(50):
            before = dict(self.types)
            for target, value in pairs:
                if isinstance(value, ast.For):
                    for loop_target, kind in self.loop_bindings(value):
                        self.bind(loop_target, kind)
                else:
                    self.bind(target, value)
            if before == self.types:
                break
        for name, kind in self.types.items():
            if kind is None:  # assigned only what the C subset does not have: say what
                for target, value in pairs:
                    if isinstance(target, ast.Name) and target.id == name and target is not value:
                        self.line = getattr(target, "lineno", None) or self.line
                        if isinstance(value, ast.expr):
                            self.expr(value)
                raise self.no(self.tree, f"the value of '{name}'", "compute it from numbers")

    def bind(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            kind = value if isinstance(value, str | Tup) else self.etype(value)
            if kind is None and target.id not in self.types:
                self.types[target.id] = None
            if kind is None:
                return
            if isinstance(kind, str) and kind not in SCALARS or target.id in self.params:
                if target.id in self.params and self.types[target.id] == kind:
                    return
                raise self.no(target, f"assigning to '{target.id}' a value of kind {kind}", "")
            try:
                self.types[target.id] = join(self.types.get(target.id), kind)
            except TypeError as error:
                raise self.no(target, f"'{target.id}' holding {error}", "use two names") from None
        elif isinstance(target, ast.Tuple):
            if isinstance(value, ast.Call) and self.helper_unit(value) is not None:
                for element in target.elts:
                    self.bind(element, "double")
                return
            if isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts):
                items: list[Any] = list(value.elts)
            else:
                kind = value if isinstance(value, Tup) else self.etype(value)
                if kind is None:
                    return
                if not isinstance(kind, Tup) or kind.n != len(target.elts):
                    raise self.no(target, f"unpacking '{ast.unparse(value)}'", "unpack tuples")
                items = [kind.item] * kind.n
            for element, item in zip(target.elts, items, strict=True):
                self.bind(element, item)
        else:
            raise self.no(target, f"assigning to '{ast.unparse(target)}'", "assign to names")

    def helper_unit(self, node: ast.Call) -> Unit | None:
        fn = self.resolver.obj(node.func)
        return fn if isinstance(fn, Unit) else None

    # -- the function ------------------------------------------------------------------------
    def body(self) -> list[str]:
        """The C statements of the function body (declarations first)."""
        code = self.block(self.tree.body, 1)
        text = "\n".join(code)
        head = []
        for name, kind in self.types.items():
            c = self.cname(name)
            if name in self.params or not re.search(rf"\b{c}\b", text):
                continue
            if isinstance(kind, Tup):
                head.append(f"{INDENT}{C_TYPE[kind.item]} {c}[{kind.n}] = {{0}};")
            else:
                zero = literal(0.0 if kind == "double" else 0)
                head.append(f"{INDENT}{C_TYPE[kind]} {c} = {zero};")  # type: ignore[index]
        head += [f"{INDENT}int fm_set_{self.cname(n)} = 0;" for n in sorted(self.unbound)]
        names = [self.cname(n) for n in self.types]
        names += [n for lengths in self.lengths.values() for n in lengths] + ["fm_err"]
        # a name C only assigns (or a parameter it never reads): say it is unused on purpose
        unused = [c for c in names if not re.search(rf"\b{c}\b(?! = )", text)]
        head += [f"{INDENT}(void){c};" for c in unused if c in text or c in self.param_names()]
        return head + code

    def param_names(self) -> set[str]:
        names = {self.cname(n) for n in self.params} | {"fm_err"}
        return names | {n for lengths in self.lengths.values() for n in lengths}

    def block(self, stmts: list[ast.stmt], depth: int) -> list[str]:
        lines: list[str] = []
        for stmt in stmts:
            lines += self.stmt(stmt, depth)
        return lines

    def guard(self, depth: int) -> list[str]:
        """After a statement whose operations may raise in Python."""
        if not self.checked:
            return []
        self.checked = False
        self.fails = True
        return [f"{INDENT * depth}if (*fm_err) goto fm_fail;"]

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"fm_{hint}{self.counter}"

    # -- statements --------------------------------------------------------------------------
    def stmt(self, node: ast.stmt, depth: int) -> list[str]:
        """A statement, after checking the names it may read unbound (see fmad.c_flow)."""
        pad = INDENT * depth
        self.line = getattr(node, "lineno", None) or self.line
        if isinstance(node, ast.If | ast.While):
            read = loads(node.test)
        elif isinstance(node, ast.For):
            read = loads(node.iter)
        else:
            read = loads(node)
        lines = []
        for name in sorted(read & self.unbound):
            self.fails = True
            flag = f"fm_set_{self.cname(name)}"
            lines.append(f"{pad}if (!{flag}) goto fm_fail; /* {name} unbound: UnboundLocalError */")
        lines += self.statement(node, depth)
        if isinstance(node, ast.Assign | ast.AugAssign):
            lines += self.mark(stores(node), depth)
        return lines

    def mark(self, names: set[str], depth: int) -> list[str]:
        """The flags of the names just assigned that may be read unbound elsewhere."""
        return [
            f"{INDENT * depth}fm_set_{self.cname(n)} = 1;" for n in sorted(names & self.unbound)
        ]

    def statement(self, node: ast.stmt, depth: int) -> list[str]:
        pad = INDENT * depth
        if isinstance(node, ast.Assign):
            return self.assign(node, depth)
        if isinstance(node, ast.AugAssign):
            value = ast.copy_location(ast.BinOp(node.target, node.op, node.value), node)
            return self.assign(ast.Assign(targets=[node.target], value=value), depth)
        if isinstance(node, ast.If):
            return self.if_(node, depth)
        if isinstance(node, ast.For):
            return self.for_(node, depth)
        if isinstance(node, ast.While):
            return self.while_(node, depth)
        if isinstance(node, ast.Break):
            flag = self.loops[-1]
            return [f"{pad}{flag} = 1;", f"{pad}break;"] if flag else [f"{pad}break;"]
        if isinstance(node, ast.Continue):
            return [f"{pad}continue;"]
        if isinstance(node, ast.Pass):
            return []
        if isinstance(node, ast.Return):
            return self.return_(node, depth)
        if isinstance(node, ast.Assert):
            test = self.expr(node.test, True)
            self.checked = False
            self.fails = True
            return [f"{pad}if (!({test})) goto fm_fail; /* AssertionError */"]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return []  # a docstring
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and self.resolver.obj(call.func) is runtime.check_rebind:
            if call.args and self.etype(call.args[0]) in SCALARS:
                return []  # `x += v` on a number rebinds x, as the C does
        what = type(node).__name__
        raise self.no(
            node,
            f"the statement '{ast.unparse(node).splitlines()[0]:.60}' ({what})",
            "the C subset has assignments, if, for over range or an array, while, break, "
            "continue, return and assert; remove it or move it out of the function",
        )

    def assign(self, node: ast.Assign, depth: int) -> list[str]:
        pad = INDENT * depth
        (target,) = node.targets if len(node.targets) == 1 else (None,)
        if target is None:
            lines = self.assign(ast.Assign(targets=[node.targets[-1]], value=node.value), depth)
            for other in reversed(node.targets[:-1]):
                copy = ast.Assign(targets=[other], value=node.targets[-1])
                lines += self.assign(ast.copy_location(copy, node), depth)
            return lines
        value = node.value
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Call):
            unit = self.helper_unit(value)
            if unit is not None:
                return self.call_helper(unit, target, value, depth)
        fn = self.resolver.obj(value.func) if isinstance(value, ast.Call) else None
        if fn is runtime.builtin_extreme and isinstance(target, ast.Name):
            return self.extreme(target, value, depth)
        if (fn is min or fn is max) and isinstance(target, ast.Name) and len(value.args) > 1:
            return self.min_max(target, value, fn is min, depth)
        if isinstance(target, ast.Name) and isinstance(self.types.get(target.id), Tup):
            items = value.elts if isinstance(value, ast.Tuple) else None
            if items is None:  # a copy of another tuple
                kind = self.types[target.id]
                if not isinstance(kind, Tup) or self.etype(value) != kind:
                    raise self.no(node, f"'{ast.unparse(node)}'", "assign tuples of numbers")
                items = [ast.Subscript(value, ast.Constant(i), ast.Load()) for i in range(kind.n)]
            targets = [
                ast.Subscript(target, ast.Constant(i), ast.Load()) for i in range(len(items))
            ]
            return self.parallel(targets, items, depth, node)
        if isinstance(target, ast.Tuple):
            if isinstance(value, ast.Tuple):
                return self.parallel(target.elts, value.elts, depth, node)
            kind = self.etype(value)
            if not isinstance(kind, Tup):
                raise self.no(node, f"unpacking '{ast.unparse(value)}'", "unpack tuples")
            items = [ast.Subscript(value, ast.Constant(i), ast.Load()) for i in range(kind.n)]
            return self.parallel(target.elts, items, depth, node)
        text = self.expr(value)
        return [f"{pad}{self.lvalue(target)} = {text};", *self.guard(depth)]

    def lvalue(self, target: ast.expr) -> str:
        if isinstance(target, ast.Name):
            return self.cname(target.id)
        if (
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and isinstance(target.slice, ast.Constant)
        ):
            return f"{self.cname(target.value.id)}[{target.slice.value}]"
        raise self.no(target, f"assigning to '{ast.unparse(target)}'", "assign to names")

    # -- control flow (for and while: fmad.c_loops) ------------------------------------------
    def test(self, node: ast.expr, depth: int) -> tuple[list[str], str]:
        """The statements that evaluate a test before it is read, and the C test."""
        text = self.expr(node, True)
        if not self.checked:
            return [], text
        flag = self.fresh("c")
        return [f"{INDENT * depth}int {flag} = {text};", *self.guard(depth)], flag

    def if_(self, node: ast.If, depth: int) -> list[str]:
        pad = INDENT * depth
        before, test = self.test(node.test, depth)
        lines = [*before, f"{pad}if ({test}) {{", *self.block(node.body, depth + 1), f"{pad}}}"]
        if node.orelse:
            lines[-1] = f"{pad}}} else {{"
            lines += [*self.block(node.orelse, depth + 1), f"{pad}}}"]
        return [f"{pad}{{", *[INDENT + x for x in lines], f"{pad}}}"] if before else lines
