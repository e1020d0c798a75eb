"""Rules of ``scipy.special``, registered only when scipy can be imported (scipy is never a
dependency of fmad; without it this module registers nothing).

Functions with an order or shape parameter (``jv(v, x)``, ``gammainc(a, x)``,
``betainc(a, b, x)``, ``multigammaln(a, d)``...) are differentiated in ``x`` (in ``a`` for
``multigammaln``); a derivative in the other parameters is refused.

The elementwise functions are ufuncs: their keywords are checked as numpy's
(:func:`fmad.rules.arithmetic.ufunc_call`). ``logsumexp`` models ``axis`` and ``keepdims``
(not ``b`` or ``return_sign``), ``softmax`` and ``log_softmax`` their ``axis``.

Conventions: ``xlogy(x, y)`` and ``xlog1py`` have the partials ``log(y)`` and ``x / y``
(``log1p(y)``, ``x / (1 + y)``), also where ``x == 0``; at ``x == y == 0`` (where
``xlogy`` is 0 but jumps) they are ``-inf`` and ``nan``.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad.rules.arithmetic import binary, checked, refuse_active_keywords
from fmad.rules.base import ORDERED, RULES, UNARY, argument, defrule, defzero, is_none
from fmad.rules.reductions import reduce_tangent
from fmad.tangent import Tangent

try:
    import scipy.special as special
except ImportError:  # scipy is optional
    special = None


def _unary(func, coef: str, form: str = "mul", **helpers) -> None:
    """``d f(x) = coef * dx`` or ``dx / coef``; ``coef`` text over ``x``, ``z``, ``np`` and
    the scipy functions named in ``helpers`` (injected into the generated code)."""
    UNARY[func] = (form, coef, helpers)

    def rule(ctx, z, args, tangents, keywords):
        dx = tangents[0]
        if dx is None:
            return None
        names = {k: ctx.inject(f, k) for k, f in helpers.items()}
        c = B.parse_expr(coef, x=args[0], z=z, np=ctx.np_(), **names)
        if form == "mul":
            return ctx.scale(c, dx, full=True)
        return ctx.divide(dx, c, full=True, numpy=True)

    rule.__doc__ = f"d {func.__name__}(x) = {coef} * dx"
    RULES[func] = checked(func, rule)


def _partial(source: str, **helpers):
    def partial(ctx, z, x, y):
        names = {k: ctx.inject(f, k) for k, f in helpers.items()}
        return B.parse_expr(source, x=x, y=y, z=z, np=ctx.np_(), **names)

    return partial


def _axis(ctx, args, keywords, i: int, name: str) -> ast.expr:
    axis = argument(args, keywords, i, "axis")
    if axis is not None and not is_none(axis) and ctx.is_active(axis):
        ctx.refuse(f"{name}() with an axis that carries a derivative; use a constant axis")
    return ast.Constant(None) if axis is None else axis


def _kept(ctx, z, axis, keepdims) -> ast.expr:
    """The reduced value ``z`` with its reduced axes back (length 1), to broadcast."""
    if is_none(axis) or (isinstance(keepdims, ast.Constant) and keepdims.value is True):
        return z
    return B.call(ctx.np_("expand_dims"), z, axis)


def logsumexp_rule(ctx, z, args, tangents, keywords):
    """d logsumexp(a) = sum(exp(a - z) * da) over the same axes."""
    name = "scipy.special.logsumexp"
    refuse_active_keywords(ctx, name, keywords)
    options = dict(zip(("axis", "b", "keepdims", "return_sign"), args[1:], strict=False))
    options.update(keywords)
    for key, node in options.items():
        if key in ("axis", "keepdims"):
            continue
        if key == "return_sign" and isinstance(node, ast.Constant) and node.value is False:
            continue
        if key == "b" and is_none(node):
            continue
        ctx.refuse(
            f"{name}() with {key}= is not supported by fmad; "
            + (
                "write np.log(np.sum(b * np.exp(a - m))) + m with m = np.max(a)"
                if key == "b"
                else f"drop {key}="
            )
        )
    a, da = args[0], tangents[0]
    if da is None:
        return None
    axis = _axis(ctx, args, keywords, 1, name)
    keepdims = options.get("keepdims", ast.Constant(False))
    if not isinstance(keepdims, ast.Constant) or not isinstance(keepdims.value, bool):
        ctx.refuse(f"{name}() with a keepdims= that is not a constant; write True or False")
    weights = B.call(ctx.np_("exp"), B.binop(a, ast.Sub(), _kept(ctx, z, axis, keepdims)))
    return reduce_tangent(
        ctx, "sum", a, ctx.scale(weights, da, full=True), axis, keepdims if keepdims.value else None
    )


def _softmax_rule(log: bool):
    name = f"scipy.special.{'log_' if log else ''}softmax"

    def rule(ctx, z, args, tangents, keywords):
        """softmax: ``z * (dx - sum(z * dx))``; log_softmax: ``dx - sum(exp(z) * dx)``, the
        sums over ``axis`` (all elements when None), kept as axes of length 1."""
        refuse_active_keywords(ctx, name, keywords)
        extra = set(keywords) - {"axis"}
        if len(args) > 2 or extra:
            ctx.refuse(f"{name}() is modelled with x and axis only; drop {sorted(extra)}")
        x, dx = args[0], tangents[0]
        if dx is None:
            return None
        axis = _axis(ctx, args, keywords, 1, name)
        p = B.call(ctx.np_("exp"), z) if log else z
        total = reduce_tangent(ctx, "sum", x, ctx.scale(p, dx, full=True), axis, ast.Constant(True))
        inner = ctx.add(Tangent(ctx.full(dx, x), full=True), ctx.negate(total))
        return inner if log else ctx.scale(z, inner, full=True)

    return rule


def _polygamma_rule(ctx, z, args, tangents, keywords):
    """d polygamma(n, x) = polygamma(n + 1, x) dx (``n`` an integer: no derivative)."""
    if tangents[0] is not None:
        ctx.refuse("the order n of scipy.special.polygamma carries a derivative; it must be data")
    if keywords:
        ctx.refuse(
            "scipy.special.polygamma() with keywords is not modelled; pass n and x by position"
        )
    f = ctx.inject(special.polygamma, "polygamma")
    coef = B.call(f, B.binop(args[0], ast.Add(), B.const(1)), args[1])
    return ctx.scale(coef, tangents[1], full=True)


def _order_rule(func, coef: str, **helpers) -> None:
    """``f(v, x)`` with an order ``v`` that carries no derivative (Bessel functions,
    ``gammainc``): ``d f = coef * dx``, ``coef`` text over ``v``, ``x``, ``z``, ``np`` and
    ``f`` (the function itself) and ``helpers``."""
    ORDERED[func] = (coef, helpers)

    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is not None:
            ctx.refuse(
                f"the first argument of scipy.special.{func.__name__} (an order or a shape) "
                "carrying a derivative is not supported by fmad; only its second one may"
            )
        if tangents[1] is None:
            return None
        names = {k: ctx.inject(f, k) for k, f in helpers.items()}
        f = ctx.inject(func, func.__name__)
        c = B.parse_expr(coef, v=args[0], x=args[1], z=z, np=ctx.np_(), f=f, **names)
        return ctx.scale(c, ctx.broadcast(tangents[1], args[0]), full=True)

    rule.__doc__ = f"d {func.__name__}(v, x) = {coef} * dx"
    RULES[func] = checked(func, rule)


def _betainc_rule(ctx, z, args, tangents, keywords):
    """d betainc(a, b, x) = x^(a-1) (1-x)^(b-1) / B(a, b) dx (in ``x`` only)."""
    if tangents[0] is not None or tangents[1] is not None:
        ctx.refuse(
            "scipy.special.betainc with a or b carrying a derivative is not supported by "
            "fmad; only x may carry one"
        )
    if tangents[2] is None:
        return None
    a, b, x = args
    betaln = ctx.inject(special.betaln, "betaln")
    coef = B.parse_expr(
        "np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - betaln(a, b))",
        a=a,
        b=b,
        x=x,
        np=ctx.np_(),
        betaln=betaln,
    )
    return ctx.scale(coef, ctx.broadcast(tangents[2], a), full=True)


def _multigammaln_rule(ctx, z, args, tangents, keywords):
    """d multigammaln(a, d) = sum over j < d of digamma(a - j / 2) da."""
    if keywords or len(args) != 2 or tangents[1] is not None:
        ctx.refuse(
            "scipy.special.multigammaln is modelled as multigammaln(a, d) with d data; "
            "pass a and d by position"
        )
    if tangents[0] is None:
        return None
    digamma = ctx.inject(special.digamma, "digamma")
    coef = B.parse_expr(
        "np.sum(digamma(np.expand_dims(a, -1) - np.arange(d) / 2), axis=-1)",
        a=args[0],
        d=args[1],
        np=ctx.np_(),
        digamma=digamma,
    )
    return ctx.scale(coef, tangents[0], full=True)


if special is not None:
    _unary(special.expit, "z * (1 - z)")
    _unary(special.logit, "x * (1 - x)", form="div")
    _unary(special.log_expit, "expit(-x)", expit=special.expit)
    _unary(special.erf, "1.1283791670955126 * np.exp(-(x * x))")
    _unary(special.erfc, "-1.1283791670955126 * np.exp(-(x * x))")
    _unary(special.erfinv, "0.886226925452758 * np.exp(z * z)")
    _unary(special.erfcinv, "-0.886226925452758 * np.exp(z * z)")
    _unary(special.ndtr, "0.3989422804014327 * np.exp(-0.5 * x * x)")
    _unary(special.log_ndtr, "0.3989422804014327 * np.exp(-0.5 * x * x - z)")
    _unary(special.gammaln, "digamma(x)", digamma=special.digamma)
    _unary(special.gamma, "z * digamma(x)", digamma=special.digamma)
    _unary(special.digamma, "polygamma(1, x)", polygamma=special.polygamma)
    defrule(special.polygamma)(_polygamma_rule)
    for _f, _partials in (
        (special.xlogy, ("np.log(y)", "x / y")),
        (special.xlog1py, ("np.log1p(y)", "x / (1 + y)")),
    ):
        binary(_f, partials=tuple(_partial(s) for s in _partials))
        RULES[_f] = checked(_f, RULES[_f])
    defrule(special.logsumexp)(logsumexp_rule)
    defrule(special.softmax)(_softmax_rule(False))
    defrule(special.log_softmax)(_softmax_rule(True))
    _unary(special.rgamma, "-z * digamma(x)", digamma=special.digamma)
    defzero(special.gammasgn)
    for _f in (special.beta, special.betaln):
        _scale = "z * " if _f is special.beta else ""
        binary(
            _f,
            partials=(
                _partial(f"{_scale}(digamma(x) - digamma(x + y))", digamma=special.digamma),
                _partial(f"{_scale}(digamma(y) - digamma(x + y))", digamma=special.digamma),
            ),
        )
        RULES[_f] = checked(_f, RULES[_f])
    # Bessel functions: J0' = -J1, I0' = I1, and for the order v, Z_v' from Z_(v-1), Z_(v+1)
    _unary(special.j0, "-j1(x)", j1=special.j1)
    _unary(special.j1, "(j0(x) - jv(2, x)) / 2", j0=special.j0, jv=special.jv)
    _unary(special.y0, "-y1(x)", y1=special.y1)
    _unary(special.y1, "(y0(x) - yv(2, x)) / 2", y0=special.y0, yv=special.yv)
    _unary(special.i0, "i1(x)", i1=special.i1)
    _unary(special.i1, "(i0(x) + iv(2, x)) / 2", i0=special.i0, iv=special.iv)
    _unary(special.i0e, "i1e(x) - np.sign(x) * z", i1e=special.i1e)
    _unary(
        special.i1e, "(i0e(x) + ive(2, x)) / 2 - np.sign(x) * z", i0e=special.i0e, ive=special.ive
    )
    for _f in (special.jv, special.jn, special.yv, special.yn):
        _order_rule(_f, "(f(v - 1, x) - f(v + 1, x)) / 2")
    _order_rule(special.iv, "(f(v - 1, x) + f(v + 1, x)) / 2")
    _order_rule(special.ive, "(f(v - 1, x) + f(v + 1, x)) / 2 - np.sign(x) * z")
    _order_rule(special.kv, "-(f(v - 1, x) + f(v + 1, x)) / 2")
    _order_rule(special.kve, "z - (f(v - 1, x) + f(v + 1, x)) / 2")
    # the regularised incomplete gamma functions in x: +-x^(a-1) e^(-x) / Gamma(a)
    _order_rule(
        special.gammainc, "np.exp((v - 1) * np.log(x) - x - gammaln(v))", gammaln=special.gammaln
    )
    _order_rule(
        special.gammaincc, "-np.exp((v - 1) * np.log(x) - x - gammaln(v))", gammaln=special.gammaln
    )
    RULES[special.betainc] = checked(special.betainc, _betainc_rule)
    defrule(special.multigammaln)(_multigammaln_rule)
