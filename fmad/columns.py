"""Column products: ``X @ w`` by a parameter ``w`` of one element, without BLAS's slow path.

A linear model with one feature writes ``X @ w`` with ``X`` of shape (N, 1) and ``w`` of
shape (1,). BLAS's matrix-vector product handles a matrix of one column poorly: at
N = 1e5 it costs about ten times the elementwise product ``X[:, 0] * w[0]``, which gives the
same bits (:func:`fmad.runtime_arrays.column_product` checks that on this machine once).

:func:`apply` rewrites the tree of the code that runs (after :mod:`fmad.inplace`); ``show``,
``.source``, the golden files and the readable code of a second pass stay without it. After
it, in the function's own body (not in the functions defined in it), each
``z = x @ p`` where ``p`` is a parameter the caller's variant knows to have shape (1,), that
the function never rebinds, and ``x`` is another plain name, reads
``z = z if (z := column_product(x, p)) is not None else x @ p``: the product as it was
wherever the run-time test declines (another shape, dtype or layout, few rows, a result
that is not finite: numpy's own warnings then come from the user's line, as before).
The values computed are bit for bit the same.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

from fmad import build as B
from fmad import runtime_arrays

# False: every matrix product runs as written (the tests compare the two)
ENABLED = True


def apply(
    fn: ast.FunctionDef,
    shapes: Mapping[str, tuple[int, ...]] | None,
    inject: Callable[[object, str], str],
) -> None:
    """Rewrite ``fn`` as the module docstring says; ``shapes``: the shapes of the array
    parameters its variant was made for; ``inject(obj, hint)``: a name under which the code
    may read ``obj``."""
    if not ENABLED or not shapes:
        return
    candidates = {name for name, shape in shapes.items() if shape == (1,)}
    if not candidates:
        return
    params = set(B.parameters(fn.args))
    own = {id(a) for a in _own_args(fn)}
    stored = set()
    for node in ast.walk(fn):  # rebound anywhere, nested functions included: not a candidate
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stored.add(node.id)
        elif isinstance(node, ast.arg) and id(node) not in own:
            stored.add(node.arg)
    columns = candidates & params - stored
    if not columns:
        return
    helper = None
    for s in B.statements(fn.body):
        if not (isinstance(s, ast.Assign) and len(s.targets) == 1):
            continue
        target, value = s.targets[0], s.value
        if not (
            isinstance(target, ast.Name)
            and isinstance(value, ast.BinOp)
            and isinstance(value.op, ast.MatMult)
            and isinstance(value.left, ast.Name)
            and isinstance(value.right, ast.Name)
            and value.right.id in columns
            and target.id not in (value.left.id, value.right.id)
        ):
            continue
        if helper is None:
            helper = inject(runtime_arrays.column_product, "fmad_column")
        z = target.id
        test = ast.Compare(
            left=ast.NamedExpr(
                target=B.store(z),
                value=B.call(B.name(helper), B.name(value.left.id), B.name(value.right.id)),
            ),
            ops=[ast.IsNot()],
            comparators=[ast.Constant(None)],
        )
        s.value = ast.IfExp(test=test, body=B.name(z), orelse=value)
        for node in ast.walk(s.value):  # the new nodes: at the product's place
            if not hasattr(node, "lineno"):
                ast.copy_location(node, value)


def _own_args(fn: ast.FunctionDef) -> list[ast.arg]:
    a = fn.args
    return [x for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x]
