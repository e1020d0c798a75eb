"""Helpers for the tangents of numpy statistics, cumulative products and a few rearrangements
whose plain-numpy form depends on shapes known only at run time.

Each is linear in its tangent argument (the first, ``dx``), plain numpy, and takes ``k``: the
number of directions of a vectorized (array) parameter, carried on a trailing axis of every
tangent, or ``None`` for a scalar parameter. A tangent may be smaller than its value (it
broadcasts to it); each helper broadcasts it first. At the end: the run-time tests of the
operations :mod:`fmad.inplace` computes in place.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _full(t: Any, x: Any, k: int | None) -> np.ndarray:
    tail = () if k is None else (k,)
    return np.broadcast_to(t, np.shape(x) + tail)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a sequence of ints) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int | np.integer):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim for a in axis))


def quantile_tangent(
    dx: Any, x: Any, q: Any, axis: Any, keepdims: bool, k: int | None, scale: float = 1.0
) -> Any:
    """Tangent of ``np.quantile(x, q / scale, axis, keepdims=keepdims)`` (method
    ``linear``; ``np.percentile`` passes ``scale=100``, ``np.median`` ``q=0.5``).

    The quantile interpolates two order statistics of the sorted values (``lo`` and ``hi``,
    weights ``1 - frac`` and ``frac``). At ties (several entries equal to an order
    statistic) its derivative is shared evenly by the tied entries, as for ``np.max``: a
    subgradient, and the same as ``np.max``'s at ``q = 1``.
    """
    x = np.asarray(x)
    dx = _full(dx, x, k)
    tail = () if k is None else (k,)
    axes = _axes(axis, x.ndim)
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    # the reduced axes last (merged into one of length n), the direction axis after them
    xm = np.transpose(x, rest + axes)
    lead = xm.shape[: len(rest)]
    xm = xm.reshape(lead + (-1,))
    dxm = np.transpose(dx, rest + axes + tuple(range(x.ndim, dx.ndim))).reshape(lead + (-1,) + tail)
    n = xm.shape[-1]
    q = np.asarray(q, dtype=float) / scale
    pos = q * (n - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    s = np.sort(xm, axis=-1)
    xq = xm.reshape(lead + (1,) * q.ndim + (n,))  # against every quantile

    def share(order: np.ndarray) -> np.ndarray:
        tied = xq == np.take(s, order, axis=-1)[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):  # nan data: a nan derivative
            return tied / np.sum(tied, axis=-1, keepdims=True)

    weights = share(lo) * (1.0 - frac)[..., None] + share(hi) * frac[..., None]
    if k is None:
        out = np.sum(weights * dxm.reshape(lead + (1,) * q.ndim + (n,)), axis=-1)
    else:
        out = np.sum(weights[..., None] * dxm.reshape(lead + (1,) * q.ndim + (n, k)), axis=-2)
    # numpy puts the quantile axes first
    out = np.moveaxis(out, tuple(range(len(lead), len(lead) + q.ndim)), tuple(range(q.ndim)))
    if keepdims:
        kept = tuple(1 if i in axes else m for i, m in enumerate(x.shape))
        out = out.reshape(q.shape + kept + tail)
    return out


def average_tangent(
    da: Any, dw: Any, a: Any, w: Any, axis: Any, keepdims: bool, k: int | None
) -> Any:
    """Tangent of ``np.average(a, axis, weights=w, keepdims=keepdims)`` from the tangents
    ``da`` of ``a`` and ``dw`` of ``w`` (``None``: no derivative): ``sum(w * da + dw * (a -
    avg)) / sum(w)`` over the axes. 1-d weights along ``axis`` are laid along it, as numpy
    does."""
    a = np.asarray(a)
    w = np.asarray(w)
    tail = () if k is None else (k,)
    shape = a.shape
    if w.shape != a.shape:  # numpy: 1-d weights of the length of a.shape[axis]
        shape = [1] * a.ndim
        shape[int(axis) % a.ndim] = w.shape[0]
        shape = tuple(shape)
        if dw is not None:
            dw = np.reshape(_full(dw, w, k), shape + tail)
        w = w.reshape(shape)
    axes = _axes(axis, a.ndim)
    scl = np.sum(w, axis=axes, keepdims=True)
    avg = np.sum(w * a, axis=axes, keepdims=True) / scl
    terms: Any = 0.0
    if da is not None:
        terms = terms + (w if k is None else w[..., None]) * da
    if dw is not None:
        centred = a - avg
        terms = terms + (centred if k is None else centred[..., None]) * dw
    terms = _full(terms, a, k)
    out = np.sum(terms, axis=axes, keepdims=True) / (scl if k is None else scl[..., None])
    if not keepdims:
        out = np.reshape(out, tuple(m for i, m in enumerate(a.shape) if i not in axes) + tail)
    return out


def cumprod_tangent(dx: Any, x: Any, z: Any, axis: Any, k: int | None) -> Any:
    """Tangent of ``z = np.cumprod(x, axis)`` by its recurrence ``dz[i] = dz[i-1] * x[i] +
    z[i-1] * dx[i]``: no division, so zeros in ``x`` need no special case."""
    x = np.asarray(x)
    dx = _full(dx, x, k)
    if axis is None:
        x = x.reshape(-1)
        dx = dx.reshape((-1,) if k is None else (-1, k))
        axis = 0
    axis = int(axis) % x.ndim
    xm = np.moveaxis(x, axis, 0)
    zm = np.moveaxis(np.reshape(z, x.shape), axis, 0)
    dxm = np.moveaxis(dx, axis, 0)
    if k is not None:
        xm, zm = xm[..., None], zm[..., None]
    out = np.empty(dxm.shape, dtype=np.result_type(dxm, xm, 1.0))
    if out.shape[0]:
        out[0] = dxm[0]
    for i in range(1, out.shape[0]):
        out[i] = out[i - 1] * xm[i] + zm[i - 1] * dxm[i]
    return np.moveaxis(out, 0, axis)


def tile_tangent(dx: Any, x: Any, reps: Any, k: int | None) -> Any:
    """Tangent of ``np.tile(x, reps)``: the value's axes tiled, the direction axis not."""
    dx = _full(dx, x, k)
    if k is None:
        return np.tile(dx, reps)
    reps = (reps,) if isinstance(reps, int | np.integer) else tuple(reps)
    d = max(np.ndim(x), len(reps))
    dx = np.reshape(dx, (1,) * (d - np.ndim(x)) + np.shape(x) + (k,))
    return np.tile(dx, (1,) * (d - len(reps)) + reps + (1,))


def diag_tangent(dv: Any, v: Any, offset: int, k: int | None) -> Any:
    """Tangent of ``np.diag(v, offset)``: a matrix with ``dv`` on a diagonal (``v`` 1-d),
    or the diagonal of ``dv`` (``v`` 2-d)."""
    dv = _full(dv, v, k)
    if k is None:
        return np.diag(dv, offset)
    if np.ndim(v) == 2:
        return np.swapaxes(np.diagonal(dv, offset, 0, 1), -1, -2)
    n = np.shape(v)[0]
    m = n + abs(offset)
    out = np.zeros((m, m, k), dtype=np.result_type(dv, 1.0))
    i = np.arange(n)
    out[i + max(-offset, 0), i + max(offset, 0)] = dv
    return out


def tangent_index(index: Any) -> Any:
    """An index of a value, applied to its vectorized tangent: an ``...`` in it must not
    reach the trailing direction axis."""
    if isinstance(index, tuple) and any(i is Ellipsis for i in index):
        return (*index, slice(None))
    return index


def padded_diff(
    dx: Any, x: Any, n: int, axis: int, pre: bool, prepend: Any, post: bool, append: Any, k
) -> Any:
    """Tangent of ``np.diff(x, n, axis, prepend=..., append=...)`` with constant ends
    (``pre``/``post``: given): zeros of their size along ``axis`` around the tangent."""
    x = np.asarray(x)
    dx = _full(dx, x, k)
    tail = () if k is None else (k,)
    axis = int(axis) % x.ndim
    parts = [dx]
    for given, end, first in ((pre, prepend, True), (post, append, False)):
        if not given:
            continue
        shape = list(x.shape)
        shape[axis] = 1 if np.ndim(end) == 0 else np.shape(end)[axis]
        block = np.zeros(tuple(shape) + tail, dtype=dx.dtype)
        parts.insert(0 if first else len(parts), block)
    return np.diff(np.concatenate(parts, axis=axis), n, axis=axis)


def per_direction(fn: Any, k: int, slots: tuple, *args: Any, **keywords: Any) -> Any:
    """``fn`` (a helper written for one direction) applied to each of ``k`` directions: the
    arguments at ``slots`` carry them on a trailing axis (``None`` is a zero tangent). The
    results are stacked on a new trailing axis (fmad's array code differentiated again)."""
    fast = _contraction(fn, k, slots, args)
    if fast is not None:
        return fast
    columns = [
        fn(
            *(a[..., j] if i in slots and a is not None else a for i, a in enumerate(args)),
            **keywords,
        )
        for j in range(k)
    ]
    return np.stack([np.asarray(c) for c in columns], axis=-1)


def _contraction(fn: Any, m: int, slots: tuple, args: tuple) -> Any:
    """``sum_product``/``mean_product`` (``c @ T`` over the value's axes) with the directions
    on ``c``: one matrix product instead of ``m``. None when the shapes are not the plain
    ones (the loop then does it)."""
    name = getattr(fn, "__name__", "")
    if name not in ("sum_product", "mean_product") or slots != (0,) or len(args) != 4:
        return None
    c, t, x, k = args
    shape = np.shape(x)
    if type(c) is not np.ndarray or c.shape != shape + (m,) or not shape:
        return None
    tail = () if k is None else (k,)
    if np.shape(t) != shape + tail:
        return None
    out = np.reshape(t, (-1, *tail)).T @ c.reshape(-1, m)  # (k, m), or (m,) for k None
    return out / max(np.size(x), 1) if name == "mean_product" else out


def row_sums(x: Any, k: int, mean: bool, *pairs: tuple) -> np.ndarray:
    """The derivatives of ``np.sum(x)`` (``np.mean``) in ``k`` bundled scalar parameters, from
    ``(scale, c, coef, i)``: parameter ``i`` gets ``scale * sum(c * coef)`` over ``x``'s
    elements (``c`` or ``coef`` None: 1), each a dot product when both have ``x``'s shape."""
    shape = x.shape if type(x) is np.ndarray else np.shape(x)
    out: list[Any] = [0.0] * k
    for scale, c, coef, i in pairs:
        if c is None:
            c, coef = coef, None
        if c is None:
            value: Any = float(math.prod(shape))
        elif coef is None:
            if type(c) is np.ndarray and c.shape == shape:
                value = c.sum()  # np.sum's own reduction, without its dispatch
            else:
                value = np.sum(c if np.shape(c) == shape else _full(c, x, None))
        elif type(c) is np.ndarray and type(coef) is np.ndarray and c.ndim == 1:
            same = c.shape == shape and coef.shape == shape
            value = c @ coef if same else np.sum(_full(c * coef, x, None))
        else:
            value = np.sum(_full(np.asarray(c) * coef, x, None))
        out[i] = out[i] + (value if scale == 1 else scale * value)
    if all(type(v) is np.float64 or type(v) is float for v in out):
        result = np.array(out)  # float64, as result_type gives (checked fast)
    else:
        result = np.array(out, dtype=np.result_type(*out))
    return result / max(math.prod(shape), 1) if mean else result


# -- computing in place (fmad.inplace) --------------------------------------------------

_F8 = np.dtype(np.float64)
# arrays with fewer elements than this are computed as written (numpy's own elision of
# temporaries starts at 256 KiB); read at each call (tests set it to 1)
LARGE = 32768
# the types of values typed code may start from: the result of numpy arithmetic on them is
# a new array or a number
SAFE = frozenset({np.ndarray, float, int, np.float64, np.float32, np.int64, np.int32})
_SCALARS = frozenset({float, int, np.float64, np.float32, np.int64, np.int32})


def fits(r: Any, other: Any) -> bool:
    """Whether ``r op other`` may be computed into ``r``: ``r`` is a plain float64 array
    that owns its buffer, ``other`` (None: no operand) a number or an array that neither
    widens the result nor grows its shape."""
    if type(r) is not np.ndarray or r.dtype is not _F8 or r.base is not None or not r.ndim:
        return False
    kind = type(other)
    if other is None:
        return True
    if kind is np.ndarray:
        n = other.ndim
        return other.dtype is _F8 and n <= r.ndim and other.shape == r.shape[r.ndim - n :]
    return kind in _SCALARS


def large(r: Any, *params: Any) -> bool:
    """``r`` is a plain array of at least :data:`LARGE` elements and each parameter the
    typed code reads is a plain array or a number."""
    if type(r) is not np.ndarray or r.size < LARGE:
        return False
    return all(type(p) in SAFE for p in params)


def quiet() -> bool:
    """numpy raises no floating-point error (nor calls a handler for one)."""
    return not {"raise", "call"} & set(np.geterr().values())


def _column(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = a[:, 0] * b[0]
    # BLAS's matrix-vector product sums each row's products from +0.0: a product of -0.0
    # gives +0.0 there, and here after this (every other value is unchanged by + 0.0)
    out += 0.0
    return out


def _column_is_exact() -> bool:
    """Whether :func:`_column` gives ``a @ b``'s bits on this numpy and BLAS, probed once
    with signed zeros, infinities, subnormals and extremes, in several memory layouts and
    lengths (the kernels of a BLAS take other paths for short and long vectors)."""
    specials = [0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, 5e-324, -1e-310, 1e308, -3.0e-200]
    with np.errstate(all="ignore"):
        for n in (1, 7, 37, 1000, 5000):
            column = np.resize(np.array(specials), n) * np.linspace(1.0, 2.0, n)
            wide = np.zeros((n, 3))
            wide[:, 1] = column
            layouts = [column[:, None], np.asfortranarray(column[:, None]), wide[:, 1:2]]
            layouts.append(wide[::-1, 1:2])
            for a in layouts:
                for w in [*specials, 0.7, -1.3]:
                    b = np.array([w])
                    want, got = a @ b, _column(a, b)
                    same = want.view(np.int64) == got.view(np.int64)
                    if not np.all(same | (np.isnan(want) & np.isnan(got))):
                        return False
    return True


_COLUMN_EXACT: list[bool] = []  # probed at the first call
# below this many rows BLAS is fast enough that the tests below would cost what they save
COLUMN_ROWS = 4096


def column_product(a: Any, b: Any) -> np.ndarray | None:
    """``a @ b``, or None: the caller then computes ``a @ b`` itself. For a float64 matrix
    of one column and many rows and a vector of one element (a linear model with one
    feature, ``X @ w``): one elementwise product, the same bits as BLAS's matrix-vector
    product (checked on this machine once, else never used) and several times faster,
    because BLAS handles a matrix of one column poorly. None too where a result is not
    finite: the caller's ``a @ b`` then raises numpy's own warnings (or errors, under
    ``np.seterr``) at the user's line, naming the matrix product as they would have."""
    if (
        type(a) is not np.ndarray
        or type(b) is not np.ndarray
        or a.ndim != 2
        or a.shape[1] != 1
        or a.shape[0] < COLUMN_ROWS
        or b.shape != (1,)
        or a.dtype is not _F8
        or b.dtype is not _F8
    ):
        return None
    if not _COLUMN_EXACT:
        _COLUMN_EXACT.append(_column_is_exact())
    if not _COLUMN_EXACT[0]:
        return None
    with np.errstate(all="ignore"):
        out = _column(a, b)
        # one product is not finite exactly when this is not (or it overflows: then the
        # caller's a @ b merely runs)
        finite = math.isfinite(out @ out)
    return out if finite else None
