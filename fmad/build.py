"""Small constructors for the ``ast`` nodes the passes emit, and the walkers they share.

Negative numbers are always built as ``-(c)`` (a UnaryOp), never as a negative
``ast.Constant``: printers render ``Constant(-2.0) ** 2`` as ``-2.0 ** 2``, which is -4.0.

The one block walker (:func:`statements`, :func:`blocks`) and the one name collector
(:func:`names`, with :func:`read_names` and :func:`stored_names`) live here, with what is
built on them: the names a function binds and the names it reads from outside.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from typing import Any


def name(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Load())


def store(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store())


def const(value: Any) -> ast.expr:
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-value))
    return ast.Constant(value)


def constant_value(node: ast.expr) -> Any:
    """The value of a numeric constant node (``2``, ``-2.0``), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | complex):
        if not isinstance(node.value, bool):
            return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = constant_value(node.operand)
        if inner is not None:
            return -inner if isinstance(node.op, ast.USub) else inner
    return None


def is_const(node: ast.expr | None, value: Any = None) -> bool:
    v = constant_value(node) if node is not None else None
    if v is None:
        return False
    return value is None or v == value


def attr(base: ast.expr | str, *attrs: str) -> ast.expr:
    node = name(base) if isinstance(base, str) else base
    for n in attrs:
        node = ast.Attribute(value=node, attr=n, ctx=ast.Load())
    return node


def call(func: ast.expr, *args: ast.expr, **kwargs: ast.expr) -> ast.Call:
    return ast.Call(
        func=func,
        args=list(args),
        keywords=[ast.keyword(arg=k, value=v) for k, v in kwargs.items()],
    )


def binop(left: ast.expr, op: ast.operator, right: ast.expr) -> ast.BinOp:
    return ast.BinOp(left=left, op=op, right=right)


def neg(x: ast.expr) -> ast.expr:
    v = constant_value(x)
    if v is not None:
        return const(-v)
    if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
        return x.operand
    return ast.UnaryOp(op=ast.USub(), operand=x)


def assign(target: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[store(target)], value=value)


def tuple_(elts: list[ast.expr]) -> ast.Tuple:
    return ast.Tuple(elts=elts, ctx=ast.Load())


def subscript(value: ast.expr, index: ast.expr) -> ast.Subscript:
    return ast.Subscript(value=value, slice=index, ctx=ast.Load())


def parse_expr(text: str, **subs: ast.expr) -> ast.expr:
    """Parse ``text`` and replace each Name in ``subs`` by a copy of the given node (a new
    tree each time; the text is parsed once)."""
    return _substitute(clone(_template(text)), subs)


@functools.lru_cache(maxsize=1024)
def _template(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body  # never changed: parse_expr copies it


def _substitute(node: ast.AST, subs: dict[str, ast.expr]) -> ast.AST:
    if type(node) is ast.Name:
        return clone(subs[node.id]) if node.id in subs else node
    for field_name in node._fields:
        value = getattr(node, field_name, None)
        if type(value) is list:
            value[:] = [_substitute(v, subs) if isinstance(v, ast.AST) else v for v in value]
        elif isinstance(value, ast.AST):
            setattr(node, field_name, _substitute(value, subs))
    return node


# -- walkers -------------------------------------------------------------------------------
COMPOUND = (ast.If, ast.For, ast.While)  # the statements with blocks fmad keeps
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement of a body, nested blocks included (in source order), nested defs
    excluded."""
    for s in body:
        yield s
        if isinstance(s, COMPOUND):
            yield from statements(s.body)
            yield from statements(s.orelse)


def blocks(body: list[ast.stmt]) -> Iterator[list[ast.stmt]]:
    """``body`` and every block nested in it."""
    yield body
    for s in statements(body):
        if isinstance(s, COMPOUND):
            yield s.body
            yield s.orelse


def nested_functions(tree: ast.FunctionDef) -> dict[str, ast.FunctionDef]:
    """Functions defined with ``def`` directly inside ``tree`` (any block depth)."""
    return {s.name: s for s in statements(tree.body) if isinstance(s, ast.FunctionDef)}


# -- names ---------------------------------------------------------------------------------
def names(node: ast.AST | None, *contexts: type[ast.expr_context]) -> list[str]:
    """The ``Name``\\ s in ``node`` (walk order, repeats kept), of the given contexts only if
    any are given."""
    if node is None:
        return []
    # ast.walk's order (breadth first) without its generators: this runs thousands of
    # times per transform
    found = []
    todo = [node]
    for n in todo:  # grows while it is read
        if type(n) is ast.Name:
            if not contexts or isinstance(n.ctx, contexts):
                found.append(n.id)
            continue
        add_children(n, todo)
    return found


# The child fields of each node class, in ``_fields`` order, read from the class's grammar
# line (``Call(expr func, expr* args, keyword* keywords)``): 0 a node or None, 1 a list of
# nodes, 2 a list that may hold None (``Dict.keys``, ``arguments.kw_defaults``). Fields of
# the field-less leaves (``ctx``, ``op``, ``ops``: contexts and operators) and of plain
# values (names, constants, numbers) are left out: no walker here needs them, and skipping
# them saves a third of the nodes.
_LEAF_TYPES = frozenset({"expr_context", "operator", "unaryop", "cmpop", "boolop"})
_VALUE_TYPES = frozenset({"identifier", "string", "constant", "int", "object", "bytes"})
_MAY_HOLD_NONE = frozenset({("Dict", "keys"), ("arguments", "kw_defaults")})
_CHILD_FIELDS: dict[type, tuple[tuple[str, int], ...]] = {ast.Constant: ()}


def _child_fields(kind: type) -> tuple[tuple[str, int], ...]:
    grammar = re.fullmatch(r"\w+\((.*)\)", (kind.__doc__ or "").strip())
    declared = {}
    for part in grammar.group(1).split(", ") if grammar else ():
        typ, _, field = part.partition(" ")
        declared[field] = typ
    fields = []
    for field in kind._fields:
        typ = declared.get(field)
        if typ is None:  # no grammar line: not a node class of the ast module
            return tuple((f, 3) for f in kind._fields if f not in ("ctx", "op", "ops"))
        base = typ.rstrip("*?")
        if base in _LEAF_TYPES or base in _VALUE_TYPES:
            continue
        if typ.endswith("*"):
            fields.append((field, 2 if (kind.__name__, field) in _MAY_HOLD_NONE else 1))
        else:
            fields.append((field, 0))
    return tuple(fields)


def child_fields(kind: type) -> tuple[tuple[str, int], ...]:
    """The fields of ``kind`` that may hold nodes other than contexts and operators, each
    with how (0 a node or None, 1 a list of nodes, 2 a list that may hold other values)."""
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = _CHILD_FIELDS[kind] = _child_fields(kind)
    return fields


def add_children(node: ast.AST, todo: list[ast.AST]) -> None:
    """Append the child nodes of ``node`` to ``todo``, in ``ast.iter_child_nodes``' order,
    but for the field-less leaves (contexts and operators) (without its generator: the
    walkers here run thousands of times per transform)."""
    for field_name, how in _CHILD_FIELDS.get(type(node)) or child_fields(type(node)):
        value = getattr(node, field_name, None)
        if value is None:
            continue
        if how == 0:
            todo.append(value)
        elif how == 1:
            todo.extend(value)
        elif type(value) is list:  # 2, or 3: a class the grammar does not describe
            todo.extend([v for v in value if isinstance(v, ast.AST)])
        elif isinstance(value, ast.AST):
            todo.append(value)


def walk(node: ast.AST) -> list[ast.AST]:
    """The nodes of ``node`` in ``ast.walk``'s order (``node`` first, breadth first), but
    for the field-less leaves (contexts and operators), as a list (a fraction of the cost of
    ``ast.walk``'s generators)."""
    todo = [node]
    for n in todo:  # grows while it is read
        add_children(n, todo)
    return todo


def read_names(node: ast.AST | None) -> set[str]:
    return set(names(node, ast.Load))


def stored_names(target: ast.AST) -> list[str]:
    """The names an assignment or loop target binds."""
    if type(target) is ast.Name:  # the common target, without a walk
        return [target.id]
    return names(target)


def parameters(args: ast.arguments) -> list[str]:
    """A function's parameter names, in order."""
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return [a.arg for a in every if a is not None]


def bound_names(tree: ast.FunctionDef, *, inner: bool = True) -> set[str]:
    """Names ``tree`` binds: parameters, assignment, loop and ``del`` targets, nested
    ``def`` and ``class`` names, and (``inner``) the names bound inside its nested defs."""
    bound = set(parameters(tree.args))
    todo: list[ast.AST] = [tree] if inner else list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, DEFINITIONS) and node is not tree:
            bound.add(node.name)
            if not inner:
                continue
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        add_children(node, todo)
    return bound


def lexical_bound(tree: ast.FunctionDef) -> set[str]:
    """Names ``tree`` binds in its own scope (not the names bound inside its nested defs)."""
    return bound_names(tree, inner=False)


def lexical_free(tree: ast.FunctionDef) -> set[str]:
    """Names ``tree``'s body reads (its own nested defs included) and does not bind, and
    the names its default values read (where it is defined: the call depends on them)."""
    reads: set[str] = set()
    defaults = [e for e in [*tree.args.defaults, *tree.args.kw_defaults] if e is not None]
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            reads |= lexical_free(node)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            reads.add(node.id)
        add_children(node, todo)
    return (reads - lexical_bound(tree)) | {n for e in defaults for n in names(e)}


def free_reads(
    tree: ast.FunctionDef,
    owner: Any = None,
    nested: dict[str, ast.FunctionDef] | None = None,
    owners: dict[str, Any] | None = None,
) -> dict[str, set[Any]]:
    """The names a nested function reads from outside: those it reads itself and, with
    ``nested`` (the nested functions visible where it is defined), those the nested
    functions it calls read, transitively (``inner10`` calling ``inner5``, which reads
    ``p2``, depends on ``p2`` too). For each name, every owner (the function defining the
    ``def``) it is read from: the name means the binding seen from there."""
    nested = nested or {}
    found: dict[str, set[Any]] = {}
    seen: set[int] = set()
    todo = [(tree, owner)]
    while todo:
        t, o = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        for name in sorted(lexical_free(t)):
            found.setdefault(name, set()).add(o)
            if name in nested:
                todo.append((nested[name], owners.get(name) if owners else None))
    return found


def free_names(tree: ast.FunctionDef, nested: dict[str, ast.FunctionDef] | None = None) -> set[str]:
    """The names of :func:`free_reads`."""
    return set(free_reads(tree, None, nested))


# -- structure -----------------------------------------------------------------------------
def structure(node: ast.AST, memo: dict[int, tuple] | None = None) -> tuple:
    """A hashable key of ``node``'s structure: two nodes have equal keys exactly when their
    ``ast.dump`` texts are equal (locations ignored; a constant by its type and ``repr``), at
    a fraction of its cost (the passes compare expressions thousands of times). ``memo``
    (id of a node -> its key) serves walks that ask for a node and then for its parts, while
    no node changes."""
    kind = type(node)
    if kind is ast.Name:
        return (kind, node.id, type(node.ctx))
    if kind is ast.Constant:
        return (kind, type(node.value), repr(node.value), node.kind)
    if memo is not None:
        found = memo.get(id(node))
        if found is not None:
            return found
    parts: list = [kind]
    for field_name in node._fields:
        value = getattr(node, field_name, None)
        if isinstance(value, ast.AST):
            parts.append(structure(value, memo))
        elif isinstance(value, list):
            parts.append(tuple(structure(v, memo) if isinstance(v, ast.AST) else v for v in value))
        else:
            parts.append(value)
    key = tuple(parts)
    if memo is not None:
        memo[id(node)] = key
    return key


def clone(node: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` of a tree of ``ast`` nodes (lists, fields, locations and any other
    attribute a pass set on a node; a node met twice is copied once, as deepcopy does), at a
    fraction of its cost. Shared, not copied: values that are not nodes or lists (names,
    constants: nothing changes them) and the nodes without fields or locations (``Load()``,
    ``Add()``: the parser shares them too)."""
    if memo is None:
        memo = {}
    if type(node) is list:
        return [clone(item, memo) if isinstance(item, ast.AST) else item for item in node]
    state = node.__dict__
    if not state and not node._fields and not node._attributes:
        return node
    found = memo.get(id(node))
    if found is not None:
        return found
    kind = type(node)
    new = memo[id(node)] = kind.__new__(kind)
    copied = new.__dict__
    standard = _STANDARD.get(kind)
    if standard is None:
        standard = _STANDARD[kind] = frozenset(kind._fields + kind._attributes)
    fields = _CHILD_FIELDS.get(kind) or child_fields(kind)
    if state.keys() <= standard and all(how < 3 for _, how in fields):
        # the grammar's fields and locations only: copy them, then the fields with nodes
        copied.update(state)
        for key, how in fields:
            value = state.get(key)
            if value is None:
                continue
            if how == 0:
                copied[key] = clone(value, memo)
            elif type(value) is list:
                copied[key] = [clone(v, memo) if isinstance(v, ast.AST) else v for v in value]
        return new
    for key, value in state.items():
        if isinstance(value, ast.AST) or type(value) is list:
            value = clone(value, memo)
        copied[key] = value
    return new


_STANDARD: dict[type, frozenset[str]] = {}  # node class -> its fields and location attributes
