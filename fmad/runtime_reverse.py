"""Small numpy helpers the reverse-mode code calls (``fmad_rev`` in the printed code).

Each takes the adjoint of a result and the primal values it needs, and returns the
adjoint contribution of one operand, in that operand's shape. None of them changes its
arguments: an adjoint may be the same object as a primal array or another adjoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NotScalar(Exception):
    """The differentiated function returned a value that is not a real scalar (the public
    wrapper turns it into an FmadError at the ``return`` line)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        super().__init__(f"reverse mode needs a real scalar output, not {describe(value)}")


class Refused(Exception):
    """An operation the reverse code reached with operands it does not handle (the public
    wrapper turns it into an FmadError at the user's line)."""


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def seed(value: Any) -> float:
    """The adjoint of the output with respect to itself: 1.0, for a real scalar output."""
    if type(value) is float:
        return 1.0
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return np.ones(value.shape)  # a one-element array counts as a scalar (as forward)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise NotScalar(value)
    return 1.0


def zeros(x: Any) -> Any:
    """The adjoint of a parameter the output does not depend on: zeros of its shape (a
    list of zeros for a list or tuple: ``fmad.runtime_forms.Adjoints`` add to it)."""
    if isinstance(x, list | tuple):
        return [zeros(item) for item in x]
    shape = np.shape(x)
    return np.zeros(shape) if shape else 0.0


def _shape(x: Any) -> tuple[int, ...]:
    kind = type(x)
    if kind is np.ndarray:
        return x.shape
    return () if kind is float or kind is np.float64 else np.shape(x)


def _ndim(x: Any) -> int:
    return x.ndim if type(x) is np.ndarray else np.ndim(x)


def _transposed(x: Any) -> Any:
    """``x`` with its last two axes swapped (``.T`` for a matrix: the fast spelling)."""
    return x.T if x.ndim == 2 else np.swapaxes(x, -1, -2)


def unbroadcast(g: Any, x: Any) -> Any:
    """``g`` (the shape of ``x`` broadcast against other operands) summed back to the shape
    of ``x``: over the leading axes ``x`` lacks and the axes where ``x`` has length 1."""
    gshape = _shape(g)
    xshape = _shape(x)
    if gshape == xshape:
        return g
    if not xshape:
        return np.sum(g)
    if not gshape:  # a scalar adjoint, an array operand
        return np.full(xshape, g)
    lead = len(gshape) - len(xshape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(xshape) if n == 1 and gshape[lead + i] != 1
    )
    out = np.sum(g, axis=axes) if axes else g
    return out if _shape(out) == xshape else np.reshape(out, xshape)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple | list):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,)


def _spread(g: Any, xshape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """A new array of shape ``xshape`` holding ``g`` repeated over the reduced axes."""
    dtype = getattr(g, "dtype", None)  # complex adjoints stay complex (then refused)
    out = np.empty(xshape, dtype=dtype if dtype is not None and dtype.kind == "c" else float)
    if type(g) is complex:
        out = out.astype(complex)
    if axis is not None and not keepdims:
        kept = _axes(axis, len(xshape))
        g = np.reshape(g, tuple(1 if i in kept else n for i, n in enumerate(xshape)))
    out[...] = g
    return out


def sum_adjoint(g: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The adjoint of ``x`` in ``np.sum(x, axis, keepdims=keepdims)``: ``g`` spread back
    over the summed axes."""
    xshape = _shape(x)
    if not xshape:
        return g
    return _spread(g, xshape, axis, keepdims)


def mean_adjoint(g: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The adjoint of ``x`` in ``np.mean(x, axis, keepdims=keepdims)``."""
    xshape = _shape(x)
    if not xshape:
        return g
    count = 1
    for a in _axes(axis, len(xshape)):
        count *= xshape[a]
    return _spread(np.divide(g, count), xshape, axis, keepdims)


def extreme_adjoint(g: Any, x: Any, z: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The adjoint of ``x`` in ``np.max``/``np.min`` (value ``z``): tied entries share it
    evenly, as in forward mode."""
    x = np.asarray(x)
    if keepdims:
        zk, gk = z, g
    elif axis is None:
        zk, gk = np.reshape(z, (1,) * x.ndim), np.reshape(g, (1,) * x.ndim)
    else:
        zk, gk = np.expand_dims(z, axis), np.expand_dims(g, axis)
    mask = (x == zk).astype(float)
    mask = mask / np.sum(mask, axis=axis, keepdims=True)
    return mask * gk


def matmul_left(g: Any, a: Any, b: Any) -> Any:
    """The adjoint of ``a`` in ``a @ b`` (numpy's ``matmul`` rules for 1-D operands)."""
    a_nd, b_nd = _ndim(a), _ndim(b)
    if a_nd == 0 or b_nd == 0:
        raise Refused("'@' with a scalar operand")
    if b_nd == 1:
        return unbroadcast(np.multiply.outer(g, b), a) if a_nd > 1 else np.multiply(g, b)
    bt = _transposed(np.asarray(b))
    if a_nd == 1:  # a (k,), b (..., k, m), z (..., m)
        return unbroadcast(np.matmul(np.expand_dims(g, -2), bt)[..., 0, :], a)
    return unbroadcast(np.matmul(g, bt), a)


def matmul_right(g: Any, a: Any, b: Any) -> Any:
    """The adjoint of ``b`` in ``a @ b``."""
    a_nd, b_nd = _ndim(a), _ndim(b)
    if a_nd == 0 or b_nd == 0:
        raise Refused("'@' with a scalar operand")
    if a_nd == 1:
        if b_nd == 1:
            return np.multiply(g, a)
        # a (k,), b (..., k, m), z (..., m): db = outer(a, g)
        return unbroadcast(np.multiply(np.asarray(a)[:, None], np.expand_dims(g, -2)), b)
    at = _transposed(np.asarray(a))
    if b_nd == 1:
        return unbroadcast(np.matmul(at, g[..., None])[..., 0], b) if a_nd > 2 else at @ g
    return unbroadcast(np.matmul(at, g), b)


def _dot_check(a: Any, b: Any) -> None:
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        raise Refused("np.dot of an operand with more than 2 dimensions")


def dot_left(g: Any, a: Any, b: Any) -> Any:
    """The adjoint of ``a`` in ``np.dot(a, b)`` (operands of at most 2 dimensions)."""
    _dot_check(a, b)
    return matmul_left(g, a, b)


def dot_right(g: Any, a: Any, b: Any) -> Any:
    """The adjoint of ``b`` in ``np.dot(a, b)``."""
    _dot_check(a, b)
    return matmul_right(g, a, b)


def index_adjoint(g: Any, x: Any, index: Any) -> Any:
    """The adjoint of ``x`` in ``x[index]``: ``g`` added into zeros of the shape of ``x``
    where the index took it (repeated fancy indices add up)."""
    if isinstance(x, list | tuple):  # a function's tuple of results (np.linalg.svd...)
        raise Refused("indexing a list or tuple")
    out = np.zeros(np.shape(x), dtype=np.result_type(g, float))
    np.add.at(out, index, g)
    return out


def reshape_adjoint(g: Any, x: Any) -> Any:
    """The adjoint of ``x`` in any reshape of it (``x.reshape``, ``np.ravel``...)."""
    return np.reshape(g, np.shape(x))


def transpose_adjoint(g: Any, axes: Any = None) -> Any:
    """The adjoint of ``x`` in ``np.transpose(x, axes)``."""
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort(axes))


def where_adjoint(g: Any, cond: Any, x: Any, first: bool) -> Any:
    """The adjoint of the chosen operand ``x`` of ``np.where(cond, a, b)``."""
    picked = np.where(cond, g, 0.0) if first else np.where(cond, 0.0, g)
    return unbroadcast(picked, x)
