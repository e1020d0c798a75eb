"""Rules of cumulative sums and products and of differences: ``np.cumsum``, ``np.cumprod``
(and their methods), ``np.diff``, ``np.ediff1d``, ``np.gradient``, ``np.trapezoid`` (numpy
>= 2) and ``np.trapz`` (where numpy still has it).

All but ``cumprod`` are linear in the array: the tangent is the same function of the
tangent, over the same axis (made full first, with the direction axis of an array parameter
kept last). ``cumprod``'s tangent follows its recurrence ``dz[i] = dz[i-1] * x[i] + z[i-1] *
dx[i]`` (:func:`fmad.runtime_arrays.cumprod_tangent`): it never divides by ``x``, so zeros
in ``x`` need no special case.
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_arrays as ra
from fmad.rules import options as opt
from fmad.rules.base import RULES, alias, is_none, k_arg, method, tangent_of
from fmad.rules.reductions import REDUCTION_OUT
from fmad.tangent import Tangent

OUT_ADVICE = {"out": "assign the result instead of writing into an array with out="}
REDUCTION_OUT.update({np.cumsum: 3, np.cumprod: 3})


def _flat(ctx, t: ast.expr) -> ast.expr:
    """A vectorized tangent with its value's axes merged into one: ``(n, k)``."""
    return B.call(ctx.np_("reshape"), t, B.tuple_([B.const(-1), opt.k_const(ctx)]))


def _options(ctx, name, args, keywords):
    given = opt.bind(ctx, name, args, keywords, ("axis", "dtype", "out"))
    opt.floating_dtype(ctx, name, given)
    opt.refuse_others(ctx, name, given, {"axis", "dtype"}, OUT_ADVICE)
    return given


def cumsum_rule(ctx, z, args, tangents, keywords):
    """d cumsum(x) = cumsum(dx), over the same axis (all entries, flattened, by default)."""
    x, dx = args[0], tangents[0]
    if dx is None:
        return None
    given = _options(ctx, "np.cumsum", args, keywords)
    t = ctx.full(dx, x)
    if not ctx.vectorized:
        axis = given.get("axis")
        kw = {} if axis is None or is_none(axis) else {"axis": axis}
        return tangent_of(B.call(ctx.np_("cumsum"), t, **kw))
    axis = opt.static_axis(ctx, "np.cumsum", given.get("axis"), None)
    if axis is None:
        return tangent_of(B.call(ctx.np_("cumsum"), _flat(ctx, t), axis=B.const(0)))
    return tangent_of(B.call(ctx.np_("cumsum"), t, axis=B.const(opt.shifted(axis))))


def cumprod_rule(ctx, z, args, tangents, keywords):
    """d cumprod(x): the recurrence of the product rule (no division: zeros are fine)."""
    x, dx = args[0], tangents[0]
    if dx is None:
        return None
    given = _options(ctx, "np.cumprod", args, keywords)
    helper = ctx.inject(ra.cumprod_tangent, "cumprod_tangent")
    axis = given.get("axis") or ast.Constant(None)
    return tangent_of(B.call(helper, dx.expr, x, z, axis, k_arg(ctx)))


RULES[np.cumsum] = cumsum_rule
RULES[np.cumprod] = cumprod_rule
alias(method("cumsum"), to=np.cumsum)  # x.cumsum(axis, dtype, out): the same positions
alias(method("cumprod"), to=np.cumprod)
opt.helper_rule(ra.cumprod_tangent, (0,), fixed=(1, 2))


def diff_rule(ctx, z, args, tangents, keywords):
    """d diff(x, n, axis) = diff(dx, n, axis); a prepended or appended constant has a zero
    tangent (one that carries a derivative is refused)."""
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.diff", args, keywords, ("n", "axis", "prepend", "append"))
    opt.refuse_active(ctx, "np.diff", given, "n", "prepend", "append")
    if dx is None:
        return None
    t = ctx.full(dx, x)
    n = given.get("n") or B.const(1)
    axis = opt.tangent_axis(ctx, "np.diff", given.get("axis"), -1)
    ends = {key: given[key] for key in ("prepend", "append") if given.get(key) is not None}
    if not ends:
        return tangent_of(B.call(ctx.np_("diff"), t, n, axis=axis))
    pre, post = ends.get("prepend"), ends.get("append")
    helper = ctx.inject(ra.padded_diff, "padded_diff")
    return tangent_of(
        B.call(
            helper,
            dx.expr,
            x,
            n,
            given.get("axis") or B.const(-1),
            B.const(pre is not None),
            pre if pre is not None else ast.Constant(None),
            B.const(post is not None),
            post if post is not None else ast.Constant(None),
            k_arg(ctx),
        )
    )


RULES[np.diff] = diff_rule
opt.helper_rule(ra.padded_diff, (0,))


def ediff1d_rule(ctx, z, args, tangents, keywords):
    """d ediff1d(x) = the differences of the flattened tangent; the constants ``to_begin``
    and ``to_end`` get zero tangents (ones that carry a derivative are refused)."""
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.ediff1d", args, keywords, ("to_end", "to_begin"))
    opt.refuse_active(ctx, "np.ediff1d", given, "to_end", "to_begin")
    if dx is None:
        return None
    t = ctx.full(dx, x)
    zeros = {
        key: B.parse_expr("np.zeros(np.size(v))", np=ctx.np_(), v=node)
        for key, node in given.items()
        if node is not None and not is_none(node)
    }
    if not ctx.vectorized:
        return tangent_of(B.call(ctx.np_("ediff1d"), t, **zeros))
    parts = [B.call(ctx.np_("diff"), _flat(ctx, t), axis=B.const(0))]
    for key, first in (("to_begin", True), ("to_end", False)):
        if key in zeros:
            block = B.parse_expr(
                "np.zeros((np.size(v), k))", np=ctx.np_(), v=given[key], k=opt.k_const(ctx)
            )
            parts.insert(0 if first else len(parts), block)
    if len(parts) == 1:
        return tangent_of(parts[0])
    return tangent_of(B.call(ctx.np_("concatenate"), ast.List(elts=parts, ctx=ast.Load())))


RULES[np.ediff1d] = ediff1d_rule


def _trapezoid(name: str):
    def rule(ctx, z, args, tangents, keywords):
        """d trapezoid(y, x, dx, axis) = trapezoid(dy, x, dx, axis): linear in ``y``; sample
        points ``x`` or a spacing ``dx`` that carry a derivative are refused."""
        y, dy = args[0], tangents[0]
        given = opt.bind(ctx, f"np.{name}", args, keywords, ("x", "dx", "axis"))
        opt.refuse_active(ctx, f"np.{name}", given, "x", "dx")
        if dy is None:
            return None
        func = ctx.np_("trapezoid")
        kw = {key: given[key] for key in ("x", "dx") if given.get(key) is not None}
        t = ctx.full(dy, y)
        if not ctx.vectorized:
            return tangent_of(B.call(func, t, axis=given.get("axis") or B.const(-1), **kw))
        # the direction axis in front, as a batch axis, and the axis counted from the end:
        # sample points x of the value's shape then align with the tangent from the right
        axis = opt.static_axis(ctx, f"np.{name}", given.get("axis"), -1)
        if not isinstance(axis, int):
            ctx.refuse(f"np.{name}() takes one axis")
        negative = (
            B.const(axis) if axis < 0 else B.parse_expr(f"{axis} - np.ndim(y)", np=ctx.np_(), y=y)
        )
        front = B.call(ctx.np_("moveaxis"), t, B.const(-1), B.const(0))
        out = B.call(func, front, axis=negative, **kw)
        return tangent_of(B.call(ctx.np_("moveaxis"), out, B.const(0), B.const(-1)))

    return rule


if hasattr(np, "trapezoid"):  # numpy >= 2.0
    RULES[np.trapezoid] = _trapezoid("trapezoid")
    if hasattr(np, "trapz"):  # deprecated in numpy 2.0, removed later
        RULES[np.trapz] = _trapezoid("trapz")


def gradient_rule(ctx, z, args, tangents, keywords):
    """d gradient(f, *spacing, axis, edge_order) = gradient(df, *spacing, ...): linear in
    ``f``. Spacings or coordinates that carry a derivative are refused. The result is one
    array for one axis, else a tuple with one array per axis: its tangent likewise."""
    f, df = args[0], tangents[0]
    if any(t is not None for t in tangents[1:]):
        ctx.refuse(
            "np.gradient() with spacings or coordinates that carry a derivative is not "
            "supported by fmad (it differentiates the sampled values only)"
        )
    opt.refuse_others(ctx, "np.gradient", keywords, {"axis", "edge_order"})
    if df is None:
        return None
    axis = keywords.get("axis")
    value_axis = opt.static_axis(ctx, "np.gradient", axis, None) if ctx.vectorized else None
    if ctx.vectorized:
        if value_axis is None:  # every axis of the value, never the direction axis
            taxis = B.call(
                ctx.rt("tangent_axis"), ast.Constant(None), B.call(ctx.np_("ndim"), f), k_arg(ctx)
            )
        else:
            taxis = B.const(opt.shifted(value_axis))
    else:
        taxis = axis if axis is not None else ast.Constant(None)
    kw = {"axis": taxis}
    if keywords.get("edge_order") is not None:
        kw["edge_order"] = keywords["edge_order"]
    call = B.call(ctx.np_("gradient"), ctx.full(df, f), *args[1:], **kw)
    known = opt.static(ctx, axis) if axis is not None else None
    several = isinstance(known, tuple) and len(known) > 1
    return Tangent(call, full=True, container=several)


RULES[np.gradient] = gradient_rule
