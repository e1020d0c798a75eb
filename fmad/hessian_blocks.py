"""The blocks of a Hessian, each symmetric pair computed once (``fmad.hessian``).

The second-order code of ``fmad.hessian`` (fmad's first-order code differentiated again)
returns ``((value, g_1..g_n), (dvalue_d1, dg_1_d1..dg_n_d1), ..., (.., dg_n_dn))``: in the
tuple of direction ``j``, the derivative of the gradient ``g_i`` is the block
``hess[i][j]``. A block and its mirror (``hess[j][i]``, its transpose) are the same numbers,
so :func:`prune` keeps one of each pair in the code, and the derivative of the value (the
gradient again) none: the other outputs become ``None`` and every derivative statement
that only they needed is dropped. :func:`assemble` fills each mirror by transposing its
computed block, so ``hess[j][i]`` equals ``hess[i][j]`` transposed bit for bit, and each
diagonal block is made symmetric the same way (the triangle on and above its diagonal is
the computed one; its lower triangle is the upper one transposed).

Which block of a pair is computed: the one whose direction is the smaller parameter (fewer
elements; at a tie, the later one in ``wrt``). A direction's tangents are computed anyway
for the diagonal block; the work a block adds is carrying the other gradient's last steps
in that direction, which is cheaper in a direction of fewer columns (for logistic
regression: ``d(g_w)/db``, one matrix-vector product, instead of ``d(g_b)/dw``, a loop over
the columns of ``w``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fmad import build as B
from fmad.optimize import drop_dead_tangents

Shape = tuple[int, ...] | None


class Plan:
    """Which blocks the second-order code computes, for parameters of these shapes."""

    def __init__(self, wrt: Sequence[str], shapes: Sequence[Shape]) -> None:
        self.wrt = tuple(wrt)
        self.shapes = tuple(shapes)
        sizes = [math.prod(s) if s is not None else 1 for s in shapes]
        n = len(self.wrt)
        # (i, j): the block d(g_i)/d(p_j) is computed; else it is the mirror of (j, i)
        self.computed = frozenset(
            (i, j)
            for i in range(n)
            for j in range(n)
            if i == j or sizes[j] < sizes[i] or (sizes[j] == sizes[i] and j > i)
        )
        self.order = sorted(self.computed)  # row by row
        self.mirrors = [(i, j) for i in range(n) for j in range(n) if (i, j) not in self.computed]
        self.pruned = False  # set by prune: the code returns None for the mirrors


def prune(tree: ast.FunctionDef, plan: Plan, first_order: ast.FunctionDef) -> bool:
    """Make the second-order code ``tree`` return ``None`` in place of each mirrored block and
    of the derivatives of the value, and drop the derivative statements only those needed.
    ``first_order``: the code ``tree`` differentiates; the names it binds are the values the
    second pass must keep (the value and the gradients are computed as before, bit for bit).
    False (and ``tree`` untouched) when a ``return`` is not the tuple layout expected."""
    n = len(plan.wrt)
    returns = [s for s in B.statements(tree.body) if isinstance(s, ast.Return)]
    if not returns or not all(layout_ok(r.value, n) for r in returns):
        return False
    for r in returns:
        for j, direction in enumerate(r.value.elts[1:]):
            direction.elts[0] = ast.Constant(None)
            for i in range(n):
                if (i, j) not in plan.computed:
                    direction.elts[1 + i] = ast.Constant(None)
    kept = B.bound_names(first_order)
    own = {
        name
        for s in B.statements(tree.body)
        if isinstance(s, ast.Assign)
        for target in s.targets
        for name in B.stored_names(target)
    }
    # only the second pass's own statements may go; the first pass's all stay
    fold_negations(tree, own - kept)
    drop_dead_tangents(tree, own - kept, set())
    plan.pruned = True
    return True


def fold_negations(tree: ast.FunctionDef, own: set[str]) -> None:
    """Signs folded into the second pass's own statements, exactly (IEEE negation only
    flips the sign bit): ``t = -u`` then ``s = -t`` makes ``s = u``; ``t`` read once, by
    ``s = a + t``, ``s = t + a`` or ``s = a - t``, makes ``s = a - u`` or ``s = a + u``.
    ``t`` is then read by nothing (dropped). Only names that hold one value throughout (bound
    once at the top level, or parameters never rebound) are followed."""
    stores = B.names(tree, ast.Store)
    params = set(B.parameters(tree.args))
    stable = {n for n in stores if stores.count(n) == 1} - params
    stable |= params - set(stores)
    reads: dict[str, int] = {}
    for n in B.names(tree, ast.Load):
        reads[n] = reads.get(n, 0) + 1
    negated: dict[str, str] = {}  # t -> u for the statements t = -u
    for s in tree.body:
        if not (
            isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and s.targets[0].id in own
            and s.targets[0].id in stable
        ):
            continue
        target, value = s.targets[0].id, s.value
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            operand = value.operand
            if isinstance(operand, ast.Name) and operand.id in negated:
                s.value = B.name(negated[operand.id])
            elif isinstance(operand, ast.Name) and operand.id in stable:
                negated[target] = operand.id
        elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add | ast.Sub):
            left, right = value.left, value.right
            if isinstance(right, ast.Name) and reads.get(right.id) == 1 and right.id in negated:
                op = ast.Sub() if isinstance(value.op, ast.Add) else ast.Add()
                s.value = ast.BinOp(left=left, op=op, right=B.name(negated[right.id]))
            elif (
                isinstance(value.op, ast.Add)
                and isinstance(left, ast.Name)
                and reads.get(left.id) == 1
                and left.id in negated
            ):
                s.value = ast.BinOp(left=right, op=ast.Sub(), right=B.name(negated[left.id]))


def layout_ok(value: ast.expr | None, n: int) -> bool:
    """``((value, *gradients), *one tuple per direction)``, each of ``1 + n`` items."""
    return (
        isinstance(value, ast.Tuple)
        and len(value.elts) == 1 + n
        and all(isinstance(e, ast.Tuple) and len(e.elts) == 1 + n for e in value.elts)
    )


def block(t: Any, vshape: tuple, a: Shape, b: Shape, fresh: bool = True) -> Any:
    """A raw derivative of a scalar (``vshape`` has one element) as a block of shape
    ``shape(a) + shape(b)`` (each ``()`` for a number; a Python float when both are): a new
    array, or (``fresh=False``) possibly ``t`` itself."""
    shape = (a or ()) + (b or ())
    if type(t) is np.ndarray and t.shape == shape and shape:
        return t.copy() if fresh else t  # the common cases first
    if not shape and isinstance(t, float):
        return float(t)
    columns = tuple(math.prod(s) for s in (a, b) if s is not None)
    out = np.reshape(np.broadcast_to(t, vshape + columns), shape)
    return out.item() if out.ndim == 0 else out.copy()


_UPPER: dict[int, np.ndarray] = {}


def symmetric(square: np.ndarray, rows: tuple) -> np.ndarray:
    """A diagonal block of shape ``rows + rows`` with its lower triangle (as an ``n x n``
    matrix) replaced by its upper one, transposed: exactly symmetric, a new array."""
    n = math.prod(rows)
    upper = _UPPER.get(n)
    if upper is None:
        upper = _UPPER[n] = np.triu(np.ones((n, n), dtype=bool))
    matrix = square.reshape(n, n)
    return np.where(upper, matrix, matrix.T).reshape(rows + rows)


def mirror(computed: Any, a: Shape, b: Shape) -> Any:
    """``hess[b][a]`` from ``hess[a][b]`` (of shape ``shape(a) + shape(b)``): its transpose,
    a new array."""
    if not isinstance(computed, np.ndarray):
        return computed
    if a is None or b is None:
        return computed.copy()
    ra, rb = len(a), len(b)
    axes = (*range(ra, ra + rb), *range(ra))
    return np.ascontiguousarray(np.transpose(computed, axes))


def finish(hess: dict[str, dict[str, Any]], plan: Plan) -> dict[str, dict[str, Any]]:
    """Every block of ``hess`` from the computed ones: each diagonal block symmetric (a new
    array), each mirror the transpose of its computed block (``hess`` holds at least the
    computed ones)."""
    wrt, shapes = plan.wrt, plan.shapes
    for i, a in enumerate(wrt):
        if shapes[i] is not None:
            hess[a][a] = symmetric(hess[a][a], shapes[i])
    for i, j in plan.mirrors:
        hess[wrt[i]][wrt[j]] = mirror(hess[wrt[j]][wrt[i]], shapes[j], shapes[i])
    return hess


def assemble(blocks: Sequence[tuple], vshape: tuple, plan: Plan) -> dict[str, dict[str, Any]]:
    """The Hessian from the raw outputs of the second-order code: ``blocks[j][1 + i]`` is
    the derivative of gradient ``i`` in direction ``j``."""
    wrt, shapes = plan.wrt, plan.shapes
    hess: dict[str, dict[str, Any]] = {a: {} for a in wrt}
    for i, j in plan.order:
        # a diagonal block of an array is copied by finish (made symmetric)
        fresh = i != j or shapes[i] is None
        hess[wrt[i]][wrt[j]] = block(blocks[j][1 + i], vshape, shapes[i], shapes[j], fresh)
    return finish(hess, plan)
