"""Transposes that reuse forward mode's helpers or a permutation: ``np.prod``, the norms of
``np.linalg`` with options, ``eigvalsh``/``cholesky``/``pinv``, ``np.sort``/``np.partition``,
``np.diff``/``np.ediff1d``, ``scipy.special``'s ``softmax``/``log_softmax``/``logsumexp``,
``.real``/``.imag``, and the rows of the helpers of generated code
(``rules.base.HELPER_ROWS``: linear in their tangents, transposed by their Jacobian).
"""

from __future__ import annotations

import ast
import inspect

import numpy as np

from fmad import adjoints_arrays, runtime, runtime_linalg, runtime_linear
from fmad import build as B
from fmad.adjoints import ADJOINTS, defadjoint, unb
from fmad.adjoints_arrays import _bind, const, dense, only_first
from fmad.adjoints_elementwise import no_keywords, tr, without_float_dtype
from fmad.rules.base import HELPER_ROWS, attribute, is_none, method

NONE = ast.Constant(None)


@defadjoint(np.prod, method("prod"))
def prod_adjoint(ctx, g, z, args, keywords, active):
    """Forward mode's helper (a product without division: zeros need no special case)."""
    only_first(ctx, active, "np.prod")
    names = ("axis", "dtype", "out", "keepdims", "initial", "where")
    given = _bind(ctx, args, keywords, names, "np.prod")
    if not all(is_none(given.get(k)) for k in ("dtype", "out", "initial", "where")):
        ctx.refuse("np.prod with dtype=, out=, initial= or where=")
    axis = given.get("axis", NONE)
    keepdims = given.get("keepdims", B.const(False))
    x = args[0]
    return [(0, dense(ctx, g, x, runtime.prod_tangent, "prod_tangent", x, axis, keepdims))]


def _norm(kind: str, default_ord):
    def norm_adjoint(ctx, g, z, args, keywords, active):
        only_first(ctx, active, f"np.linalg.{kind}_norm")
        if len(args) > 1 or set(keywords) - {"ord", "axis", "keepdims"}:
            ctx.refuse(f"np.linalg.{kind}_norm with these arguments")
        order = keywords.get("ord", B.const(default_ord))
        axis = keywords.get("axis", NONE)
        keepdims = keywords.get("keepdims", B.const(False))
        helper = tr(ctx, "norm_adjoint")
        return [(0, B.call(helper, g, args[0], order, axis, keepdims, B.const(kind)))]

    return norm_adjoint


if hasattr(np.linalg, "vector_norm"):
    ADJOINTS[np.linalg.vector_norm] = _norm("vector", 2)
    ADJOINTS[np.linalg.matrix_norm] = _norm("matrix", "fro")


@defadjoint(np.linalg.eigvalsh)
def eigvalsh_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.linalg.eigvalsh")
    uplo = _bind(ctx, args, keywords, ("UPLO",), "np.linalg.eigvalsh").get("UPLO", B.const("L"))
    if const(uplo) not in ("L", "U", "l", "u"):
        ctx.refuse("np.linalg.eigvalsh with a UPLO= that is not a constant 'L' or 'U'")
    lower = B.const(const(uplo) in ("L", "l"))
    helper = runtime_linalg.eigvalsh_tangent
    return [(0, dense(ctx, g, args[0], helper, "eigvalsh_tangent", args[0], lower))]


@defadjoint(np.linalg.cholesky)
def cholesky_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 1 or set(keywords) - {"upper"}:
        ctx.refuse("np.linalg.cholesky with these arguments")
    upper = keywords.get("upper", B.const(False))
    if const(upper) not in (True, False):
        ctx.refuse("np.linalg.cholesky with an upper= that is not a constant")
    helper = runtime_linalg.cholesky_tangent
    return [(0, dense(ctx, g, args[0], helper, "cholesky_tangent", B.name(z), upper))]


@defadjoint(np.linalg.pinv)
def pinv_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 1 or keywords:
        ctx.refuse("np.linalg.pinv with rcond=, hermitian= or other arguments")
    helper = runtime_linalg.pinv_tangent
    return [(0, dense(ctx, g, args[0], helper, "pinv_tangent", args[0], B.name(z)))]


# -- permutations and differences ------------------------------------------------------------
@defadjoint(np.sort)
def sort_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.sort")
    given = _bind(ctx, args, keywords, ("axis", "kind", "order", "stable"), "np.sort")
    if not is_none(given.get("order")):
        ctx.refuse("np.sort with order=")
    axis = given.get("axis", B.const(-1))
    return [(0, B.call(tr(ctx, "sort_adjoint"), g, args[0], axis))]


@defadjoint(np.partition)
def partition_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.partition")
    given = _bind(ctx, args, keywords, ("kth", "axis", "kind", "order"), "np.partition")
    if not is_none(given.get("order")):
        ctx.refuse("np.partition with order=")
    axis = given.get("axis", B.const(-1))
    return [(0, B.call(tr(ctx, "partition_adjoint"), g, args[0], B.name(z), axis))]


@defadjoint(np.diff)
def diff_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.diff")
    given = _bind(ctx, args, keywords, ("n", "axis", "prepend", "append"), "np.diff")
    n, axis = given.get("n", B.const(1)), given.get("axis", B.const(-1))
    pre, post = given.get("prepend", NONE), given.get("append", NONE)
    return [(0, B.call(tr(ctx, "diff_adjoint"), g, args[0], n, axis, pre, post))]


@defadjoint(np.ediff1d)
def ediff1d_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.ediff1d")
    given = _bind(ctx, args, keywords, ("to_end", "to_begin"), "np.ediff1d")
    begin, end = given.get("to_begin", NONE), given.get("to_end", NONE)
    return [(0, B.call(tr(ctx, "ediff1d_adjoint"), g, args[0], begin, end))]


# -- statistics, parts -----------------------------------------------------------------------
def _part(imag: bool):
    def part_adjoint(ctx, g, z, args, keywords, active):
        no_keywords(ctx, keywords, "np.real/np.imag")
        return [(0, B.call(tr(ctx, "real_adjoint"), g, args[0], B.const(imag)))]

    return part_adjoint


ADJOINTS[attribute("real")] = ADJOINTS[np.real] = _part(False)
ADJOINTS[attribute("imag")] = ADJOINTS[np.imag] = _part(True)


# -- the helpers of generated code -----------------------------------------------------------
def _helper_row(helper, slots: tuple[int, ...], fixed):
    kpos = list(inspect.signature(helper).parameters).index("k")

    def helper_adjoint(ctx, g, z, args, keywords, active):
        if keywords:
            ctx.refuse(f"{helper.__name__}() with keyword arguments")
        for i, a in enumerate(active):
            if a and i not in slots and (fixed is None or i in fixed):
                ctx.refuse(f"{helper.__name__}() with a derivative through its argument {i}")
        if len(args) <= kpos:
            ctx.refuse(f"{helper.__name__}() without its direction count k")
        name = ctx.inject(helper, helper.__name__)
        call = tr(ctx, "helper_adjoint")
        spots = B.const(tuple(slots))
        return [
            (i, B.call(call, g, B.const(i), spots, B.const(kpos), name, *args))
            for i in slots
            if i < len(args) and active[i]
        ]

    return helper_adjoint


for _helper, (_slots, _fixed) in HELPER_ROWS.items():
    ADJOINTS[_helper] = _helper_row(_helper, _slots, _fixed)


for _key in (np.cumsum, method("cumsum"), np.var, np.std, method("var"), method("std")):
    ADJOINTS[_key] = without_float_dtype(ADJOINTS[_key])


# -- products through forward mode's helpers, and small elementwise rows ---------------------
def _through_helper(ctx, g, helper, x, *args) -> ast.expr:
    """The adjoint of ``x`` by the Jacobian of ``helper(dx, *args)`` (``dx`` of the shape of
    ``x``; ``k`` found by name among its parameters)."""
    names = list(inspect.signature(helper).parameters)
    call = [x, *args]
    call.insert(names.index("k"), NONE)
    return B.call(
        tr(ctx, "helper_adjoint"),
        g,
        B.const(0),
        B.const((0,)),
        B.const(names.index("k")),
        ctx.inject(helper, helper.__name__),
        *call,
    )


@defadjoint(np.kron)
def kron_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.kron")
    helper = runtime_linalg.kron_tangent
    return [
        (i, _through_helper(ctx, g, helper, args[i], args[i], args[1 - i], B.const(i == 0)))
        for i in (0, 1)
        if active[i]
    ]


@defadjoint(np.vdot)
def vdot_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.vdot")
    helper = runtime_linalg.vdot_tangent
    return [(i, _through_helper(ctx, g, helper, args[i], args[1 - i])) for i in (0, 1) if active[i]]


@defadjoint(np.ldexp)
def ldexp_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.ldexp")
    only_first(ctx, active, "np.ldexp (an integer exponent)")
    scale = B.call(ctx.np_("ldexp"), B.const(1.0), args[1])
    return [(0, unb(ctx, B.binop(g, ast.Mult(), scale), args[0], args[1]))]


@defadjoint(np.polyval)
def polyval_adjoint(ctx, g, z, args, keywords, active):
    """``p``: the powers of ``x`` summed against ``g``; ``x``: ``g`` times the derivative's
    polynomial (forward mode's)."""
    no_keywords(ctx, keywords, "np.polyval")
    p, x = args
    out = []
    if active[0]:
        out.append((0, B.call(tr(ctx, "polyval_coefficients_adjoint"), g, p, x)))
    if active[1]:
        der = B.parse_expr(
            "np.polyval((np.asarray(p)[:-1].T * np.arange(len(p) - 1, 0, -1)).T, x)",
            p=p,
            x=x,
            np=ctx.np_(),
        )
        out.append((1, unb(ctx, B.binop(g, ast.Mult(), der), x)))
    return out


# -- linear functions, column by column; np.dot in all its forms -----------------------------
def lin(ctx, attr: str) -> ast.expr:
    return B.attr(B.name(ctx.unit.inject(runtime_linear, "fmad_lin")), attr)


def _linear(func: str):
    def linear_adjoint(ctx, g, z, args, keywords, active):
        only_first(ctx, active, f"np.{func}")
        f = ctx.np_(func)
        return [(0, B.call(lin(ctx, "linear_adjoint"), g, f, *args, **keywords))]

    return linear_adjoint


if hasattr(np, "trapezoid"):
    ADJOINTS[np.trapezoid] = _linear("trapezoid")
_pad_by_labels = ADJOINTS[np.pad]


@defadjoint(np.pad)
def pad_adjoint(ctx, g, z, args, keywords, active):
    """An odd reflection is linear but not a copy: column by column; the rest by labels."""
    odd = keywords.get("reflect_type")
    if odd is not None and const(odd) == "odd":
        return _linear("pad")(ctx, g, z, args, keywords, active)
    return _pad_by_labels(ctx, g, z, args, keywords, active)


def dot_adjoint(ctx, g, z, args, keywords, active):
    if len(args) != 2 or keywords:
        ctx.refuse("np.dot with out=")
    a, b = args
    helper = lin(ctx, "dot_adjoint")
    return [(i, B.call(helper, g, a, b, B.const(i == 0))) for i in (0, 1) if active[i]]


ADJOINTS[np.dot] = ADJOINTS[method("dot")] = dot_adjoint


@defadjoint(np.einsum)
def einsum_adjoint(ctx, g, z, args, keywords, active):
    """Subscripts with ``...`` written out when the code runs (``fmad_lin``), then einsums."""
    rule = adjoints_arrays.einsum_adjoint
    return [
        (i, B.call(lin(ctx, "einsum_ellipsis_adjoint"), *call.args[:3], *args[1:]))
        for i, call in rule(ctx, g, z, args, keywords, active)
    ]
