"""Transposes of the elementwise rules that are not plain rows of :mod:`fmad.adjoints`:
``abs``, ``np.clip``, the builtins ``min``, ``max`` and ``sum``, numpy's arithmetic called as
functions (``np.add``... and ``%``/``np.mod``/``np.fmod``), ``math.log(x, base)``, and the
rows the forward table writes as text (``rules.base.UNARY``: ``np.exp2``, ``np.sinc``,
scipy.special; ``rules.base.ORDERED``: Bessel functions of an order, ``gammainc``), each
``g`` times forward mode's own partial, summed back over broadcast axes.

Conventions are forward mode's: ``abs`` has derivative 0 at 0 (``np.sign``), ``np.clip``
passes the derivative to ``x`` inside ``[lo, hi]`` bounds included, ``max(a, b)`` splits it
evenly at a tie (``np.maximum``'s partials), ``max(xs)`` shares it among the tied items.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections import Counter

import numpy as np

from fmad import build as B
from fmad import runtime_transpose
from fmad.adjoints import ADJOINTS, defadjoint, times, unb
from fmad.rules.base import ORDERED, UNARY, is_none, method, static_value
from fmad.rules.special import special


def tr(ctx, attr: str) -> ast.expr:
    """``fmad_tr.attr``: a helper of :mod:`fmad.runtime_transpose` in the printed code."""
    return B.attr(B.name(ctx.unit.inject(runtime_transpose, "fmad_tr")), attr)


def no_keywords(ctx, keywords, what: str) -> None:
    if keywords:
        ctx.refuse(f"{what} with keyword arguments ({', '.join(sorted(keywords))})")


def where(ctx, cond: ast.expr, g: ast.expr) -> ast.expr:
    return B.call(ctx.np_("where"), cond, g, B.const(0.0))


# the builtin and np.fabs: np.abs's row (g * np.sign(x)); a complex value on the way is
# refused at the end (reverse_api), as for np.abs
ADJOINTS[builtins.abs] = ADJOINTS[np.fabs] = ADJOINTS[np.abs]


@defadjoint(np.clip, method("clip"))
def clip_adjoint(ctx, g, z, args, keywords, active):
    given = dict(zip(("x", "lo", "hi"), args, strict=False))
    for key, node in keywords.items():
        slot = {"a_min": "lo", "min": "lo", "a_max": "hi", "max": "hi"}.get(key)
        if slot is None or slot in given:
            ctx.refuse(f"np.clip() with {key}=")
        if any(n in ctx.active for n in B.names(node)):
            ctx.refuse("np.clip() with a bound given by keyword that carries a derivative")
        given[slot] = node
    x = given["x"]
    lo, hi = given.get("lo", B.const(None)), given.get("hi", B.const(None))
    inside = []
    if not is_none(lo):
        inside.append(B.parse_expr("(lo <= x)", lo=lo, x=x))
    if not is_none(hi):
        inside.append(B.parse_expr("(x <= hi)", hi=hi, x=x))
    out = []
    if active[0]:
        cond = inside[0] if len(inside) == 1 else B.binop(inside[0], ast.BitAnd(), inside[1])
        out.append((0, unb(ctx, where(ctx, cond, g) if inside else g, x)))
    # lo > hi makes the result hi (numpy: minimum(maximum(x, lo), hi)), whatever x
    below = "(x < lo) & (lo <= hi)" if not is_none(hi) else "x < lo"
    above = "(x > hi) | (lo > hi)" if not is_none(lo) else "x > hi"
    for i, text in ((1, below), (2, above)):
        if len(active) > i and active[i]:
            cond = B.parse_expr(text, x=x, lo=lo, hi=hi)
            out.append((i, unb(ctx, where(ctx, cond, g), args[i])))
    return out


def _builtin_extreme(pair):
    def extreme_adjoint(ctx, g, z, args, keywords, active):
        no_keywords(ctx, keywords, "min()/max()")
        if len(args) == 2:
            return ADJOINTS[pair](ctx, g, z, args, keywords, active)
        if len(args) == 1:
            return [(0, B.call(tr(ctx, "extreme_items_adjoint"), g, args[0], B.name(z)))]
        every = ast.List(elts=list(args), ctx=ast.Load())
        helper = tr(ctx, "extreme_args_adjoint")
        return [
            (i, B.call(helper, g, a, B.name(z), every)) for i, a in enumerate(args) if active[i]
        ]

    return extreme_adjoint


ADJOINTS[builtins.max] = _builtin_extreme(np.maximum)
ADJOINTS[builtins.min] = _builtin_extreme(np.minimum)


@defadjoint(builtins.sum)
def builtin_sum_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "sum()")
    out = []
    if active[0]:
        out.append((0, B.call(tr(ctx, "items_adjoint"), g, args[0])))
    if len(args) > 1 and active[1]:  # sum(xs, start)
        out.append((1, unb(ctx, g, args[1])))
    return out


# -- arithmetic as functions -----------------------------------------------------------------
def _ufunc(operator):
    def ufunc_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 2 or keywords:
            ctx.refuse("this numpy function with keywords or an out= argument")
        return ADJOINTS[operator](ctx, g, z, args, keywords, active)

    return ufunc_adjoint


ADJOINTS[np.add] = _ufunc(ast.Add)
ADJOINTS[np.subtract] = _ufunc(ast.Sub)
ADJOINTS[np.multiply] = _ufunc(ast.Mult)
ADJOINTS[np.float_power] = _ufunc(ast.Pow)


@defadjoint(np.divide)
def divide_adjoint(ctx, g, z, args, keywords, active):
    """Divided the numpy way (by 0: inf, as the primal did)."""
    if len(args) != 2 or keywords:
        ctx.refuse("np.divide with keywords or an out= argument")
    x, y = args
    divide = ctx.np_("divide")
    out = []
    if active[0]:
        out.append((0, unb(ctx, B.call(divide, g, y), x, y)))
    if active[1]:
        term = B.neg(B.call(divide, B.binop(g, ast.Mult(), B.name(z)), y))
        out.append((1, unb(ctx, term, y, x)))
    return out


def _modulo(quotient: str):
    """``z = x - n * y`` with forward mode's quotient ``n``: ``g`` to ``x``, ``-n g`` to y."""

    def mod_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 2 or keywords:
            ctx.refuse("a remainder with keywords or an out= argument")
        x, y = args
        out = []
        if active[0]:
            out.append((0, unb(ctx, g, x, y)))
        if active[1]:
            n = B.parse_expr(quotient, x=x, y=y, z=B.name(z), np=ctx.np_())
            out.append((1, unb(ctx, B.neg(B.binop(g, ast.Mult(), n)), y, x)))
        return out

    return mod_adjoint


ADJOINTS[ast.Mod] = _modulo("x // y")
ADJOINTS[np.mod] = _modulo("np.floor_divide(x, y)")
ADJOINTS[np.fmod] = _modulo("np.rint((x - z) / y)")


@defadjoint(math.log)
def math_log_adjoint(ctx, g, z, args, keywords, active):
    """``math.log(x)`` and ``math.log(x, base) = log(x) / log(base)``."""
    no_keywords(ctx, keywords, "math.log()")
    x = args[0]
    if len(args) == 1:
        return [(0, B.binop(g, ast.Div(), x))]
    base = args[1]
    log_base = B.call(B.attr(ctx.module("math"), "log"), base)
    out = []
    if active[0]:
        out.append((0, B.binop(g, ast.Div(), B.binop(x, ast.Mult(), log_base))))
    if active[1]:
        term = B.parse_expr("-(g * z) / (b * lb)", g=g, z=B.name(z), b=base, lb=log_base)
        out.append((1, term))
    return out


# -- the rows written as text ----------------------------------------------------------------
def _unary(form: str, coef: str, helpers: dict):
    def unary_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 1 or keywords:
            ctx.refuse("this function with several arguments or keywords")
        names = {k: ctx.inject(f, k) for k, f in helpers.items()}
        c = B.parse_expr(coef, x=args[0], z=B.name(z), np=ctx.np_(), **names)
        if form == "mul":
            return [(0, times(g, c))]
        return [(0, B.call(ctx.np_("divide"), g, c))]

    return unary_adjoint


def _ordered(func, coef: str, helpers: dict):
    def ordered_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 2 or keywords:
            ctx.refuse("this function with keywords or an out= argument")
        if active[0]:
            ctx.refuse(f"the order of scipy.special.{func.__name__} carrying a derivative")
        names = {k: ctx.inject(f, k) for k, f in helpers.items()}
        f = ctx.inject(func, func.__name__)
        v, x = args
        c = B.parse_expr(coef, v=v, x=x, z=B.name(z), np=ctx.np_(), f=f, **names)
        return [(1, unb(ctx, times(g, c), x, v))]

    return ordered_adjoint


def _softmax(log: bool):
    def softmax_adjoint(ctx, g, z, args, keywords, active):
        if len(args) > 2 or set(keywords) - {"axis"}:
            ctx.refuse("softmax with arguments other than x and axis")
        axis = args[1] if len(args) > 1 else keywords.get("axis", B.const(None))
        return [(0, B.call(tr(ctx, "softmax_adjoint"), g, B.name(z), axis, B.const(log)))]

    return softmax_adjoint


def logsumexp_adjoint(ctx, g, z, args, keywords, active):
    given = dict(zip(("axis", "b", "keepdims", "return_sign"), args[1:], strict=False))
    given.update(keywords)
    if not is_none(given.get("b")) or given.get("return_sign", B.const(False)).value is not False:
        ctx.refuse("logsumexp with b= or return_sign=")
    if len(args) > 4 or set(given) - {"axis", "b", "keepdims", "return_sign"}:
        ctx.refuse("logsumexp with further arguments")
    axis, keepdims = given.get("axis", B.const(None)), given.get("keepdims", B.const(False))
    helper = tr(ctx, "logsumexp_adjoint")
    return [(0, B.call(helper, g, args[0], B.name(z), axis, keepdims))]


def polygamma_adjoint(ctx, g, z, args, keywords, active):
    """d polygamma(n, x) = polygamma(n + 1, x) dx (``n`` an integer: no derivative)."""
    if len(args) != 2 or keywords or active[0]:
        ctx.refuse("scipy.special.polygamma with keywords or an order carrying a derivative")
    n, x = args
    coef = B.call(ctx.inject(special.polygamma, "polygamma"), B.binop(n, ast.Add(), B.const(1)), x)
    return [(1, unb(ctx, times(g, coef), x, n))]


def betainc_adjoint(ctx, g, z, args, keywords, active):
    """d betainc(a, b, x) = x^(a-1) (1-x)^(b-1) / B(a, b) dx (in ``x`` only)."""
    if len(args) != 3 or keywords or active[0] or active[1]:
        ctx.refuse("scipy.special.betainc with a or b carrying a derivative")
    a, b, x = args
    coef = B.parse_expr(
        "np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - betaln(a, b))",
        a=a,
        b=b,
        x=x,
        np=ctx.np_(),
        betaln=ctx.inject(special.betaln, "betaln"),
    )
    return [(2, B.call(ctx.rev("unbroadcast"), times(g, coef), x))]


def multigammaln_adjoint(ctx, g, z, args, keywords, active):
    """d multigammaln(a, d) = sum over j < d of digamma(a - j / 2) da."""
    if len(args) != 2 or keywords or active[1]:
        ctx.refuse("scipy.special.multigammaln other than multigammaln(a, d), d data")
    coef = B.parse_expr(
        "np.sum(digamma(np.expand_dims(a, -1) - np.arange(d) / 2), axis=-1)",
        a=args[0],
        d=args[1],
        np=ctx.np_(),
        digamma=ctx.inject(special.digamma, "digamma"),
    )
    return [(0, times(g, coef))]


if special is not None:
    ADJOINTS[special.polygamma] = polygamma_adjoint
    ADJOINTS[special.betainc] = betainc_adjoint
    ADJOINTS[special.multigammaln] = multigammaln_adjoint
    ADJOINTS[special.softmax] = _softmax(False)
    ADJOINTS[special.log_softmax] = _softmax(True)
    ADJOINTS[special.logsumexp] = logsumexp_adjoint

for _key, (_form, _coef, _helpers) in UNARY.items():
    ADJOINTS[_key] = _unary(_form, _coef, _helpers)
for _key, (_coef, _helpers) in ORDERED.items():
    ADJOINTS[_key] = _ordered(_key, _coef, _helpers)


# -- conversions and dtype= ------------------------------------------------------------------
class _Statics:
    """What ``rules.base.static_value`` reads of a rule's context, for reverse mode."""

    def __init__(self, ctx) -> None:
        self.scope, self.flat = ctx.scope, getattr(ctx, "primal", ctx.flat)
        self.assign_counts: Counter = Counter()
        for s in ast.walk(self.flat):
            if isinstance(s, ast.Assign):
                self.assign_counts.update(B.stored_names(s.targets[0]))


def const_value(node):
    return node.value if isinstance(node, ast.Constant) else None


def dtype_kind(ctx, node) -> str:
    """The kind of the dtype ``node`` names (``'f'`` for float), known when fmad transforms
    the function, or a refusal."""
    if is_none(node):
        return "f"
    obj = static_value(_Statics(ctx), node)
    try:
        kind = np.dtype(obj).kind if obj is not None else "?"
    except TypeError:
        kind = "?"
    if kind not in "fiub":
        ctx.refuse(f"a conversion to the dtype '{ast.unparse(node)}' fmad cannot see")
    return kind


def without_float_dtype(rule):
    """``rule`` for a call whose ``dtype=`` is a floating type (the derivative unchanged),
    or with ``where=True`` or ``out=None`` written out."""

    def dtype_adjoint(ctx, g, z, args, keywords, active):
        keywords = {  # the defaults, written out
            k: v
            for k, v in keywords.items()
            if not (k == "where" and const_value(v) is True) and not (k == "out" and is_none(v))
        }
        if "dtype" in keywords:
            if dtype_kind(ctx, keywords["dtype"]) != "f":
                ctx.refuse("a function with an integer dtype= on a value that carries a derivative")
            keywords = {k: v for k, v in keywords.items() if k != "dtype"}
        return rule(ctx, g, z, args, keywords, active)

    return dtype_adjoint


for _key, _rule in list(ADJOINTS.items()):
    if isinstance(_key, np.ufunc):
        ADJOINTS[_key] = without_float_dtype(_rule)


@defadjoint(np.float64)
def float64_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.float64()")
    return [(0, unb(ctx, g, args[0]))]


@defadjoint(np.asarray, np.asanyarray, method("astype"))
def conversion_adjoint(ctx, g, z, args, keywords, active):
    if set(keywords) - {"dtype"} or len(args) > 2:
        ctx.refuse("a conversion with options other than dtype=")
    dtype = args[1] if len(args) > 1 else keywords.get("dtype", B.const(None))
    if dtype_kind(ctx, dtype) != "f":
        return []  # an integer or boolean conversion is a step: no derivative
    return [(0, g)]


@defadjoint(method("item"))
def item_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 1 or keywords:
        ctx.refuse("'.item()' with an index (write x[i] instead)")
    return [(0, unb(ctx, g, args[0]))]


def conj_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.conj")
    return [(0, B.call(tr(ctx, "real_adjoint"), g, args[0], B.const(False)))]


ADJOINTS[np.conjugate] = ADJOINTS[method("conj")] = ADJOINTS[method("conjugate")] = conj_adjoint
