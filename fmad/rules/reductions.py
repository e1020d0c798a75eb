"""Rules of reductions: ``np.sum``/``mean``/``prod``/``max``/``min`` (functions and
methods) and the builtins ``sum``, ``max`` and ``min``.

A reduction's tangent is the same reduction of the tangent made full first
(``d sum(x + b)/db`` is ``x.size``, not 1); options fmad does not model are refused.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

import numpy as np

from fmad import build as B
from fmad import runtime_arrays as ra
from fmad import runtime_seed as rs
from fmad.rules.base import (
    LIST_RULES,
    RULES,
    Rule,
    alias,
    defrule,
    is_none,
    k_arg,
    k_list,
    method,
    tangent_of,
)
from fmad.tangent import Tangent, scaled, split_constant, zero

# Reductions: their parameters after the array, in order (numpy's own signatures), and the
# ones fmad models; any other one given a value is refused when the reduction is active.
REDUCTION_PARAMETERS = {
    np.sum: ("axis", "dtype", "out", "keepdims", "initial", "where"),
    np.mean: ("axis", "dtype", "out", "keepdims"),
    np.prod: ("axis", "dtype", "out", "keepdims", "initial", "where"),
    **dict.fromkeys(
        (np.max, np.min, np.amax, np.amin), ("axis", "out", "keepdims", "initial", "where")
    ),
}
REDUCTION_KEYWORDS = {
    np.sum: {"axis", "keepdims", "where", "initial"},
    np.mean: {"axis", "keepdims", "where"},
}
REDUCTION_OUT = {f: 1 + params.index("out") for f, params in REDUCTION_PARAMETERS.items()}
REDUCTION_ADVICE = {
    "out": "assign the result instead of writing into an array with out=",
    "dtype": "fmad models a floating-point dtype only; drop dtype= and convert the "
    "result afterwards",
    "initial": "combine the initial value explicitly (for example np.maximum(np.max(x), c) "
    "or c * np.prod(x))",
    "where": "mask the values first with np.where (for example np.max(np.where(m, x, -np.inf)))",
}


def _static(ctx, atom) -> Any:
    """The object an option names at transform time (``np.float64``, ``"f8"``), or None."""
    if isinstance(atom, ast.Constant):
        return atom.value
    if not isinstance(atom, ast.Name):
        return None
    scope = ctx.scope
    if scope.is_local(atom.id):  # flatten named it: ``np_float64 = np.float64``
        values = [
            n.value
            for n in ast.walk(ctx.flat)
            if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == atom.id for t in n.targets)
        ]
        if len(values) != 1 or not isinstance(values[0], ast.Attribute):
            return None
        atom = values[0]
    try:
        return scope.lookup(atom)
    except Exception:  # noqa: BLE001 - anything unusual: not known
        return None


def _floating(obj: Any) -> bool:
    if obj is None or isinstance(obj, bool):
        return False
    try:
        return bool(np.issubdtype(np.dtype(obj), np.floating))
    except TypeError:
        return False


def reduction_arguments(ctx, func, args, tangents, keywords) -> dict[str, Any]:
    """The arguments of ``func(x, ...)`` by name; refuses those fmad does not model."""
    names = REDUCTION_PARAMETERS[func]
    if len(args) > 1 + len(names):
        ctx.refuse(f"np.{func.__name__}() takes at most {len(names)} positional options")
    given = {**dict(zip(names, args[1:], strict=False)), **keywords}
    modelled = REDUCTION_KEYWORDS.get(func, {"axis", "keepdims"})
    for key, value in given.items():
        if is_none(value) or key in modelled:
            continue
        if key == "dtype" and _floating(_static(ctx, value)):
            continue  # a float result: the derivative is the same (computed in float64)
        ctx.refuse(
            f"np.{func.__name__}() with {key}= is not supported by fmad on a value that "
            f"carries a derivative; {REDUCTION_ADVICE.get(key, f'drop {key}=')}"
        )
    initial = given.get("initial")
    if initial is not None and ctx.is_active(initial):
        ctx.refuse(
            f"np.{func.__name__}() with an initial= value that carries a derivative is not "
            "supported by fmad; add it explicitly (c + np.sum(x))"
        )
    return given


def reduce_tangent(ctx, how: str, x, dx, axis, keepdims, where=None):
    """Tangent of ``np.sum``/``np.mean`` (``how``) of ``x``: the same reduction of the
    tangent, made full first (``d sum(x + b)/db`` is ``x.size``, not 1). ``where``: the
    same mask, laid out like the tangent."""
    if dx is None:
        return None
    f = ctx.full(dx, x)
    func = ctx.np_(how)
    kw = {} if is_none(keepdims) else {"keepdims": keepdims}
    if not is_none(where):
        kw["where"] = ctx.expand(where)
    if not ctx.vectorized:
        if is_none(axis) and not kw and dx.product is not None:
            # sum(c * t) is the dot product c @ t: no temporary of the value's size
            coef, base = dx.product
            return tangent_of(
                ctx.contracted(
                    coef,
                    lambda c: B.call(ctx.rt(f"{how}_product"), c, base, x, ast.Constant(None)),
                )
            )
        if dx.factors is not None and B.is_const(dx.factors[1], 1):
            # sum(k * c) is k * sum(c): the constant multiplies the sum
            k, rest = split_constant(dx.factors[0])
            if rest is not None and k != 1:
                c = Tangent(rest, full=dx.full)
                inner = reduce_tangent(ctx, how, x, c, axis, keepdims, where)
                return tangent_of(scaled(k, inner.expr))
        if is_none(axis) and how == "mean" and not kw:
            # np.sum(t) / size: the same sum, without np.mean's few microseconds of Python
            return tangent_of(
                B.binop(B.call(ctx.np_("sum"), f), ast.Div(), B.call(ctx.np_("size"), x))
            )
        if is_none(axis):
            return tangent_of(B.call(func, f, **kw))
        return tangent_of(B.call(func, f, axis=axis, **kw))
    k = ctx.direction.k
    if is_none(axis) and not kw:
        pairs = ctx.row_pairs(dx) if dx.of_rows else None
        if pairs is not None:
            # bundled parameters: each seed row meets its coefficient (fmad.tangent.row_pairs)
            return tangent_of(
                B.call(
                    ctx.inject(ra.row_sums, "row_sums"),
                    x,
                    B.const(k),
                    ast.Constant(how == "mean"),
                    *(row_pair(c, coef, i) for c, coef, i in pairs),
                )
            )
        if dx.factors is not None:
            # sum(c[..., None] * t) over the value's axes is the product c @ t: no
            # (N, k) temporary (this is where X.T @ r of a hand-written gradient appears)
            coef, t = dx.factors
            # on the identity seed, the product is coef itself: no inf * 0 off the diagonal
            seed = getattr(rs, f"seed_{how}")
            product = ctx.inject(seed, seed.__name__) if dx.diagonal else ctx.rt(f"{how}_product")
            return tangent_of(ctx.contracted(coef, lambda c: B.call(product, c, t, x, B.const(k))))
        flat = B.call(B.attr(f, "reshape"), B.const(-1), B.const(k))
        return tangent_of(B.call(func, flat, axis=B.const(0)))
    a = B.constant_value(axis) if not is_none(axis) else None
    if isinstance(a, int):
        taxis = B.const(a if a >= 0 else a - 1)
    else:
        ndim = B.call(ctx.np_("ndim"), x)
        taxis = B.call(
            ctx.rt("tangent_axis"),
            axis if axis is not None else ast.Constant(None),
            ndim,
            k_arg(ctx),
        )
    return tangent_of(B.call(func, f, axis=taxis, **kw))


def row_pair(c: ast.expr | None, coef: ast.expr | None, i: int) -> ast.expr:
    """``(scale, c, coef, i)`` for ``runtime_arrays.row_sums``: the numbers outside."""
    scale = 1
    parts = []
    for e in (c, coef):
        k, rest = split_constant(e) if e is not None else (1, None)
        scale *= k
        parts.append(rest if rest is not None else ast.Constant(None))
    return B.tuple_([B.const(scale), *parts, B.const(i)])


def _reduction(how: str) -> Rule:
    def rule(ctx, z, args, tangents, keywords):
        given = reduction_arguments(ctx, getattr(np, how), args, tangents, keywords)
        return reduce_tangent(
            ctx,
            how,
            args[0],
            tangents[0],
            given.get("axis"),
            given.get("keepdims"),
            given.get("where"),
        )

    rule.__doc__ = f"d {how}(x) = {how}(dx), over the same axes"
    return rule


RULES[np.sum] = _reduction("sum")
RULES[np.mean] = _reduction("mean")


def _helper_reduction(func, helper: str, uses_value: bool) -> Rule:
    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        given = reduction_arguments(ctx, func, args, tangents, keywords)
        axis = given.get("axis") or ast.Constant(None)
        keepdims = given.get("keepdims") or ast.Constant(False)
        middle = [args[0], z] if uses_value else [args[0]]
        return tangent_of(
            B.call(ctx.rt(helper), tangents[0].expr, *middle, axis, keepdims, k_arg(ctx))
        )

    return rule


RULES[np.prod] = _helper_reduction(np.prod, "prod_tangent", False)
for _f in (np.max, np.min, np.amax, np.amin):
    RULES[_f] = _helper_reduction(_f, "extreme_tangent", True)


def _method_reduction(how: str) -> Rule:
    def rule(ctx, z, args, tangents, keywords):
        if len(args) > 4:  # x.sum(axis, dtype, out): the rest are keyword-only
            ctx.refuse(f"'.{how}()' takes at most 3 positional arguments")
        return RULES[getattr(np, how)](ctx, z, args, tangents, keywords)

    return rule


RULES[method("sum")] = _method_reduction("sum")
RULES[method("mean")] = _method_reduction("mean")
for _how in ("prod", "max", "min"):
    alias(method(_how), to=getattr(np, _how))


# -- the builtins sum, max and min -----------------------------------------------------------
def _builtin_extreme(pair: Any, name: str) -> Rule:
    """``max(a, b)`` is ``np.maximum``'s rule; ``max(xs)``, ``max(a, b, c)`` reduce."""

    def rule(ctx, z, args, tangents, keywords):
        if len(args) == 2 and not keywords:
            return RULES[pair](ctx, z, args, tangents, keywords)
        return reduce_builtin(ctx, name, z, args, tangents, keywords)

    return rule


RULES[builtins.max] = _builtin_extreme(np.maximum, "max")
RULES[builtins.min] = _builtin_extreme(np.minimum, "min")
LIST_RULES.update({builtins.sum, builtins.max, builtins.min})


@defrule(builtins.sum)
def builtin_sum_rule(ctx, z, args, tangents, keywords):
    return reduce_builtin(ctx, "sum", z, args, tangents, keywords)


def reduce_builtin(ctx, name, z, args, tangents, keywords) -> Tangent | None:
    """The builtins ``sum(xs)``, ``max(xs)``, ``max(a, b, c)`` (ties share evenly)."""
    if keywords:
        ctx.refuse(
            f"{name}() with keyword arguments is not supported by fmad when "
            "its arguments carry derivatives"
        )
    k = k_list(ctx)
    if len(args) > 1:
        if name == "sum":  # sum(xs, start)
            return ctx.add(
                None
                if tangents[0] is None
                else Tangent(B.call(ctx.rt("builtin_sum"), tangents[0].expr, args[0], *k)),
                tangents[1],
            )
        elts = [t.expr if t is not None else zero() for t in tangents]
        call = B.call(
            ctx.rt("builtin_extreme"),
            ast.List(elts=elts, ctx=ast.Load()),
            ast.List(elts=list(args), ctx=ast.Load()),
            z,
        )
        return Tangent(call, full=False)
    if tangents[0] is None:
        return None
    helper = "builtin_sum" if name == "sum" else "builtin_extreme"
    call_args = [tangents[0].expr, args[0]] + ([z] if name != "sum" else [])
    return Tangent(B.call(ctx.rt(helper), *call_args, *k), full=False)
