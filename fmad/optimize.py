"""Optimize the tangent statements; the primal statements are never touched.

After this pass: no tangent term is multiplied by a known zero or one, no ``+ 0``, ``- 0``,
``/ 1`` or ``** 1`` remains in a tangent expression, constant-only subexpressions are folded,
and no tangent assignment survives that nothing reads (the identity seed of an array
parameter included, when every use of it was folded away).
"""

from __future__ import annotations

import ast
import copy

from fmad import build as B


def optimize(tree: ast.FunctionDef, tangent_names: set[str],
             keep: set[str] = frozenset()) -> ast.FunctionDef:
    """Simplify tangent expressions and drop unread tangents. ``keep``: never drop these."""
    tree = copy.deepcopy(tree)
    Simplify(tangent_names).visit(tree)
    drop_dead_tangents(tree, tangent_names, keep)
    return ast.fix_missing_locations(tree)


def is_tangent_stmt(s: ast.stmt, tangent_names: set[str]) -> bool:
    if isinstance(s, ast.Assign):
        stored = [n for t in s.targets for n in B.stored_names(t)]
        return bool(stored) and all(n in tangent_names for n in stored)
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
        f = s.value.func
        return isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
            and f.value.id in tangent_names
    return False


def simplify(node: ast.expr) -> ast.expr:
    """Algebraic identities on one expression, bottom up."""
    if isinstance(node, ast.BinOp):
        left, right = simplify(node.left), simplify(node.right)
        lv, rv = B.constant_value(left), B.constant_value(right)
        op = node.op
        if lv is not None and rv is not None and isinstance(op, ast.Add | ast.Sub | ast.Mult):
            value = {ast.Add: lv + rv, ast.Sub: lv - rv, ast.Mult: lv * rv}[type(op)]
            return B.const(value)
        if isinstance(op, ast.Mult):
            if lv == 1:
                return right
            if rv == 1:
                return left
            if lv == -1:
                return B.neg(right)
            if rv == -1:
                return B.neg(left)
        if isinstance(op, ast.Add):
            if lv == 0:
                return right
            if rv == 0:
                return left
        if isinstance(op, ast.Sub):
            if rv == 0:
                return left
            if lv == 0:
                return B.neg(right)
        if isinstance(op, ast.Div) and rv == 1:
            return left
        if isinstance(op, ast.Pow) and rv == 1:
            return left
        return ast.BinOp(left=left, op=op, right=right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = simplify(node.operand)
        return B.neg(inner)
    return node


class Simplify(ast.NodeTransformer):
    def __init__(self, tangent_names: set[str]) -> None:
        self.tangent_names = tangent_names

    def visit_Assign(self, node: ast.Assign) -> ast.Assign:
        if is_tangent_stmt(node, self.tangent_names):
            node.value = SimplifyAll().visit(node.value)
        return node

    def visit_Return(self, node: ast.Return) -> ast.Return:
        if node.value is not None:
            node.value = SimplifyAll().visit(node.value)
        return node


class SimplifyAll(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return simplify(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return simplify(node)


def blocks(body: list[ast.stmt], required: bool = True):
    """Every statement list in ``body``, with whether it may not be empty."""
    yield body, required
    for s in body:
        if isinstance(s, ast.If | ast.For | ast.While):
            yield from blocks(s.body, True)
            yield from blocks(s.orelse, False)


def drop_dead_tangents(tree: ast.FunctionDef, tangent_names: set[str], keep: set[str]) -> None:
    """Remove tangent statements whose targets nothing (transitively) needs."""
    all_stmts = [s for body, _ in blocks(tree.body) for s in body]
    live: set[str] = set(keep)
    for s in all_stmts:
        if not is_tangent_stmt(s, tangent_names):
            live |= stmt_reads(s)
    changed = True
    while changed:
        changed = False
        for s in all_stmts:
            if is_tangent_stmt(s, tangent_names) and set(tangent_targets(s)) & live:
                new = stmt_reads(s) - live
                if new:
                    live |= new
                    changed = True
    for body, required in blocks(tree.body):
        body[:] = [s for s in body
                   if not (is_tangent_stmt(s, tangent_names) and not set(tangent_targets(s))
                           & live)]
        if required and not body:
            body.append(ast.Pass())


def tangent_targets(s: ast.stmt) -> list[str]:
    if isinstance(s, ast.Assign):
        return [n for t in s.targets for n in B.stored_names(t)]
    return [s.value.func.value.id]


def stmt_reads(s: ast.stmt) -> set[str]:
    """Names a statement reads (for compound statements: their headers only)."""
    if isinstance(s, ast.If | ast.While):
        return B.read_names(s.test)
    if isinstance(s, ast.For):
        return B.read_names(s.iter)
    if isinstance(s, ast.FunctionDef):
        return B.read_names(s)
    return B.read_names(s)
