"""More numpy helpers of reverse mode (``fmad_tr`` in the printed code): the transposes of
rearrangements, joins, contractions, cumulative sums, moments and linear algebra.

Like :mod:`fmad.runtime_reverse`, each takes the adjoint ``g`` of a result and the primal
values it needs and returns the adjoint of one operand in that operand's shape; none changes
its arguments.

- ``gather_adjoint``: any function that only moves, repeats, drops or zero-fills the items
  of ``x`` (``np.flip``, ``np.roll``, ``np.pad``, ``np.tile``, ``np.diag``, ``np.concatenate``
  ...) is applied to *labels* (``1..n``, 0 for "no item"), and ``g`` is summed back per
  label: the exact transpose, whatever the function's options.
- ``dense_adjoint``: a forward-mode helper that is linear in its tangent and takes a trailing
  direction axis (``fmad.runtime_arrays``) is run once with the identity (every element of
  ``x`` a direction) and its Jacobian contracted with ``g``: forward mode's conventions at
  ties and kinks, exactly; refused beyond ``DENSE_LIMIT`` Jacobian entries.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from fmad.runtime_arrays import average_tangent, quantile_tangent
from fmad.runtime_linalg import adjugate, norm_tangent
from fmad.runtime_reverse import Refused, unbroadcast

DENSE_LIMIT = 1 << 22  # entries of the identity or Jacobian dense_adjoint builds (32 MB)


def _like(out: Any, x: Any) -> Any:
    """``out`` in the shape of ``x``: an array, or a float for a number."""
    out = np.reshape(np.asarray(out, dtype=float), np.shape(x))
    return out if isinstance(x, np.ndarray) or out.ndim else float(out)


class Parts(tuple):
    """The adjoint of a list of values (one entry per item): ``+`` adds item by item."""

    __slots__ = ()

    def __add__(self, other: Any) -> Parts:  # type: ignore[override]
        if not isinstance(other, tuple):
            # a list's adjoint of reverse_containers (fmad_forms.Adjoints, Item) adds itself
            return NotImplemented
        return Parts(a + b for a, b in zip(self, other, strict=True))

    __radd__ = __add__


def _real(g: Any) -> None:
    if np.iscomplexobj(g):
        raise Refused("a complex value on the way to the output")


# -- rearrangements: labels ------------------------------------------------------------------
def _labels(x: Any) -> tuple[Any, int]:
    """``x``'s items numbered 1..n in its shape (a list: each item, numbered on), and n + 1."""
    if isinstance(x, list | tuple):
        out, start = [], 1
        for item in x:
            shape = np.shape(item)
            size = int(np.prod(shape))
            out.append(np.arange(start, start + size).reshape(shape))
            start += size
        return out, start
    shape = np.shape(x)
    size = int(np.prod(shape))
    return np.arange(1, size + 1).reshape(shape), size + 1


def _unlabel(total: np.ndarray, x: Any) -> Any:
    if isinstance(x, list | tuple):
        parts, start = [], 1
        for item in x:
            shape = np.shape(item)
            size = int(np.prod(shape))
            piece = total[start : start + size].reshape(shape)
            parts.append(piece if shape else float(piece))
            start += size
        return Parts(parts)
    shape = np.shape(x)
    return total[1:].reshape(shape) if shape else float(total[1])


def gather_adjoint(g: Any, f: Any, x: Any, /, *rest: Any, **keywords: Any) -> Any:
    """The adjoint of ``x`` in ``f(x, *rest, **keywords)`` (``f`` a function, or the name
    of a method of ``x``), ``f`` only moving, repeating, dropping or zero-filling items."""
    _real(g)
    labels, count = _labels(x)
    if isinstance(f, str):
        picked = getattr(labels, f)(*rest, **keywords)
    else:
        picked = f(labels, *rest, **keywords)
    picked = np.asarray(picked)
    spread = np.broadcast_to(np.asarray(g, dtype=float), picked.shape)
    total = np.bincount(picked.ravel(), weights=spread.ravel(), minlength=count)
    return _unlabel(total, x)


def trace_adjoint(g: Any, x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The adjoint of ``x`` in ``np.trace(x, offset, axis1, axis2)``: ``g`` on the diagonal."""
    g = np.asarray(g, dtype=float)[..., None]
    return gather_adjoint(g, np.diagonal, x, offset, axis1, axis2)


def items_adjoint(g: Any, xs: Any) -> Any:
    """The adjoint of ``xs`` in the builtin ``sum(xs)``: ``g`` for each item (a list), or
    spread along the first axis of an array."""
    if isinstance(xs, list | tuple):
        return Parts(unbroadcast(g, item) for item in xs)
    out = np.empty(np.shape(xs))
    out[...] = g
    return out


def extreme_items_adjoint(g: Any, xs: Any, z: Any) -> Any:
    """The adjoint of ``xs`` in the builtin ``max(xs)``/``min(xs)`` (value ``z``): the items
    equal to it share ``g`` evenly, as in forward mode."""
    chosen = [bool(item == z) for item in xs]
    share = g / sum(chosen)
    if isinstance(xs, list | tuple):
        return Parts(share if c else 0.0 for c in chosen)
    out = np.zeros(np.shape(xs))
    out[np.asarray(chosen)] = share
    return out


def extreme_args_adjoint(g: Any, x: Any, z: Any, args: list) -> Any:
    """The adjoint of the operand ``x`` of ``max(a, b, c...)`` (value ``z``)."""
    return g / sum(1 for a in args if a == z) if x == z else 0.0


# -- cumulative sums and moments -------------------------------------------------------------
def cumsum_adjoint(g: Any, x: Any, axis: Any = None) -> Any:
    """The adjoint of ``x`` in ``np.cumsum(x, axis)``: ``g`` summed from the end."""
    g = np.asarray(g, dtype=float)
    if axis is None:
        flat = np.cumsum(g[::-1])[::-1]
        return _like(flat, x)
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


def moment_adjoint(
    g: Any, x: Any, z: Any, axis: Any, keepdims: bool, ddof: Any, std: bool
) -> np.ndarray:
    """The adjoint of ``x`` in ``np.var`` (``std``: ``np.std``) with ``axis``, ``ddof`` and
    ``keepdims``: ``2 (x - mean) / (N - ddof)`` times ``g`` (over ``2 std`` for ``std``, and
    0 where the standard deviation is 0, as in forward mode)."""
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise Refused("np.var/np.std of a complex value")
    count = x.size // max(np.size(z), 1) - ddof
    g = np.asarray(g, dtype=float)
    if std:
        z = np.asarray(z)
        g = np.where(z == 0, 0.0, g / (count * np.where(z == 0, 1.0, z)))
    else:
        g = g * (2.0 / count)
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    centred = x - np.mean(x, axis=axis, keepdims=True)
    return centred * g


# -- the Jacobian of a forward helper --------------------------------------------------------
def dense_adjoint(g: Any, x: Any, tangent: Any, /, *args: Any) -> Any:
    """The adjoint of ``x`` from ``tangent(dx, *args, k)``, a forward helper linear in ``dx``
    (which has a trailing axis of ``k`` directions): run once with the identity, then
    contracted with ``g``."""
    _real(g)
    shape = np.shape(x)
    n = int(np.prod(shape))
    if n * max(np.size(g), n) > DENSE_LIMIT:  # the identity and the Jacobian
        raise Refused(
            f"an operation whose transpose fmad builds as a dense Jacobian ({n} x "
            f"{max(np.size(g), n)} entries, over its limit of {DENSE_LIMIT})"
        )
    identity = np.eye(n).reshape(shape + (n,))
    jac = np.asarray(tangent(identity, *args, n))
    jac = np.broadcast_to(jac, np.shape(g) + (n,))
    return _like(np.tensordot(np.asarray(g, dtype=float), jac, axes=np.ndim(g)), x)


# -- contractions ----------------------------------------------------------------------------
def _parse(subscripts: str, count: int) -> tuple[list[str], str]:
    text = subscripts.replace(" ", "")
    if "." in text:
        raise Refused("np.einsum with '...'")
    if "->" in text:
        inputs, output = text.split("->")
    else:
        inputs = text
        letters = inputs.replace(",", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    parts = inputs.split(",")
    if len(parts) != count:
        raise Refused("np.einsum with subscripts that do not match its operands")
    return parts, output


def einsum_adjoint(g: Any, which: int, subscripts: str, /, *operands: Any) -> Any:
    """The adjoint of ``operands[which]`` in ``np.einsum(subscripts, *operands)``: the
    einsum of ``g`` and the other operands onto its subscripts (summed over the letters
    only it has, then spread back over them)."""
    _real(g)
    parts, output = _parse(subscripts, len(operands))
    mine = parts[which]
    if len(set(mine)) != len(mine):
        raise Refused("np.einsum with a repeated index in a differentiated operand")
    others = [p for i, p in enumerate(parts) if i != which]
    seen = set(output).union(*others)
    kept = "".join(c for c in mine if c in seen)
    spec = ",".join([output, *others]) + "->" + kept
    rest = [o for i, o in enumerate(operands) if i != which]
    out = np.einsum(spec, np.asarray(g, dtype=float), *rest)
    shape = np.shape(operands[which])
    if kept != mine:
        out = np.broadcast_to(
            np.expand_dims(out, tuple(i for i, c in enumerate(mine) if c not in seen)), shape
        )
    return _like(out, operands[which])


def polyval_coefficients_adjoint(g: Any, p: Any, x: Any) -> Any:
    """The adjoint of the coefficients ``p`` in ``np.polyval(p, x)`` (along the first axis
    of ``p``): ``g`` times each power of ``x``, summed back to a coefficient's shape."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    x = np.asarray(x, dtype=float)
    return np.stack([unbroadcast(g * x ** (n - 1 - i), p[i]) for i in range(n)])


def _letters(n: int, start: int = 0) -> str:
    return string.ascii_letters[start : start + n]


def tensordot_subscripts(a: Any, b: Any, axes: Any = 2) -> str:
    """The einsum subscripts of ``np.tensordot(a, b, axes)``."""
    na, nb = np.ndim(a), np.ndim(b)
    if isinstance(axes, int):
        left, right = list(range(na - axes, na)), list(range(axes))
    else:
        left, right = axes
        left = [left] if isinstance(left, int) else list(left)
        right = [right] if isinstance(right, int) else list(right)
    left = [i % na for i in left]
    right = [i % nb for i in right]
    sa = list(_letters(na))
    sb = list(_letters(nb, na))
    for i, j in zip(left, right, strict=True):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in left] + [
        c for j, c in enumerate(sb) if j not in right
    ]
    return "".join(sa) + "," + "".join(sb) + "->" + "".join(out)


def inner_subscripts(a: Any, b: Any) -> str:
    """The einsum subscripts of ``np.inner(a, b)`` (a scalar operand: a product)."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        return f"{_letters(na)},{_letters(nb, na)}->{_letters(na + nb)}"
    sa = _letters(na)
    sb = _letters(nb - 1, na) + sa[-1]
    return f"{sa},{sb}->{sa[:-1]}{sb[:-1]}"


def outer_adjoint(g: Any, x: Any, other: Any, left: bool) -> Any:
    """The adjoint of ``x`` in ``np.outer(x, other)`` (``left``) or ``np.outer(other, x)``."""
    g = np.asarray(g, dtype=float)
    v = np.ravel(other)
    return _like(g @ v if left else v @ g, x)


# -- linear algebra --------------------------------------------------------------------------
def _mT(a: Any) -> Any:
    return np.swapaxes(a, -1, -2)


def inv_adjoint(g: Any, z: Any) -> Any:
    """The adjoint of ``a`` in ``z = inv(a)``: ``-z^T g z^T``."""
    zt = _mT(z)
    return -(zt @ g @ zt)


def solve_adjoint(g: Any, a: Any, b: Any, x: Any, left: bool) -> Any:
    """The adjoint of ``a`` (``left``) or ``b`` in ``x = solve(a, b)``: ``gb = solve(a^T,
    g)``, ``ga = -gb x^T``."""
    vector = np.ndim(b) == 1 and np.ndim(x) == np.ndim(a) - 1
    gb = np.linalg.solve(_mT(a), g[..., None] if vector else g)
    if not left:
        return unbroadcast(gb[..., 0] if vector else gb, b)
    xs = np.asarray(x)[..., None] if vector else np.asarray(x)
    return unbroadcast(-(gb @ _mT(xs)), a)


def det_adjoint(g: Any, a: Any) -> Any:
    """The adjoint of ``a`` in ``det(a)``: ``g`` times the transposed adjugate (``det(a)
    inv(a)^T``, and defined where ``a`` is singular), forward mode's helper."""
    return np.asarray(g, dtype=float)[..., None, None] * _mT(adjugate(a))


def norm2_adjoint(g: Any, x: Any, z: Any) -> Any:
    """The adjoint of ``x`` in ``np.linalg.norm(x)``: ``g x / z``, 0 where ``z`` is 0."""
    return np.asarray(g * np.asarray(x, dtype=float) / np.where(z == 0, 1.0, z))


def norm_adjoint(g: Any, x: Any, ord: Any, axis: Any, keepdims: bool, kind: str) -> Any:
    """The adjoint of ``x`` in ``np.linalg.norm(x, ord, axis, keepdims)`` (and
    ``vector_norm``, ``matrix_norm``): forward mode's helper's Jacobian."""

    def tangent(dx: Any, k: int) -> Any:
        return norm_tangent(dx, x, ord, axis, keepdims, k, kind)

    return dense_adjoint(g, x, tangent)


def average_adjoint(g: Any, a: Any, w: Any, axis: Any, keepdims: bool) -> Any:
    """The adjoint of ``a`` in ``np.average(a, axis, weights=w, keepdims=keepdims)``
    (weights that carry no derivative): forward mode's helper's Jacobian."""

    def tangent(da: Any, k: int) -> Any:
        return average_tangent(da, None, a, w, axis, keepdims, k)

    return dense_adjoint(g, a, tangent)


def _stable(x: Any, axis: Any) -> Any:
    return np.argsort(x, axis=axis, kind="stable")


def _scatter(g: Any, x: Any, order: Any, axis: Any) -> Any:
    """The adjoint of ``x`` in the permutation of ``x`` that puts entry ``order[i]`` at
    position ``i`` along ``axis`` (None: of the flattened ``x``)."""
    _real(g)
    out = np.zeros(np.shape(x))
    if axis is None:
        out.reshape(-1)[order] = np.ravel(g)
    else:
        np.put_along_axis(out, order, np.asarray(g, dtype=float), axis)
    return _like(out, x)


def sort_adjoint(g: Any, x: Any, axis: Any = -1) -> Any:
    """The adjoint of ``x`` in ``np.sort(x, axis)``: ``g`` put back where a stable argsort
    took each entry from (ties keep their order, as in forward mode)."""
    return _scatter(g, x, _stable(x, axis), axis)


def partition_adjoint(g: Any, x: Any, z: Any, axis: Any = -1) -> Any:
    """The adjoint of ``x`` in ``z = np.partition(x, kth, axis)``: entries matched by value
    as forward mode matches them."""
    rank = np.argsort(_stable(z, axis), axis=axis)
    if axis is None:
        order = _stable(x, None)[rank]
    else:
        order = np.take_along_axis(_stable(x, axis), rank, axis=axis)
    return _scatter(g, x, order, axis)


def diff_adjoint(g: Any, x: Any, n: int, axis: int, prepend: Any, append: Any) -> Any:
    """The adjoint of ``x`` in ``np.diff(x, n, axis, prepend=..., append=...)`` (``None``:
    not given): each difference transposed (``g`` to the later entry, ``-g`` to the
    earlier), then the constants' part dropped."""
    g = np.asarray(g, dtype=float)
    axis = axis % max(np.ndim(x), 1)
    for _ in range(n):
        ends = [(0, 0)] * g.ndim
        ends[axis] = (1, 0)
        later = np.pad(g, ends)
        ends[axis] = (0, 1)
        g = later - np.pad(g, ends)
    start = 0 if prepend is None else (1 if np.ndim(prepend) == 0 else np.shape(prepend)[axis])
    count = np.shape(x)[axis]
    return _like(np.take(g, np.arange(start, start + count), axis=axis), x)


def ediff1d_adjoint(g: Any, x: Any, to_begin: Any, to_end: Any) -> Any:
    """The adjoint of ``x`` in ``np.ediff1d(x, to_end, to_begin)``."""
    start = 0 if to_begin is None else np.size(to_begin)
    part = np.ravel(g)[start : start + max(np.size(x) - 1, 0)]
    return _like(diff_adjoint(part, np.ravel(x), 1, 0, None, None), x)


def softmax_adjoint(g: Any, z: Any, axis: Any, log: bool) -> Any:
    """The adjoint of ``x`` in ``z = softmax(x, axis)`` (``log``: ``log_softmax``)."""
    g = np.asarray(g, dtype=float)
    if log:
        return g - np.exp(z) * np.sum(g, axis=axis, keepdims=True)
    return z * (g - np.sum(g * z, axis=axis, keepdims=True))


def logsumexp_adjoint(g: Any, x: Any, z: Any, axis: Any, keepdims: bool) -> Any:
    """The adjoint of ``x`` in ``z = logsumexp(x, axis, keepdims=keepdims)``: ``g`` times
    the softmax of ``x`` over the axes."""
    if axis is not None and not keepdims:
        z, g = np.expand_dims(z, axis), np.expand_dims(g, axis)
    elif axis is None and not keepdims:
        z = np.reshape(z, (1,) * np.ndim(x))
        g = np.reshape(g, (1,) * np.ndim(x))
    return _like(g * np.exp(np.asarray(x, dtype=float) - z), x)


def real_adjoint(g: Any, x: Any, imag: bool) -> Any:
    """The adjoint of a real ``x`` in ``x.real`` (``g``) or ``x.imag`` (0); a complex ``x``
    is refused."""
    if np.iscomplexobj(x):
        raise Refused("the real or imaginary part of a complex value")
    return zeros_like(x) if imag else g


def zeros_like(x: Any) -> Any:
    return np.zeros(np.shape(x)) if np.ndim(x) else 0.0


def quantile_adjoint(g: Any, x: Any, q: Any, axis: Any, keepdims: bool, scale: float) -> Any:
    """The adjoint of ``x`` in ``np.quantile(x, q / scale, axis, keepdims=keepdims)``
    (``np.median``, ``np.percentile``): forward mode's helper's Jacobian (ties share)."""

    def tangent(dx: Any, k: int) -> Any:
        return quantile_tangent(dx, x, q, axis, keepdims, k, scale)

    return dense_adjoint(g, x, tangent)


def helper_adjoint(g: Any, slot: int, slots: tuple, kpos: int, helper: Any, /, *args: Any) -> Any:
    """The adjoint of ``args[slot]`` in ``helper(*args)``, a helper of generated code linear
    in its tangent arguments at ``slots`` (the others of them read as zero), with its
    direction count ``k`` at ``kpos``: the helper's Jacobian."""
    if args[kpos] is not None:
        raise Refused(f"{helper.__name__}() with several directions (k={args[kpos]})")

    def tangent(dx: Any, k: int) -> Any:
        new = [None if i in slots else a for i, a in enumerate(args)]
        new[slot], new[kpos] = dx, k
        out = helper(*new)
        if isinstance(out, tuple | list):
            raise Refused(f"{helper.__name__}() returning several values")
        return out

    return dense_adjoint(g, args[slot], tangent)
