"""The last helpers of reverse mode's transposes (``fmad_lin`` in the printed code): a
function linear in one argument transposed column by column, and ``np.dot`` in all its
forms (a number, vectors, matrices, stacks).
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from fmad import runtime_reverse as rev
from fmad.runtime_reverse import Refused
from fmad.runtime_transpose import DENSE_LIMIT, einsum_adjoint, tensordot_subscripts

COLUMN_LIMIT = 4096  # calls of the function linear_adjoint makes at most


def linear_adjoint(g: Any, f: Any, x: Any, /, *args: Any, **keywords: Any) -> Any:
    """The adjoint of ``x`` in ``f(x, *args, **keywords)``, ``f`` linear in ``x``
    (``np.trapezoid``, ``np.gradient`` along an axis, ``np.pad`` with an odd reflection):
    ``f`` of each unit vector is a column of its Jacobian, contracted with ``g``."""
    if np.iscomplexobj(g):
        raise Refused("a complex value on the way to the output")
    shape = np.shape(x)
    n = int(np.prod(shape))
    g = np.asarray(g, dtype=float)
    if n > COLUMN_LIMIT or n * max(g.size, 1) > DENSE_LIMIT:
        raise Refused(
            f"an operation whose transpose fmad builds column by column ({n} columns, over "
            f"its limit of {COLUMN_LIMIT})"
        )
    out = np.empty(n)
    unit = np.zeros(n)
    for i in range(n):
        unit[i] = 1.0
        column = f(unit.reshape(shape), *args, **keywords)
        unit[i] = 0.0
        if isinstance(column, list | tuple):
            raise Refused("a function returning several arrays")
        out[i] = np.sum(g * np.asarray(column))
    out = out.reshape(shape)
    return out if isinstance(x, np.ndarray) or shape else float(out)


def dot_adjoint(g: Any, a: Any, b: Any, left: bool) -> Any:
    """The adjoint of ``a`` (``left``) or ``b`` in ``np.dot(a, b)``: a product when one is a
    number, the matrix products up to 2 dimensions, else the contraction of the last axis of
    ``a`` with the second-to-last of ``b``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        other = b if left else a
        return rev.unbroadcast(g * np.conj(other), a if left else b)
    if na <= 2 and nb <= 2:
        return rev.dot_left(g, a, b) if left else rev.dot_right(g, a, b)
    spec = tensordot_subscripts(a, b, ([na - 1], [max(nb - 2, 0)]))
    return einsum_adjoint(g, 0 if left else 1, spec, a, b)


def explicit_subscripts(subscripts: str, operands: tuple) -> str:
    """``subscripts`` with each ``...`` written out as letters it does not use (aligned from
    the right, as numpy broadcasts them), and its output given."""
    text = subscripts.replace(" ", "")
    if "..." not in text:
        return text
    inputs, arrow, output = text.partition("->")
    parts = inputs.split(",")
    if len(parts) != len(operands):
        raise Refused("np.einsum with subscripts that do not match its operands")
    free = [c for c in string.ascii_letters if c not in text]
    width = max(
        np.ndim(o) - (len(p) - 3) for p, o in zip(parts, operands, strict=True) if "..." in p
    )
    spare = "".join(free[:width])
    sizes: dict[str, int] = {}
    for i, (p, o) in enumerate(zip(parts, operands, strict=True)):
        if "..." in p:
            n = np.ndim(o) - (len(p) - 3)
            shape = np.shape(o)[p.index("...") : p.index("...") + n]
            for c, size in zip(spare[width - n :], shape, strict=True):
                if sizes.setdefault(c, size) != size:
                    raise Refused("np.einsum whose '...' axes broadcast")
            parts[i] = p.replace("...", spare[width - n :])
    if not arrow:
        letters = "".join(parts)
        singles = sorted(c for c in set(letters) if letters.count(c) == 1 and c not in spare)
        output = spare + "".join(singles)
    return ",".join(parts) + "->" + output.replace("...", spare)


def einsum_ellipsis_adjoint(g: Any, which: int, subscripts: str, /, *operands: Any) -> Any:
    """``einsum_adjoint`` of subscripts that may hold ``...``, and a differentiated operand
    with a repeated index (``"ii->i"``: the adjoint of its distinct indices, put on the
    diagonal it was read from, zeros elsewhere)."""
    spec = explicit_subscripts(subscripts, operands)
    inputs, output = spec.split("->") if "->" in spec else (spec, None)
    parts = inputs.split(",")
    if output is None:  # numpy's implicit output: the indices read once, sorted
        letters = "".join(parts)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    mine = parts[which]
    if len(set(mine)) == len(mine):
        return einsum_adjoint(g, which, spec, *operands)
    x = np.asarray(operands[which])
    distinct = "".join(dict.fromkeys(mine))
    sizes = {c: x.shape[mine.index(c)] for c in distinct}
    stand_in = np.zeros(
        tuple(sizes[c] for c in distinct)
    )  # the operand with its indices made distinct
    parts[which] = distinct
    rebuilt = ",".join(parts) + "->" + output
    reduced = einsum_adjoint(g, which, rebuilt, *operands[:which], stand_in, *operands[which + 1 :])
    grid = np.indices(x.shape, sparse=True)
    keep = np.ones(x.shape, dtype=bool)
    for axis, c in enumerate(mine):
        keep = keep & (grid[axis] == grid[mine.index(c)])
    picked = tuple(grid[mine.index(c)] for c in distinct)
    return np.where(keep, np.asarray(reduced)[picked], 0.0)
