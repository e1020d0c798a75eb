"""Rules of the numpy functions that move, repeat or split entries: ``repeat``, ``tile``,
``pad``, ``roll``, ``flip`` (``fliplr``, ``flipud``), ``rot90``, ``copy``, ``take``,
``moveaxis``, ``swapaxes``, ``rollaxis``, ``broadcast_to``, ``atleast_1d/2d/3d``, ``split``,
``array_split``, ``hsplit``, ``vsplit`` and ``dsplit`` (and the methods ``x.repeat``,
``x.take``, ``x.swapaxes``).

Each is linear: the tangent is the same rearrangement of the tangent (made full first), with
an array parameter's direction axis kept last (so its axes are opt.shifted, see
:mod:`fmad.rules.options`). Conventions:

- ``pad``: modes ``constant`` (the constant values get no derivative; ones that carry one are
  refused), ``edge``, ``reflect``, ``symmetric`` and ``wrap`` (all linear); other modes are
  refused.
- the splits return a list: its tangent is the list of the parts' tangents.
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_arrays as ra
from fmad.rules import options as opt
from fmad.rules.base import RULES, alias, deflinear, defzero, k_arg, method, tangent_of
from fmad.rules.reductions import REDUCTION_OUT
from fmad.tangent import Tangent

REDUCTION_OUT.update({np.take: 3})
deflinear(np.copy)


def _flat(ctx, t: ast.expr) -> ast.expr:
    return B.call(ctx.np_("reshape"), t, B.tuple_([B.const(-1), opt.k_const(ctx)]))


def _along(name: str, func: str, params: tuple[str, ...], constant: tuple[str, ...], flat: bool):
    """``func(x, *constant options, axis)``, linear in ``x`` along ``axis``; ``flat``: axis
    None means the flattened array (numpy's default for these functions)."""

    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        given = opt.bind(ctx, f"np.{name}", args, keywords, params, len(constant))
        opt.refuse_active(ctx, f"np.{name}", given, *constant)
        if dx is None:
            return None
        opt.refuse_others(
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
        value_axis = opt.static_axis(ctx, f"np.{name}", axis, None)
        if value_axis is None and flat:
            out = B.call(np_func, _flat(ctx, t), *kept, axis=B.const(0), **mode)
            if name == "roll":  # the flattened array rolled, then shaped back
                shape = B.parse_expr("np.shape(x) + (k,)", np=ctx.np_(), x=x, k=opt.k_const(ctx))
                out = B.call(ctx.np_("reshape"), out, shape)
            return tangent_of(out)
        if value_axis is None:  # flip: every axis of the value
            taxis = B.call(ctx.rt("tangent_axis"), ast.Constant(None), _ndim(ctx, x), k_arg(ctx))
        else:
            taxis = B.const(opt.shifted(value_axis))
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
    given = opt.bind(ctx, "np.rot90", args, keywords, ("k", "axes"))
    opt.refuse_active(ctx, "np.rot90", given, "k")
    if dx is None:
        return None
    turns = given.get("k") or B.const(1)
    axes = given.get("axes")
    if ctx.vectorized:
        value_axes = opt.static_axis(ctx, "np.rot90", axes, (0, 1))
        axes = B.const(opt.shifted(tuple(value_axes)))
    kw = {} if axes is None else {"axes": axes}
    return tangent_of(B.call(ctx.np_("rot90"), ctx.full(dx, x), turns, **kw))


RULES[np.rot90] = rot90_rule


def tile_rule(ctx, z, args, tangents, keywords):
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.tile", args, keywords, ("reps",), 1)
    opt.refuse_active(ctx, "np.tile", given, "reps")
    if dx is None:
        return None
    helper = ctx.inject(ra.tile_tangent, "tile_tangent")
    return tangent_of(B.call(helper, dx.expr, x, given["reps"], k_arg(ctx)))


RULES[np.tile] = tile_rule
opt.helper_rule(ra.tile_tangent, (0,))

PAD_MODES = {"constant", "edge", "reflect", "symmetric", "wrap"}


def pad_rule(ctx, z, args, tangents, keywords):
    """d pad(x) = pad(dx) with the same widths and mode (constant values: zero tangent)."""
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.pad", args, keywords, ("pad_width", "mode"), 1)
    opt.refuse_active(ctx, "np.pad", given, "pad_width", "constant_values")
    if dx is None:
        return None
    mode_node = given.get("mode")
    mode = "constant" if mode_node is None else opt.static(ctx, mode_node)
    if mode not in PAD_MODES:
        ctx.refuse(
            f"np.pad() with mode={ast.unparse(mode_node)} is not supported by fmad on a value "
            f"that carries a derivative; it models the modes {', '.join(sorted(PAD_MODES))}"
        )
    extra = {"constant": {"constant_values"}, "reflect": {"reflect_type"}}
    extra["symmetric"] = extra["reflect"]
    opt.refuse_others(ctx, "np.pad", given, {"pad_width", "mode", *extra.get(mode, ())})
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


def _axes_moved(name: str, params: tuple[str, str]):
    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        if dx is None:
            return None
        given = opt.bind(ctx, f"np.{name}", args, keywords, params, 2)
        a, b = (given[p] for p in params)
        if ctx.vectorized:
            a, b = (B.const(opt.shifted(opt.static_axis(ctx, f"np.{name}", n, 0))) for n in (a, b))
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
        B.call(ctx.rt("full"), dx.expr, z, *([opt.k_const(ctx)] if ctx.vectorized else [])),
        full=True,
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


def _split(name: str, fixed_axis: str | None = None):
    """``fixed_axis``: hsplit/vsplit/dsplit split along an axis given by the value's rank
    (an expression of ``x``), never the direction axis."""

    def rule(ctx, z, args, tangents, keywords):
        """The list of the parts of the tangent, split the same way."""
        x, dx = args[0], tangents[0]
        params = ("indices_or_sections",) if fixed_axis else ("indices_or_sections", "axis")
        given = opt.bind(ctx, f"np.{name}", args, keywords, params, 1)
        opt.refuse_active(ctx, f"np.{name}", given, "indices_or_sections")
        if dx is None:
            return None
        if fixed_axis is not None:
            axis = B.parse_expr(fixed_axis, np=ctx.np_(), x=x)
        else:
            axis = opt.tangent_axis(ctx, f"np.{name}", given.get("axis"), 0)
        func = ctx.np_("array_split" if name == "array_split" else "split")
        parts = B.call(func, ctx.full(dx, x), given["indices_or_sections"], axis=axis)
        return Tangent(parts, full=True, container=True)

    return rule


RULES[np.split] = _split("split")
RULES[np.array_split] = _split("array_split")
RULES[np.hsplit] = _split("hsplit", "min(np.ndim(x) - 1, 1)")  # axis 0 of a 1-d array
RULES[np.vsplit] = _split("vsplit", "0")
RULES[np.dsplit] = _split("dsplit", "2")


def rollaxis_rule(ctx, z, args, tangents, keywords):
    """np.rollaxis(x, axis, start): the axes counted from the front (a negative one plus the
    value's rank), so that they never reach the direction axis."""
    x, dx = args[0], tangents[0]
    given = opt.bind(ctx, "np.rollaxis", args, keywords, ("axis", "start"), 1)
    if dx is None:
        return None
    axis, start = given["axis"], given.get("start", B.const(0))
    if ctx.vectorized:
        nodes = []
        for node in (axis, start):
            a = opt.static_axis(ctx, "np.rollaxis", node, 0)
            if not isinstance(a, int):
                ctx.refuse("np.rollaxis() takes one axis and one start position")
            nodes.append(
                B.const(a) if a >= 0 else B.parse_expr(f"{a} + np.ndim(x)", np=ctx.np_(), x=x)
            )
        axis, start = nodes
    return tangent_of(B.call(ctx.np_("rollaxis"), ctx.full(dx, x), axis, start))


RULES[np.rollaxis] = rollaxis_rule
defzero(ra.tangent_index)
