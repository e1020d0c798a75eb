"""Rules of indexing, attributes (``x.T``), conversions and the functions and methods that
rearrange arrays: reshape, ravel, transpose, squeeze, expand_dims, concatenate, stack, array.

Most hand the raw tangent to a runtime helper that rearranges it the way the value was,
keeping the direction axis last for an array parameter.
"""

from __future__ import annotations

import ast
import builtins

import numpy as np

from fmad import build as B
from fmad import runtime_arrays
from fmad.rules.base import (
    LIST_RULES,
    RULES,
    Rule,
    alias,
    argument,
    attribute,
    deflinear,
    defrule,
    defzero,
    k_arg,
    keeps_derivative,
    method,
    refuse_when_active,
    tangent_of,
)
from fmad.rules.options import UNKNOWN, static
from fmad.tangent import Tangent

deflinear(builtins.float, np.float64)


@defrule(np.asarray, np.asanyarray)
def asarray_rule(ctx, z, args, tangents, keywords):
    dtype = argument(args, keywords, 1, "dtype")
    if not tangents or not keeps_derivative(ctx, dtype) or tangents[0] is None:
        return None
    t = tangents[0]
    if ctx.vectorized or t.container:
        return t
    # with one direction a tangent may be a Python number (d x / d x = 1.0); the value is an
    # array, so its tangent must be one too (np.asarray(x)[..., None] indexes both)
    return Tangent(B.call(ctx.np_("asarray"), t.expr), full=t.full)


@defrule(builtins.enumerate, builtins.zip, builtins.reversed)
def iteration_rule(ctx, z, args, tangents, keywords):
    """Only a ``for`` header may arrange the iteration of values that carry a derivative."""
    refuse_when_active(
        ctx,
        tangents,
        keywords,
        "enumerate(), zip() and reversed() of values that carry a derivative are supported "
        "only directly in a 'for' header, without keywords; write 'for i, x in "
        "enumerate(xs):' or build a list in a loop",
    )


# -- indexing and attributes -----------------------------------------------------------------
def _tangent_index(ctx, index: ast.expr) -> ast.expr:
    """An index of the value applied to its tangent: ``...`` must not reach the k axis
    (an index held in a name may be a tuple holding one: checked when the code runs)."""
    if not ctx.vectorized:
        return index
    if isinstance(index, ast.Name):
        known = static(ctx, index)
        if known is UNKNOWN or (isinstance(known, tuple) and Ellipsis in known):
            return B.call(ctx.inject(runtime_arrays.tangent_index, "tangent_index"), index)
        return index
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    if any(isinstance(p, ast.Constant) and p.value is Ellipsis for p in parts):
        return B.tuple_([*parts, ast.Slice()])
    if len(parts) > 1 and any(
        isinstance(p, ast.Name) and static(ctx, p) in (UNKNOWN, Ellipsis) for p in parts
    ):
        # a name in the tuple may hold ``...``: checked when the code runs
        helper = ctx.inject(runtime_arrays.tangent_index, "tangent_index")
        return B.call(helper, B.tuple_(list(parts)))
    return index


@defrule(ast.Subscript)
def index_rule(ctx, z, args, tangents, keywords):
    """``z = x[i]`` (args ``[x, i]``): the tangent's matching entries (the tangent made full
    first)."""
    (x, index), t = args, tangents[0]
    if t is None:
        return None
    # an item of a list's tangent may be the 0.0 standing for an item with no derivative:
    # not full (the rules that need its full shape broadcast it first)
    full = not t.container
    # a part of the identity seed (``dp_dp[0]``) has its zeros where the seed has them
    part = ctx.vectorized and (t.seed or (t.seed_zeros and t.factors is None))
    expr = B.subscript(ctx.full(t, x), _tangent_index(ctx, index))
    return Tangent(expr, full=full, seed_zeros=part)


@defrule(attribute("T"))
def transpose_attribute(ctx, z, args, tangents, keywords):
    x, t = args[0], tangents[0]
    if t is None:
        return None
    if not ctx.vectorized:
        return Tangent(B.attr(ctx.full(t, x), "T"), full=True)
    # reverse the value's axes, keep the direction axis last
    return Tangent(
        B.call(ctx.np_("moveaxis"), B.attr(ctx.full(t, x), "T"), B.const(0), B.const(-1)), full=True
    )


def _part(name: str) -> Rule:
    """``x.real``, ``x.imag``: that part of the tangent (of complex data times a real
    parameter)."""

    def rule(ctx, z, args, tangents, keywords):
        t = tangents[0]
        if t is None:
            return None
        return Tangent(B.call(ctx.np_(name), t.expr), full=t.full)

    return rule


RULES[attribute("real")] = _part("real")  # fmad differentiates real-valued code
RULES[attribute("imag")] = _part("imag")
defzero(*map(attribute, ("shape", "ndim", "size", "dtype", "itemsize", "nbytes")))


# -- functions that rearrange arrays ---------------------------------------------------------
def _helper_call(helper: str, *extra) -> Rule:
    """A rule that hands the (raw) tangent, the value and options to a runtime helper."""

    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        values = [
            argument(args, keywords, i, key) or ast.Constant(default)
            for i, (key, default) in enumerate(extra, start=1)
        ]
        return tangent_of(B.call(ctx.rt(helper), tangents[0].expr, args[0], *values, k_arg(ctx)))

    return rule


RULES[np.transpose] = _helper_call("transpose_tangent", ("axes", None))
RULES[np.squeeze] = _helper_call("squeeze_tangent", ("axis", None))
RULES[np.expand_dims] = _helper_call("expand_dims_tangent", ("axis", None))
RULES[np.reshape] = _helper_call("reshape_tangent", ("shape", None))


@defrule(np.ravel)
def ravel_rule(ctx, z, args, tangents, keywords):
    if tangents[0] is None:
        return None
    return tangent_of(
        B.call(ctx.rt("reshape_tangent"), tangents[0].expr, args[0], B.const(-1), k_arg(ctx))
    )


def _join(func) -> Rule:
    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        axis = argument(args, keywords, 1, "axis")
        if axis is None:
            axis = ast.Constant(0)
        join = ctx.inject(func, func.__name__)
        return tangent_of(
            B.call(ctx.rt("join_tangent"), join, tangents[0].expr, args[0], axis, k_arg(ctx))
        )

    return rule


for _f in (np.concatenate, np.stack, np.hstack, np.vstack):
    RULES[_f] = _join(_f)


@defrule(np.array)
def array_rule(ctx, z, args, tangents, keywords):
    if tangents[0] is None or not keeps_derivative(ctx, argument(args, keywords, 1, "dtype")):
        return None
    return tangent_of(B.call(ctx.rt("array_tangent"), tangents[0].expr, args[0], k_arg(ctx)))


# -- methods of arrays: x.reshape(2, 3), x.item(), ... ----------------------------------------
deflinear(method("copy"))


def _method_helper(helper: str, option: Rule) -> Rule:
    """``x.name(*rest)``: a runtime helper of the raw tangent, ``x`` and ``option(rest)``."""

    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        x, *rest = args
        return tangent_of(B.call(ctx.rt(helper), tangents[0].expr, x, option(rest), k_arg(ctx)))

    return rule


def _one_or_tuple(rest: list) -> ast.expr:
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` alike; ``x.transpose()``: None."""
    if not rest:
        return ast.Constant(None)
    return rest[0] if len(rest) == 1 else B.tuple_(list(rest))


RULES[method("reshape")] = _method_helper("reshape_tangent", _one_or_tuple)
RULES[method("transpose")] = _method_helper("transpose_tangent", _one_or_tuple)


@defrule(method("item"))
def item_method(ctx, z, args, tangents, keywords):
    (x, *args), dx = args, tangents[0]
    if dx is None:
        return None
    if not ctx.vectorized:
        return tangent_of(B.call(B.attr(ctx.full(dx, x), "item"), *args))
    flat = B.call(B.attr(ctx.full(dx, x), "reshape"), B.const(-1), B.const(ctx.direction.k))
    return tangent_of(B.subscript(flat, B.const(0)))


@defrule(method("astype"))
def astype_method(ctx, z, args, tangents, keywords):
    keeps = keeps_derivative(ctx, argument(args, keywords, 1, "dtype"))
    return tangents[0] if keeps else None


alias(method("clip"), to=np.clip)
alias(method("squeeze"), to=np.squeeze)
alias(method("ravel"), method("flatten"), to=np.ravel)
defzero(*map(method, ("argmax", "argmin", "argsort", "nonzero")))

LIST_RULES.update(
    {
        builtins.enumerate,
        builtins.zip,
        builtins.reversed,
        np.array,
        np.concatenate,
        np.stack,
        np.hstack,
        np.vstack,
    }
)
defzero(
    # integer, boolean or index results (autograd's non-differentiable list)
    np.all,
    np.any,
    np.argpartition,
    np.argwhere,
    np.count_nonzero,
    np.flatnonzero,
    np.isscalar,
    np.logical_xor,
    np.result_type,
    np.searchsorted,
    builtins.len,
    builtins.range,
    builtins.int,
    builtins.bool,
    builtins.isinstance,
    builtins.type,
    builtins.print,
    np.shape,
    np.ndim,
    np.size,
    np.zeros,
    np.ones,
    np.empty,
    np.full,
    np.eye,
    np.identity,
    np.zeros_like,
    np.ones_like,
    np.empty_like,
    np.arange,
    np.linspace,
    np.argmax,
    np.argmin,
    np.argsort,
    np.nonzero,
)
