"""What the statistics, cumulative and reshaping rules share: reading a call's options by
name, refusing those a rule does not model, axes as seen by a vectorized tangent, and the
rules of the :mod:`fmad.runtime_arrays` helpers (so fmad's output can be differentiated
again).

An array parameter's tangents carry a trailing direction axis, so an axis of the value is
an axis of its tangent only when counted from the front: a negative axis ``a`` becomes
``a - 1``. For a vectorized direction the rules therefore need the axis when fmad
transforms the function (a constant, or a name assigned a constant); an axis known only at
run time is refused there. For a scalar parameter the tangent has its value's layout and
the user's axis is passed through as written.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from fmad import build as B
from fmad.rules.base import HELPER_ROWS, RULES, active_slots, is_none, static_value
from fmad.tangent import Tangent

UNKNOWN = object()


def bind(
    ctx, name: str, args: list, keywords: dict, params: tuple[str, ...], required: int = 0
) -> dict:
    """The options of ``name(x, ...)`` by parameter name (``params``: numpy's positional
    parameters after the first, the first ``required`` of them without a default)."""
    if len(args) > 1 + len(params):
        ctx.refuse(f"{name}() takes at most {len(params)} positional options after the array")
    given = dict(zip(params, args[1:], strict=False))
    given.update(keywords)
    missing = [p for p in params[:required] if p not in given]
    if missing:
        ctx.refuse(f"{name}() needs its argument '{missing[0]}'")
    return given


def refuse_others(ctx, name: str, given: dict, modelled: set[str], advice: dict | None = None):
    """Refuse every option given a value that fmad does not model."""
    for key, value in given.items():
        if key in modelled or value is None or is_none(value):
            continue
        hint = (advice or {}).get(key, f"drop {key}= or compute the result another way")
        ctx.refuse(
            f"{name}() with {key}= is not supported by fmad on a value that carries a "
            f"derivative; {hint}"
        )


def refuse_active(ctx, name: str, given: dict, *keys: str) -> None:
    """Refuse options that carry a derivative (fmad treats them as constants)."""
    for key in keys:
        value = given.get(key)
        if value is not None and ctx.is_active(value):
            ctx.refuse(
                f"{name}() with a {key}= that carries a derivative is not supported by fmad "
                "(it differentiates the array argument only)"
            )


def static(ctx, node: ast.expr | None) -> Any:
    """The object ``node`` stands for when fmad transforms the function (tuples of constants
    too, also through a name assigned once), or ``UNKNOWN``."""
    if node is None:
        return UNKNOWN
    if isinstance(node, ast.Constant):
        return node.value
    if B.constant_value(node) is not None:  # -1
        return B.constant_value(node)
    if isinstance(node, ast.Tuple | ast.List):
        items = [static(ctx, e) for e in node.elts]
        return UNKNOWN if any(i is UNKNOWN for i in items) else tuple(items)
    if isinstance(node, ast.Name) and ctx.assign_counts.get(node.id) == 1:
        for s in ast.walk(ctx.flat):
            if isinstance(s, ast.Assign) and B.stored_names(s.targets[0]) == [node.id]:
                if isinstance(s.value, ast.Tuple | ast.List | ast.Constant | ast.UnaryOp):
                    return static(ctx, s.value)
    if (
        isinstance(node, ast.Call)
        and len(node.args) == 1
        and not node.keywords
        and static_value(ctx, node.func) is np.asarray
    ):  # a tuple passed to a numpy function: np.asarray(tuple_1)
        return static(ctx, node.args[0])
    value = static_value(ctx, node)
    return UNKNOWN if value is None else value


def floating_dtype(ctx, name: str, given: dict) -> None:
    """A ``dtype=`` option must be a floating type known at transform time."""
    dtype = given.get("dtype")
    if dtype is None or is_none(dtype):
        return
    obj = static(ctx, dtype)
    try:
        ok = obj is not UNKNOWN and np.issubdtype(np.dtype(obj), np.floating)
    except TypeError:
        ok = False
    if not ok:
        ctx.refuse(
            f"{name}() with dtype={ast.unparse(dtype)} is not supported by fmad on a value "
            "that carries a derivative; fmad models a floating dtype written as a constant "
            "(np.float64) only"
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def static_axis(ctx, name: str, node: ast.expr | None, default: Any) -> Any:
    """The axis option (None, an int or a tuple of ints) at transform time; refused when
    unknown (only asked for a vectorized direction)."""
    if node is None:
        return default
    value = static(ctx, node)
    if value is None or _is_int(value):
        return value
    if isinstance(value, tuple) and all(_is_int(v) for v in value):
        return value
    ctx.refuse(
        f"{name}() of a value that carries a derivative with respect to an array parameter "
        f"needs its axis when fmad transforms the function; write it as a constant "
        f"(axis=0, axis=-1), not '{ast.unparse(node)}'"
    )
    return None


def shifted(axis: Any) -> Any:
    """A value's axis (or axes) as its vectorized tangent's: negative ones skip the k axis."""
    if isinstance(axis, tuple):
        return tuple(shifted(a) for a in axis)
    return axis if axis is None or axis >= 0 else axis - 1


def tangent_axis(ctx, name: str, node: ast.expr | None, default: Any) -> ast.expr:
    """The axis option as an axis of the tangent: as written for a scalar direction, the
    constant shifted for a vectorized one."""
    if not ctx.vectorized:
        return node if node is not None else B.const(default)
    return B.const(shifted(static_axis(ctx, name, node, default)))


def k_const(ctx) -> ast.expr:
    return B.const(ctx.direction.k)


def helper_rule(func, slots: tuple[int, ...], fixed: tuple[int, ...] = ()):
    """The rule of a :mod:`fmad.runtime_arrays` helper, linear in its tangent arguments at
    ``slots`` (one call with all of them replaced by their tangents, ``None`` for those with
    none) given the other arguments; those at ``fixed`` enter smoothly, so a derivative
    through them is refused. The others are used for their shapes or for choices constant
    almost everywhere (which entries tie)."""
    name = func.__name__
    HELPER_ROWS[func] = (slots, fixed)

    def rule(ctx, z, args, tangents, keywords):
        for i in fixed:
            if i < len(tangents) and tangents[i] is not None:
                ctx.refuse(
                    f"{name}() in code fmad generated is linear in its tangents only; a "
                    "second derivative through its other arguments is not supported by fmad"
                )
        if not active_slots(ctx, name, slots, tangents):
            return None
        new = [
            (tangents[i].expr if tangents[i] is not None else ast.Constant(None))
            if i in slots
            else a
            for i, a in enumerate(args)
        ]
        return Tangent(B.call(ctx.inject(func, name), *new, **keywords))

    rule.__doc__ = f"d {name}: {name} of the tangents of its arguments {slots}"
    RULES[func] = rule
    return rule


def keyword_tangent(ctx, node: ast.expr) -> Tangent | None:
    """The tangent of an argument passed by keyword (rules receive those of positional
    arguments only); a list's list of tangents stacked into one array."""
    t = ctx.fwd.tangent(node, ctx.direction.name)
    if t is None or not t.container:
        return t
    k = [B.const(ctx.direction.k)] if ctx.vectorized else []
    return Tangent(B.call(ctx.rt("stack_tangents"), t.expr, node, *k), full=t.full)
