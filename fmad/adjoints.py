"""The transpose rules of reverse mode: for ``z = f(x, y, ...)``, the contribution of the
adjoint ``g`` of ``z`` to the adjoint of each active operand.

``ADJOINTS`` maps the keys of the forward table (:mod:`fmad.rules`: an ``ast`` operator
class, a function object, ``method(name)``, ``attribute(name)``, ``ast.Subscript``) to a
rule ``rule(ctx, g, z, args, keywords, active) -> [(i, expr), ...]``: for each active
operand ``i`` (``active[i]``), an expression of its adjoint contribution, in the operand's
shape. ``ctx`` gives the modules (``ctx.np_``, ``ctx.rev`` for :mod:`fmad.runtime_reverse`)
and refuses (``ctx.refuse``).

Rules written as partial derivatives transpose mechanically: the elementwise table
(``rules.elementwise.ELEMENTWISE``, ``d f(x) = coef * dx``) gives ``g * coef``, and every
``defpartials`` row (``rules.base.PARTIALS``) gives ``unbroadcast(g * partial, x)``. Linear
and structural operations (sums, means, matmul, transposes, reshapes, indexing, ``where``)
have explicit transposes below. A key with a forward rule and no entry here is refused in
reverse mode (the caller says so, with ``mode='forward'`` as the way out).
"""

from __future__ import annotations

import ast
import builtins
import math

import numpy as np

from fmad import build as B
from fmad.rules.base import PARTIALS, attribute, method
from fmad.rules.elementwise import elementwise_functions

ADJOINTS: dict = {}


def defadjoint(*keys):
    def register(rule):
        for key in keys:
            ADJOINTS[key] = rule
        return rule

    return register


def adjoint_for(key):
    try:
        return ADJOINTS.get(key)
    except TypeError:  # an unhashable callable
        return None


def unb(ctx, expr: ast.expr, x: ast.expr, other: ast.expr | None = None) -> ast.expr:
    """``expr`` summed back to the shape of ``x``; nothing to sum when the other operand is
    a number written in the code (``1.0 + e`` has the shape of ``e``)."""
    if isinstance(other, ast.Constant) and type(other.value) in (int, float):
        return expr
    return B.call(ctx.rev("unbroadcast"), expr, x)


def before_unbroadcast(expr: ast.expr, wrap) -> ast.expr:
    """``wrap(expr)``, or inside ``fmad_rev.unbroadcast(e, x)`` ``wrap(e)``: a contribution
    changed before its sum over broadcast axes."""
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "unbroadcast"
        and len(expr.args) == 2
    ):
        return B.call(expr.func, wrap(expr.args[0]), expr.args[1])
    return wrap(expr)


def times(g: ast.expr, coef: ast.expr) -> ast.expr:
    if B.is_const(coef, 1):
        return g
    return B.binop(g, ast.Mult(), coef)


# -- operators -------------------------------------------------------------------------------
@defadjoint(ast.Add)
def add_adjoint(ctx, g, z, args, keywords, active):
    return [(i, unb(ctx, g, args[i], args[1 - i])) for i in (0, 1) if active[i]]


@defadjoint(ast.Sub)
def sub_adjoint(ctx, g, z, args, keywords, active):
    out = []
    if active[0]:
        out.append((0, unb(ctx, g, args[0], args[1])))
    if active[1]:
        out.append((1, unb(ctx, B.neg(g), args[1], args[0])))
    return out


@defadjoint(ast.Div)
def div_adjoint(ctx, g, z, args, keywords, active):
    x, y = args
    out = []
    if active[0]:
        out.append((0, unb(ctx, B.binop(g, ast.Div(), y), x, y)))
    if active[1]:  # d(x/y)/dy = -z / y
        term = B.parse_expr("-(g * z) / y", g=g, z=B.name(z), y=y)
        out.append((1, unb(ctx, term, y, x)))
    return out


@defadjoint(ast.Pow, np.power, math.pow, builtins.pow)
def pow_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 2 or keywords:
        ctx.refuse("pow() with a modulus")
    x, y = args
    out = []
    n = B.constant_value(y)
    if active[0] and n != 0:  # x ** 0 is the constant 1
        if n == 1:
            coef = B.const(1)
        elif n == 2:
            coef = B.binop(B.const(2.0), ast.Mult(), x)
        elif n is not None:
            power = x if n - 1 == 1 else B.binop(x, ast.Pow(), B.const(n - 1))
            coef = B.binop(B.const(float(n) if isinstance(n, int) else n), ast.Mult(), power)
        else:
            coef = B.parse_expr("y * x ** (y - 1)", x=x, y=y)
        out.append((0, unb(ctx, times(g, coef), x, y)))
    if active[1]:
        coef = B.binop(B.name(z), ast.Mult(), B.call(ctx.np_("log"), x))
        out.append((1, unb(ctx, times(g, coef), y, x)))
    return out


@defadjoint(ast.USub)
def neg_adjoint(ctx, g, z, args, keywords, active):
    return [(0, B.neg(g))]


@defadjoint(ast.UAdd, np.copy, method("copy"), np.asarray, np.array)
def identity_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 1 or keywords:
        ctx.refuse("this conversion with options")
    return [(0, g)]


@defadjoint(float)
def float_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 1 or keywords:
        ctx.refuse("float() with options")
    return [(0, unb(ctx, g, args[0]))]  # float(a) of a one-element array


def _product(left: str, right: str):
    def product_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 2 or keywords:
            ctx.refuse("a matrix product with keyword arguments")
        a, b = args
        out = []
        if active[0]:
            out.append((0, B.call(ctx.rev(left), g, a, b)))
        if active[1]:
            out.append((1, B.call(ctx.rev(right), g, a, b)))
        return out

    return product_adjoint


ADJOINTS[ast.MatMult] = ADJOINTS[np.matmul] = _product("matmul_left", "matmul_right")
ADJOINTS[np.dot] = _product("dot_left", "dot_right")


# -- partials: elementwise functions and defpartials rows ------------------------------------
def _elementwise(row, module: str):
    def elementwise_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 1 or keywords:
            ctx.refuse("this function with several arguments or keywords")
        coef = B.parse_expr(row.coef, x=args[0], z=B.name(z), m=ctx.np_(), np=ctx.np_())
        if module == "math":
            coef = B.parse_expr(row.coef, x=args[0], z=B.name(z), m=ctx.module("math"))
        if row.form == "mul":
            return [(0, times(g, coef))]
        if module == "math":  # floats: the primal raised where this would divide by zero
            return [(0, B.binop(g, ast.Div(), coef))]
        return [(0, B.call(ctx.np_("divide"), g, coef))]

    return elementwise_adjoint


for _function, _row, _module in elementwise_functions():
    ADJOINTS[_function] = _elementwise(_row, _module)


def _from_partials(partials, broadcast: bool):
    def partials_adjoint(ctx, g, z, args, keywords, active):
        if len(args) != 2 or keywords:
            ctx.refuse("this function with more than two arguments or keywords")
        x, y = args
        return [
            (i, unb(ctx, times(g, partials[i](ctx, B.name(z), x, y)), args[i], args[1 - i]))
            for i in (0, 1)
            if active[i] and i < len(partials)  # no partial: no derivative (np.copysign's y)
        ]

    return partials_adjoint


for _key, (_partials, _broadcast) in PARTIALS.items():
    ADJOINTS[_key] = _from_partials(_partials, _broadcast)


# -- reductions ------------------------------------------------------------------------------
def _reduction(helper: str, is_method: bool):
    def reduction_adjoint(ctx, g, z, args, keywords, active):
        extra = set(keywords) - {"axis", "keepdims"}
        if extra or len(args) > 2:
            ctx.refuse(f"this reduction with {', '.join(sorted(extra)) or 'a dtype'}")
        axis = args[1] if len(args) > 1 else keywords.get("axis", B.const(None))
        keepdims = keywords.get("keepdims", B.const(False))
        return [(0, B.call(ctx.rev(helper), g, args[0], axis, keepdims))]

    return reduction_adjoint


ADJOINTS[np.sum] = _reduction("sum_adjoint", False)
ADJOINTS[np.mean] = _reduction("mean_adjoint", False)
ADJOINTS[method("sum")] = _reduction("sum_adjoint", True)
ADJOINTS[method("mean")] = _reduction("mean_adjoint", True)


def _extreme(g_ctx, g, z, args, keywords, active):
    extra = set(keywords) - {"axis", "keepdims"}
    if extra or len(args) > 2:
        g_ctx.refuse(f"np.max/np.min with {', '.join(sorted(extra)) or 'out'}")
    axis = args[1] if len(args) > 1 else keywords.get("axis", B.const(None))
    keepdims = keywords.get("keepdims", B.const(False))
    return [(0, B.call(g_ctx.rev("extreme_adjoint"), g, args[0], B.name(z), axis, keepdims))]


for _key in (np.max, np.min, np.amax, np.amin, method("max"), method("min")):
    ADJOINTS[_key] = _extreme


# -- shapes and indexing ---------------------------------------------------------------------
@defadjoint(attribute("T"))
def transpose_attribute_adjoint(ctx, g, z, args, keywords, active):
    return [(0, B.call(ctx.rev("transpose_adjoint"), g))]


@defadjoint(np.transpose)
def transpose_adjoint(ctx, g, z, args, keywords, active):
    if keywords or len(args) > 2:
        ctx.refuse("np.transpose with keywords")
    axes = args[1] if len(args) > 1 else B.const(None)
    return [(0, B.call(ctx.rev("transpose_adjoint"), g, axes))]


@defadjoint(np.reshape, method("reshape"), np.ravel, method("ravel"), method("flatten"))
def reshape_adjoint(ctx, g, z, args, keywords, active):
    if keywords:
        ctx.refuse("a reshape with keywords (order=...)")
    return [(0, B.call(ctx.rev("reshape_adjoint"), g, args[0]))]


@defadjoint(ast.Subscript)
def index_adjoint(ctx, g, z, args, keywords, active):
    if active[1]:
        ctx.refuse("an index computed from a differentiated value")
    return [(0, B.call(ctx.rev("index_adjoint"), g, args[0], index_value(args[1])))]


def index_value(node: ast.expr) -> ast.expr:
    """The index object a subscript's slice syntax stands for (``1:n`` is ``slice(1, n)``)."""
    if isinstance(node, ast.Slice):
        parts = [node.lower, node.upper, node.step]
        return B.call(B.name("slice"), *(p if p is not None else B.const(None) for p in parts))
    if isinstance(node, ast.Tuple):
        return B.tuple_([index_value(e) for e in node.elts])
    return node


@defadjoint(np.where)
def where_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 3 or keywords:
        ctx.refuse("np.where with one argument")
    if active[0]:
        ctx.refuse("np.where with a differentiated condition")
    cond = args[0]
    return [
        (i, B.call(ctx.rev("where_adjoint"), g, cond, args[i], B.const(i == 1)))
        for i in (1, 2)
        if active[i]
    ]
