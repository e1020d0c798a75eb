"""The ``fmad_sel`` helpers of reverse mode: the masks of the branches of ``np.where``.

In ``np.where(c, a, b)`` the adjoint of ``a`` is 0 where ``c`` is false. The line that made
``a`` (``np.log(p)``, ``np.sqrt(p) * 2.0``) would multiply that 0 by its partial, which
may be infinite there (``1 / p`` at 0): 0 * inf is nan, where forward mode's ``np.where``
picks the other branch's tangent and never reads this one. Reverse mode computes, for each
such line, which of its elements the output reads (:func:`branch_mask`, :func:`narrow`),
and keeps its contributions there only (:func:`selected_only`): forward mode's answer.
:mod:`fmad.reverse_select` decides which lines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmad.runtime_reverse import Refused


def reduce_to(mask: Any, shape: tuple) -> Any:
    """``mask`` (booleans) brought to ``shape``: an element is true where any element it
    was broadcast to is (the reverse of broadcasting, ``any`` where ``unbroadcast`` sums)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == shape:
        return mask
    full = np.broadcast_shapes(mask.shape, shape)
    mask = np.broadcast_to(mask, full)
    lead = len(full) - len(shape)
    if lead:
        mask = mask.any(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and mask.shape[i] != 1)
    if axes:
        mask = mask.any(axis=axes, keepdims=True)
    return mask


def branch_mask(cond: Any, x: Any, first: bool, parent: Any = None) -> Any:
    """Where the branch ``x`` of ``np.where(cond, ...)`` (the first or the second) is read:
    ``cond`` (or its negation), within ``parent``, the mask of the ``np.where``'s own
    result when that is a branch too; in ``x``'s shape."""
    picked = np.asarray(cond, dtype=bool)
    if not first:
        picked = ~picked
    if parent is not None:
        picked = picked & parent
    return reduce_to(picked, np.shape(x))


def narrow(mask: Any, x: Any) -> Any:
    """The mask of an operand ``x`` of a masked line whose result has ``mask``'s shape."""
    return reduce_to(mask, np.shape(x))


def selected_only(contribution: Any, mask: Any) -> Any:
    """A contribution of a masked line (in its result's shape, before any sum over
    broadcast axes): itself where ``mask``, 0 elsewhere (never 0 * an infinite partial)."""
    if np.shape(contribution) != np.shape(mask):  # fmad.reverse_select chose the line
        if np.all(np.isfinite(contribution)):
            return contribution  # no 0 * inf to hide
        raise Refused(
            "a branch of np.where made by a line whose adjoint is not elementwise "
            "(reverse mode cannot keep its contributions to the selected elements)"
        )
    out = np.where(mask, contribution, 0.0)
    return out if isinstance(contribution, np.ndarray) else out[()]


def zero_times_infinite(contribution: Any, g: Any) -> Any:
    """A contribution of a line a branch of ``np.where`` reads that cannot be masked (read
    by another line too, or in another block): refused where it is nan and its line's
    adjoint ``g`` is 0 (a zero adjoint times an infinite partial; forward mode may give 0
    there, where the branch is not selected); itself elsewhere."""
    bad = np.isnan(contribution)
    if not np.any(bad):
        return contribution
    if np.shape(g) != np.shape(bad) or np.any(bad & (g == 0)):
        raise Refused(
            "a branch of np.where computed from a value with an infinite derivative where the "
            "branch is not selected, which other lines read too (reverse mode would multiply "
            "a zero adjoint by it); compute the branch from its own line"
        )
    return contribution
