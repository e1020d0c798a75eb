"""The transposes of reverse mode for the functions that return several arrays
(``fmad_multi`` in the printed code): ``np.linalg.slogdet``, ``eigh``, ``qr``, ``svd`` and
``lstsq``, ``np.gradient`` of several axes, and forward mode's helpers of generated code that
return a tuple of tangents; and the last rows of the rule table (``np.cross`` with its axes,
``np.average`` with weights that carry a derivative, ``np.nan_to_num``).

The adjoint ``g`` of such a result is a list, one adjoint per item
(:class:`fmad.runtime_forms.Adjoints` or ``Item``): ``ZERO`` for an item nothing read. Each
helper returns the adjoint of the matrix (and of the right-hand side of ``lstsq``) in its
shape. The formulas are the transposes of forward mode's (:mod:`fmad.runtime_linalg`),
term by term, so both modes agree to rounding; where forward mode has no derivative (a
singular matrix, repeated eigenvalues or singular values, a deficient rank) these raise the
same :class:`~fmad.errors.DerivativeError`. None of them changes its arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmad import runtime_linalg as la
from fmad.runtime_arrays import average_tangent
from fmad.runtime_forms import ZERO
from fmad.runtime_linear import linear_adjoint
from fmad.runtime_reverse import Refused, unbroadcast
from fmad.runtime_transpose import dense_adjoint


def _mT(a: Any) -> Any:
    return np.swapaxes(a, -1, -2)


def parts(g: Any, n: int) -> list:
    """The ``n`` items of the list adjoint ``g``, None for an item nothing reached."""
    out = []
    for i in range(n):
        gi = g[i] if g is not ZERO else ZERO
        if isinstance(gi, np.ndarray | float | int) and np.iscomplexobj(gi):
            raise Refused("a complex value on the way to the output")
        out.append(None if gi is ZERO else gi)
    return out


def _solve(a: Any, b: Any, what: str) -> Any:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise la.no_derivative(
            f"the derivative of {what} does not exist (or fmad does not model it) at a "
            "singular matrix"
        ) from None


def _right_solve(x: Any, r: Any, what: str) -> Any:
    """``x @ inv(r).T``."""
    return _mT(_solve(r, _mT(x), what))


# -- slogdet ---------------------------------------------------------------------------------
def slogdet_adjoint(g: Any, a: Any) -> Any:
    """``(sign, logabsdet) = slogdet(a)``: ``inv(a).T * g_logabsdet`` (the sign is constant
    where the derivative exists)."""
    _, glog = parts(g, 2)
    if glog is None:
        return np.zeros(np.shape(a))
    eye = np.broadcast_to(np.eye(np.shape(a)[-1]), np.shape(a))
    inv_t = _solve(_mT(a), eye, "np.linalg.slogdet")
    return inv_t * np.asarray(glog, dtype=float)[..., None, None]


# -- eigh ------------------------------------------------------------------------------------
def eigh_adjoint(g: Any, a: Any, result: Any, lower: bool) -> Any:
    """``(w, V) = eigh(a)`` reads one triangle of ``a`` (``lower``): with
    ``M = diag(g_w) + F * (V^T g_V)`` (``F`` of forward mode, :func:`la.eigh_gaps`), the
    adjoint of the symmetric matrix is ``S = V M V^T``, and of ``a`` its triangle plus the
    transpose of the other one."""
    w, v = result
    gw, gv = parts(g, 2)
    f = la.eigh_gaps(w)  # forward mode raises here too, whatever is read
    m = np.zeros(np.shape(v))
    if gw is not None:
        m = m + np.broadcast_to(gw, np.shape(w))[..., None] * np.eye(np.shape(w)[-1])
    if gv is not None:
        m = m + f * (_mT(v) @ gv)
    s = v @ m @ _mT(v)
    if lower:
        return np.tril(s) + np.tril(_mT(s), -1)
    return np.triu(s) + np.triu(_mT(s), 1)


# -- qr --------------------------------------------------------------------------------------
def _qr_square(gq: Any, gr: Any, q: Any, r: Any) -> Any:
    """The adjoint of ``a`` for forward mode's ``la.qr_square``: with ``X = dA R^-1``,
    ``C = Q^T X``, ``dQ = Q (Omega - C) + X``, ``dR = (C - Omega) R`` and
    ``Omega = L - L^T`` (``L`` the strict lower triangle of ``C``)."""
    p = _mT(q) @ gq - gr @ _mT(r)
    gc = np.tril(p - _mT(p), -1) - p
    gx = gq + q @ gc
    return _right_solve(gx, r, "np.linalg.qr")


def qr_adjoint(g: Any, a: Any, result: Any, mode: str) -> Any:
    """``(Q, R) = qr(a)`` (``mode`` 'reduced'; 'r': ``result`` and ``g`` are R's). A wide
    ``a = [a1 | a2]``: ``R2 = Q^T a2``, so ``a2`` gets ``Q g_R2`` and ``Q`` gets
    ``a2 g_R2^T`` more."""
    if mode == "r":
        q, r = np.linalg.qr(a)
        gq, gr = None, g
    else:
        q, r = result
        gq, gr = parts(g, 2)
    gq = np.zeros(np.shape(q)) if gq is None else np.broadcast_to(gq, np.shape(q))
    gr = np.zeros(np.shape(r)) if gr is None else np.broadcast_to(gr, np.shape(r))
    m, n = np.shape(q)[-2], np.shape(r)[-1]
    if n <= m:
        return _qr_square(gq, gr, q, r)
    a2 = np.asarray(a)[..., m:]
    gr2 = gr[..., m:]
    first = _qr_square(gq + a2 @ _mT(gr2), gr[..., :m], q, r[..., :m])
    return np.concatenate([first, q @ gr2], axis=-1)


# -- svd -------------------------------------------------------------------------------------
def svd_adjoint(g: Any, result: Any) -> Any:
    """``(U, S, Vh) = svd(a)``: the transpose of forward mode's ``la.svd_tangent``, with
    ``J = F * (U^T g_U)`` and ``K = F * (V^T g_V)``: ``U (diag(g_S) + J S + J^T S +
    S (K + K^T)) V^T``, plus the parts outside the span of ``U`` (tall) or ``V`` (wide)."""
    u, s, vh = result
    gu, gs, gvh = parts(g, 3)
    f = la.svd_gaps(u, s, vh)
    v = _mT(vh)
    m, n = np.shape(u)[-2], np.shape(vh)[-1]
    gp = np.zeros(np.shape(s) + np.shape(s)[-1:])
    if gs is not None:
        gp = gp + np.broadcast_to(gs, np.shape(s))[..., None] * np.eye(np.shape(s)[-1])
    out = 0.0
    if gu is not None:
        j = f * (_mT(u) @ gu)
        gp = gp + (j + _mT(j)) * s[..., None, :]
        if m > n:
            out = (gu - u @ (_mT(u) @ gu)) / s[..., None, :] @ vh
    if gvh is not None:
        gv = _mT(gvh)
        k = f * (_mT(v) @ gv)
        gp = gp + s[..., :, None] * (k + _mT(k))
        if n > m:
            out = out + u @ (_mT(gv - v @ (vh @ gv)) / s[..., :, None])
    return u @ gp @ vh + out


# -- lstsq -----------------------------------------------------------------------------------
def lstsq_adjoint(g: Any, a: Any, b: Any, result: Any, left: bool) -> Any:
    """``(x, residuals, rank, s) = lstsq(a, b)`` at a matrix of full rank: the transpose of
    forward mode's ``la.lstsq_tangent`` (``x = pinv(a) @ b``, the residuals' tangent
    ``2 sum(r * (db - da @ x))``, ``s`` the singular values); ``left``: the adjoint of
    ``a``, else of ``b``."""
    x, res, rank, s = result
    gx, gres, _, gs = parts(g, 4)
    m, n = np.shape(a)
    if rank < min(m, n):
        raise la.no_derivative(
            "np.linalg.pinv and np.linalg.lstsq have no derivative at a matrix of deficient "
            "rank (their value jumps there)"
        )
    z = np.linalg.pinv(a)
    bm = np.reshape(b, (m, -1))
    xm = np.reshape(x, (n, -1))
    gxm = None if gx is None else np.reshape(np.broadcast_to(gx, np.shape(x)), (n, -1))
    gresid = None  # the adjoint of the residual vector b - a @ x
    if gres is not None and np.size(res):
        gresid = 2.0 * (bm - a @ xm) * np.broadcast_to(gres, np.shape(res))
    if not left:
        out = np.zeros(np.shape(bm))
        if gxm is not None:
            out = out + _mT(z) @ gxm
        if gresid is not None:
            out = out + gresid
        return np.reshape(out, np.shape(b))
    out = np.zeros((m, n))
    if gxm is not None:
        w = gxm @ _mT(bm)  # the adjoint of pinv(a)
        e = np.eye(m) - a @ z
        f = np.eye(n) - z @ a
        out = out - _mT(z) @ w @ _mT(z) + e @ _mT(w) @ z @ _mT(z) + _mT(z) @ z @ _mT(w) @ f
    if gresid is not None:
        out = out - gresid @ _mT(xm)
    if gs is not None:
        u, _, vh = np.linalg.svd(a, full_matrices=False)
        out = out + (u * np.broadcast_to(gs, np.shape(s))) @ vh
    return out


# -- forward mode's helpers that return a tuple ----------------------------------------------
def helper_parts_adjoint(
    g: Any, slot: int, slots: tuple, kpos: int, helper: Any, count: int, /, *args: Any
) -> Any:
    """The adjoint of ``args[slot]`` in ``helper(*args)`` (a helper of generated code linear
    in its tangent arguments at ``slots``, the others read as zero) that returns a tuple of
    ``count`` tangents: each item's Jacobian contracted with its part of ``g``."""
    if args[kpos] is not None:
        raise Refused(f"{helper.__name__}() with several directions (k={args[kpos]})")
    total = np.zeros(np.shape(args[slot]))
    for i, gi in enumerate(parts(g, count)):
        if gi is None:
            continue

        def tangent(dx: Any, k: int, i: int = i) -> Any:
            new = [None if j in slots else a for j, a in enumerate(args)]
            new[slot], new[kpos] = dx, k
            out = helper(*new)
            if not isinstance(out, tuple | list) or len(out) != count:
                raise Refused(f"{helper.__name__}() returning other than {count} values")
            return out[i]

        total = total + dense_adjoint(gi, args[slot], tangent)
    return total if np.ndim(args[slot]) else float(total)


# -- np.gradient of several axes: a list --------------------------------------------------------
def gradient_adjoint(g: Any, z: Any, f: Any, /, *varargs: Any, **keywords: Any) -> Any:
    """The adjoint of ``f`` in ``z = np.gradient(f, *varargs, **keywords)``, linear in ``f``:
    column by column (``fmad_lin.linear_adjoint``), item by item when ``z`` is a list."""
    if not isinstance(z, list | tuple):
        return linear_adjoint(g, np.gradient, f, *varargs, **keywords)
    total = np.zeros(np.shape(f))
    for i, gi in enumerate(parts(g, len(z))):
        if gi is not None:

            def item(u: Any, *a: Any, i: int = i, **k: Any) -> Any:
                return np.gradient(u, *a, **k)[i]

            total = total + linear_adjoint(gi, item, f, *varargs, **keywords)
    return total if np.ndim(f) else float(total)


# -- the last rule rows --------------------------------------------------------------------------
def cross_adjoint(
    g: Any, a: Any, b: Any, axisa: int, axisb: int, axisc: int, axis: Any, left: bool
) -> Any:
    """The adjoint of ``a`` (``left``) or ``b`` in ``np.cross(a, b, axisa, axisb, axisc,
    axis)``: with the vectors on the last axis and 2-vectors given a zero third component,
    ``<g, a x b>`` is ``<b x g, a>`` and ``<g x a, b>``."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a3, b3 = np.moveaxis(np.asarray(a), axisa, -1), np.moveaxis(np.asarray(b), axisb, -1)
    na, nb = a3.shape[-1], b3.shape[-1]

    def three(v: Any) -> Any:
        return v if v.shape[-1] == 3 else np.concatenate([v, np.zeros(v.shape[:-1] + (1,))], -1)

    g = np.asarray(g, dtype=float)
    if na == 2 and nb == 2:  # numpy gives the third component alone
        g3 = np.stack([np.zeros_like(g), np.zeros_like(g), g], axis=-1)
    else:
        g3 = np.moveaxis(g, axisc, -1)
    if left:
        out = np.cross(three(b3), g3)[..., :na]
        return np.moveaxis(unbroadcast(out, a3), -1, axisa)
    out = np.cross(g3, three(a3))[..., :nb]
    return np.moveaxis(unbroadcast(out, b3), -1, axisb)


def average_weights_adjoint(g: Any, a: Any, w: Any, axis: Any, keepdims: bool) -> Any:
    """The adjoint of the weights ``w`` in ``np.average(a, axis, weights=w)``
    (``(a - average) / sum(w)``): forward mode's helper's Jacobian."""

    def tangent(dw: Any, k: int) -> Any:
        return average_tangent(None, dw, a, w, axis, keepdims, k)

    return dense_adjoint(g, w, tangent)


def nan_to_num_adjoint(g: Any, x: Any) -> Any:
    """The adjoint of ``x`` in ``np.nan_to_num(x)``: ``g`` where ``x`` is finite, 0 where a
    constant replaced a nan or an infinity (forward mode's)."""
    return np.where(np.isfinite(x), g, 0.0)


def finite_only(contribution: Any, z: Any, *operands: Any) -> Any:
    """A contribution of the line ``z = f(*operands)`` (elementwise, read only by
    ``np.nan_to_num``) where ``z`` is finite, 0 where ``nan_to_num`` replaced it: its adjoint
    is 0 there, and must not meet an infinite partial (0 * inf is nan; forward mode's
    tangent is 0). An operand computed from a parameter that is itself not finite there
    would carry the nan further up: refused."""
    finite = np.isfinite(z)
    if np.shape(contribution) != np.shape(finite):  # fmad.adjoints_rows chose the line
        raise Refused("np.nan_to_num of a value whose line's adjoint is not elementwise")
    for v in operands:
        if not np.all(np.isfinite(np.broadcast_to(v, np.shape(finite))) | finite):
            raise Refused(
                "np.nan_to_num of a value whose operands are not finite either (reverse mode "
                "would multiply a zero adjoint by an infinity)"
            )
    return np.where(finite, contribution, 0.0)


def real_only_adjoint(g: Any, x: Any, what: str, constant: bool) -> Any:
    """The adjoint of a real ``x`` in ``np.angle(x)`` (``constant``: zeros) or
    ``np.real_if_close(x)`` (``g``); a complex ``x`` is refused."""
    if np.iscomplexobj(x):
        raise Refused(f"{what} of a complex value")
    if not constant:
        return g
    return np.zeros(np.shape(x)) if np.ndim(x) else 0.0
