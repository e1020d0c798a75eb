"""Rules of ``np.linalg``: solve, inv, det, slogdet, matrix_power, cholesky, eigh,
eigvalsh, qr, svd, svdvals, pinv, lstsq, and the norms with ``ord=`` and
``axis=`` (``np.linalg.norm``, ``vector_norm``, ``matrix_norm``).

Each tangent is one call of a helper of :mod:`fmad.runtime_linalg` (the formulas are in
its docstrings), with the tangents made full. Stacks of matrices work as numpy's own
functions do. A function returning a tuple (``slogdet``, ``eigh``, ``qr``, ``svd``,
``lstsq``) gets a tuple of tangents, which unpacking (``sign, logdet =
np.linalg.slogdet(a)``) and indexing (``np.linalg.eigh(a)[0]``) take apart, as do the
named fields (``.eigenvalues``, ``.eigenvectors``, ``.sign``, ``.logabsdet``, ``.Q``,
``.R``, ``.U``, ``.S``, ``.Vh``).

Where there is no derivative the helper raises ``fmad.DerivativeError`` at the user's line:
inv, solve, slogdet, cholesky and qr at a singular matrix, eigh's eigenvectors where two
eigenvalues are equal, svd's singular vectors where two singular values are equal (or, for
a non-square matrix, one is 0, or ``full_matrices=True``), pinv and lstsq at a matrix of
deficient rank, a p-norm with p < 1 at a zero entry. ``det`` is differentiable everywhere
(Jacobi's formula with the adjugate, computed by the SVD). At a kink of a norm (a zero
vector, ties for the maximum entry, row or column sum, or for the largest singular value)
tied entries share the derivative evenly and a zero vector gets 0, as with ``np.max`` and
``abs``. The eigenvalues (and singular values) where two are equal are not differentiable
as sorted functions; fmad gives the derivative along the vectors LAPACK returned there (so
does the nuclear norm at a singular value 0, a kink like ``abs`` at 0).
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_linalg as la
from fmad.rules.base import RULES, argument, attribute, defrule, k_arg
from fmad.rules.base import static_value as static
from fmad.rules.contractions import _no_keywords, helper, helper_rule
from fmad.tangent import Tangent

NONE = ast.Constant(None)


def _full(ctx, t, x) -> ast.expr:
    return NONE if t is None else ctx.full(t, x)


def _tuple(*elts: ast.expr) -> Tangent:
    return Tangent(B.tuple_(list(elts)), full=True, container=True)


def _constant(ctx, label: str, node, allowed: tuple, default):
    """The value of a flag argument, which must be a known constant among ``allowed``."""
    if node is None:
        return default
    value = static(ctx, node)
    if value not in allowed:
        ctx.refuse(
            f"{label} must be one of {', '.join(map(repr, allowed))} when the matrix carries "
            "a derivative; write one of them as a constant"
        )
    return value


def _inactive(ctx, label: str, tangents, first: int, keywords=None) -> None:
    active_keyword = any(ctx.is_active(v) for v in (keywords or {}).values())
    if active_keyword or any(t is not None for t in tangents[first:]):
        ctx.refuse(
            f"{label}: only the matrix (and right-hand side) may carry a derivative; compute "
            "the other arguments from constants"
        )


@defrule(np.linalg.inv)
def inv_rule(ctx, z, args, tangents, keywords):
    if tangents[0] is None:
        return None
    return helper(ctx, "inv_tangent", ctx.full(tangents[0], args[0]), z, k_arg(ctx))


@defrule(np.linalg.solve)
def solve_rule(ctx, z, args, tangents, keywords):
    (a, b), (da, db) = args[:2], tangents[:2]
    if da is None and db is None:
        return None
    return helper(ctx, "solve_tangent", _full(ctx, da, a), _full(ctx, db, b), a, b, z, k_arg(ctx))


@defrule(np.linalg.det)
def det_rule(ctx, z, args, tangents, keywords):
    if tangents[0] is None:
        return None
    return helper(ctx, "det_tangent", ctx.full(tangents[0], args[0]), args[0], k_arg(ctx))


@defrule(np.linalg.slogdet)
def slogdet_rule(ctx, z, args, tangents, keywords):
    """``(sign, logabsdet)``: the sign is constant where the derivative exists."""
    if tangents[0] is None:
        return None
    a = args[0]
    logdet = helper(ctx, "logdet_tangent", ctx.full(tangents[0], a), a, k_arg(ctx))
    return _tuple(B.const(0.0), logdet.expr)


@defrule(np.linalg.matrix_power)
def matrix_power_rule(ctx, z, args, tangents, keywords):
    _inactive(ctx, "np.linalg.matrix_power", tangents, 1, keywords)
    if tangents[0] is None:
        return None
    a = args[0]
    n = argument(args, keywords, 1, "n")
    return helper(ctx, "matrix_power_tangent", ctx.full(tangents[0], a), a, n, k_arg(ctx))


@defrule(np.linalg.cholesky)
def cholesky_rule(ctx, z, args, tangents, keywords):
    """numpy reads the lower triangle (the upper one with ``upper=True``): the tangent is
    that of the symmetric matrix made of it."""
    _no_keywords(ctx, "np.linalg.cholesky()", keywords, ("upper",))
    if tangents[0] is None:
        return None
    upper = _constant(ctx, "cholesky's upper=", keywords.get("upper"), (False, True), False)
    da = ctx.full(tangents[0], args[0])
    return helper(ctx, "cholesky_tangent", da, z, B.const(upper), k_arg(ctx))


def _uplo(ctx, label: str, args, keywords) -> bool:
    """Whether the lower triangle is read."""
    node = argument(args, keywords, 1, "UPLO")
    return _constant(ctx, f"{label}'s UPLO=", node, ("L", "U", "l", "u"), "L") in ("L", "l")


@defrule(np.linalg.eigh)
def eigh_rule(ctx, z, args, tangents, keywords):
    """``(eigenvalues, eigenvectors)``; the eigenvectors' tangent exists where the
    eigenvalues are distinct (else a DerivativeError when the code runs)."""
    _inactive(ctx, "np.linalg.eigh", tangents, 1, keywords)
    if tangents[0] is None:
        return None
    lower = B.const(_uplo(ctx, "np.linalg.eigh", args, keywords))
    w, v = B.subscript(z, B.const(0)), B.subscript(z, B.const(1))
    da = ctx.full(tangents[0], args[0])
    call = helper(ctx, "eigh_tangent", da, w, v, lower, k_arg(ctx), B.const(True))
    return Tangent(call.expr, full=True, container=True)


@defrule(np.linalg.eigvalsh)
def eigvalsh_rule(ctx, z, args, tangents, keywords):
    _inactive(ctx, "np.linalg.eigvalsh", tangents, 1, keywords)
    if tangents[0] is None:
        return None
    lower = B.const(_uplo(ctx, "np.linalg.eigvalsh", args, keywords))
    da = ctx.full(tangents[0], args[0])
    return helper(ctx, "eigvalsh_tangent", da, args[0], lower, k_arg(ctx))


@defrule(np.linalg.qr)
def qr_rule(ctx, z, args, tangents, keywords):
    """``mode='reduced'`` (``(Q, R)``) and ``'r'`` (``R``)."""
    _inactive(ctx, "np.linalg.qr", tangents, 1, keywords)
    if tangents[0] is None:
        return None
    node = argument(args, keywords, 1, "mode")
    mode = _constant(ctx, "np.linalg.qr's mode=", node, ("reduced", "r"), "reduced")
    da = ctx.full(tangents[0], args[0])
    call = helper(ctx, "qr_tangent", da, args[0], z, k_arg(ctx), B.const(mode))
    return Tangent(call.expr, full=True, container=mode == "reduced")


@defrule(np.linalg.svd)
def svd_rule(ctx, z, args, tangents, keywords):
    """``(U, S, Vh)`` where the singular values are distinct (else a DerivativeError when
    the code runs), or the singular values alone with ``compute_uv=False``."""
    _inactive(ctx, "np.linalg.svd", tangents, 1, keywords)
    if tangents[0] is None:
        return None
    uv = argument(args, keywords, 2, "compute_uv")
    herm = argument(args, keywords, 3, "hermitian")
    _constant(ctx, "np.linalg.svd's hermitian=", herm, (False,), False)
    compute_uv = _constant(ctx, "np.linalg.svd's compute_uv=", uv, (False, True), True)
    da = ctx.full(tangents[0], args[0])
    if not compute_uv:
        return helper(ctx, "svdvals_tangent", da, args[0], k_arg(ctx))
    call = helper(ctx, "svd_tangent", da, z, k_arg(ctx))
    return Tangent(call.expr, full=True, container=True)


if hasattr(np.linalg, "svdvals"):

    @defrule(np.linalg.svdvals)
    def svdvals_rule(ctx, z, args, tangents, keywords):
        if tangents[0] is None:
            return None
        da = ctx.full(tangents[0], args[0])
        return helper(ctx, "svdvals_tangent", da, args[0], k_arg(ctx))


@defrule(np.linalg.pinv)
def pinv_rule(ctx, z, args, tangents, keywords):
    _inactive(ctx, "np.linalg.pinv", tangents, 1, keywords)
    if any(ctx.is_active(v) for v in keywords.values()):
        ctx.refuse("np.linalg.pinv: only the matrix may carry a derivative; pass constants")
    if tangents[0] is None:
        return None
    herm = argument(args, keywords, 2, "hermitian")
    _constant(ctx, "np.linalg.pinv's hermitian=", herm, (False,), False)
    da = ctx.full(tangents[0], args[0])
    return helper(ctx, "pinv_tangent", da, args[0], z, k_arg(ctx))


@defrule(np.linalg.lstsq)
def lstsq_rule(ctx, z, args, tangents, keywords):
    """``(x, residuals, rank, s)`` where the matrix has full rank."""
    _inactive(ctx, "np.linalg.lstsq", tangents, 2, keywords)
    (a, b), (da, db) = args[:2], tangents[:2]
    if da is None and db is None:
        return None
    call = helper(ctx, "lstsq_tangent", _full(ctx, da, a), _full(ctx, db, b), a, b, z, k_arg(ctx))
    return Tangent(call.expr, full=True, container=True)


# -- norms -----------------------------------------------------------------------------------
def norm_call(ctx, x, dx, order, axis, keepdims, kind: str) -> Tangent:
    return helper(
        ctx, "norm_tangent", ctx.full(dx, x), x, order, axis, keepdims, k_arg(ctx), B.const(kind)
    )


if hasattr(np.linalg, "vector_norm"):

    @defrule(np.linalg.vector_norm)
    def vector_norm_rule(ctx, z, args, tangents, keywords):
        _inactive(ctx, "np.linalg.vector_norm", tangents, 1, keywords)
        if tangents[0] is None:
            return None
        order = keywords.get("ord", B.const(2))
        axis = keywords.get("axis", NONE)
        keepdims = keywords.get("keepdims", B.const(False))
        return norm_call(ctx, args[0], tangents[0], order, axis, keepdims, "vector")

    @defrule(np.linalg.matrix_norm)
    def matrix_norm_rule(ctx, z, args, tangents, keywords):
        _inactive(ctx, "np.linalg.matrix_norm", tangents, 1, keywords)
        if tangents[0] is None:
            return None
        order = keywords.get("ord", B.const("fro"))
        keepdims = keywords.get("keepdims", B.const(False))
        return norm_call(ctx, args[0], tangents[0], order, NONE, keepdims, "matrix")


# the named fields of the results of eigh, slogdet, qr and svd
RESULT_FIELDS = {
    "eigenvalues": 0,
    "eigenvectors": 1,
    "sign": 0,
    "logabsdet": 1,
    "Q": 0,
    "R": 1,
    "U": 0,
    "S": 1,
    "Vh": 2,
}


def _field(name: str, index: int):
    def rule(ctx, z, args, tangents, keywords):
        t = tangents[0]
        if t is None:
            return None
        if not t.container:
            ctx.refuse(
                f"fmad reads '.{name}' only of the result of np.linalg.eigh, slogdet, qr or svd "
                f"that it knows is one; index it instead (result[{index}])"
            )
        return Tangent(B.subscript(ctx.full(t, args[0]), B.const(index)))

    rule.__doc__ = f"d result.{name}: item {index} of the tuple of tangents"
    return rule


for _name, _index in RESULT_FIELDS.items():
    RULES[attribute(_name)] = _field(_name, _index)

for _helper, _slots in (
    (la.inv_tangent, (0,)),
    (la.solve_tangent, (0, 1)),
    (la.det_tangent, (0,)),
    (la.logdet_tangent, (0,)),
    (la.matrix_power_tangent, (0,)),
    (la.cholesky_tangent, (0,)),
    (la.eigh_tangent, (0,)),
    (la.eigvalsh_tangent, (0,)),
    (la.qr_tangent, (0,)),
    (la.svdvals_tangent, (0,)),
    (la.svd_tangent, (0,)),
    (la.pinv_tangent, (0,)),
    (la.lstsq_tangent, (0, 1)),
    (la.norm_tangent, (0,)),
):
    helper_rule(_helper, _slots)
