"""Rules of the arithmetic operators and of elementwise functions (numpy, math, builtins).

Reading a row: ``"exp": Elementwise("mul", "z")`` says ``d exp(x) = z * dx`` where
``z = exp(x)`` is the value the primal line already computed (never recomputed).
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
from dataclasses import dataclass

import numpy as np

from fmad import build as B
from fmad.rules.base import (
    RULES,
    Rule,
    alias,
    argument,
    deflinear,
    defpartials,
    defrule,
    defzero,
    is_none,
    k_list,
)
from fmad.tangent import Tangent, zero


# -- operators -------------------------------------------------------------------------------
@defrule(ast.Add)
def add_rule(ctx, z, args, tangents, keywords):
    (x, y), (dx, dy) = args, tangents
    lists = (dx is not None and dx.container) or (dy is not None and dy.container)
    maybe = all(isinstance(a, ast.Name) and a.id in ctx.maybe_lists for a in (x, y))
    if lists or maybe:
        # xs + [w]: lists concatenate, and so do their tangents (zeros for a plain list, the
        # items of a list parameter's array tangent); two names that may both be lists (a
        # parameter and a list display) are checked when the code runs
        parts = [t.expr if t is not None else ast.Constant(None) for t in (dx, dy)]
        call = B.call(ctx.rt("concat_tangent"), parts[0], x, parts[1], y, *k_list(ctx))
        return Tangent(call, full=lists, container=True)
    return ctx.add_operands(dx, x, dy, y)


@defrule(ast.Sub)
def sub_rule(ctx, z, args, tangents, keywords):
    (x, y), (dx, dy) = args, tangents
    return ctx.add_operands(dx, x, dy, y, subtract=True)


# d(x*y) = dx*y + x*dy
defpartials(ast.Mult, partials=(lambda ctx, z, x, y: y, lambda ctx, z, x, y: x), broadcast=False)


@defrule(ast.Div)
def div_rule(ctx, z, args, tangents, keywords):
    # d(x/y) = dx/y - (x/y)*dy/y = (dx - z*dy) / y
    y, (dx, dy) = args[1], tangents
    if dy is None:
        return ctx.divide(dx, y)
    return ctx.divide(ctx.add(dx, ctx.negate(ctx.scale(z, dy, full=True))), y)


@defrule(ast.Pow, np.power, math.pow, builtins.pow)
def pow_rule(ctx, z, args, tangents, keywords):
    (x, y), (dx, dy) = args[:2], tangents[:2]
    terms = []
    n = B.constant_value(y)
    if dx is not None and n != 0:  # x ** 0 is the constant 1
        # float constants: float * float is Python's fast path, and exact here
        if n == 1:
            coef = B.const(1)
        elif n == 2:
            coef = B.binop(B.const(2.0), ast.Mult(), x)  # 2.0 * x
        elif n is not None:
            power = x if n - 1 == 1 else B.binop(x, ast.Pow(), B.const(n - 1))
            coef = B.binop(B.const(float(n) if isinstance(n, int) else n), ast.Mult(), power)
        else:
            coef = B.parse_expr("y * x ** (y - 1)", x=x, y=y)
        terms.append(ctx.scale(coef, dx, full=n is not None))
    if dy is not None:
        # d(x**y)/dy = x**y * log(x); numpy's log gives nan (not an exception) for x <= 0
        coef = B.binop(z, ast.Mult(), B.call(ctx.np_("log"), x))
        terms.append(ctx.scale(coef, dy, full=True))
    return ctx.add(*terms)


@defrule(ast.Mod)
def mod_rule(ctx, z, args, tangents, keywords):
    # x % y = x - floor(x / y) * y
    (x, y), (dx, dy) = args, tangents
    # dx broadcast: y may make the result bigger than x (p % x, p of shape (3, 1))
    return ctx.add(ctx.broadcast(dx, y), ctx.negate(ctx.scale(B.binop(x, ast.FloorDiv(), y), dy)))


@defrule(ast.USub)
def neg_rule(ctx, z, args, tangents, keywords):
    return ctx.negate(tangents[0])


deflinear(ast.UAdd)
defzero(ast.FloorDiv, ast.Not, ast.Invert, ast.BitAnd, ast.BitOr, ast.BitXor)


# -- elementwise functions of one argument ---------------------------------------------------
@dataclass(frozen=True)
class Elementwise:
    """``d f(x) = coef * dx`` (``mul``) or ``dx / coef`` (``div``).

    ``coef`` is Python text over ``x`` (the argument), ``z`` (the result) and ``m`` (the
    module the user called: ``math`` for ``math.sin``, numpy otherwise).
    """

    form: str
    coef: str

    @functools.cached_property  # read at every use of the rule
    def arithmetic_on_x(self) -> bool:
        """``x`` is an operand of an operator in ``coef`` (``2 * x``), not only an argument."""
        return any(
            isinstance(getattr(n, side, None), ast.Name) and getattr(n, side).id == "x"
            for n in ast.walk(ast.parse(self.coef, mode="eval"))
            if isinstance(n, ast.BinOp | ast.UnaryOp)
            for side in ("left", "right", "operand")
        )

    def __call__(self, ctx, z, x, dx, *, module, numpy=True):
        if dx is None:
            return None
        if numpy and self.arithmetic_on_x and B.constant_value(x) is None:
            # numpy takes a list too (np.square([1.0, 2.0])), but Python arithmetic on a
            # list repeats or concatenates it (2 * xs): the factor sees it as an array
            x = B.call(ctx.np_("asarray"), x)
        coef = B.parse_expr(self.coef, x=x, z=z, m=module, np=ctx.np_())
        if self.form == "mul":
            return ctx.scale(coef, dx, full=True)  # coef has x's shape, which is z's
        # numpy's functions divide the numpy way: 1/0 is inf (with a warning), not an error
        return ctx.divide(dx, coef, full=True, numpy=numpy)


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
MATH_NAMES = {
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "abs": "fabs",
}


def _module_rule(rule: Elementwise, module: str) -> Rule:
    def call_rule(ctx, z, args, tangents, keywords):
        return rule(
            ctx, z, args[0], tangents[0], module=ctx.module(module), numpy=module == "numpy"
        )

    call_rule.__doc__ = (
        f"d f(x) = {rule.coef} * dx" if rule.form == "mul" else f"d f(x) = dx / ({rule.coef})"
    )
    return call_rule


def elementwise_functions():
    """``(function, row, module)`` for each row of ``ELEMENTWISE``: its numpy function and
    its ``math`` namesake where there is one (math has no square, reciprocal, positive or
    negative; where the names differ, ``MATH_NAMES`` says). Reverse mode's table uses it too."""
    for name, row in ELEMENTWISE.items():
        if hasattr(np, name):
            yield getattr(np, name), row, "numpy"
        math_name = MATH_NAMES.get(name, name)
        no_math = name in ("square", "reciprocal", "positive", "negative")
        if hasattr(math, math_name) and not no_math:
            yield getattr(math, math_name), row, "math"


for _function, _rule, _module in elementwise_functions():
    RULES[_function] = _module_rule(_rule, _module)


def abs_rule(ctx, z, args, tangents, keywords):
    """``d |x| = sign(x) dx`` (0 at 0) for a real ``x``; ``fmad_rt.real_values`` refuses a
    complex ``x`` when the line runs (its derivative is ``Re(conj(sign(x)) dx)``)."""
    x = B.call(ctx.rt("real_values"), args[0], B.const("abs()"))
    return ctx.scale(B.call(ctx.np_("sign"), x), tangents[0], full=True)


RULES[np.abs] = abs_rule
alias(np.absolute, to=np.abs)
RULES[np.fabs] = _module_rule(ELEMENTWISE["abs"], "numpy")
RULES[builtins.abs] = abs_rule


@defrule(math.log)
def math_log_rule(ctx, z, args, tangents, keywords):
    """``math.log(x)`` and ``math.log(x, base)`` = log(x) / log(base)."""
    x, dx = args[0], tangents[0]
    if len(args) == 1:
        return ctx.divide(dx, x, full=True)
    base, dbase = args[1], tangents[1]
    log_base = B.call(B.attr(ctx.module("math"), "log"), base)
    term_x = ctx.divide(dx, B.binop(x, ast.Mult(), log_base), full=True)
    # d/dbase log(x)/log(base) = -z / (base * log(base))
    term_b = ctx.scale(
        B.neg(B.binop(z, ast.Div(), B.binop(base, ast.Mult(), log_base))), dbase, full=True
    )
    return ctx.add(term_x, term_b)


# -- functions of several arguments ----------------------------------------------------------
def pick_partial(sign: int, first: bool, skips_nan: bool = False) -> Rule:
    """The partial of ``maximum(x, y)`` (sign +1) or ``minimum`` (-1) in ``x`` (first) or
    ``y``: ``c = (1 + sign(x - y)) / 2`` is 1 where x wins, 0 where y wins, 1/2 at a tie,
    so a tie splits the derivative evenly between both sides. ``skips_nan`` (``np.fmax``,
    ``np.fmin``): where one operand is NaN the value is the other one, and so is the
    derivative (where both are, the first)."""
    plus = (sign > 0) == first

    def partial(ctx, z, x, y):
        diff = B.call(ctx.np_("sign"), B.binop(x, ast.Sub(), y))
        if skips_nan:
            diff = B.parse_expr(
                f"np.where(y != y, {float(sign)}, np.where(x != x, {float(-sign)}, d))",
                np=ctx.np_(),
                x=x,
                y=y,
                d=diff,
            )
        return B.parse_expr(f"(1 {'+' if plus else '-'} d) / 2", d=diff)

    return partial


defpartials(np.maximum, partials=(pick_partial(+1, True), pick_partial(+1, False)))
defpartials(np.minimum, partials=(pick_partial(-1, True), pick_partial(-1, False)))
defpartials(np.fmax, partials=(pick_partial(+1, True, True), pick_partial(+1, False, True)))
defpartials(np.fmin, partials=(pick_partial(-1, True, True), pick_partial(-1, False, True)))


@defrule(np.clip)
def clip_rule(ctx, z, args, tangents, keywords):
    """d clip(x, lo, hi) = dx inside [lo, hi] (bounds included), dlo below, dhi above.

    Each mask is a float (``np.where(x < lo, 1.0, 0.0)``), never a boolean: numpy refuses
    ``-mask`` for a boolean array or ``np.bool_``, and a later rule may negate it."""
    # numpy >= 2.1 also names the bounds min= and max=
    lo = argument(args, keywords, 1, "a_min", keywords.get("min"))
    hi = argument(args, keywords, 2, "a_max", keywords.get("max"))
    x = args[0]
    dx, dlo, dhi = (list(tangents) + [None, None])[:3]
    for key, node in keywords.items():
        if key in ("a_min", "a_max", "min", "max") and ctx.is_active(node):
            ctx.refuse(
                f"np.clip() with a bound {key}= that carries a derivative is not supported by "
                "fmad; pass the bounds by position: np.clip(x, lo, hi)"
            )

    def mask(text: str, other: ast.expr | None = None) -> ast.expr:
        out = B.call(
            ctx.np_("where"), B.parse_expr(text, lo=lo, hi=hi, x=x), B.const(1.0), B.const(0.0)
        )
        if other is not None and not is_none(other) and not isinstance(other, ast.Constant):
            # the other bound may broadcast the result beyond x and this bound (hi of shape
            # (2, 1) for x of shape (4,)): the mask takes the result's shape
            out = B.call(ctx.np_("broadcast_to"), out, B.call(ctx.np_("shape"), z))
        return out

    terms, inside = [], []
    both = not is_none(lo) and not is_none(hi)
    # lo > hi makes the result hi (numpy: minimum(maximum(x, lo), hi)), whatever x
    if not is_none(lo):
        inside.append("(lo <= x)")
        terms.append(ctx.scale(mask("(x < lo) & (lo <= hi)" if both else "x < lo", hi), dlo))
    if not is_none(hi):
        inside.append("(x <= hi)")
        terms.append(ctx.scale(mask("(x > hi) | (lo > hi)" if both else "x > hi", lo), dhi))
    if inside:
        terms.append(ctx.scale(mask(" & ".join(inside)), dx))
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
    a = da.expr if da is not None else zero()
    b = db.expr if db is not None else zero()
    return Tangent(B.call(ctx.np_("where"), ctx.expand(cond), a, b), full=False)


defzero(
    builtins.round,
    math.floor,
    math.ceil,
    math.trunc,
    math.isnan,
    math.isinf,
    math.isfinite,
    np.sign,
    np.floor,
    np.ceil,
    np.round,
    np.around,
    np.rint,
    np.trunc,
    np.fix,
    np.isnan,
    np.isinf,
    np.isfinite,
    np.equal,
    np.not_equal,
    np.less,
    np.less_equal,
    np.greater,
    np.greater_equal,
    np.logical_and,
    np.logical_or,
    np.logical_not,
    np.heaviside,
)
if hasattr(np, "round_"):
    defzero(np.round_)
