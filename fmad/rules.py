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
from fmad.resolve import MISSING
from fmad.tangent import Tangent

Rule = Callable[..., Any]
RULES: dict[Any, Rule] = {}

# Functions whose result carries no derivative (integer-valued, shapes, constructors...).
ZERO_DERIVATIVE: set[Any] = set()
# Methods of arrays with no derivative, and attributes that are not values.
ZERO_METHODS = {"argmax", "argmin", "argsort", "nonzero"}
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


def hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def has_zero_derivative(key: Any) -> bool:
    try:
        return key in ZERO_DERIVATIVE
    except TypeError:
        return False


# -- operators -------------------------------------------------------------------------------
@defrule(ast.Add)
def add_rule(ctx, z, x, y, dx, dy):
    lists = (dx is not None and dx.container) or (dy is not None and dy.container)
    maybe = all(isinstance(a, ast.Name) and a.id in ctx.fwd.maybe_lists for a in (x, y))
    if lists or maybe:
        # xs + [w]: lists concatenate, and so do their tangents (zeros for a plain list, the
        # items of a list parameter's array tangent); two names that may both be lists (a
        # parameter and a list display) are checked when the code runs
        parts = [t.expr if t is not None else ast.Constant(None) for t in (dx, dy)]
        call = B.call(ctx.rt("concat_tangent"), parts[0], x, parts[1], y, *_k_list(ctx))
        return Tangent(call, full=lists, container=True)
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

    @property
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


for _name, _rule in ELEMENTWISE.items():
    if hasattr(np, _name):
        RULES[getattr(np, _name)] = _module_rule(_rule, "numpy")
    _mname = MATH_NAMES.get(_name, _name)
    if hasattr(math, _mname) and _name not in ("square", "reciprocal", "positive", "negative"):
        RULES[getattr(math, _mname)] = _module_rule(_rule, "math")
RULES[np.absolute] = RULES[np.fabs] = RULES[np.abs]


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


RULES[builtins.abs] = _module_rule(ELEMENTWISE["abs"], "numpy")


# -- functions of several arguments ----------------------------------------------------------
def _is_none(node) -> bool:
    return node is None or (isinstance(node, ast.Constant) and node.value is None)


def _arg(args, keywords, i, key, default=None):
    if len(args) > i:
        return args[i]
    return keywords.get(key, default)


@defrule(np.power, math.pow, builtins.pow)
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


def _real_attribute(ctx, z, x, t):
    """``x.real``: the real part of the tangent (of complex data times a real parameter)."""
    if t is None:
        return None
    return _tangent(B.call(ctx.np_("real"), t.expr), full=t.full)


def _imag_attribute(ctx, z, x, t):
    if t is None:
        return None
    return _tangent(B.call(ctx.np_("imag"), t.expr), full=t.full)


@defrule(np.clip)
def clip_rule(ctx, z, args, tangents, keywords):
    """d clip(x, lo, hi) = dx inside [lo, hi] (bounds included), dlo below, dhi above.

    Each mask is a float (``np.where(x < lo, 1.0, 0.0)``), never a boolean: numpy refuses
    ``-mask`` for a boolean array or ``np.bool_``, and a later rule may negate it."""
    x, lo, hi = args[0], _arg(args, keywords, 1, "a_min"), _arg(args, keywords, 2, "a_max")
    dx, dlo, dhi = (list(tangents) + [None, None])[:3]

    def mask(text: str) -> ast.expr:
        return B.call(
            ctx.np_("where"), B.parse_expr(text, lo=lo, hi=hi, x=x), B.const(1.0), B.const(0.0)
        )

    terms, inside = [], []
    if not _is_none(lo):
        inside.append("(lo <= x)")
        terms.append(ctx.scale(mask("x < lo"), dlo))
    if not _is_none(hi):
        inside.append("(x <= hi)")
        terms.append(ctx.scale(mask("x > hi"), dhi))
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
    return ctx.where(cond, da, db, z)


def static_value(ctx, node: ast.expr, depth: int = 0) -> Any:
    """The object ``node`` stands for when fmad transforms the function (a constant, a
    global such as ``np.int64``, or a flattened name assigned once from one), else None."""
    if isinstance(node, ast.Constant):
        return node.value
    found = ctx.fwd.scope.lookup(node)
    if found is not MISSING:
        return found
    if isinstance(node, ast.Name) and depth < 8 and ctx.fwd.assign_counts.get(node.id) == 1:
        for s in ast.walk(ctx.fwd.flat):
            if isinstance(s, ast.Assign) and B.stored_names(s.targets[0]) == [node.id]:
                return static_value(ctx, s.value, depth + 1)
    return None


def keeps_derivative(ctx, dtype: ast.expr | None) -> bool:
    """Whether a conversion to ``dtype`` (an argument node; None: unchanged) keeps the
    derivative: a floating or complex type does, an integer or boolean one makes it zero
    (``x.astype(int)`` is a step function). A type fmad cannot see at transform time is
    refused: guessing would be a silent wrong derivative."""
    if dtype is None or _is_none(dtype):
        return True
    obj = static_value(ctx, dtype)
    try:
        kind = np.dtype(obj).kind if obj is not None else "?"  # np.dtype(None) is float64
    except TypeError:
        kind = "?"
    if kind not in "fciub":
        ctx.fwd.refuse(
            f"the dtype '{ast.unparse(dtype)}' of a conversion of a value that carries a "
            "derivative must be known when fmad transforms the function; write the type "
            "itself (float, np.float64, int)"
        )
    return kind in "fc"


@defrule(builtins.float, np.float64)
def identity_rule(ctx, z, args, tangents, keywords):
    return tangents[0] if tangents else None


@defrule(np.asarray, np.asanyarray)
def asarray_rule(ctx, z, args, tangents, keywords):
    dtype = _arg(args, keywords, 1, "dtype")
    if not tangents or not keeps_derivative(ctx, dtype):
        return None
    return tangents[0]


@defrule(builtins.enumerate, builtins.zip, builtins.reversed)
def iteration_rule(ctx, z, args, tangents, keywords):
    """Only a ``for`` header may arrange the iteration of values that carry a derivative."""
    if all(t is None for t in tangents) and not any(
        ctx.fwd.is_active(k, ctx.direction.name) for k in keywords.values()
    ):
        return None
    ctx.fwd.refuse(
        "enumerate(), zip() and reversed() of values that carry a derivative are supported "
        "only directly in a 'for' header, without keywords; write 'for i, x in "
        "enumerate(xs):' or build a list in a loop"
    )
    return None


@defrule(builtins.sum)
def builtin_sum_rule(ctx, z, args, tangents, keywords):
    return ctx.reduce_builtin("sum", z, args, tangents, keywords)


ZERO_DERIVATIVE.update(
    {
        builtins.len,
        builtins.range,
        builtins.int,
        builtins.round,
        builtins.bool,
        builtins.isinstance,
        builtins.type,
        builtins.print,
        math.floor,
        math.ceil,
        math.trunc,
        math.isnan,
        math.isinf,
        math.isfinite,
        math.copysign,
        np.sign,
        np.floor,
        np.ceil,
        np.round,
        np.around,
        np.rint,
        np.trunc,
        np.fix,
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
        np.isnan,
        np.isinf,
        np.isfinite,
        np.nonzero,
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
    }
)
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
    return Tangent(B.subscript(ctx.full(t, x), _tangent_index(ctx, index)), full=True)


def transpose_attribute(ctx, z, x, t):
    if t is None:
        return None
    if not ctx.vectorized:
        return Tangent(B.attr(ctx.full(t, x), "T"), full=True)
    # reverse the value's axes, keep the direction axis last
    return Tangent(
        B.call(ctx.np_("moveaxis"), B.attr(ctx.full(t, x), "T"), B.const(0), B.const(-1)), full=True
    )


ATTRIBUTE_RULES: dict[str, Rule] = {
    "T": transpose_attribute,
    "real": _real_attribute,  # fmad differentiates real-valued code
    "imag": _imag_attribute,
}


def copy_method(ctx, z, x, t, args, tangents, keywords):
    return t


METHOD_RULES: dict[str, Rule] = {"copy": copy_method}


# -- array rules: products, reductions, shapes ---------------------------------------------
def _tangent(expr, full=True):
    return Tangent(expr, full=full)


def _k_list(ctx) -> list[ast.expr]:
    """``[k]`` for a vectorized direction, ``[]`` for a scalar one (an optional argument)."""
    return [B.const(ctx.direction.k)] if ctx.vectorized else []


def _k(ctx) -> ast.expr:
    return B.const(ctx.direction.k) if ctx.vectorized else ast.Constant(None)


def _matmul(ctx, z, x, y, dx, dy, dot=False):
    """``dot``: np.dot, which also takes scalars, so the helpers check the ranks."""
    shape = ctx.direction.shape
    terms = []
    if dot and ((dx is not None and dx.seed) or (dy is not None and dy.seed)):
        # np.dot of a scalar is a product: the identity seed scales instead of folding away
        shape_node = B.tuple_([B.const(n) for n in shape])
        if dx is not None and dx.seed and len(shape) == 1:
            terms.append(_tangent(B.call(ctx.rt("seed_dot"), y, shape_node, B.const(True))))
            dx = None
        if dy is not None and dy.seed and len(shape) in (1, 2):
            terms.append(_tangent(B.call(ctx.rt("seed_dot"), x, shape_node, B.const(False))))
            dy = None
    if dx is not None:
        if dx.seed and len(shape) == 1:
            # d(w @ y) with the identity seed of a vector w: y laid out with k last
            terms.append(_tangent(B.call(ctx.rt("seed_matmul_left"), y)))
        elif not ctx.vectorized and not dot:
            terms.append(_tangent(B.binop(ctx.full(dx, x), ast.MatMult(), y)))
        else:
            terms.append(_tangent(B.call(ctx.rt("matmul_left"), dx.expr, x, y, _k(ctx))))
    if dy is not None:
        if dy.seed and len(shape) == 1:
            # d(X @ w) with the identity seed of a vector w is X itself: nothing to compute
            terms.append(_tangent(x))
        elif dy.seed and len(shape) == 2:
            shape_node = B.tuple_([B.const(n) for n in shape])
            terms.append(_tangent(B.call(ctx.rt("seed_matmul_right"), x, shape_node)))
        elif not ctx.vectorized and not dot:
            terms.append(_tangent(B.binop(x, ast.MatMult(), ctx.full(dy, y))))
        else:
            terms.append(_tangent(B.call(ctx.rt("matmul_right"), x, y, dy.expr, _k(ctx))))
    return ctx.add(*terms)


@defrule(ast.MatMult)
def matmul_rule(ctx, z, x, y, dx, dy):
    return _matmul(ctx, z, x, y, dx, dy)


@defrule(np.matmul)
def matmul_call_rule(ctx, z, args, tangents, keywords):
    return _matmul(ctx, z, args[0], args[1], tangents[0], tangents[1])


@defrule(np.dot)
def dot_rule(ctx, z, args, tangents, keywords):
    return _matmul(ctx, z, args[0], args[1], tangents[0], tangents[1], dot=True)


@defrule(np.inner)
def inner_rule(ctx, z, args, tangents, keywords):
    (a, b), (da, db) = args[:2], tangents[:2]
    terms = []
    if da is not None:
        terms.append(_tangent(B.call(ctx.rt("inner_left"), da.expr, a, b, _k(ctx))))
    if db is not None:
        terms.append(_tangent(B.call(ctx.rt("inner_right"), a, b, db.expr, _k(ctx))))
    return ctx.add(*terms)


@defrule(np.outer)
def outer_rule(ctx, z, args, tangents, keywords):
    (a, b), (da, db) = args[:2], tangents[:2]
    terms = []
    if da is not None:
        terms.append(
            _tangent(B.call(ctx.rt("outer_tangent"), da.expr, a, b, _k(ctx), ast.Constant(True)))
        )
    if db is not None:
        terms.append(
            _tangent(B.call(ctx.rt("outer_tangent"), db.expr, b, a, _k(ctx), ast.Constant(False)))
        )
    return ctx.add(*terms)


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
    scope = ctx.fwd.scope
    if scope.is_local(atom.id):  # flatten named it: ``np_float64 = np.float64``
        values = [
            n.value
            for n in ast.walk(ctx.fwd.flat)
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
        ctx.fwd.refuse(f"np.{func.__name__}() takes at most {len(names)} positional options")
    given = {**dict(zip(names, args[1:], strict=False)), **keywords}
    modelled = REDUCTION_KEYWORDS.get(func, {"axis", "keepdims"})
    for key, value in given.items():
        if _is_none(value) or key in modelled:
            continue
        if key == "dtype" and _floating(_static(ctx, value)):
            continue  # a float result: the derivative is the same (computed in float64)
        ctx.fwd.refuse(
            f"np.{func.__name__}() with {key}= is not supported by fmad on a value that "
            f"carries a derivative; {REDUCTION_ADVICE.get(key, f'drop {key}=')}"
        )
    initial = given.get("initial")
    if initial is not None and ctx.fwd.is_active(initial, ctx.direction.name):
        ctx.fwd.refuse(
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
    kw = {} if _is_none(keepdims) else {"keepdims": keepdims}
    if not _is_none(where):
        kw["where"] = ctx.expand(where)
    if not ctx.vectorized:
        if _is_none(axis) and not kw and dx.product is not None:
            # sum(c * t) is the dot product c @ t: no temporary of the value's size
            coef, base = dx.product
            return _tangent(B.call(ctx.rt(f"{how}_product"), coef, base, x, ast.Constant(None)))
        if _is_none(axis):
            return _tangent(B.call(func, f, **kw))
        return _tangent(B.call(func, f, axis=axis, **kw))
    k = ctx.direction.k
    if _is_none(axis) and not kw:
        if dx.factors is not None:
            # sum(c[..., None] * t) over the value's axes is the product c @ t: no
            # (N, k) temporary (this is where X.T @ r of a hand-written gradient appears)
            coef, t = dx.factors
            return _tangent(B.call(ctx.rt(f"{how}_product"), coef, t, x, B.const(k)))
        flat = B.call(B.attr(f, "reshape"), B.const(-1), B.const(k))
        return _tangent(B.call(func, flat, axis=B.const(0)))
    a = B.constant_value(axis) if not _is_none(axis) else None
    if isinstance(a, int):
        taxis = B.const(a if a >= 0 else a - 1)
    else:
        ndim = B.call(ctx.np_("ndim"), x)
        taxis = B.call(
            ctx.rt("tangent_axis"), axis if axis is not None else ast.Constant(None), ndim, _k(ctx)
        )
    return _tangent(B.call(func, f, axis=taxis, **kw))


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
        return _tangent(B.call(ctx.rt(helper), tangents[0].expr, *middle, axis, keepdims, _k(ctx)))

    return rule


RULES[np.prod] = _helper_reduction(np.prod, "prod_tangent", False)
for _f in (np.max, np.min, np.amax, np.amin):
    RULES[_f] = _helper_reduction(_f, "extreme_tangent", True)


@defrule(np.linalg.norm)
def norm_rule(ctx, z, args, tangents, keywords):
    if len(args) > 1 or keywords:
        return (
            None
            if tangents[0] is None
            else ctx.fwd.refuse(
                "np.linalg.norm with ord= or axis= is not supported by fmad; write the norm out "
                "(np.sqrt(np.sum(x * x)))"
            )
        )
    x, dx = args[0], tangents[0]
    # d|x| = sum(x * dx) / |x|; at x = 0 the sum is 0, and so is the derivative taken (the
    # subgradient 0, as abs has): divide by 1 there instead of by 0
    safe = B.call(ctx.np_("where"), B.parse_expr("z == 0", z=z), B.const(1.0), z)
    return ctx.divide(reduce_tangent(ctx, "sum", x, ctx.scale(x, dx, full=True), None, None), safe)


def _helper_call(helper: str, *extra) -> Rule:
    """A rule that hands the (raw) tangent, the value and options to a runtime helper."""

    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        values = [
            _arg(args, keywords, i, key) or ast.Constant(default)
            for i, (key, default) in enumerate(extra, start=1)
        ]
        return _tangent(B.call(ctx.rt(helper), tangents[0].expr, args[0], *values, _k(ctx)))

    return rule


RULES[np.transpose] = _helper_call("transpose_tangent", ("axes", None))
RULES[np.squeeze] = _helper_call("squeeze_tangent", ("axis", None))
RULES[np.expand_dims] = _helper_call("expand_dims_tangent", ("axis", None))
RULES[np.reshape] = _helper_call("reshape_tangent", ("shape", None))


@defrule(np.ravel)
def ravel_rule(ctx, z, args, tangents, keywords):
    if tangents[0] is None:
        return None
    return _tangent(
        B.call(ctx.rt("reshape_tangent"), tangents[0].expr, args[0], B.const(-1), _k(ctx))
    )


def _join(func) -> Rule:
    def rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        axis = _arg(args, keywords, 1, "axis")
        if axis is None:
            axis = ast.Constant(0) if func is not np.concatenate else ast.Constant(0)
        join = ctx.inject(func, func.__name__)
        return _tangent(
            B.call(ctx.rt("join_tangent"), join, tangents[0].expr, args[0], axis, _k(ctx))
        )

    return rule


for _f in (np.concatenate, np.stack, np.hstack, np.vstack):
    RULES[_f] = _join(_f)


@defrule(np.array)
def array_rule(ctx, z, args, tangents, keywords):
    if tangents[0] is None or not keeps_derivative(ctx, _arg(args, keywords, 1, "dtype")):
        return None
    return _tangent(B.call(ctx.rt("array_tangent"), tangents[0].expr, args[0], _k(ctx)))


# methods of arrays: x.sum(), x.reshape(2, 3), ...
def _method_reduction(how: str) -> Rule:
    def rule(ctx, z, x, dx, args, tangents, keywords):
        if len(args) > 3:  # x.sum(axis, dtype, out): the rest are keyword-only
            ctx.fwd.refuse(f"'.{how}()' takes at most 3 positional arguments")
        return RULES[getattr(np, how)](ctx, z, [x, *args], [dx, *tangents], keywords)

    return rule


def _method_as_function(func) -> Rule:
    def rule(ctx, z, x, dx, args, tangents, keywords):
        return RULES[func](ctx, z, [x, *args], [dx, *tangents], keywords)

    return rule


def reshape_method(ctx, z, x, dx, args, tangents, keywords):
    if dx is None:
        return None
    shape = args[0] if len(args) == 1 else B.tuple_(list(args))
    return _tangent(B.call(ctx.rt("reshape_tangent"), dx.expr, x, shape, _k(ctx)))


def transpose_method(ctx, z, x, dx, args, tangents, keywords):
    if dx is None:
        return None
    axes = ast.Constant(None) if not args else args[0] if len(args) == 1 else B.tuple_(args)
    return _tangent(B.call(ctx.rt("transpose_tangent"), dx.expr, x, axes, _k(ctx)))


def item_method(ctx, z, x, dx, args, tangents, keywords):
    if dx is None:
        return None
    if not ctx.vectorized:
        return _tangent(B.call(B.attr(ctx.full(dx, x), "item"), *args))
    flat = B.call(B.attr(ctx.full(dx, x), "reshape"), B.const(-1), B.const(ctx.direction.k))
    return _tangent(B.subscript(flat, B.const(0)))


def astype_method(ctx, z, x, dx, args, tangents, keywords):
    return dx if keeps_derivative(ctx, _arg(args, keywords, 0, "dtype")) else None


METHOD_RULES.update(
    {
        "sum": _method_reduction("sum"),
        "mean": _method_reduction("mean"),
        "prod": _method_as_function(np.prod),
        "max": _method_as_function(np.max),
        "min": _method_as_function(np.min),
        "dot": _method_as_function(np.dot),
        "clip": _method_as_function(np.clip),
        "squeeze": _method_as_function(np.squeeze),
        "ravel": _method_as_function(np.ravel),
        "flatten": _method_as_function(np.ravel),
        "reshape": reshape_method,
        "transpose": transpose_method,
        "item": item_method,
        "astype": astype_method,
    }
)


# functions whose rule takes the tangent of a list argument as a list of tangents; every
# other function of a list gets it stacked into one array first (fmad_rt.stack_tangents)
LIST_RULES = {
    builtins.sum,
    builtins.min,
    builtins.max,
    builtins.enumerate,
    builtins.zip,
    builtins.reversed,
    np.array,
    np.concatenate,
    np.stack,
    np.hstack,
    np.vstack,
}


def is_numpy(func: Any) -> bool:
    """A numpy function (or ufunc): it takes lists and tuples as arrays."""
    if isinstance(func, np.ufunc):
        return True
    module = getattr(func, "__module__", None) or ""
    return module == "numpy" or module.startswith("numpy.")
