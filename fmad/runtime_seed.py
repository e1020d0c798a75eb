"""Helpers for an array parameter's identity seed, which generated code calls.

Forward mode carries an array parameter's ``k`` directions together, from the identity seed
``np.eye(k)`` laid out as ``S + (k,)``. Its zeros are structural: the direction of element
``j`` does not move element ``i``. A plain product with the seed (``c[..., None] * seed``,
``c @ seed``) turns one element's infinite partial (``sqrt`` or ``log`` at 0) into
``inf * 0 = nan`` in every other element's direction; these helpers keep those zeros zero,
so each element's derivative is its own (as reverse mode gives). Plain numpy, no fmad.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def seed_sum(c: Any, t: Any, x: Any, k: int) -> Any:
    """``sum_product(c, t, x, k)`` where ``t`` is an array parameter's identity seed (shape
    ``S + (k,)``): ``c`` summed over the axes the parameter was broadcast along, flat. It
    is exact where ``c`` is not finite: ``c @ eye`` would make one element's inf or nan
    ``inf * 0 = nan`` in every other element's direction, where the derivative is plain."""
    shape, xs = np.shape(t)[:-1], np.shape(x)
    c = np.asarray(c)
    lead = len(xs) - len(shape)
    if lead < 0 or np.broadcast_shapes(c.shape, shape, xs) != xs:
        terms = np.broadcast_to(on_seed(c, t), (*xs, k))
        return np.sum(np.reshape(terms, (-1, k)), axis=0)
    full_c = np.broadcast_to(c, xs)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and xs[lead + i] != 1
    )
    if axes:
        full_c = np.sum(full_c, axis=axes)
    # a new array (never a view of ``c``, which may be the caller's data), in the
    # dtype ``c @ t`` has
    return np.array(np.reshape(full_c, -1), dtype=np.result_type(c, t))


def seed_mean(c: Any, t: Any, x: Any, k: int) -> Any:
    """``mean_product`` on the identity seed (see seed_sum)."""
    return seed_sum(c, t, x, k) / max(np.size(x), 1)


def on_seed(c: Any, t: Any) -> Any:
    """``np.asarray(c)[..., None] * t`` for ``t`` an array parameter's identity seed or a
    part of it, its zeros kept exactly zero where ``c`` is not finite (see seed_sum)."""
    c = np.asarray(c)[..., None]
    out = c * t
    if out.dtype.kind in "fc" and not np.isfinite(c).all():
        out = np.where(t != 0, out, np.zeros((), out.dtype))
    return out
