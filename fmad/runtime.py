"""Small helpers the generated code calls where a tangent's shape is not known in advance.

Each is plain numpy, a few lines long, so code printed by ``fmad show`` can be copied
together with this file. ``k`` is the number of directions of a vectorized (array)
parameter; ``k=None`` means a scalar parameter (no trailing direction axis).
"""

from __future__ import annotations

import ast
import math
import sys
from typing import Any

import numpy as np

from fmad.errors import FmadError, UnsupportedError


def full(t: Any, x: Any, k: int | None = None) -> Any:
    """Tangent ``t`` broadcast to the full shape of its value ``x``.

    For a scalar parameter that shape is ``shape(x)``; for a vectorized one ``shape(x) + (k,)``.
    A list or tuple tangent (of a list value) is already full.
    """
    if (
        type(t) is np.ndarray
        and type(x) is np.ndarray
        and (t.shape == x.shape if k is None else t.shape == x.shape + (k,))
    ):
        return t  # already full: the common case, kept cheap
    if isinstance(t, list | tuple | dict):
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
    if np.ndim(value) == 0:  # the common case: a scalar loss
        if shape is None and np.ndim(t) == 0:
            return t
        if (
            shape is not None
            and type(t) is np.ndarray
            and t.ndim == 1
            and t.size == math.prod(shape)
        ):
            return t.reshape(shape)
    vshape = np.shape(value)
    k = 1 if shape is None else math.prod(shape)
    tail = () if shape is None else (k,)
    t = np.broadcast_to(t, vshape + tail)
    out_shape = () if shape is None else tuple(shape)
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


def items_tangents(t: Any, xs: Any, k: int | None = None) -> list:
    """The tangent of each item of ``xs`` (a list, or an array along its first axis), from
    the tangent ``t`` of ``xs``: a list of tangents already is one; an array tangent is made
    full, then split along its first axis."""
    if isinstance(t, list | tuple):
        return list(t)
    n = len(xs)
    if np.ndim(t) == 0 or (k is not None and np.ndim(t) == 1):
        return [t] * n  # one tangent shared by every item (a zero, or a broadcast one)
    return list(full(t, xs, k))


def builtin_sum(t: Any, xs: Any, k: int | None = None) -> Any:
    """Tangent of the builtin ``sum(xs)``: over a list, or along the first axis of an array."""
    total: Any = 0.0
    for ti in items_tangents(t, xs, k):
        total = total + ti
    return total


def builtin_extreme(t: Any, xs: Any, z: Any, k: int | None = None) -> Any:
    """Tangent of the builtin ``max(xs)``/``min(xs)`` (value ``z``): the tied items share it."""
    chosen = [ti for xi, ti in zip(xs, items_tangents(t, xs, k), strict=True) if xi == z]
    total: Any = 0.0
    for ti in chosen:
        total = total + ti
    return total / len(chosen)


# -- helpers for array rules (k: the number of directions; None for a scalar parameter) -----
def tangent_axis(axis: Any, ndim: int, k: int | None) -> Any:
    """A reduction axis of a value, as an axis of its tangent (the k axis never reduced)."""
    if k is None:
        return axis
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple | list):
        return tuple(a if a >= 0 else a - 1 for a in axis)
    return axis if axis >= 0 else axis - 1


def _k_front(t: Any, ndim: int) -> Any:
    """A tangent with its k axis moved to the front and ones inserted after it, so that it
    has ``ndim + 1`` axes: the k axis stays in front of every batch axis numpy broadcasts."""
    t = np.moveaxis(t, -1, 0)
    pad = ndim + 1 - t.ndim
    return t.reshape(t.shape[:1] + (1,) * pad + t.shape[1:]) if pad > 0 else t


def _dot_axes(x: Any, y: Any) -> tuple[list[int], list[int]]:
    """The axes np.dot sums over: the last of x, the second to last of y (its only one if
    y is a vector); for arrays of more than two axes np.dot is not ``@``."""
    return [np.ndim(x) - 1], [max(np.ndim(y) - 2, 0)]


def matmul_left(dx: Any, x: Any, y: Any, k: int | None, dot: bool = False) -> Any:
    """Tangent of ``x @ y`` (``np.dot(x, y)`` with ``dot``) from ``dx`` (the k axis rides in
    front, as a batch axis)."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:  # np.dot of a scalar is a product
        return dx * (y if k is None else np.expand_dims(y, -1))
    dx = full(dx, x, k)
    if dot and max(np.ndim(x), np.ndim(y)) > 2:
        out = np.tensordot(dx, y, _dot_axes(x, y))  # x's free axes, k, y's free axes
        return out if k is None else np.moveaxis(out, np.ndim(x) - 1, -1)
    if k is None:
        return dx @ y
    if np.ndim(x) == 1:  # (d, k): y's (transposed) matrices times the k columns
        return (np.swapaxes(y, -1, -2) if np.ndim(y) > 1 else y) @ dx
    return np.moveaxis(_k_front(dx, max(np.ndim(x), np.ndim(y))) @ y, 0, -1)


def matmul_right(x: Any, y: Any, dy: Any, k: int | None, dot: bool = False) -> Any:
    """Tangent of ``x @ y`` (``np.dot(x, y)`` with ``dot``) from ``dy``."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:  # np.dot of a scalar is a product
        return (x if k is None else np.expand_dims(x, -1)) * dy
    dy = full(dy, y, k)
    if dot and max(np.ndim(x), np.ndim(y)) > 2:
        return np.tensordot(x, dy, _dot_axes(x, y))  # the k axis stays last
    if k is None or np.ndim(y) == 1:
        return x @ dy  # (..., d) @ (d, k): the k axis is already a column axis
    return np.moveaxis(x @ _k_front(dy, max(np.ndim(x), np.ndim(y))), 0, -1)


def seed_matmul_left(y: Any) -> Any:
    """Tangent of ``w @ y`` for a vector parameter ``w`` seeded with the identity."""
    return y if np.ndim(y) == 1 else np.swapaxes(y, -1, -2)


def seed_matmul_right(x: Any, shape: tuple[int, ...]) -> Any:
    """Tangent of ``x @ W`` for a matrix parameter ``W`` (d, m) seeded with the identity:
    entry ``[..., j, (a, b)]`` is ``x[..., a]`` where ``j == b``."""
    d, m = shape
    x = np.asarray(x)
    out = np.zeros(x.shape[:-1] + (m, d, m), dtype=np.result_type(x, 1.0))
    for j in range(m):
        out[..., j, :, j] = x
    return out.reshape(x.shape[:-1] + (m, d * m))


def seed_dot(x: Any, shape: tuple[int, ...], left: bool) -> Any:
    """Tangent of ``np.dot(w, x)`` (``left``) or ``np.dot(x, w)`` for a parameter ``w`` seeded
    with the identity: a scalar ``x`` scales the identity (np.dot of a scalar is a product)."""
    if np.ndim(x) == 0:
        k = math.prod(shape)
        return x * np.eye(k).reshape(tuple(shape) + (k,))
    if left:
        return seed_matmul_left(x)
    return x if len(shape) == 1 else seed_matmul_right(x, shape)


def inner_left(dx: Any, x: Any, y: Any, k: int | None) -> Any:
    dx = full(dx, x, k)
    if k is None:
        return np.inner(dx, y)
    return np.moveaxis(np.inner(np.moveaxis(dx, -1, 0), y), 0, -1)


def inner_right(x: Any, y: Any, dy: Any, k: int | None) -> Any:
    dy = full(dy, y, k)
    if k is None:
        return np.inner(x, dy)
    out = np.inner(x, np.moveaxis(dy, -1, 0))  # (*x_lead, k, *y_lead)
    return np.moveaxis(out, np.ndim(x) - 1 if np.ndim(x) else 0, -1)


def outer_tangent(da: Any, a: Any, b: Any, k: int | None, left: bool) -> Any:
    """Tangent of ``np.outer(a, b)`` from the tangent ``da`` of ``a`` (``left``) or of ``b``."""
    da = full(da, a, k)
    b = np.ravel(b)
    if k is None:
        da = np.ravel(da)
        return np.outer(da, b) if left else np.outer(b, da)
    da = np.reshape(da, (-1, k))
    if left:
        return da[:, None, :] * b[None, :, None]
    return b[:, None, None] * da[None, :, :]


def prod_tangent(dx: Any, x: Any, axis: Any, keepdims: bool, k: int | None) -> Any:
    """Tangent of ``np.prod(x, axis)``: sum of dx_i times the product of the others
    (computed without dividing, so zeros in x are fine)."""
    x = np.asarray(x)
    dx = full(dx, x, k)
    if axis is None:
        x = x.reshape(-1)
        dx = np.reshape(dx, (-1,) if k is None else (-1, k))
        axis = 0
    axis = axis % x.ndim
    xm = np.moveaxis(x, axis, -1)
    ones = np.ones(xm.shape[:-1] + (1,), dtype=np.result_type(xm, 1.0))
    before = np.cumprod(np.concatenate([ones, xm[..., :-1]], axis=-1), axis=-1)
    after = np.flip(
        np.cumprod(np.flip(np.concatenate([xm[..., 1:], ones], axis=-1), -1), axis=-1), -1
    )
    others = np.moveaxis(before * after, -1, axis)
    if k is not None:
        others = others[..., None]
    out = np.sum(others * dx, axis=axis, keepdims=keepdims)
    return out


def extreme_tangent(dx: Any, x: Any, z: Any, axis: Any, keepdims: bool, k: int | None) -> Any:
    """Tangent of ``np.max``/``np.min`` (value ``z``): tied entries share it evenly."""
    x = np.asarray(x)
    if keepdims:
        zk = z
    elif axis is None:
        zk = np.reshape(z, (1,) * x.ndim)
    else:
        zk = np.expand_dims(z, axis)
    mask = (x == zk).astype(float)
    mask = mask / np.sum(mask, axis=axis, keepdims=True)
    dx = full(dx, x, k)
    if k is not None:
        mask = mask[..., None]
    return np.sum(mask * dx, axis=tangent_axis(axis, x.ndim, k), keepdims=keepdims)


def transpose_tangent(dx: Any, x: Any, axes: Any, k: int | None) -> Any:
    dx = full(dx, x, k)
    if k is None:
        return np.transpose(dx, axes)
    n = np.ndim(x)
    order = tuple(reversed(range(n))) if axes is None else tuple(a % n for a in axes)
    return np.transpose(dx, order + (n,))


def squeeze_tangent(dx: Any, x: Any, axis: Any, k: int | None) -> Any:
    dx = full(dx, x, k)
    if axis is None:
        axis = tuple(i for i, n in enumerate(np.shape(x)) if n == 1)
    elif k is not None:
        axis = tangent_axis(axis, np.ndim(x), k)
    return np.squeeze(dx, axis=axis)


def expand_dims_tangent(dx: Any, x: Any, axis: Any, k: int | None) -> Any:
    dx = full(dx, x, k)
    if k is None:
        return np.expand_dims(dx, axis)
    n = np.ndim(x) + (len(axis) if isinstance(axis, tuple | list) else 1)
    axes = axis if isinstance(axis, tuple | list) else (axis,)
    return np.expand_dims(dx, tuple(a % n for a in axes))


def join_tangent(join: Any, tangents: Any, values: Any, axis: Any, k: int | None) -> Any:
    """Tangent of ``np.concatenate``/``np.stack``/``np.hstack``/``np.vstack`` of a list:
    each part made full (zeros for parts with no derivative), joined the same way."""
    # hstack/vstack first make their parts at least 1-d/2-d; the tangents follow
    promote = {np.hstack: np.atleast_1d, np.vstack: np.atleast_2d}.get(join)
    tail = () if k is None else (k,)
    parts = []
    for t, v in zip(tangents, values, strict=True):
        part = np.broadcast_to(t, np.shape(v) + tail)
        if promote is not None:
            part = np.reshape(part, np.shape(promote(v)) + tail)
        parts.append(part)
    if promote is not None:
        values = [promote(v) for v in values]
    if join is np.hstack:
        return np.concatenate(parts, axis=0 if np.ndim(values[0]) == 1 else 1)
    if join is np.vstack:
        return np.concatenate(parts, axis=0)
    if axis is None and join is np.concatenate:
        return np.concatenate([np.reshape(p, (-1,) + tail) for p in parts])
    n = np.ndim(values[0]) + (1 if join is np.stack else 0)
    return join(parts, axis=(axis if axis is not None else 0) % n)


def stack_tangents(t: Any, x: Any, k: int | None = None) -> Any:
    """A list's tangent (a list of tangents, one per item) as one array of the full shape
    ``shape(x) + (k,)``, ready for a numpy function of the list; any other tangent as is."""
    if not isinstance(t, list | tuple):
        return t
    tail = () if k is None else (k,)
    parts = [
        np.broadcast_to(stack_tangents(ti, xi, k), np.shape(xi) + tail)
        for ti, xi in zip(t, x, strict=True)
    ]
    return np.stack(parts) if parts else np.zeros(np.shape(x) + tail)


def array_tangent(tangents: Any, values: Any, k: int | None) -> Any:
    """Tangent of ``np.array(list_of_values)``."""
    if not isinstance(values, list | tuple):
        return tangents
    if not values:  # np.array([]): shape (0,)
        return np.zeros((0,) if k is None else (0, k))
    return join_tangent(np.stack, tangents, values, 0, k)


def reshape_tangent(dx: Any, x: Any, shape: Any, k: int | None) -> Any:
    dx = full(dx, x, k)
    if k is None:
        return np.reshape(dx, shape)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return np.reshape(dx, shape + (k,))


def mean_product(c: Any, t: Any, x: Any, k: int | None) -> Any:
    """``np.mean(c[..., None] * t)`` over the axes of the value ``x``, with no (N, k)
    temporary: a matrix-vector product when ``c`` and ``t`` have ``x``'s full shape."""
    return sum_product(c, t, x, k) / max(np.size(x), 1)


def sum_product(c: Any, t: Any, x: Any, k: int | None) -> Any:
    """``np.sum(c[..., None] * t)`` over the axes of the value ``x`` (see mean_product);
    ``k=None`` (a scalar parameter): ``np.sum(c * t)``."""
    if type(c) is type(t) is type(x) is np.ndarray and c.ndim == 1 and c.shape == x.shape:
        if k is not None and t.shape == (*x.shape, k):  # the common case, checked fast
            return c @ t  # the same product as the reshaped one below, on the same memory
    c = np.asarray(c)
    shape = np.shape(x)
    if k is None:
        if c.shape == shape and np.shape(t) == shape and c.ndim:
            return c.reshape(-1) @ np.reshape(t, -1)
        return np.sum(full(c * t, x))
    if c.shape == shape and np.shape(t) == shape + (k,):
        return c.reshape(-1) @ np.reshape(t, (-1, k))
    return np.sum(np.reshape(full(c[..., None] * t, x, k), (-1, k)), axis=0)


def concat_tangent(dx: Any, x: Any, dy: Any, y: Any, k: int | None = None) -> Any:
    """Tangent of ``x + y`` where a list or tuple tangent is involved: for two lists or two
    tuples (concatenation) the tangents concatenate, a list with no derivative giving zeros,
    a list parameter's array tangent split into its items; otherwise numpy adds them (a list
    and an array, or a number) and so do the stacked tangents."""
    if (isinstance(x, list) and isinstance(y, list)) or (
        isinstance(x, tuple) and isinstance(y, tuple)
    ):

        def items(t: Any, v: Any) -> list:
            return [0.0] * len(v) if t is None else items_tangents(t, v, k)

        return type(x)(items(dx, x) + items(dy, y))
    dx = 0.0 if dx is None else stack_tangents(dx, x, k)
    dy = 0.0 if dy is None else stack_tangents(dy, y, k)
    return dx + dy


def check_rebind(
    value: Any, dunder: str, filename: str, lineno: int, text: str, origin: str | None
) -> None:
    """Before ``x = x + v``, fmad's rewrite of ``x += v`` (``text``) where ``x``'s object may
    be seen elsewhere (``origin``: the argument it may come from): exact when Python rebinds
    too (no ``__iadd__``: a number, a tuple); a list or an array Python would change in place,
    which fmad does not model."""
    if not hasattr(type(value), dunder):
        return
    kind = "array" if isinstance(value, np.ndarray) else type(value).__name__
    try:
        aug = ast.parse(text).body[0]
        name = ast.unparse(aug.target)
        plain = f"{name} = {ast.unparse(ast.BinOp(aug.target, aug.op, aug.value))}"
    except (SyntaxError, IndexError, AttributeError):
        name, plain = "x", "x = x + v"
    if origin is not None:
        message = (
            f"'{text}' changes the {kind} '{name}' in place, and it may be (part of) the "
            f"{kind} the caller passed as '{origin}'; fmad never changes its inputs, and its "
            f"rewrite '{plain}' would differ from Python's in-place update; write '{plain}' "
            "to compute a new value"
        )
    else:
        message = (
            f"'{text}' changes the {kind} '{name}' in place, and its object may also be seen "
            "through another name (an alias, a view such as x[0:1], a container or a loop); "
            f"fmad rewrites it as '{plain}' and does not model in-place changes of shared "
            f"lists and arrays; write '{plain}' (a new value) if that is what you mean, or "
            f"copy first ({name} = {name}.copy())"
        )
    raise UnsupportedError(filename, lineno, message)


def check_distinct(value: Any, others: tuple, filename: str, lineno: int, text: str) -> None:
    """A parameter the function changes in place (``text``) must not be (memory shared
    with) one of the arguments differentiated with respect to: their tangents would not
    follow the change."""
    for other in others:
        if other is value or (
            isinstance(value, np.ndarray)
            and isinstance(other, np.ndarray)
            and np.may_share_memory(value, other)
        ):
            raise UnsupportedError(
                filename,
                lineno,
                f"'{text}' changes an argument in place, and the caller passed the same "
                "object as an argument fmad differentiates with respect to; fmad does not "
                "model that; pass a copy",
            )


def real_values(x: Any, what: str) -> Any:
    """``x``, checked to be real where the derivative of ``what`` (``abs``, ``np.var``)
    follows its real formula; a complex ``x`` is refused at the user's line."""
    kind = type(x)
    if kind is float or (kind is np.ndarray and x.dtype.kind != "c"):
        return x  # the common cases, quickly
    if isinstance(x, complex) or np.iscomplexobj(x):
        frame = sys._getframe(1)  # the generated code: the user's file and line
        raise UnsupportedError(
            frame.f_code.co_filename,
            frame.f_lineno,
            f"{what} of a complex value that carries a derivative is not supported by fmad; "
            "write it with real operations on z.real and z.imag (the modulus: "
            "np.hypot(z.real, z.imag))",
        )
    return x
