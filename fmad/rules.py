"""The derivative rules: one table, one entry per operator or function.

``RULES`` maps an ``ast`` operator class (``ast.Mult``) or a function object (``np.exp``,
``math.sin``, builtin ``abs``) to its tangent rule. A rule receives the emitting context
``ctx`` (see :class:`fmad.forward.Context`), the result's name ``z``, the operand atoms and
their tangents (``None`` for an operand with no derivative), and returns the result's tangent
or ``None`` when it is known to be zero. Rules never multiply by a known zero: they skip the
term. ``ctx.scale``/``ctx.divide`` put primal factors in the tangent's layout, so one rule
serves scalar parameters and vectorized array parameters alike.

Reading a row: ``exp: mul "z"`` says ``d exp(x) = z * dx`` where ``z = exp(x)`` is the value
the primal line already computed (never recomputed).
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmad import build as B

Rule = Callable[..., Any]
RULES: dict[Any, Rule] = {}

# Functions whose result carries no derivative (integer-valued, shapes, constructors...).
ZERO_DERIVATIVE: set[Any] = set()
# Methods of arrays with no derivative, and attributes that are not values.
ZERO_METHODS = {"argmax", "argmin", "argsort", "nonzero", "astype_int", "tolist_int"}
ZERO_ATTRIBUTES = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}


def defrule(*keys: Any) -> Callable[[Rule], Rule]:
    def register_(rule: Rule) -> Rule:
        for key in keys:
            RULES[key] = rule
        return rule

    return register_


def rule_for(key: Any) -> Rule | None:
    try:
        return RULES.get(key)
    except TypeError:  # unhashable callables have no rule
        return None


def has_zero_derivative(key: Any) -> bool:
    try:
        return key in ZERO_DERIVATIVE
    except TypeError:
        return False


# -- operators -------------------------------------------------------------------------------
@defrule(ast.Add)
def add_rule(ctx, z, x, y, dx, dy):
    return ctx.add(ctx.broadcast(dx, y), ctx.broadcast(dy, x))


@defrule(ast.Sub)
def sub_rule(ctx, z, x, y, dx, dy):
    return ctx.add(ctx.broadcast(dx, y), ctx.negate(ctx.broadcast(dy, x)))


@defrule(ast.Mult)
def mult_rule(ctx, z, x, y, dx, dy):
    # d(x*y) = dx*y + x*dy
    return ctx.add(ctx.scale(y, dx), ctx.scale(x, dy))


@defrule(ast.Div)
def div_rule(ctx, z, x, y, dx, dy):
    # d(x/y) = dx/y - (x/y)*dy/y = (dx - z*dy) / y
    if dy is None:
        return ctx.divide(dx, y)
    return ctx.divide(ctx.add(dx, ctx.negate(ctx.scale(z, dy, full=True))), y)


@defrule(ast.Pow)
def pow_rule(ctx, z, x, y, dx, dy):
    terms = []
    if dx is not None:
        n = B.constant_value(y)
        if n == 2:
            coef = B.binop(B.const(2), ast.Mult(), x)  # 2 * x
        elif n is not None:
            power = x if n - 1 == 1 else B.binop(x, ast.Pow(), B.const(n - 1))
            coef = B.binop(B.const(n), ast.Mult(), power)
        else:
            coef = B.parse_expr("y * x ** (y - 1)", x=x, y=y)
        terms.append(ctx.scale(coef, dx, full=n is not None))
    if dy is not None:
        # d(x**y)/dy = x**y * log(x); numpy's log gives nan (not an exception) for x <= 0
        coef = B.binop(z, ast.Mult(), B.call(ctx.np_("log"), x))
        terms.append(ctx.scale(coef, dy, full=True))
    return ctx.add(*terms)


@defrule(ast.Mod)
def mod_rule(ctx, z, x, y, dx, dy):
    # x % y = x - floor(x / y) * y
    return ctx.add(dx, ctx.negate(ctx.scale(B.binop(x, ast.FloorDiv(), y), dy)))


@defrule(ast.USub)
def neg_rule(ctx, z, x, dx):
    return ctx.negate(dx)


@defrule(ast.UAdd)
def pos_rule(ctx, z, x, dx):
    return dx


for _zero_op in (ast.FloorDiv, ast.Not, ast.Invert, ast.BitAnd, ast.BitOr, ast.BitXor):
    ZERO_DERIVATIVE.add(_zero_op)


# -- elementwise functions of one argument ---------------------------------------------------
@dataclass(frozen=True)
class Elementwise:
    """``d f(x) = coef * dx`` (``mul``) or ``dx / coef`` (``div``).

    ``coef`` is Python text over ``x`` (the argument), ``z`` (the result) and ``m`` (the
    module the user called: ``math`` for ``math.sin``, numpy otherwise).
    """

    form: str
    coef: str

    def __call__(self, ctx, z, x, dx, *, module):
        if dx is None:
            return None
        coef = B.parse_expr(self.coef, x=x, z=z, m=module, np=ctx.np_())
        if self.form == "mul":
            return ctx.scale(coef, dx, full=True)  # coef has x's shape, which is z's
        return ctx.divide(dx, coef, full=True)


ELEMENTWISE = {
    "exp": Elementwise("mul", "z"),
    "log": Elementwise("div", "x"),
    "log1p": Elementwise("div", "1 + x"),
    "expm1": Elementwise("mul", "z + 1"),
    "log2": Elementwise("div", "x * 0.6931471805599453"),
    "log10": Elementwise("div", "x * 2.302585092994046"),
    "sqrt": Elementwise("div", "2 * z"),
    "cbrt": Elementwise("div", "3 * z * z"),
    "sin": Elementwise("mul", "m.cos(x)"),
    "cos": Elementwise("mul", "-m.sin(x)"),
    "tan": Elementwise("mul", "1 + z * z"),
    "arcsin": Elementwise("div", "m.sqrt(1 - x * x)"),
    "arccos": Elementwise("div", "-m.sqrt(1 - x * x)"),
    "arctan": Elementwise("div", "1 + x * x"),
    "sinh": Elementwise("mul", "m.cosh(x)"),
    "cosh": Elementwise("mul", "m.sinh(x)"),
    "tanh": Elementwise("mul", "1 - z * z"),
    "arcsinh": Elementwise("div", "m.sqrt(x * x + 1)"),
    "arccosh": Elementwise("div", "m.sqrt(x * x - 1)"),
    "arctanh": Elementwise("div", "1 - x * x"),
    "square": Elementwise("mul", "2 * x"),
    "reciprocal": Elementwise("mul", "-(z * z)"),
    "abs": Elementwise("mul", "np.sign(x)"),  # subgradient 0 at 0
    "positive": Elementwise("mul", "1"),
    "negative": Elementwise("mul", "-1"),
}
MATH_NAMES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
              "arccosh": "acosh", "arctanh": "atanh", "abs": "fabs"}


def _module_rule(rule: Elementwise, module: str) -> Rule:
    def call_rule(ctx, z, args, tangents, keywords):
        return rule(ctx, z, args[0], tangents[0], module=ctx.module(module))

    call_rule.__doc__ = f"d f(x) = {rule.coef} * dx" if rule.form == "mul" else \
        f"d f(x) = dx / ({rule.coef})"
    return call_rule


for _name, _rule in ELEMENTWISE.items():
    if hasattr(np, _name):
        RULES[getattr(np, _name)] = _module_rule(_rule, "numpy")
    _mname = MATH_NAMES.get(_name, _name)
    if hasattr(math, _mname) and _name not in ("square", "reciprocal", "positive", "negative"):
        RULES[getattr(math, _mname)] = _module_rule(_rule, "math")
RULES[np.absolute] = RULES[np.abs]
RULES[builtins.abs] = _module_rule(ELEMENTWISE["abs"], "numpy")


# -- functions of several arguments ----------------------------------------------------------
def _arg(args, keywords, i, key, default=None):
    if len(args) > i:
        return args[i]
    return keywords.get(key, default)


@defrule(np.power, math.pow)
def power_rule(ctx, z, args, tangents, keywords):
    return pow_rule(ctx, z, args[0], args[1], tangents[0], tangents[1])


def _pick(ctx, x, y, dx, dy, sign: int):
    # maximum: c = (sign(x - y) + 1) / 2 is 1 where x wins, 0 where y wins, 1/2 at a tie,
    # so a tie splits the derivative evenly between both sides.
    diff = B.call(ctx.np_("sign"), B.binop(x, ast.Sub(), y))
    c = B.parse_expr(f"(1 {'+' if sign > 0 else '-'} d) / 2", d=diff)
    one_minus_c = B.parse_expr(f"(1 {'-' if sign > 0 else '+'} d) / 2", d=diff)
    return ctx.add(ctx.scale(c, ctx.broadcast(dx, y)), ctx.scale(one_minus_c, ctx.broadcast(dy, x)))


@defrule(np.maximum, np.fmax)
def maximum_rule(ctx, z, args, tangents, keywords):
    return _pick(ctx, args[0], args[1], tangents[0], tangents[1], +1)


@defrule(np.minimum, np.fmin)
def minimum_rule(ctx, z, args, tangents, keywords):
    return _pick(ctx, args[0], args[1], tangents[0], tangents[1], -1)


@defrule(builtins.max)
def builtin_max_rule(ctx, z, args, tangents, keywords):
    if len(args) == 2 and not keywords:
        return _pick(ctx, args[0], args[1], tangents[0], tangents[1], +1)
    return ctx.reduce_builtin("max", z, args, tangents, keywords)


@defrule(builtins.min)
def builtin_min_rule(ctx, z, args, tangents, keywords):
    if len(args) == 2 and not keywords:
        return _pick(ctx, args[0], args[1], tangents[0], tangents[1], -1)
    return ctx.reduce_builtin("min", z, args, tangents, keywords)


@defrule(np.clip)
def clip_rule(ctx, z, args, tangents, keywords):
    x, lo, hi = args[0], _arg(args, keywords, 1, "a_min"), _arg(args, keywords, 2, "a_max")
    dx, dlo, dhi = (list(tangents) + [None, None])[:3]
    terms = []
    inside = []
    if lo is not None and not B.is_const(lo) or (lo is not None and B.constant_value(lo) is not None):
        inside.append(B.parse_expr("lo <= x", lo=lo, x=x))
        terms.append(ctx.scale(B.parse_expr("x < lo", lo=lo, x=x), dlo))
    if hi is not None and not (isinstance(hi, ast.Constant) and hi.value is None):
        inside.append(B.parse_expr("x <= hi", hi=hi, x=x))
        terms.append(ctx.scale(B.parse_expr("x > hi", hi=hi, x=x), dhi))
    if inside:
        mask = inside[0] if len(inside) == 1 else B.binop(inside[0], ast.BitAnd(), inside[1])
        terms.append(ctx.scale(mask, dx))
    else:
        terms.append(dx)
    return ctx.add(*terms)


@defrule(np.where)
def where_rule(ctx, z, args, tangents, keywords):
    if len(args) != 3:
        return None
    cond, _, _ = args
    _, da, db = tangents
    if da is None and db is None:
        return None
    return ctx.where(cond, da, db, z)


@defrule(builtins.float, np.float64, np.asarray, np.asanyarray)
def identity_rule(ctx, z, args, tangents, keywords):
    return tangents[0] if tangents else None


@defrule(builtins.sum)
def builtin_sum_rule(ctx, z, args, tangents, keywords):
    return ctx.reduce_builtin("sum", z, args, tangents, keywords)


ZERO_DERIVATIVE.update({
    builtins.len, builtins.range, builtins.int, builtins.round, builtins.bool,
    builtins.isinstance, builtins.type, builtins.print, builtins.enumerate,
    math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite, math.copysign,
    np.sign, np.floor, np.ceil, np.round, np.around, np.rint, np.trunc, np.fix,
    np.shape, np.ndim, np.size, np.zeros, np.ones, np.empty, np.full, np.eye, np.identity,
    np.zeros_like, np.ones_like, np.empty_like, np.arange, np.linspace,
    np.argmax, np.argmin, np.argsort, np.isnan, np.isinf, np.isfinite, np.nonzero,
    np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal,
    np.logical_and, np.logical_or, np.logical_not, np.heaviside,
})
if hasattr(np, "round_"):
    ZERO_DERIVATIVE.add(np.round_)


# -- user rules ----------------------------------------------------------------------------
def register(func: Callable[..., Any], derivative: Callable[..., Any]) -> None:
    """Give ``func`` (a function fmad has no source or rule for) a derivative.

    ``derivative`` takes the same positional arguments as ``func`` and returns its partial
    derivative with respect to its first argument, or, for a function of several
    arguments, a tuple with one partial per positional argument. ``func`` must be
    elementwise (or scalar): the tangent is ``derivative(x) * dx``.

    >>> from scipy.special import expit
    >>> fmad.register(expit, lambda x: expit(x) * (1 - expit(x)))
    """
    if not callable(func) or not callable(derivative):
        raise TypeError("fmad.register(func, derivative) takes two callables")

    def user_rule(ctx, z, args, tangents, keywords):
        deriv = ctx.inject(derivative, getattr(func, "__name__", "f") + "_derivative")
        partials = B.call(deriv, *args)
        terms = []
        for i, t in enumerate(tangents):
            if t is None:
                continue
            p = partials if len(args) == 1 else B.subscript(partials, B.const(i))
            terms.append(ctx.scale(p, t))
        return ctx.add(*terms)

    user_rule.__doc__ = f"user rule registered for {func!r}"
    RULES[func] = user_rule


# -- indexing, attributes and methods ------------------------------------------------------
def _tangent_index(ctx, index: ast.expr) -> ast.expr:
    """An index of the value applied to its tangent: ``...`` must not reach the k axis."""
    if not ctx.vectorized:
        return index
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    if any(isinstance(p, ast.Constant) and p.value is Ellipsis for p in parts):
        return B.tuple_([*parts, ast.Slice()])
    return index


def index_rule(ctx, z, x, index, t):
    """``z = x[i]``: the tangent's matching entries (the tangent made full first)."""
    if t is None:
        return None
    from fmad.forward import Tangent

    return Tangent(B.subscript(ctx.full(t, x), _tangent_index(ctx, index)), full=True)


def transpose_attribute(ctx, z, x, t):
    if t is None:
        return None
    from fmad.forward import Tangent

    if not ctx.vectorized:
        return Tangent(B.attr(ctx.full(t, x), "T"), full=True)
    # reverse the value's axes, keep the direction axis last
    return Tangent(B.call(ctx.np_("moveaxis"), B.attr(ctx.full(t, x), "T"), B.const(0),
                          B.const(-1)), full=True)


ATTRIBUTE_RULES: dict[str, Rule] = {"T": transpose_attribute}


def copy_method(ctx, z, x, t, args, tangents, keywords):
    return t


METHOD_RULES: dict[str, Rule] = {"copy": copy_method}
