"""Rules of the numpy functions that select entries: ``sort``, ``partition``,
``take_along_axis``, ``diag``, ``diagonal`` (and ``x.diagonal``), ``triu`` and ``tril``.

Each is linear: the tangent is the same selection of the tangent (made full first), with an
array parameter's direction axis kept last. Conventions:

- ``sort``: the tangent follows the values through a *stable* sort (``np.argsort(x,
  kind="stable")``): at ties, equal entries keep their original order, so the derivative of
  each sorted position is that of the entry a stable sort puts there.
- ``partition``: numpy does not say which entry lands where besides the ``kth`` ones, so
  the rule matches the result to the input by value (``z``'s and ``x``'s stable argsorts),
  tied entries in their original order, as for ``sort``.
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_arrays as ra
from fmad.rules import options as opt
from fmad.rules.base import RULES, alias, is_none, k_arg, method, tangent_of


def _flat(ctx, t: ast.expr) -> ast.expr:
    return B.call(ctx.np_("reshape"), t, B.tuple_([B.const(-1), opt.k_const(ctx)]))


def _argsort(ctx, value: ast.expr, axis: ast.expr) -> ast.expr:
    return B.call(ctx.np_("argsort"), value, axis=axis, kind=B.const("stable"))


def _permuted(ctx, name: str, x, dx, axis: ast.expr, order: ast.expr):
    """The tangent of a permutation of ``x`` along ``axis`` (None: of the flattened ``x``)
    that puts entry ``order[i]`` at position ``i``."""
    order = ctx.fwd.partial(order)
    t = ctx.full(dx, x)
    if not ctx.vectorized:
        if is_none(axis):
            return tangent_of(B.subscript(B.call(ctx.np_("ravel"), t), order))
        return tangent_of(B.call(ctx.np_("take_along_axis"), t, order, axis=axis))
    value_axis = opt.static_axis(ctx, name, axis, -1)
    if value_axis is None:
        return tangent_of(B.subscript(_flat(ctx, t), order))
    index = B.call(ctx.np_("expand_dims"), order, B.const(-1))
    return tangent_of(
        B.call(ctx.np_("take_along_axis"), t, index, axis=B.const(opt.shifted(value_axis)))
    )


def sort_rule(ctx, z, args, tangents, keywords):
    """d sort(x) = dx taken in the order of a stable argsort (ties keep their order)."""
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.sort", args, keywords, ("axis", "kind", "order"))
    if dx is None:
        return None
    opt.refuse_others(ctx, "np.sort", given, {"axis", "kind", "stable"})
    axis = given.get("axis", B.const(-1))
    return _permuted(ctx, "np.sort", x, dx, axis, _argsort(ctx, x, axis))


RULES[np.sort] = sort_rule


def partition_rule(ctx, z, args, tangents, keywords):
    """d partition(x): the entries of ``x`` matched to the result's by value."""
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.partition", args, keywords, ("kth", "axis", "kind", "order"), 1)
    opt.refuse_active(ctx, "np.partition", given, "kth")
    if dx is None:
        return None
    opt.refuse_others(ctx, "np.partition", given, {"kth", "axis", "kind"})
    axis = given.get("axis", B.const(-1))
    # z[i] is the j-th smallest where j = argsort(argsort(z))[i]: x's j-th smallest entry
    rank = B.call(ctx.np_("argsort"), _argsort(ctx, z, axis), axis=axis)
    if is_none(axis):
        order = B.subscript(_argsort(ctx, x, axis), rank)
    else:
        order = B.call(ctx.np_("take_along_axis"), _argsort(ctx, x, axis), rank, axis=axis)
    return _permuted(ctx, "np.partition", x, dx, axis, order)


RULES[np.partition] = partition_rule


def take_along_axis_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.take_along_axis", args, keywords, ("indices", "axis"), 1)
    opt.refuse_active(ctx, "np.take_along_axis", given, "indices")
    if dx is None:
        return None
    indices, axis = given["indices"], given.get("axis", B.const(-1))
    t = ctx.full(dx, x)
    if not ctx.vectorized:
        return tangent_of(B.call(ctx.np_("take_along_axis"), t, indices, axis=axis))
    value_axis = opt.static_axis(ctx, "np.take_along_axis", axis, -1)
    index = B.call(ctx.np_("expand_dims"), indices, B.const(-1))
    if value_axis is None:
        return tangent_of(B.call(ctx.np_("take_along_axis"), _flat(ctx, t), index, axis=B.const(0)))
    return tangent_of(
        B.call(ctx.np_("take_along_axis"), t, index, axis=B.const(opt.shifted(value_axis)))
    )


RULES[np.take_along_axis] = take_along_axis_rule


def diag_rule(ctx, z, args, tangents, keywords):
    v, dv = args[0], tangents[0]
    given = opt.bind(ctx, "np.diag", args, keywords, ("k",))
    opt.refuse_active(ctx, "np.diag", given, "k")
    if dv is None:
        return None
    helper = ctx.inject(ra.diag_tangent, "diag_tangent")
    return tangent_of(B.call(helper, dv.expr, v, given.get("k") or B.const(0), k_arg(ctx)))


RULES[np.diag] = diag_rule
opt.helper_rule(ra.diag_tangent, (0,))


def diagonal_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.diagonal", args, keywords, ("offset", "axis1", "axis2"))
    opt.refuse_active(ctx, "np.diagonal", given, "offset")
    if dx is None:
        return None
    offset = given.get("offset") or B.const(0)
    t = ctx.full(dx, x)
    if not ctx.vectorized:
        a1, a2 = given.get("axis1") or B.const(0), given.get("axis2") or B.const(1)
        return tangent_of(B.call(ctx.np_("diagonal"), t, offset, a1, a2))
    a1 = B.const(opt.shifted(opt.static_axis(ctx, "np.diagonal", given.get("axis1"), 0)))
    a2 = B.const(opt.shifted(opt.static_axis(ctx, "np.diagonal", given.get("axis2"), 1)))
    # numpy puts the diagonal last: move it before the direction axis
    out = B.call(ctx.np_("diagonal"), t, offset, a1, a2)
    return tangent_of(B.call(ctx.np_("swapaxes"), out, B.const(-1), B.const(-2)))


RULES[np.diagonal] = diagonal_rule
alias(method("diagonal"), to=np.diagonal)


def _triangle(name: str):
    def rule(ctx, z, args, tangents, keywords):
        """The same triangle of the tangent (a 1-d value is broadcast to a square first)."""
        x, dx = args[0], tangents[0]
        given = opt.bind(ctx, f"np.{name}", args, keywords, ("k",))
        opt.refuse_active(ctx, f"np.{name}", given, "k")
        if dx is None:
            return None
        mask = B.parse_expr(
            f"np.{name}(np.ones(np.shape(x), dtype=bool), k)",
            np=ctx.np_(),
            x=x,
            k=given.get("k") or B.const(0),
        )
        mask = ctx.expand(ctx.fwd.partial(mask))
        return tangent_of(B.call(ctx.np_("where"), mask, dx.expr, B.const(0.0)))

    return rule


RULES[np.triu] = _triangle("triu")
RULES[np.tril] = _triangle("tril")
