"""Reverse mode's transposes of the last rows of the rule table: ``np.gradient`` (a list of
arrays for several axes), ``np.cross`` with its axis options, ``np.average`` with weights
that carry a derivative, ``np.nan_to_num``, and ``np.angle``/``np.real_if_close`` of real
values. Their helpers are :mod:`fmad.runtime_multi`'s (``fmad_multi``).

``np.nan_to_num(x)`` passes the adjoint where ``x`` is finite and 0 where it replaced a nan
or an infinity. The line that made ``x`` (elementwise, read by nothing else) multiplies
that 0 by its partial, infinite there (``x * p`` with ``x`` infinite, ``np.log(p)`` at 0):
:func:`finite_masks` marks it, and reverse mode wraps each of its contributions in
``fmad_multi.finite_only``, 0 where ``x`` is not finite (forward mode's tangent is 0 there).
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import (
    adjoints_helpers,  # noqa: F401 - the rows these replace first
    runtime_multi,
)
from fmad import build as B
from fmad.adjoints import ADJOINTS, before_unbroadcast, defadjoint
from fmad.adjoints_arrays import _bind, const, only_first
from fmad.adjoints_elementwise import tr
from fmad.rules.base import PARTIALS, is_none
from fmad.rules.elementwise import elementwise_functions

NONE = ast.Constant(None)


def multi(ctx, attr: str) -> ast.expr:
    """``fmad_multi.attr``: a helper of :mod:`fmad.runtime_multi` in the printed code."""
    return B.attr(B.name(ctx.unit.inject(runtime_multi, "fmad_multi")), attr)


@defadjoint(np.gradient)
def gradient_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.gradient")
    return [(0, B.call(multi(ctx, "gradient_adjoint"), g, B.name(z), *args, **keywords))]


@defadjoint(np.cross)
def cross_adjoint(ctx, g, z, args, keywords, active):
    given = _bind(ctx, args[1:], keywords, ("axisa", "axisb", "axisc", "axis"), "np.cross")
    if len(args) < 2:
        ctx.refuse("np.cross with its second vector as a keyword")
    axes = [given.get(k, B.const(-1)) for k in ("axisa", "axisb", "axisc")]
    helper = multi(ctx, "cross_adjoint")
    a, b = args[:2]
    return [
        (i, B.call(helper, g, a, b, *axes, given.get("axis", NONE), B.const(i == 0)))
        for i in (0, 1)
        if active[i]
    ]


def average_adjoint(ctx, g, z, args, keywords, active):
    """``a`` as before (fmad_tr's), ``weights`` (a keyword or the third argument) by
    forward mode's helper's Jacobian."""
    names = ("axis", "weights", "returned", "keepdims")
    given = _bind(ctx, args, keywords, names, "np.average")
    if const(given.get("returned")):
        ctx.refuse("np.average with returned=True")
    axis, weights = given.get("axis", NONE), given.get("weights", NONE)
    keepdims = given.get("keepdims", B.const(False))
    for i, a in enumerate(active):
        if a and i not in (0, 2):
            ctx.refuse("np.average with an axis= or keepdims= that carries a derivative")
    for key, node in keywords.items():
        if key != "weights" and any(n in ctx.active for n in B.names(node)):
            ctx.refuse(f"np.average with a {key}= that carries a derivative")
    out = []
    if active[0] and is_none(weights):
        out.append((0, B.call(ctx.rev("mean_adjoint"), g, args[0], axis, keepdims)))
    elif active[0]:
        call = B.call(tr(ctx, "average_adjoint"), g, args[0], weights, axis, keepdims)
        out.append((0, call))
    if isinstance(weights, ast.Name) and weights.id in ctx.active:
        where = "weights" if "weights" in keywords else 2
        helper = multi(ctx, "average_weights_adjoint")
        out.append((where, B.call(helper, g, args[0], weights, axis, keepdims)))
    elif not is_none(weights) and any(n in ctx.active for n in B.names(weights)):
        ctx.refuse("np.average with weights computed in the call")
    return out


average_adjoint.keyword_adjoints = True  # type: ignore[attr-defined]
ADJOINTS[np.average] = average_adjoint


def _real_only(what: str, constant: bool):
    def real_only_adjoint(ctx, g, z, args, keywords, active):
        only_first(ctx, active, what)
        helper = multi(ctx, "real_only_adjoint")
        return [(0, B.call(helper, g, args[0], B.const(what), B.const(constant)))]

    return real_only_adjoint


# np.angle of a real value is constant (0 or pi, or their degrees); np.real_if_close of one
# is itself; a complex value is refused when the code runs (reverse mode is for real code)
ADJOINTS.setdefault(np.angle, _real_only("np.angle", True))
ADJOINTS.setdefault(np.real_if_close, _real_only("np.real_if_close", False))


@defadjoint(np.nan_to_num)
def nan_to_num_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.nan_to_num")
    given = _bind(ctx, args, keywords, ("copy", "nan", "posinf", "neginf"), "np.nan_to_num")
    if "copy" in given and const(given["copy"]) is not True:
        ctx.refuse("np.nan_to_num with copy= other than True")
    return [(0, B.call(multi(ctx, "nan_to_num_adjoint"), g, args[0]))]


ELEMENTWISE = {f for f, _, _ in elementwise_functions()} | set(PARTIALS)
OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)


def finite_masks(primal: list[ast.stmt], function_of, active: set) -> dict[str, list[str]]:
    """The names ``x`` of ``np.nan_to_num(x)`` made by an elementwise line and read by
    nothing else: ``x -> its operands with a derivative`` (whose contributions reverse mode
    wraps in ``fmad_multi.finite_only``)."""
    reads: dict[str, int] = {}
    made: dict[str, ast.expr] = {}
    for s in B.statements(primal):
        own = [getattr(s, f, None) for f in ("value", "test", "iter", "msg")]
        if not isinstance(s, ast.Assign | ast.Expr | ast.If | ast.While | ast.For | ast.Return):
            own = [s]
        for n in [n for node in own if node is not None for n in B.names(node, ast.Load)]:
            reads[n] = reads.get(n, 0) + 1
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
            name = s.targets[0].id
            made[name] = None if name in made else s.value  # bound once only
    out = {}
    for value in made.values():
        if not (isinstance(value, ast.Call) and _hashable_in(function_of(value), {np.nan_to_num})):
            continue
        x = value.args[0] if value.args else None
        if not isinstance(x, ast.Name) or reads.get(x.id) != 1 or made.get(x.id) is None:
            continue
        source = made[x.id]
        if isinstance(source, ast.BinOp) and isinstance(source.op, OPERATORS):
            operands = [source.left, source.right]
        elif isinstance(source, ast.UnaryOp) and isinstance(source.op, ast.USub):
            operands = [source.operand]
        elif isinstance(source, ast.Call) and _elementwise(function_of(source)):
            operands = list(source.args)
        else:
            continue
        out[x.id] = [o.id for o in operands if isinstance(o, ast.Name) and o.id in active]
    return out


def _elementwise(function) -> bool:
    """An elementwise function: each contribution has the result's shape, or is summed back
    by ``fmad_rev.unbroadcast`` (``finite_only`` refuses any other when the code runs)."""
    return _hashable_in(function, ELEMENTWISE)


def _hashable_in(obj, table) -> bool:
    try:
        return obj in table
    except TypeError:
        return False


def finite_only(ctx, expr: ast.expr, z: str, operands: list[str]) -> ast.expr:
    """``expr``, a contribution of the line that made ``z``, 0 where ``z`` is not finite;
    inside ``fmad_rev.unbroadcast(e, x)`` (before the sum over broadcast axes)."""
    reads = [B.name(o) for o in operands if o not in ctx.wrt]

    def wrap(e: ast.expr) -> ast.expr:
        return B.call(multi(ctx, "finite_only"), e, B.name(z), *reads)

    return before_unbroadcast(expr, wrap)
