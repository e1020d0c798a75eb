"""Small constructors for the ``ast`` nodes the passes emit.

Negative numbers are always built as ``-(c)`` (a UnaryOp), never as a negative
``ast.Constant``: printers render ``Constant(-2.0) ** 2`` as ``-2.0 ** 2``, which is -4.0.
"""

from __future__ import annotations

import ast
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


def attr(base: ast.expr | str, *names: str) -> ast.expr:
    node = name(base) if isinstance(base, str) else base
    for n in names:
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


def read_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def stored_names(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def parse_expr(text: str, **subs: ast.expr) -> ast.expr:
    """Parse ``text`` and replace each Name in ``subs`` by a copy of the given node."""
    import copy

    tree = ast.parse(text, mode="eval").body

    class Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in subs:
                return copy.deepcopy(subs[node.id])
            return node

    return Sub().visit(tree)
