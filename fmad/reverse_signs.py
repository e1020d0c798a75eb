"""Fewer negations in reverse-mode variants: a sign carried by a name instead of an array.

The transpose rules negate adjoints where the chain rule says so: ``dz = -dneg_z`` for
``neg_z = -z``, ``-(g * z) / y`` for ``z = x / y``, and ``a - b`` gives ``-g`` to ``b``.
Each negation of an array is one more pass over it. :func:`fold_signs` runs over the top
level of a variant's adjoint statements (in the order they run) and binds an adjoint name
to the *negation* of its value where that saves work: the name is then said to be flipped,
and the statements that read it use it with the sign folded in:

- ``-a`` of a flipped ``a`` is ``a``; ``a * b``, ``a / b``, ``a @ b``, ``np.multiply``,
  ``np.divide``, ``np.sum``, ``a.sum()`` and ``np.multiply.outer`` of flipped operands are
  flipped when an odd number of them is;
- ``a + b`` with ``a`` flipped is ``b - a``; ``-a + -b`` is ``-(a + b)``, flipped; ``a - b``
  likewise;
- anywhere else (another call, a ``return``, a block), a flipped name is read as ``-a``
  (before an ``if`` or a loop, each flipped name is negated back first).

IEEE arithmetic rounds symmetrically, so ``-(x * y)`` is ``(-x) * y`` and ``x + (-y)`` is
``x - y``, bit for bit, and sums (``np.sum``, the dot products of ``@``) of negated terms
are the negated sums: the gradients are the generic code's exactly. Only adjoint names are
flipped (the unit's ``tangents``); primal values are never touched.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from fmad import build as B

PRODUCTS = (ast.Mult, ast.Div, ast.MatMult)
FUNCTIONS = {np.multiply: ast.Mult, np.divide: ast.Div}
# expressions with names of their own (a lambda's parameters...): not rewritten
SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)


class Signs:
    def __init__(self, unit: Any) -> None:
        self.scope = unit.scope
        self.adjoints = unit.tangents
        self.flipped: set[str] = set()
        self.blocked: set[str] = set()
        for s in unit.tree.body:
            for node in ast.walk(s.value if isinstance(s, ast.Assign) else s):
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    self.blocked.add(node.id)

    def body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in body:
            scoped = any(isinstance(n, SCOPES) for n in ast.walk(s))
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and not scoped:
                value, flip = self.visit(s.value)
                target = s.targets[0]
                if flip and not (
                    isinstance(target, ast.Name)
                    and target.id in self.adjoints
                    and target.id not in self.blocked
                ):
                    value, flip = B.neg(value), False
                s.value = value
                for name in B.stored_names(target):
                    self.flipped.discard(name)
                if flip:
                    self.flipped.add(target.id)
            elif isinstance(s, ast.Return | ast.Expr) and s.value is not None and not scoped:
                s.value = self.plain(s.value)
            elif self.flipped:  # a block, a lambda...: every name with its own sign first
                for name in sorted(self.flipped):
                    restore = B.assign(name, B.neg(B.name(name)))
                    out.append(ast.copy_location(restore, s))
                self.flipped.clear()
            out.append(s)
        return out

    def plain(self, node: ast.expr) -> ast.expr:
        """``node`` with every flipped name read with its sign (``-a``)."""
        value, flip = self.visit(node)
        return B.neg(value) if flip else value

    def visit(self, node: ast.expr) -> tuple[ast.expr, bool]:
        """``(expr, flip)``: ``node``'s value is ``-expr`` when ``flip``."""
        if isinstance(node, ast.Name):
            return node, node.id in self.flipped
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner, flip = self.visit(node.operand)
            return inner, not flip
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Tuple):
            node.elts = [self.plain(e) for e in node.elts]
            return node, False
        if isinstance(node, ast.Call) and not node.keywords or self.is_sum(node):
            func = self.scope.lookup(node.func) if isinstance(node.func, ast.Attribute) else None
            if func in FUNCTIONS and len(node.args) == 2 and not node.keywords:
                pair = ast.BinOp(left=node.args[0], op=FUNCTIONS[func](), right=node.args[1])
                left, right, flip = self.operands(pair)
                node.args = [left, right]
                return node, flip
            if self.is_sum_method(node):  # g.sum(...): the sign of g
                node.func.value, flip = self.visit(node.func.value)
                node.keywords = [ast.keyword(k.arg, self.plain(k.value)) for k in node.keywords]
                return node, flip
            if self.is_sum(node) or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "outer"
                and self.scope.lookup(node.func.value) is np.multiply
                and len(node.args) == 2
            ):
                visited = [self.visit(a) for a in node.args[:2]]
                node.args[: len(visited)] = [a for a, _ in visited]
                node.keywords = [ast.keyword(k.arg, self.plain(k.value)) for k in node.keywords]
                return node, sum(f for _, f in visited) % 2 == 1
        for field, value in ast.iter_fields(node):  # anything else: plain operands
            if isinstance(value, ast.expr):
                setattr(node, field, self.plain(value))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.keyword):
                        item.value = self.plain(item.value)
                setattr(
                    node, field, [self.plain(v) if isinstance(v, ast.expr) else v for v in value]
                )
        return node, False

    def is_sum(self, node: ast.Call) -> bool:
        """``np.sum(a)`` or ``np.sum(a, axis=..., keepdims=...)`` with constant options."""
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and self.scope.lookup(node.func) is np.sum
            and len(node.args) == 1
            and all(k.arg in ("axis", "keepdims") for k in node.keywords)
        )

    @staticmethod
    def is_sum_method(node: ast.Call) -> bool:
        """``g.sum()`` or ``g.sum(axis=..., keepdims=...)`` (a flipped ``g`` is an adjoint: a
        number or an array, whose ``sum`` is numpy's)."""
        return (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "sum"
            and not node.args
            and all(k.arg in ("axis", "keepdims") for k in node.keywords)
        )

    def operands(self, node: ast.BinOp) -> tuple[ast.expr, ast.expr, bool]:
        left, lf = self.visit(node.left)
        right, rf = self.visit(node.right)
        return left, right, lf != rf

    def binop(self, node: ast.BinOp) -> tuple[ast.expr, bool]:
        if isinstance(node.op, PRODUCTS):
            node.left, node.right, flip = self.operands(node)
            return node, flip
        if isinstance(node.op, ast.Add | ast.Sub):
            left, lf = self.visit(node.left)
            right, rf = self.visit(node.right)
            if isinstance(node.op, ast.Sub):
                rf = not rf  # a - b is a + (-b)
            if lf == rf:  # a + b, or -(a + b)
                return B.binop(left, ast.Add(), right), lf
            if lf:  # -a + b
                return B.binop(right, ast.Sub(), left), False
            return B.binop(left, ast.Sub(), right), False  # a + -b
        node.left, node.right = self.plain(node.left), self.plain(node.right)
        return node, False


def fold_signs(unit: Any) -> None:
    """Carry the signs of ``unit``'s adjoint names (see the module's docstring), in place."""
    unit.tree.body = Signs(unit).body(unit.tree.body)
