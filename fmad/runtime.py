"""Small helpers the generated code calls where a tangent's shape is not known in advance.

Each is plain numpy, a few lines long, so code printed by ``fmad show`` can be copied
together with this file. ``k`` is the number of directions of a vectorized (array)
parameter; ``k=None`` means a scalar parameter (no trailing direction axis).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fmad.errors import FmadError


def full(t: Any, x: Any, k: int | None = None) -> Any:
    """Tangent ``t`` broadcast to the full shape of its value ``x``.

    For a scalar parameter that shape is ``shape(x)``; for a vectorized one ``shape(x) + (k,)``.
    A list or tuple tangent (of a list value) is already full.
    """
    if isinstance(t, list | tuple):
        return t
    shape = np.shape(x) if k is None else np.shape(x) + (k,)
    if np.shape(t) == shape:
        return t
    return np.broadcast_to(t, shape)


def gradient(t: Any, value: Any, shape: tuple[int, ...] | None = None) -> Any:
    """The derivative handed to the user, from the raw tangent ``t`` of ``value``.

    ``shape`` is the parameter's shape (None for a scalar parameter). The result has shape
    ``shape(value) + shape``: the Jacobian. A value with one element counts as a scalar
    loss (``np.random.rand(1)`` parameters give shape-(1,) losses), so its gradient has the
    parameter's shape, ready for ``w - lr * grad``.
    """
    if isinstance(value, tuple):
        return tuple(gradient(ti, vi, shape) for ti, vi in zip(t, value, strict=True))
    vshape = np.shape(value)
    k = 1 if shape is None else math.prod(shape)
    tail = () if shape is None else (k,)
    t = np.broadcast_to(t, vshape + tail)
    out_shape = (() if shape is None else tuple(shape))
    if math.prod(vshape) != 1:
        out_shape = vshape + out_shape
    out = np.reshape(t, out_shape)
    return out[()] if out.ndim == 0 else out.copy()


def scalar_seed(value: Any, name: str) -> float:
    """The tangent of an intermediate variable with respect to itself (scalars only)."""
    if np.ndim(value) != 0:
        raise FmadError(
            f"differentiating with respect to the intermediate variable {name!r} needs a "
            f"scalar value; it has shape {np.shape(value)}"
        )
    return 1.0


def builtin_sum(t: Any, xs: Any) -> Any:
    """Tangent of the builtin ``sum(xs)``: over a list, or along the first axis of an array."""
    if isinstance(t, list | tuple):
        total: Any = 0.0
        for ti in t:
            total = total + ti
        return total
    if isinstance(xs, list | tuple):  # a list value whose tangent is one broadcast array
        return np.sum(np.broadcast_to(t, np.shape(t)), axis=0) if np.ndim(t) else t * len(xs)
    return np.sum(full(t, xs, None if np.ndim(t) <= np.ndim(xs) else np.shape(t)[-1]), axis=0)


def builtin_extreme(t: Any, xs: Any, z: Any) -> Any:
    """Tangent of the builtin ``max(xs)``/``min(xs)`` (value ``z``): the tied items share it."""
    items = list(xs)
    tangents = t if isinstance(t, list | tuple) else [t] * len(items)
    chosen = [ti for xi, ti in zip(items, tangents, strict=True) if xi == z]
    total: Any = 0.0
    for ti in chosen:
        total = total + ti
    return total / len(chosen)
