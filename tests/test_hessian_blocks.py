"""fmad.hessian computes each symmetric pair of blocks once (fmad.hessian_blocks).

The second-order code returns ``None`` for each mirrored block and for the derivatives of
the value; the mirror is the computed block transposed (bit for bit), each diagonal block
is exactly symmetric, and every path (one pass, or one Hessian-vector product per column)
gives the Hessian of central differences of fmad's own gradient."""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

import fmad
from fmad.hessian_blocks import Plan
from tests.test_higher import numeric_hessian

RNG = np.random.default_rng(11)
X = RNG.normal(size=(12, 3))
T = (RNG.random(12) < 0.5).astype(float)


def logistic(X, t, w, b):
    z = X @ w + b
    p = 1.0 / (1.0 + np.exp(-z))
    return -np.mean(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))


def two_layers(X, M, v, c):
    h = np.tanh(X @ M)
    return np.sum((h @ v + c) ** 2) / len(X) + 0.1 * np.sum(M * M) * c


def branches(x, w, b):
    if x > 0:
        return np.sum(np.sin(w) * b) + b**3
    acc = b
    for i in range(3):
        acc = acc * np.sum(w * w) + math.cos(b) * i
    return acc


def scalars(a, b, c):
    return math.exp(a * b) + math.sin(c) * a**2 + b * c


CASES = [
    (logistic, ["w", "b"], {"X": X, "t": T, "w": RNG.normal(size=3) * 0.3, "b": 0.1}),
    (logistic, ["b", "w"], {"X": X, "t": T, "w": RNG.normal(size=3) * 0.3, "b": 0.1}),
    (
        two_layers,
        ["M", "v", "c"],
        {"X": X, "M": RNG.normal(size=(3, 2)) * 0.5, "v": RNG.normal(size=2), "c": 0.3},
    ),
    (branches, ["w", "b"], {"x": 1.0, "w": RNG.normal(size=4), "b": 0.4}),
    (branches, ["w", "b"], {"x": -1.0, "w": RNG.normal(size=4) * 0.5, "b": 0.4}),
    (scalars, ["a", "b", "c"], {"a": 0.3, "b": -0.7, "c": 1.1}),
]


def swapped(block, ra: int, rb: int):
    """``block`` of shape ``shape(b) + shape(a)`` with its axes in ``a, b`` order."""
    return np.transpose(block, [*range(rb, rb + ra), *range(rb)])


def returned_tuple(source: str, name: str) -> ast.Tuple:
    tree = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == name
    )
    returns = [s for s in ast.walk(tree) if isinstance(s, ast.Return)]
    assert returns
    return returns[-1].value


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES)
def test_mirrors_are_exact_transposes_and_diagonal_blocks_exactly_symmetric(fn, wrt, args):
    value, _, hess = fmad.hessian(fn, wrt=wrt)(**args)
    assert value == fn(**args)
    for a in wrt:
        ra = np.ndim(args[a])
        if ra:
            n = np.size(args[a])
            square = np.asarray(hess[a][a]).reshape(n, n)
            np.testing.assert_array_equal(square, square.T)
        for b in wrt:
            rb = np.ndim(args[b])
            assert np.shape(hess[a][b]) == np.shape(args[a]) + np.shape(args[b])
            np.testing.assert_array_equal(hess[a][b], swapped(hess[b][a], ra, rb))
            if a != b and isinstance(hess[a][b], np.ndarray):
                assert not np.shares_memory(hess[a][b], hess[b][a])  # each its own array


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES)
def test_one_pass_equals_differences_and_the_columns_of_hvp(fn, wrt, args):
    hessian = fmad.hessian(fn, wrt=wrt)
    value, grads, hess = hessian(**args)
    # this went through the one pass, its mirrors pruned
    assert [code[1].pruned for code in hessian._code.values()] == [True]
    expected = numeric_hessian(fn, wrt, args)
    order = list(args)
    positional = tuple(args[k] for k in order)
    spec = hessian.spec(positional, {})
    v2, g2, by_columns = hessian.columns(spec, positional, {})
    assert value == v2
    for a in wrt:
        np.testing.assert_allclose(grads[a], g2[a], rtol=1e-12, atol=1e-14)
        for b in wrt:
            np.testing.assert_allclose(hess[a][b], expected[a][b], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(hess[a][b], by_columns[a][b], rtol=1e-10, atol=1e-13)
            # the column path is exactly symmetric too
            ra, rb = np.ndim(args[a]), np.ndim(args[b])
            np.testing.assert_array_equal(by_columns[a][b], swapped(by_columns[b][a], ra, rb))


def test_the_smaller_parameter_is_the_direction_of_a_pair():
    plan = Plan(("w", "b", "c", "M"), ((5,), None, None, (2, 3)))
    # w (5) and b (1): d(g_w)/db; b and c (ties): the later one is the direction
    assert (0, 1) in plan.computed and (1, 0) not in plan.computed
    assert (1, 2) in plan.computed and (2, 1) not in plan.computed
    # M (6) and w (5): d(g_M)/dw
    assert (3, 0) in plan.computed and (0, 3) not in plan.computed
    assert all((i, i) in plan.computed for i in range(4))
    assert len(plan.computed) == 4 + 6 and len(plan.mirrors) == 6


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES)
def test_the_second_order_code_returns_no_mirrored_block(fn, wrt, args):
    hessian = fmad.hessian(fn, wrt=wrt)
    hessian(**args)
    shapes = {k: np.shape(v) or None for k, v in args.items() if k in wrt}
    shapes.update({k: np.shape(v) for k, v in args.items() if k not in wrt})
    source = hessian.show(shapes={k: s for k, s in shapes.items() if s})
    plan = Plan(wrt, tuple(np.shape(args[w]) or None for w in wrt))
    returned = returned_tuple(source, fn.__name__)
    n = len(wrt)
    for j, direction in enumerate(returned.elts[1:]):
        assert isinstance(direction.elts[0], ast.Constant) and direction.elts[0].value is None
        for i in range(n):
            item = direction.elts[1 + i]
            skipped = isinstance(item, ast.Constant) and item.value is None
            assert skipped == ((i, j) not in plan.computed), (i, j, ast.unparse(returned))


def test_logistic_regression_no_longer_loops_over_the_columns_of_w():
    hessian = fmad.hessian(logistic, wrt=["w", "b"])
    source = hessian.show(shapes={"X": (12, 3), "t": (12,), "w": (3,)})
    # d(g_b)/dw (a loop over w's columns) is the transpose of d(g_w)/db: not computed
    assert "per_direction(fmad_rt_1.full" not in source
    assert "_db_dw" not in source and "_dw_db" in source
    # the derivative of the value (the gradient again) is not computed either
    assert "dmean_1_dw_1" not in source
    # signs folded: -(-e) is e, a + (-u) is a - u (exact)
    # (the first-order code folds its own signs, so the sigmoid's chain has none left)
    assert "-(-" not in source and "+ -" not in source and "--" not in source
