"""Tangents of contractions and matrix decompositions, called by generated code.

Each helper is plain numpy. ``k`` is the number of directions of a vectorized (array)
parameter, whose tangents carry a trailing axis of length ``k``; ``k=None`` means a scalar
parameter (a tangent has its value's shape). The tangents passed in are full (the rules
broadcast them first). Inside, the direction axis is moved to the front, where numpy's
stacked linear algebra treats it as one more batch axis, and moved back at the end.

Where a derivative does not exist (an inverse of a singular matrix, eigenvectors of repeated
eigenvalues, a rank-deficient pseudo-inverse) the helper raises ``fmad.DerivativeError``
instead of returning infinities or an arbitrary number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmad.errors import DerivativeError


def no_derivative(message: str) -> DerivativeError:
    """The error a helper raises where the derivative does not exist; the generated code's
    exception handling (fmad/trace.py) puts the user's file and line in front of it."""
    error = DerivativeError(message)
    error.unlocated = True
    return error


def _front(t: Any, k: int | None) -> Any:
    return t if k is None else np.moveaxis(t, -1, 0)


def _back(t: Any, k: int | None) -> Any:
    return t if k is None else np.moveaxis(t, 0, -1)


def _mT(a: Any) -> Any:
    return np.swapaxes(a, -1, -2)


def _solve(a: Any, b: Any, what: str) -> Any:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise no_derivative(
            f"the derivative of {what} does not exist (or fmad does not model it) at a "
            "singular matrix"
        ) from None


# -- contractions ----------------------------------------------------------------------------
def tensordot_tangent(dx: Any, x: Any, y: Any, axes: Any, k: int | None, left: bool) -> Any:
    """Tangent of ``np.tensordot(x, y, axes)`` (``left``) or ``np.tensordot(y, x, axes)``
    from ``dx``, the tangent of ``x``."""
    a, b = (x, y) if left else (y, x)
    if isinstance(axes, int | np.integer):
        n = int(axes)
        ax = (list(range(np.ndim(a) - n, np.ndim(a))), list(range(n)))
    else:
        ax = tuple([int(i) for i in (s if isinstance(s, list | tuple) else [s])] for s in axes)
    ax = tuple([i % max(np.ndim(v), 1) for i in s] for s, v in zip(ax, (a, b), strict=True))
    if left:
        out = np.tensordot(dx, y, ax)
        if k is not None:  # the k axis comes after a's free axes
            out = np.moveaxis(out, np.ndim(x) - len(ax[0]), -1)
        return out
    return np.tensordot(y, dx, ax)  # the k axis is already last


def kron_tangent(dx: Any, x: Any, y: Any, k: int | None, left: bool) -> Any:
    """Tangent of ``np.kron(x, y)`` (``left``) or ``np.kron(y, x)`` from ``dx``."""
    n = max(np.ndim(x), np.ndim(y))
    shape = (1,) * (n - np.ndim(x)) + np.shape(x)
    dx = np.reshape(dx, shape if k is None else shape + (k,))
    y = np.reshape(y, (1,) * (n - np.ndim(y)) + np.shape(y))
    if k is None:
        return np.kron(dx, y) if left else np.kron(y, dx)
    dx = np.moveaxis(dx, -1, 0)
    out = np.kron(dx, y[None]) if left else np.kron(y[None], dx)
    return np.moveaxis(out, 0, -1)


def vdot_tangent(dx: Any, y: Any, k: int | None) -> Any:
    """Tangent of ``np.vdot(x, y)`` (or ``np.vdot(y, x)``) of real arrays from ``dx``."""
    if k is None:
        return np.vdot(dx, y)
    return np.ravel(y) @ np.reshape(dx, (-1, k))


# -- inverse, solve, determinants ------------------------------------------------------------
def inv_tangent(da: Any, z: Any, k: int | None) -> Any:
    """Tangent of ``z = inv(a)``: ``-z @ da @ z``."""
    return _back(-(z @ _front(da, k) @ z), k)


def _k_front(t: Any, k: int | None, ndim: int) -> Any:
    """``_front`` with ones inserted after the k axis up to ``ndim + 1`` axes, so that the k
    axis stays in front of every batch axis numpy broadcasts."""
    t = _front(t, k)
    pad = ndim + (k is not None) - np.ndim(t)
    if k is None or pad <= 0:
        return t
    return np.reshape(t, np.shape(t)[:1] + (1,) * pad + np.shape(t)[1:])


def solve_tangent(da: Any, db: Any, a: Any, b: Any, x: Any, k: int | None) -> Any:
    """Tangent of ``x = solve(a, b)``: ``solve(a, db - da @ x)`` (``None``: no tangent)."""
    vector = np.ndim(b) == 1  # numpy >= 2: b is a vector only when it is 1-d
    xm = np.asarray(x)[..., None] if vector else np.asarray(x)
    ndim = max(np.ndim(a), xm.ndim)
    rhs = 0.0
    if db is not None:
        rhs = _k_front(db[..., None, :] if vector and k is not None else db, k, ndim)
        if vector and k is None:
            rhs = rhs[..., None]
    if da is not None:
        rhs = rhs - _k_front(da, k, ndim) @ xm
    out = _solve(a, rhs, "np.linalg.solve")
    out = np.broadcast_to(out, ((k,) if k is not None else ()) + xm.shape)
    return _back(out[..., 0] if vector else out, k)


def adjugate(a: Any) -> Any:
    """The adjugate of (a stack of) square matrices, by the SVD: defined where ``a`` is
    singular too (there ``det(a) * inv(a)`` is not)."""
    u, s, vh = np.linalg.svd(a)
    n = s.shape[-1]
    ones = np.ones(s.shape[:-1] + (1,))
    left = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = left * right  # product of every singular value but the i-th
    sign = np.linalg.det(u) * np.linalg.det(vh)
    adj = (_mT(vh) * others[..., None, :]) @ _mT(u)
    return adj * sign[..., None, None] if n else adj


def det_tangent(da: Any, a: Any, k: int | None) -> Any:
    """Tangent of ``det(a)``: ``trace(adj(a) @ da)`` (Jacobi's formula)."""
    adj = _mT(adjugate(a))
    return _back(np.sum(adj * _front(da, k), axis=(-2, -1)), k)


def logdet_tangent(da: Any, a: Any, k: int | None) -> Any:
    """Tangent of ``slogdet(a).logabsdet``: ``trace(solve(a, da))``."""
    x = _solve(a, _front(da, k), "np.linalg.slogdet")
    return _back(np.trace(x, axis1=-2, axis2=-1), k)


def matrix_power_tangent(da: Any, a: Any, n: int, k: int | None) -> Any:
    """Tangent of ``matrix_power(a, n)``: ``sum_i a^i @ da @ a^(n-1-i)``; a negative ``n``
    is a power of the inverse."""
    da = _front(da, k)
    if n < 0:
        a = _solve(a, np.broadcast_to(np.eye(np.shape(a)[-1]), np.shape(a)), "matrix_power")
        da = -(a @ da @ a)
        n = -n
    if n == 0:
        return _back(np.zeros_like(da), k)
    powers = [np.broadcast_to(np.eye(np.shape(a)[-1]), np.shape(a))]
    for _ in range(n - 1):
        powers.append(powers[-1] @ a)
    out = sum(powers[i] @ da @ powers[n - 1 - i] for i in range(n))
    return _back(out, k)


# -- symmetric and triangular decompositions -------------------------------------------------
def symmetric_part(da: Any, lower: bool, k: int | None) -> Any:
    """The tangent of the symmetric matrix LAPACK reads from one triangle of ``a``."""
    da = _front(da, k)
    tri = np.tril(da) if lower else np.triu(da)
    strict = np.tril(da, -1) if lower else np.triu(da, 1)
    return tri + _mT(strict)


def cholesky_tangent(da: Any, l: Any, upper: bool, k: int | None) -> Any:  # noqa: E741
    """Tangent of ``cholesky(a)``: ``L @ phi(L^-1 dA L^-T)``, ``phi`` the lower triangle
    with the diagonal halved (``l`` is the upper factor when ``upper``)."""
    da = symmetric_part(da, not upper, k)
    low = _mT(l) if upper else l
    x = _solve(low, _mT(_solve(low, da, "np.linalg.cholesky")), "np.linalg.cholesky")
    phi = np.tril(x, -1) + 0.5 * (np.tril(x) - np.tril(x, -1))
    dl = low @ phi
    return _back(_mT(dl) if upper else dl, k)


def eigh_tangent(da: Any, w: Any, v: Any, lower: bool, k: int | None, vectors: bool) -> Any:
    """Tangent of ``eigh(a)``: the eigenvalues' (``diag(V^T dA V)``) and, with ``vectors``,
    the tuple of it and the eigenvectors' (``V (F * V^T dA V)``, ``F_ij = 1 / (w_j - w_i)``),
    which exists only where the eigenvalues are distinct."""
    m = _mT(v) @ symmetric_part(da, lower, k) @ v
    dw = _back(np.diagonal(m, axis1=-2, axis2=-1), k)
    if not vectors:
        return dw
    return dw, _back(v @ (eigh_gaps(w) * m), k)


def eigh_gaps(w: Any) -> Any:
    """``F_ij = 1 / (w_j - w_i)`` off the diagonal, 0 on it; a DerivativeError where two
    eigenvalues are equal (the eigenvectors have no derivative there)."""
    w = np.asarray(w)
    gap = w[..., None, :] - w[..., :, None]
    off = ~np.eye(np.shape(w)[-1], dtype=bool)
    if np.any(gap[..., off] == 0):
        raise no_derivative(
            "the derivative of the eigenvectors of np.linalg.eigh does not exist where two "
            "eigenvalues are equal; use the eigenvalues only (np.linalg.eigvalsh)"
        )
    return np.where(off, 1.0 / np.where(off, gap, 1.0), 0.0)


def eigvalsh_tangent(da: Any, a: Any, lower: bool, k: int | None) -> Any:
    """Tangent of ``eigvalsh(a)``: ``diag(V^T dA V)``, the eigenvectors ``V`` of ``a``.
    Where two eigenvalues are equal it is the derivative along LAPACK's eigenvectors (the
    sorted eigenvalues have no derivative there)."""
    w, v = np.linalg.eigh(a, UPLO="L" if lower else "U")
    return eigh_tangent(da, w, v, lower, k, False)


def qr_tangent(da: Any, a: Any, result: Any, k: int | None, mode: str) -> Any:
    """Tangent of ``result = qr(a)`` (``mode`` 'reduced', or 'r': ``result`` is R), from
    R's inverse; a wide ``a`` is split into its square left block and the rest
    (``R2 = Q^T a2``). It exists where the square block has full rank."""
    q, r = np.linalg.qr(a) if mode == "r" else result
    da = _front(da, k)
    m, n = np.shape(q)[-2], np.shape(r)[-1]
    if n > m:
        dq, dr1 = qr_square(da[..., :m], q, r[..., :m])
        dr = np.concatenate([dr1, _mT(dq) @ (q @ r[..., m:]) + _mT(q) @ da[..., m:]], axis=-1)
    else:
        dq, dr = qr_square(da, q, r)
    return _back(dr, k) if mode == "r" else (_back(dq, k), _back(dr, k))


def qr_square(da: Any, q: Any, r: Any) -> tuple[Any, Any]:
    """``(dQ, dR)`` of a reduced QR with a square, invertible ``R``."""
    da_rinv = _mT(_solve(_mT(r), _mT(da), "np.linalg.qr"))  # da @ inv(r)
    c = _mT(q) @ da_rinv
    low = np.tril(c, -1)
    omega = low - _mT(low)
    return q @ (omega - c) + da_rinv, (c - omega) @ r


# -- singular values, norms, pseudo-inverse --------------------------------------------------
def svdvals_tangent(da: Any, a: Any, k: int | None) -> Any:
    """Tangent of the singular values of ``a``: ``diag(U^T dA V)``."""
    u, _, vh = np.linalg.svd(a, full_matrices=False)
    return _back(np.einsum("...ji,...jk,...ik->...i", u, _front(da, k), vh), k)


def svd_tangent(da: Any, result: Any, k: int | None) -> Any:
    """Tangent of ``(U, S, Vh) = svd(a)``, ``dP = U^T dA V``: ``dS = diag(dP)``,
    ``dU = U (F * (dP S + S dP^T)) + (I - U U^T) dA V / S``,
    ``dV = V (F * (S dP + dP^T S)) + (I - V V^T) dA^T U / S``, ``F_ij = 1 / (s_j^2 - s_i^2)``.
    It exists where the singular values are distinct (and nonzero for a non-square ``a``)
    and the singular vectors are unique (``full_matrices=False``, or a square ``a``)."""
    u, s, vh = result
    m, n = np.shape(u)[-2], np.shape(vh)[-1]
    f = svd_gaps(u, s, vh)
    v = _mT(vh)
    da = _front(da, k)
    dp = _mT(u) @ da @ v
    ds = np.diagonal(dp, axis1=-2, axis2=-1)
    dss = dp * s[..., None, :]  # dP S
    sds = s[..., :, None] * dp  # S dP
    du = u @ (f * (dss + _mT(dss)))
    dv = v @ (f * (sds + _mT(sds)))
    if m > n:
        du = du + (da - u @ (_mT(u) @ da)) @ v / s[..., None, :]
    if n > m:
        dat = _mT(da)
        dv = dv + (dat - v @ (vh @ dat)) @ u / s[..., None, :]
    return _back(du, k), _back(ds, k), _back(_mT(dv), k)


def svd_gaps(u: Any, s: Any, vh: Any) -> Any:
    """``F_ij = 1 / (s_j^2 - s_i^2)`` off the diagonal, 0 on it; a DerivativeError where
    the singular vectors have no derivative (see :func:`svd_tangent`)."""
    m, n, r = np.shape(u)[-2], np.shape(vh)[-1], np.shape(s)[-1]
    if np.shape(u)[-1] != r or np.shape(vh)[-2] != r:
        raise no_derivative(
            "np.linalg.svd with full_matrices=True of a non-square matrix has no derivative "
            "(the extra singular vectors are not unique); pass full_matrices=False"
        )
    s2 = s * s
    gap = s2[..., None, :] - s2[..., :, None]
    off = ~np.eye(r, dtype=bool)
    if np.any(gap[..., off] == 0) or (m != n and np.any(s == 0)):
        raise no_derivative(
            "the derivative of np.linalg.svd's singular vectors does not exist where two "
            "singular values are equal (or one is 0); use the singular values only "
            "(compute_uv=False)"
        )
    return np.where(off, 1.0 / np.where(off, gap, 1.0), 0.0)


def spectral_tangent(da: Any, a: Any, smallest: bool, k: int | None) -> Any:
    """Tangent of the largest (or smallest) singular value of ``a``; tied ones share it."""
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    pick = s.min(axis=-1) if smallest else s.max(axis=-1)
    mask = (s == pick[..., None]).astype(float)
    mask = mask / np.sum(mask, axis=-1, keepdims=True)
    ds = np.einsum("...ji,...jk,...ik->...i", u, _front(da, k), vh)
    return _back(np.sum(mask * ds, axis=-1), k)


def _rank_error() -> DerivativeError:
    return no_derivative(
        "np.linalg.pinv and np.linalg.lstsq have no derivative at a matrix of deficient rank "
        "(their value jumps there)"
    )


def _pinv_front(da: Any, a: Any, z: Any) -> Any:
    """Tangent of ``z = pinv(a)`` at a matrix of full rank (``da`` with k in front)."""
    dat = _mT(da)
    eye_m = np.eye(np.shape(a)[-2])
    eye_n = np.eye(np.shape(a)[-1])
    zt = _mT(z)
    return -(z @ da @ z) + z @ zt @ dat @ (eye_m - a @ z) + (eye_n - z @ a) @ dat @ zt @ z


def pinv_tangent(da: Any, a: Any, z: Any, k: int | None) -> Any:
    """Tangent of ``z = pinv(a)``; it exists where ``a`` has full rank (elsewhere pinv is
    not continuous)."""
    if np.any(np.linalg.matrix_rank(z) < min(np.shape(a)[-2:])):
        raise _rank_error()
    return _back(_pinv_front(_front(da, k), a, z), k)


def lstsq_tangent(da: Any, db: Any, a: Any, b: Any, result: Any, k: int | None) -> Any:
    """Tangent of ``lstsq(a, b)``, the tuple ``(x, residuals, rank, s)``, where ``a`` has
    full rank: ``x = pinv(a) @ b``, ``residuals = sum((b - a @ x)**2)``."""
    x, res, rank, _ = result
    m, n = np.shape(a)
    if rank < min(m, n):
        raise _rank_error()
    z = np.linalg.pinv(a)
    bm = np.reshape(b, (m, -1))
    xm = np.reshape(x, (n, -1))
    dbm = 0.0 if db is None else np.reshape(_front(db, k), (-1, m, bm.shape[1])[k is None :])
    dx = 0.0 if db is None else z @ dbm
    dr = dbm  # the tangent of the residual vector, but for a @ dx (orthogonal to it)
    if da is not None:
        daf = _front(da, k)
        dx = dx + _pinv_front(daf, a, z) @ bm
        dr = dr - daf @ xm
    front = (k,) if k is not None else ()
    dx = np.reshape(np.broadcast_to(dx, front + xm.shape), front + np.shape(x))
    if np.size(res) == 0:
        dres = np.zeros(front + np.shape(res))
    else:
        dres = 2.0 * np.sum((bm - a @ xm) * dr, axis=-2)
        dres = np.broadcast_to(dres, front + np.shape(res))
    ds = svdvals_tangent(da, a, k) if da is not None else 0.0
    return _back(dx, k), _back(dres, k), 0.0, ds


def _share(mask: Any, axis: Any) -> Any:
    """Tied entries share the derivative evenly (as np.max's rule does)."""
    mask = mask.astype(float)
    return mask / np.sum(mask, axis=axis, keepdims=True)


def _norm_axes(x: Any, ord: Any, axis: Any, kind: str) -> tuple[tuple[int, ...], bool]:
    """The axes a norm reduces (normalized) and whether it is a matrix norm."""
    nd = x.ndim
    if kind == "matrix":
        return (nd - 2, nd - 1), True
    if axis is None:
        if kind == "vector" or ord is None or nd == 1:
            return tuple(range(nd)), False
        return (0, 1), True
    axes = tuple(axis) if isinstance(axis, tuple | list) else (axis,)
    axes = tuple(int(a) % nd for a in axes)
    return axes, kind == "norm" and len(axes) == 2


def norm_tangent(
    dx: Any, x: Any, ord: Any, axis: Any, keepdims: bool, k: int | None, kind: str = "norm"
) -> Any:
    """Tangent of ``np.linalg.norm(x, ord, axis, keepdims)`` (``kind`` 'norm'), of
    ``np.linalg.vector_norm`` ('vector') or ``np.linalg.matrix_norm`` ('matrix'). At a kink
    (a zero vector, ties for a maximum) the derivative taken is the one of np.max's rule:
    0 at zero, tied entries sharing evenly."""
    x = np.asarray(x, dtype=float)
    axes, matrix = _norm_axes(x, ord, axis, kind)
    sign = np.sign(x)
    ax = np.abs(x)
    if matrix and ord in (2, -2, "nuc"):
        xm = np.moveaxis(x, axes, (-2, -1))
        dest = (-2, -1) if k is None else (-3, -2)
        dxm = np.moveaxis(dx, axes, dest)
        if ord == "nuc":
            u, _, vh = np.linalg.svd(xm, full_matrices=False)
            out = np.einsum("...ji,...jk,...ik->...", u, _front(dxm, k), vh)
            out = _back(out, k)
        else:
            out = spectral_tangent(dxm, xm, ord == -2, k)
        if keepdims:
            out = np.expand_dims(out, axes)
        return out
    if matrix and ord in (1, -1, np.inf, -np.inf):
        over = axes[0] if ord in (1, -1) else axes[1]  # summed (rows for 1: a column sum)
        sums = np.sum(ax, axis=over, keepdims=True)
        pick = (
            np.max(sums, axis=axes, keepdims=True)
            if ord > 0
            else np.min(sums, axis=axes, keepdims=True)
        )
        g = sign * _share(sums == pick, axes)
    elif ord is None or ord == 2 or ord == "fro":
        z = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        g = x / np.where(z == 0, 1.0, z)
    elif ord == 1:
        g = sign
    elif ord in (np.inf, -np.inf):
        pick = (
            np.max(ax, axis=axes, keepdims=True)
            if ord > 0
            else np.min(ax, axis=axes, keepdims=True)
        )
        g = sign * _share(ax == pick, axes)
    elif ord == 0:
        g = np.zeros_like(x)
    else:  # a p-norm
        p = float(ord)
        if p < 1 and np.any(x == 0):
            raise no_derivative(
                f"the derivative of the {ord}-norm does not exist where an entry is 0"
            )
        z = np.sum(ax**p, axis=axes, keepdims=True) ** (1.0 / p)
        g = sign * ax ** (p - 1) / np.where(z == 0, 1.0, z) ** (p - 1)
    if k is not None:
        g = g[..., None]
    return np.sum(g * dx, axis=axes, keepdims=keepdims)
