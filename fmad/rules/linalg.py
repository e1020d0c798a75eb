"""Rules of linear algebra: ``@``, ``np.matmul``, ``np.dot`` (and ``x.dot``), ``np.inner``,
``np.outer`` and ``np.linalg.norm``.

A product's tangent is the sum of the products of one tangent with the other value; a
runtime helper puts the direction axis where it belongs, and the folded identity seed of an
array parameter becomes the other operand itself (``d(X @ w)/dw`` is ``X``).
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad.rules.base import alias, argument, defrule, k_arg, method, tangent_of
from fmad.rules.decompositions import norm_call
from fmad.rules.reductions import reduce_tangent


def _matmul(ctx, z, x, y, dx, dy, dot=False):
    """``dot``: np.dot, which also takes scalars, so the helpers check the ranks."""
    shape = ctx.direction.shape
    dot_kw = {"dot": B.const(True)} if dot else {}  # np.dot of stacks is not ``@``
    terms = []
    if dot and ((dx is not None and dx.seed) or (dy is not None and dy.seed)):
        # np.dot of a scalar is a product: the identity seed scales instead of folding away
        shape_node = B.tuple_([B.const(n) for n in shape])
        if dx is not None and dx.seed and len(shape) == 1:
            terms.append(tangent_of(B.call(ctx.rt("seed_dot"), y, shape_node, B.const(True))))
            dx = None
        if dy is not None and dy.seed and len(shape) in (1, 2):
            terms.append(tangent_of(B.call(ctx.rt("seed_dot"), x, shape_node, B.const(False))))
            dy = None
    if dx is not None:
        if dx.seed and len(shape) == 1:
            # d(w @ y) with the identity seed of a vector w: y laid out with k last
            terms.append(tangent_of(B.call(ctx.rt("seed_matmul_left"), y)))
        elif not ctx.vectorized and not dot:
            terms.append(tangent_of(B.binop(ctx.full(dx, x), ast.MatMult(), y)))
        else:
            call = B.call(ctx.rt("matmul_left"), dx.expr, x, y, k_arg(ctx), **dot_kw)
            terms.append(tangent_of(call))
    if dy is not None:
        if dy.seed and len(shape) == 1:
            # d(X @ w) with the identity seed of a vector w is X itself: nothing to compute
            terms.append(tangent_of(x))
        elif dy.seed and len(shape) == 2:
            shape_node = B.tuple_([B.const(n) for n in shape])
            terms.append(tangent_of(B.call(ctx.rt("seed_matmul_right"), x, shape_node)))
        elif not ctx.vectorized and not dot:
            terms.append(tangent_of(B.binop(x, ast.MatMult(), ctx.full(dy, y))))
        else:
            call = B.call(ctx.rt("matmul_right"), x, y, dy.expr, k_arg(ctx), **dot_kw)
            terms.append(tangent_of(call))
    return ctx.add(*terms)


@defrule(ast.MatMult, np.matmul)
def matmul_rule(ctx, z, args, tangents, keywords):
    return _matmul(ctx, z, args[0], args[1], tangents[0], tangents[1])


@defrule(np.dot)
def dot_rule(ctx, z, args, tangents, keywords):
    return _matmul(ctx, z, args[0], args[1], tangents[0], tangents[1], dot=True)


@defrule(np.inner)
def inner_rule(ctx, z, args, tangents, keywords):
    (a, b), (da, db) = args[:2], tangents[:2]
    terms = []
    if da is not None:
        terms.append(tangent_of(B.call(ctx.rt("inner_left"), da.expr, a, b, k_arg(ctx))))
    if db is not None:
        terms.append(tangent_of(B.call(ctx.rt("inner_right"), a, b, db.expr, k_arg(ctx))))
    return ctx.add(*terms)


@defrule(np.outer)
def outer_rule(ctx, z, args, tangents, keywords):
    (a, b), (da, db) = args[:2], tangents[:2]
    terms = []
    if da is not None:
        terms.append(
            tangent_of(
                B.call(ctx.rt("outer_tangent"), da.expr, a, b, k_arg(ctx), ast.Constant(True))
            )
        )
    if db is not None:
        terms.append(
            tangent_of(
                B.call(ctx.rt("outer_tangent"), db.expr, b, a, k_arg(ctx), ast.Constant(False))
            )
        )
    return ctx.add(*terms)


@defrule(np.linalg.norm)
def norm_rule(ctx, z, args, tangents, keywords):
    """``ord=``, ``axis=``, ``keepdims=``: ``fmad_la.norm_tangent`` (vector and matrix
    norms, see :mod:`fmad.rules.decompositions`); the 2-norm of everything: plain numpy."""
    if any(t is not None for t in tangents[1:]):
        ctx.refuse(
            "np.linalg.norm: its ord=, axis= and keepdims= must not carry a derivative; pass "
            "constants"
        )
    x, dx = args[0], tangents[0]
    if dx is None:
        return None
    if len(args) > 1 or keywords:
        order = argument(args, keywords, 1, "ord", ast.Constant(None))
        axis = argument(args, keywords, 2, "axis", ast.Constant(None))
        keepdims = argument(args, keywords, 3, "keepdims", B.const(False))
        return norm_call(ctx, x, dx, order, axis, keepdims, "norm")
    # d|x| = sum(x * dx) / |x|; at x = 0 the sum is 0, and so is the derivative taken (the
    # subgradient 0, as abs has): divide by 1 there instead of by 0
    safe = B.call(ctx.np_("where"), B.parse_expr("z == 0", z=z), B.const(1.0), z)
    return ctx.divide(reduce_tangent(ctx, "sum", x, ctx.scale(x, dx, full=True), None, None), safe)


alias(method("dot"), to=np.dot)
if hasattr(np.linalg, "matmul"):  # numpy >= 2: np.matmul for arrays of one dimension or more
    alias(np.linalg.matmul, to=np.matmul)
