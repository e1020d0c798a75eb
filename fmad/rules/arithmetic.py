"""Rules of numpy's arithmetic called as functions (``np.add(a, b)``), of the elementwise
extras (``np.hypot``, ``np.logaddexp``, ``np.sinc``...), and the ufunc keywords they accept.

Every numpy ufunc with a rule (these and those of :mod:`~fmad.rules.elementwise`) goes
through :func:`ufunc_call`: a keyword fmad does not model (``where=``, ``casting=``,
``order=``, ``subok=``, ``signature=``, an integer ``dtype=``) is refused, never ignored.

Conventions where a function has no derivative (each also in docs/how-it-works.md):

- ``np.mod``/``np.remainder``/``np.fmod`` at a jump (``x`` a multiple of ``y``): the
  derivative of the piece the value comes from, as numpy computes it: ``d(x - n * y)`` with
  the quotient ``n`` numpy's own (``np.floor_divide``; for ``fmod`` the integer
  ``(x - z) / y``), so ``dx - n * dy``;
- ``np.hypot`` at the origin: 0 (the subgradient ``np.abs`` uses at 0);
- ``np.arctan2`` at the origin: nan (it jumps there; no subgradient makes sense);
- ``np.copysign(x, y)`` at ``x == 0``: 0 in ``x``; in ``y``, 0 everywhere (a jump at 0);
- ``np.sinc`` at 0: 0, its true derivative (a series near 0 keeps it exact);
- ``np.nan_to_num``: the tangent passes where ``x`` is finite, is 0 where a nan or an
  infinity was replaced by a constant.
"""

from __future__ import annotations

import ast
import math

import numpy as np

from fmad import build as B
from fmad.rules import elementwise  # noqa: F401 - its rows are wrapped below
from fmad.rules.base import (
    PARTIALS,
    RULES,
    UNARY,
    Rule,
    alias,
    argument,
    defrule,
    defzero,
    is_none,
    keeps_derivative,
)
from fmad.tangent import Tangent

# -- ufunc keywords --------------------------------------------------------------------------
UFUNC_ADVICE = {
    "where": "np.f(x, where=m) leaves the other elements uninitialised; write "
    "np.where(m, np.f(x), fallback) instead",
    "casting": "drop casting= and convert the inputs first (np.asarray(x, dtype=float))",
    "dtype": "only a floating-point dtype keeps a derivative; drop dtype= and convert the "
    "result afterwards",
}


def ufunc_call(ctx, func, args, keywords) -> None:
    """Refuse a call of the ufunc ``func`` with an option fmad does not model."""
    name = func.__name__
    label = f"np.{name}" if getattr(np, name, None) is func else f"scipy.special.{name}"
    if len(args) > func.nin:
        ctx.refuse(
            f"{label}() takes {func.nin} input(s): a further positional argument is its "
            "out= array; assign the result instead"
        )
    for key, node in keywords.items():
        if key == "out" and is_none(node):
            continue
        if key == "where" and isinstance(node, ast.Constant) and node.value is True:
            continue
        if key == "dtype" and keeps_derivative(ctx, node):
            continue
        ctx.refuse(
            f"{label}() with {key}= is not supported by fmad on a value that carries a "
            f"derivative; {UFUNC_ADVICE.get(key, f'drop {key}=')}"
        )


def checked(func, rule: Rule) -> Rule:
    """``rule`` behind the keyword check of the ufunc ``func``."""

    def ufunc_rule(ctx, z, args, tangents, keywords):
        ufunc_call(ctx, func, args, keywords)
        return rule(ctx, z, args, tangents, {})

    ufunc_rule.__doc__ = rule.__doc__
    ufunc_rule.__wrapped__ = rule
    return ufunc_rule


def refuse_active_keywords(ctx, name: str, keywords, allowed=()) -> None:
    """A keyword argument that carries a derivative would be silently ignored: refuse it."""
    for key, node in keywords.items():
        if key not in allowed and node is not None and ctx.is_active(node):
            ctx.refuse(
                f"{name}() with a {key}= that carries a derivative is not supported by fmad; "
                "compute that part outside the call (with np.where, for example)"
            )


def binary(*keys, partials) -> None:
    """``d f(x, y) = p0 * dx + p1 * dy``; each partial ``p(ctx, z, x, y)`` broadcasts."""
    for key in keys:
        PARTIALS[key] = (partials, True)

    def rule(ctx, z, args, tangents, keywords):
        x, y = args[0], args[1]
        return ctx.add(
            *(
                ctx.scale(p(ctx, z, x, y), ctx.broadcast(t, other), full=True)
                for p, t, other in zip(partials, tangents, (y, x), strict=False)
                if t is not None
            )
        )

    defrule(*keys)(rule)


def text(source: str):
    """A partial written as Python text over ``x``, ``y``, ``z`` and ``np``."""

    def partial(ctx, z, x, y):
        return B.parse_expr(source, x=x, y=y, z=z, np=ctx.np_())

    return partial


def unary(*keys, coef: str, form: str = "mul") -> None:
    """``d f(x) = coef * dx`` (``mul``) or ``dx / coef`` (``div``), ``coef`` text over
    ``x``, ``z`` and ``np``; a constant ``coef`` scales without changing the shape."""
    for key in keys:
        UNARY[key] = (form, coef, {})

    def rule(ctx, z, args, tangents, keywords):
        dx = tangents[0]
        if dx is None:
            return None
        c = B.parse_expr(coef, x=args[0], z=z, np=ctx.np_())
        full = B.constant_value(c) is None
        if form == "mul":
            return ctx.scale(c, dx, full=full)
        return ctx.divide(dx, c, full=full, numpy=True)

    rule.__doc__ = f"d f(x) = {coef} * dx" if form == "mul" else f"d f(x) = dx / ({coef})"
    defrule(*keys)(rule)


# -- arithmetic as functions -----------------------------------------------------------------
@defrule(np.add)
def np_add_rule(ctx, z, args, tangents, keywords):
    (x, y), (dx, dy) = args[:2], tangents[:2]
    return ctx.add_operands(dx, x, dy, y)


@defrule(np.subtract)
def np_subtract_rule(ctx, z, args, tangents, keywords):
    (x, y), (dx, dy) = args[:2], tangents[:2]
    return ctx.add_operands(dx, x, dy, y, subtract=True)


alias(np.multiply, to=ast.Mult)


@defrule(np.divide)  # np.true_divide is the same ufunc
def np_divide_rule(ctx, z, args, tangents, keywords):
    """d(x/y) = (dx - z*dy) / y, divided the numpy way (by 0: inf, not an exception)."""
    y, (dx, dy) = args[1], tangents[:2]
    if dy is None:
        return ctx.divide(ctx.broadcast(dx, y), y, numpy=True)
    return ctx.divide(ctx.add(dx, ctx.negate(ctx.scale(z, dy, full=True))), y, numpy=True)


alias(np.float_power, to=np.power)


@defrule(np.mod)  # np.remainder is the same ufunc
def np_mod_rule(ctx, z, args, tangents, keywords):
    """``z = x - n * y`` with numpy's quotient ``n = np.floor_divide(x, y)``: dx - n * dy."""
    (x, y), (dx, dy) = args[:2], tangents[:2]
    n = B.call(ctx.np_("floor_divide"), x, y)
    return ctx.add(ctx.broadcast(dx, y), ctx.negate(ctx.scale(n, dy, full=True)))


@defrule(np.fmod)
def np_fmod_rule(ctx, z, args, tangents, keywords):
    """``z = x - n * y``, ``n`` the integer ``(x - z) / y`` (not ``trunc(x / y)``, which the
    rounding of ``x / y`` can make one off: ``np.fmod(1.0, 0.1)`` is 0.1 - 1e-17, n = 9)."""
    (x, y), (dx, dy) = args[:2], tangents[:2]
    n = B.parse_expr("np.rint((x - z) / y)", x=x, y=y, z=z, np=ctx.np_())
    return ctx.add(ctx.broadcast(dx, y), ctx.negate(ctx.scale(n, dy, full=True)))


# -- elementwise functions of one argument ---------------------------------------------------
unary(np.exp2, coef="z * 0.6931471805599453")
unary(np.degrees, np.rad2deg, coef=repr(180.0 / math.pi))
unary(np.radians, np.deg2rad, coef=repr(math.pi / 180.0))
# sinc'(x) = (cos(pi x) - sinc(x)) / x; near 0 that difference cancels, so |pi x| < 0.1
# takes the series -(pi^2 x / 3) (1 - u^2/10 + u^4/280 - u^6/15120), u = pi x (exact to
# ~1e-14 there); at 0 both give 0, with no division by zero
unary(
    np.sinc,
    coef="np.where(np.abs(x) < 0.03183098861837907, "
    "-3.289868133696453 * x * (1 - (9.869604401089358 * x * x) / 10 "
    "+ (9.869604401089358 * x * x) ** 2 / 280 - (9.869604401089358 * x * x) ** 3 / 15120), "
    "(np.cos(3.141592653589793 * x) - z) / np.where(x == 0, 1.0, x))",
)


def _linear_part(how: str) -> Rule:
    """``np.real``, ``np.imag``, ``np.conj``: real-linear, so the same function of the
    tangent (right for complex values too: parameters are real)."""

    def rule(ctx, z, args, tangents, keywords):
        t = tangents[0]
        if t is None:
            return None
        return Tangent(B.call(ctx.np_(how), t.expr), full=t.full)

    rule.__doc__ = f"d {how}(x) = {how}(dx)"
    return rule


RULES[np.real] = _linear_part("real")
RULES[np.imag] = _linear_part("imag")
RULES[np.conjugate] = _linear_part("conjugate")  # np.conj is the same ufunc


@defrule(np.real_if_close)
def real_if_close_rule(ctx, z, args, tangents, keywords):
    """The tangent's real part when the value came out real, else the tangent."""
    refuse_active_keywords(ctx, "np.real_if_close", keywords)
    t = tangents[0]
    if t is None:
        return None
    expr = B.parse_expr("np.real(t) if np.isrealobj(z) else t", t=t.expr, z=z, np=ctx.np_())
    return Tangent(expr, full=t.full)


@defrule(np.angle)
def angle_rule(ctx, z, args, tangents, keywords):
    """``d angle(x) = imag(dx / x)`` (0 for a real ``x``); at ``x == 0``, where the angle
    jumps, 0. ``deg=True`` scales it by 180 / pi."""
    x, dx = args[0], tangents[0]
    deg = argument(args, keywords, 1, "deg", ast.Constant(False))
    if not (isinstance(deg, ast.Constant) and isinstance(deg.value, bool)):
        ctx.refuse(
            "np.angle() with a deg= that is not the constant True or False is not supported "
            "by fmad; write deg=True or deg=False"
        )
    if dx is None:
        return None
    safe = B.parse_expr("np.where(x == 0, 1.0, x)", x=x, np=ctx.np_())
    ratio = ctx.divide(Tangent(ctx.full(dx, x), full=True), safe, full=True)
    t = Tangent(B.call(ctx.np_("imag"), ratio.expr), full=True)
    return ctx.scale(B.const(180.0 / math.pi), t) if deg.value else t


@defrule(np.nan_to_num)
def nan_to_num_rule(ctx, z, args, tangents, keywords):
    """The tangent where ``x`` is finite, 0 where a constant replaced a nan or infinity."""
    x, dx = args[0], tangents[0]
    refuse_active_keywords(ctx, "np.nan_to_num", keywords)
    if any(ctx.is_active(a) for a in args[1:]):
        ctx.refuse(
            "np.nan_to_num() with a replacement value that carries a derivative is not "
            "supported by fmad; write np.where(np.isnan(x), v, x) instead"
        )
    copy = argument(args, keywords, 1, "copy")
    if copy is not None and not (isinstance(copy, ast.Constant) and copy.value is True):
        ctx.refuse("np.nan_to_num(x, copy=False) changes x in place; write x = np.nan_to_num(x)")
    if dx is None:
        return None
    mask = ctx.expand(B.call(ctx.np_("isfinite"), x))
    return Tangent(B.call(ctx.np_("where"), mask, dx.expr, B.const(0.0)), full=False)


# -- elementwise functions of two arguments --------------------------------------------------
binary(np.logaddexp, partials=(text("np.exp(x - z)"), text("np.exp(y - z)")))
binary(np.logaddexp2, partials=(text("np.exp2(x - z)"), text("np.exp2(y - z)")))
# x / max(z, smallest subnormal): exact wherever z > 0, and 0 at the origin
binary(
    np.hypot,
    partials=(text("x / np.maximum(z, 5e-324)"), text("y / np.maximum(z, 5e-324)")),
)
# arctan2(y, x): d = (x dy - y dx) / (x^2 + y^2), the square of hypot (no overflow)
binary(
    np.arctan2,
    partials=(
        text("y / np.hypot(x, y) / np.hypot(x, y)"),
        text("-x / np.hypot(x, y) / np.hypot(x, y)"),
    ),
)
binary(np.copysign, math.copysign, partials=(text("np.sign(x) * np.sign(z)"),))


@defrule(np.ldexp)
def ldexp_rule(ctx, z, args, tangents, keywords):
    """``ldexp(x, i) = x * 2**i``: the exponent is an integer (no derivative)."""
    if tangents[1] is not None:
        ctx.refuse(
            "the exponent of np.ldexp is an integer and cannot carry a derivative; "
            "write x * 2.0 ** e for a real exponent"
        )
    return ctx.scale(B.call(ctx.np_("ldexp"), B.const(1.0), args[1]), tangents[0], full=True)


# -- polynomials and the cross product -------------------------------------------------------
@defrule(np.polyval)
def polyval_rule(ctx, z, args, tangents, keywords):
    """``polyval(p, x)``: linear in the coefficients (``polyval(dp, x)``), and
    ``polyval(p', x) * dx`` in ``x``, ``p'`` the coefficients of the derivative (along the
    first axis of ``p``, whatever its other axes)."""
    refuse_active_keywords(ctx, "np.polyval", keywords)
    p, x = argument(args, keywords, 0, "p"), argument(args, keywords, 1, "x")
    dp, dx = (list(tangents) + [None, None])[:2]
    terms = []
    if dp is not None:
        terms.append(
            Tangent(B.call(ctx.np_("polyval"), ctx.full(dp, p), ctx.expand(x)), full=False)
        )
    if dx is not None:
        der = B.parse_expr(
            "np.polyval((np.asarray(p)[:-1].T * np.arange(len(p) - 1, 0, -1)).T, x)",
            p=p,
            x=x,
            np=ctx.np_(),
        )
        terms.append(ctx.scale(der, dx))
    return ctx.add(*terms)


CROSS_AXES = ("axisa", "axisb", "axisc", "axis")


@defrule(np.cross)
def cross_rule(ctx, z, args, tangents, keywords):
    """d cross(a, b) = cross(da, b) + cross(a, db), over the same axes (an axis counted
    from the end moves one to the left in a tangent with a direction axis)."""
    refuse_active_keywords(ctx, "np.cross", keywords)
    a, b = args[0], args[1]
    da, db = (list(tangents) + [None, None])[:2]
    axes = {"axisa": -1, "axisb": -1, "axisc": -1}
    given = {**dict(zip(CROSS_AXES, args[2:], strict=False)), **keywords}
    for key, node in given.items():
        value = B.constant_value(node)
        if is_none(node):
            continue
        if not isinstance(value, int):
            ctx.refuse(
                f"np.cross() with a {key}= that is not a constant integer is not supported "
                "by fmad; write the axis itself (axis=0)"
            )
        for k in axes if key == "axis" else (key,):
            axes[k] = value
    if ctx.vectorized:
        axes = {k: v - 1 if v < 0 else v for k, v in axes.items()}
    kw = {k: B.const(v) for k, v in axes.items()}
    cross = ctx.np_("cross")
    terms = []
    if da is not None:
        terms.append(Tangent(B.call(cross, ctx.full(da, a), ctx.expand(b), **kw)))
    if db is not None:
        terms.append(Tangent(B.call(cross, ctx.expand(a), ctx.full(db, b), **kw)))
    return ctx.add(*terms)


defzero(
    np.signbit,
    np.floor_divide,
    np.isclose,
    np.allclose,
    np.array_equal,
    np.array_equiv,
    np.isneginf,
    np.isposinf,
    np.isreal,
    np.iscomplex,
    np.isrealobj,
    np.iscomplexobj,
    np.spacing,
)

# Every numpy ufunc with a rule so far (elementwise's and this module's; ``elementwise`` is
# imported above so that its rows exist) checks its keywords
for _key, _rule in list(RULES.items()):
    if isinstance(_key, np.ufunc) and _rule.__name__ != "user_rule":
        RULES[_key] = checked(_key, _rule)
