"""Rules of the numpy functions that move, repeat, select or split entries: ``repeat``,
``tile``, ``pad``, ``roll``, ``flip`` (``fliplr``, ``flipud``), ``rot90``, ``copy``, ``sort``,
``take``, ``take_along_axis``, ``diag``, ``diagonal``, ``triu``, ``tril``, ``moveaxis``,
``swapaxes``, ``broadcast_to``, ``atleast_1d/2d/3d``, ``split`` and ``array_split`` (and the
methods ``x.repeat``, ``x.take``, ``x.diagonal``, ``x.swapaxes``).

Each is linear: the tangent is the same rearrangement of the tangent (made full first), with
an array parameter's direction axis kept last (so its axes are shifted, see
:mod:`fmad.rules.options`). Conventions:

- ``sort``: the tangent follows the values through a *stable* sort (``np.argsort(x,
  kind="stable")``): at ties, equal entries keep their original order, so the derivative of
  each sorted position is that of the entry a stable sort puts there.
- ``pad``: modes ``constant`` (the constant values get no derivative; ones that carry one are
  refused), ``edge``, ``reflect``, ``symmetric`` and ``wrap`` (all linear); other modes are
  refused.
- ``split``/``array_split`` return a list: its tangent is the list of the parts' tangents.
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_arrays as ra
from fmad.rules.base import RULES, alias, deflinear, defzero, is_none, k_arg, method, tangent_of
from fmad.rules.options import (
    UNKNOWN,
    bind,
    helper_rule,
    k_const,
    refuse_active,
    refuse_others,
    shifted,
    static,
    static_axis,
    tangent_axis,
)
from fmad.rules.reductions import REDUCTION_OUT
from fmad.tangent import Tangent

REDUCTION_OUT.update({np.take: 3})
deflinear(np.copy)


def _flat(ctx, t: ast.expr) -> ast.expr:
    return B.call(ctx.np_("reshape"), t, B.tuple_([B.const(-1), k_const(ctx)]))


def _along(name: str, func: str, params: tuple[str, ...], constant: tuple[str, ...], flat: bool):
    """``func(x, *constant options, axis)``, linear in ``x`` along ``axis``; ``flat``: axis
    None means the flattened array (numpy's default for these functions)."""

    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        given = bind(ctx, f"np.{name}", args, keywords, params)
        refuse_active(ctx, f"np.{name}", given, *constant)
        if dx is None:
            return None
        refuse_others(
            ctx,
            f"np.{name}",
            given,
            {*constant, "axis", "mode"},
            {"out": "assign the result instead of writing into an array with out="},
        )
        kept = [given[key] for key in constant]
        mode = {"mode": given["mode"]} if given.get("mode") is not None else {}
        t = ctx.full(dx, x)
        np_func = ctx.np_(func)
        axis = given.get("axis")
        if not ctx.vectorized:
            kw = {} if axis is None else {"axis": axis}
            return tangent_of(B.call(np_func, t, *kept, **kw, **mode))
        value_axis = static_axis(ctx, f"np.{name}", axis, None)
        if value_axis is None and flat:
            out = B.call(np_func, _flat(ctx, t), *kept, axis=B.const(0), **mode)
            if name == "roll":  # the flattened array rolled, then shaped back
                shape = B.parse_expr("np.shape(x) + (k,)", np=ctx.np_(), x=x, k=k_const(ctx))
                out = B.call(ctx.np_("reshape"), out, shape)
            return tangent_of(out)
        if value_axis is None:  # flip: every axis of the value
            taxis = B.call(ctx.rt("tangent_axis"), ast.Constant(None), _ndim(ctx, x), k_arg(ctx))
        else:
            taxis = B.const(shifted(value_axis))
        return tangent_of(B.call(np_func, t, *kept, axis=taxis, **mode))

    rule.__doc__ = f"d np.{name}(x) = np.{name}(dx), along the same axis"
    return rule


def _ndim(ctx, x):
    return B.call(ctx.np_("ndim"), x)


RULES[np.repeat] = _along("repeat", "repeat", ("repeats", "axis"), ("repeats",), True)
RULES[np.roll] = _along("roll", "roll", ("shift", "axis"), ("shift",), True)
RULES[np.flip] = _along("flip", "flip", ("axis",), (), False)
RULES[np.take] = _along("take", "take", ("indices", "axis", "out", "mode"), ("indices",), True)
alias(method("repeat"), to=np.repeat)  # x.repeat(repeats, axis): the same positions
alias(method("take"), to=np.take)


def _fixed(func: str):
    """fliplr/flipud: they act on the value's first axes, never on the direction axis."""

    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        return None if dx is None else tangent_of(B.call(ctx.np_(func), ctx.full(dx, x)))

    return rule


RULES[np.fliplr] = _fixed("fliplr")
RULES[np.flipud] = _fixed("flipud")


def rot90_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = bind(ctx, "np.rot90", args, keywords, ("k", "axes"))
    refuse_active(ctx, "np.rot90", given, "k")
    if dx is None:
        return None
    turns = given.get("k") or B.const(1)
    axes = given.get("axes")
    if ctx.vectorized:
        value_axes = static_axis(ctx, "np.rot90", axes, (0, 1))
        axes = B.const(shifted(tuple(value_axes)))
    kw = {} if axes is None else {"axes": axes}
    return tangent_of(B.call(ctx.np_("rot90"), ctx.full(dx, x), turns, **kw))


RULES[np.rot90] = rot90_rule


def tile_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = bind(ctx, "np.tile", args, keywords, ("reps",))
    refuse_active(ctx, "np.tile", given, "reps")
    if dx is None:
        return None
    helper = ctx.inject(ra.tile_tangent, "tile_tangent")
    return tangent_of(B.call(helper, dx.expr, x, given["reps"], k_arg(ctx)))


RULES[np.tile] = tile_rule
helper_rule(ra.tile_tangent, (0,))

PAD_MODES = {"constant", "edge", "reflect", "symmetric", "wrap"}


def pad_rule(ctx, z, args, tangents, keywords):
    """d pad(x) = pad(dx) with the same widths and mode (constant values: zero tangent)."""
    x, dx = args[0], tangents[0]
    given = bind(ctx, "np.pad", args, keywords, ("pad_width", "mode"))
    refuse_active(ctx, "np.pad", given, "pad_width", "constant_values")
    if dx is None:
        return None
    mode_node = given.get("mode")
    mode = "constant" if mode_node is None else static(ctx, mode_node)
    if mode not in PAD_MODES:
        ctx.refuse(
            f"np.pad() with mode={ast.unparse(mode_node)} is not supported by fmad on a value "
            f"that carries a derivative; it models the modes {', '.join(sorted(PAD_MODES))}"
        )
    extra = {"constant": {"constant_values"}, "reflect": {"reflect_type"}}
    extra["symmetric"] = extra["reflect"]
    refuse_others(ctx, "np.pad", given, {"pad_width", "mode", *extra.get(mode, ())})
    kw = {"mode": B.const(mode)}
    if given.get("reflect_type") is not None:
        kw["reflect_type"] = given["reflect_type"]
    width = given["pad_width"]
    if ctx.vectorized:  # no padding along the direction axis
        width = B.parse_expr(
            "np.concatenate([np.broadcast_to(w, (np.ndim(x), 2)), np.zeros((1, 2), dtype=int)])",
            np=ctx.np_(),
            w=width,
            x=x,
        )
    return tangent_of(B.call(ctx.np_("pad"), ctx.full(dx, x), width, **kw))


RULES[np.pad] = pad_rule


def sort_rule(ctx, z, args, tangents, keywords):
    """d sort(x) = dx taken in the order of a stable argsort (ties keep their order)."""
    x, dx = args[0], tangents[0]
    given = bind(ctx, "np.sort", args, keywords, ("axis", "kind", "order"))
    if dx is None:
        return None
    refuse_others(ctx, "np.sort", given, {"axis", "kind", "stable"})
    axis = given.get("axis", B.const(-1))
    order = ctx.fwd.partial(B.call(ctx.np_("argsort"), x, axis=axis, kind=B.const("stable")))
    t = ctx.full(dx, x)
    value_axis = static_axis(ctx, "np.sort", axis, -1) if ctx.vectorized else UNKNOWN
    if ctx.vectorized and value_axis is None:
        return tangent_of(B.subscript(_flat(ctx, t), order))
    if not ctx.vectorized:
        if is_none(axis):
            return tangent_of(B.subscript(B.call(ctx.np_("ravel"), t), order))
        return tangent_of(B.call(ctx.np_("take_along_axis"), t, order, axis=axis))
    index = B.call(ctx.np_("expand_dims"), order, B.const(-1))
    return tangent_of(
        B.call(ctx.np_("take_along_axis"), t, index, axis=B.const(shifted(value_axis)))
    )


RULES[np.sort] = sort_rule


def take_along_axis_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = bind(ctx, "np.take_along_axis", args, keywords, ("indices", "axis"))
    refuse_active(ctx, "np.take_along_axis", given, "indices")
    if dx is None:
        return None
    indices, axis = given["indices"], given.get("axis", B.const(-1))
    t = ctx.full(dx, x)
    if not ctx.vectorized:
        return tangent_of(B.call(ctx.np_("take_along_axis"), t, indices, axis=axis))
    value_axis = static_axis(ctx, "np.take_along_axis", axis, -1)
    index = B.call(ctx.np_("expand_dims"), indices, B.const(-1))
    if value_axis is None:
        return tangent_of(B.call(ctx.np_("take_along_axis"), _flat(ctx, t), index, axis=B.const(0)))
    return tangent_of(
        B.call(ctx.np_("take_along_axis"), t, index, axis=B.const(shifted(value_axis)))
    )


RULES[np.take_along_axis] = take_along_axis_rule


def diag_rule(ctx, z, args, tangents, keywords):
    v, dv = args[0], tangents[0]
    given = bind(ctx, "np.diag", args, keywords, ("k",))
    refuse_active(ctx, "np.diag", given, "k")
    if dv is None:
        return None
    helper = ctx.inject(ra.diag_tangent, "diag_tangent")
    return tangent_of(B.call(helper, dv.expr, v, given.get("k") or B.const(0), k_arg(ctx)))


RULES[np.diag] = diag_rule
helper_rule(ra.diag_tangent, (0,))


def diagonal_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = bind(ctx, "np.diagonal", args, keywords, ("offset", "axis1", "axis2"))
    refuse_active(ctx, "np.diagonal", given, "offset")
    if dx is None:
        return None
    offset = given.get("offset") or B.const(0)
    t = ctx.full(dx, x)
    if not ctx.vectorized:
        a1, a2 = given.get("axis1") or B.const(0), given.get("axis2") or B.const(1)
        return tangent_of(B.call(ctx.np_("diagonal"), t, offset, a1, a2))
    a1 = B.const(shifted(static_axis(ctx, "np.diagonal", given.get("axis1"), 0)))
    a2 = B.const(shifted(static_axis(ctx, "np.diagonal", given.get("axis2"), 1)))
    # numpy puts the diagonal last: move it before the direction axis
    out = B.call(ctx.np_("diagonal"), t, offset, a1, a2)
    return tangent_of(B.call(ctx.np_("swapaxes"), out, B.const(-1), B.const(-2)))


RULES[np.diagonal] = diagonal_rule
alias(method("diagonal"), to=np.diagonal)


def _triangle(name: str):
    def rule(ctx, z, args, tangents, keywords):
        """The same triangle of the tangent (a 1-d value is broadcast to a square first)."""
        x, dx = args[0], tangents[0]
        given = bind(ctx, f"np.{name}", args, keywords, ("k",))
        refuse_active(ctx, f"np.{name}", given, "k")
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


def _axes_moved(name: str, params: tuple[str, str]):
    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        if dx is None:
            return None
        given = bind(ctx, f"np.{name}", args, keywords, params)
        a, b = (given[p] for p in params)
        if ctx.vectorized:
            a, b = (B.const(shifted(static_axis(ctx, f"np.{name}", n, 0))) for n in (a, b))
        return tangent_of(B.call(ctx.np_(name), ctx.full(dx, x), a, b))

    return rule


RULES[np.moveaxis] = _axes_moved("moveaxis", ("source", "destination"))
RULES[np.swapaxes] = _axes_moved("swapaxes", ("axis1", "axis2"))
alias(method("swapaxes"), to=np.swapaxes)


def broadcast_to_rule(ctx, z, args, tangents, keywords):
    """The tangent broadcast to the result's shape (a read-only view, as the value)."""
    dx = tangents[0]
    if dx is None:
        return None
    return Tangent(
        B.call(ctx.rt("full"), dx.expr, z, *([k_const(ctx)] if ctx.vectorized else [])), full=True
    )


RULES[np.broadcast_to] = broadcast_to_rule


def atleast_rule(ctx, z, args, tangents, keywords):
    """``atleast_Nd(x)`` only inserts axes of length 1: the tangent reshaped like the value."""
    if len(args) != 1:
        if any(t is not None for t in tangents):
            ctx.refuse(
                "np.atleast_1d/2d/3d() of several arrays (it returns a tuple) is not "
                "supported by fmad when they carry derivatives; call it on each array"
            )
        return None
    x, dx = args[0], tangents[0]
    if dx is None:
        return None
    shape = B.call(ctx.np_("shape"), z)
    return tangent_of(B.call(ctx.rt("reshape_tangent"), dx.expr, x, shape, k_arg(ctx)))


for _f in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    RULES[_f] = atleast_rule


def _split(name: str):
    def rule(ctx, z, args, tangents, keywords):
        """The list of the parts of the tangent, split the same way."""
        x, dx = args[0], tangents[0]
        given = bind(ctx, f"np.{name}", args, keywords, ("indices_or_sections", "axis"))
        refuse_active(ctx, f"np.{name}", given, "indices_or_sections")
        if dx is None:
            return None
        axis = tangent_axis(ctx, f"np.{name}", given.get("axis"), 0)
        parts = B.call(ctx.np_(name), ctx.full(dx, x), given["indices_or_sections"], axis=axis)
        return Tangent(parts, full=True, container=True)

    return rule


RULES[np.split] = _split("split")
RULES[np.array_split] = _split("array_split")
defzero(ra.tangent_index)
