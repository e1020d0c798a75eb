"""The tangent algebra's economies (issue 10, items 2, 3 and 5): constants kept out of the
coefficients, reductions contracted for every parameter, copies not repeated, and bundled
scalar parameters contracted row by row. Each keeps the primal bit-identical and the
gradient right; the generated code shows the economy."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fmad
from tests import tangent_speed_module as m
from tests.fdcheck import check_gradients

RNG = np.random.default_rng(10)
X = RNG.normal(size=(40, 3))
Y = (RNG.random(40) > 0.5).astype(float)
x1, x2 = RNG.normal(size=40), RNG.normal(size=40)


def copies(source: str) -> list[str]:
    """Tangent lines that only copy another tangent name (dz_dw = dx_dw)."""
    return re.findall(r"^\s*(d\w+) = (d\w+)$", source, re.M)


def test_a_square_contracts_with_its_constant_outside() -> None:
    d = fmad.differentiate(m.mse, wrt=["w", "b"])
    args = {"X": X, "y": Y, "w": np.array([0.1, -0.2, 0.3]), "b": 0.4}
    check_gradients(d, args)
    source = d.source_for(**args)
    # 2.0 * r is never made: the mean of r is, and 2.0 multiplies the reduced value
    assert "2.0 * fmad_rt.mean_product(" in source
    # b's: the sum of r (np.mean's Python costs microseconds), 2.0 outside
    assert "2.0 * (np.sum(X_matmul_w_add_b_sub_y) / np.size(pow_1))" in source
    assert not re.search(r"_partial = 2\.0 \*", source)
    assert not copies(source)


def test_signs_fold_and_the_scalar_parameter_reduces_without_broadcasting() -> None:
    d = fmad.differentiate(m.logistic, wrt=["w", "b"])
    args = {"X": X[:, :2], "y": Y, "w": np.array([0.1, -0.2]), "b": 0.05}
    check_gradients(d, args)
    source = d.source_for(**args)
    assert "fmad_rt.full" not in source  # b's tangent is known to have the value's shape
    # no line negates a partial: the signs of exp(-z), 1/u and 1 - p fold into one subtraction
    assert not re.search(r"_partial\w* = -\w+$", source, re.M)


@pytest.mark.parametrize(
    "args",
    [
        {"x": np.linspace(-1.0, 2.0, 7), "a": 0.7, "b": -1.3},
        {"x": 1.5, "a": 0.7, "b": -1.3},
        {"x": np.linspace(-1.0, 2.0, 7) + 0.5j, "a": 0.7, "b": -1.3},
    ],
    ids=["array", "float", "complex"],
)
def test_constant_factors_of_every_sign(args) -> None:
    d = fmad.differentiate(m.scaled_terms, wrt=["a", "b"])
    if np.iscomplexobj(args["x"]):
        value, grads = d(**args)
        assert value == m.scaled_terms(**args)
        x, a = args["x"], args["a"]
        assert np.allclose(grads["a"], np.sum(-6.0 * a * x * x - 1.0 / 3.0))
        assert np.allclose(grads["b"], np.sum(2 * x + 2.5 * x))
    else:
        check_gradients(d, args)


def test_a_division_by_a_count_divides_the_tangent() -> None:
    d = fmad.differentiate(m.loop_mean, wrt=["w", "b"])
    check_gradients(d, {"xs": [0.5, -1.0, 2.0], "w": 0.3, "b": 0.1})
    source = d.source
    assert "dtotal_dw / " in source and "1 / " not in source


def test_copies_are_read_through_the_name_they_copy() -> None:
    d = fmad.differentiate(m.mse, wrt=["w", "b"])
    source = d.source_for(X, Y, np.array([0.1, -0.2, 0.3]), 0.4)
    assert "dX_matmul_w_dw" not in source  # X @ w's tangent is X: read as X


def test_a_returned_copy_keeps_the_derivative_name() -> None:
    def f(x, w, b):
        return (w * x + b - 1.0) ** 2

    d = fmad.differentiate(f, wrt=["w", "b"])
    source = d.source
    assert source.rstrip().endswith("return (pow_1, dpow_1_dw, dpow_1_db)")
    check_gradients(d, {"x": 2.0, "w": 0.5, "b": 0.25})


def bundled_args():
    return {"x1": x1, "x2": x2, "y": Y, "w1": 0.5, "w2": -0.4, "v": 1.2, "b1": 0.1, "b2": -0.2}


def test_bundled_parameters_contract_row_by_row_through_a_helper() -> None:
    d = fmad.differentiate(m.net, wrt=["w1", "w2", "v", "b1", "b2"])
    args = bundled_args()
    check_gradients(d, args)
    source = d.source_for(**args)
    assert "row_sums(" in source
    # no (N, k) tangent: nothing is laid out on the trailing direction axis
    assert "[..., None]" not in source
    assert "np.eye" not in source  # the seed rows are folded away with them


def test_bundled_tangents_through_a_helper() -> None:
    # a helper's tangents come back materialised (its variant returns them whole): the
    # gradient is right, the contraction starts after the call
    d = fmad.differentiate(m.net_with_helper, wrt=["w1", "w2", "v", "b1", "b2"])
    check_gradients(d, bundled_args())


def test_bundled_tangents_still_materialise_where_they_are_needed() -> None:
    d = fmad.differentiate(m.bundle_mixed, wrt=["a", "b", "c"])
    x = RNG.normal(size=(6, 2))
    check_gradients(d, {"x": x, "y": x[:, 0], "a": 0.3, "b": -0.7, "c": 0.2})


@pytest.mark.parametrize("n", [0, 1, 3])
def test_bundled_tangents_assigned_in_a_loop(n) -> None:
    d = fmad.differentiate(m.bundle_reassigned, wrt=["a", "b", "c"])
    check_gradients(d, {"x": np.linspace(0.1, 1.0, 5), "a": 0.3, "b": 0.9, "c": -0.4, "n": n})


def test_bundled_tangents_smaller_than_their_value() -> None:
    d = fmad.differentiate(m.bundle_broadcast, wrt=["a", "b", "c"])
    x = RNG.normal(size=(5, 2))
    check_gradients(d, {"x": x, "a": 0.3, "b": -0.7, "c": 0.2})
    source = d.source_for(x, 0.3, -0.7, 0.2)
    assert "row_sums(" in source


def test_row_sums_meets_each_row_with_its_coefficient() -> None:
    from fmad.runtime_arrays import row_sums

    x = np.arange(6.0).reshape(3, 2)
    c, coef = np.linspace(1.0, 2.0, 6).reshape(3, 2), np.array([0.5, -1.0])
    got = row_sums(x, 4, False, (2.0, c, coef, 0), (1, c, None, 2), (1, None, None, 3))
    want = [2.0 * np.sum(c * coef), 0.0, np.sum(c), 6.0]
    assert np.allclose(got, want) and got.dtype == float
    v = np.array([1.0, 2.0, 3.0])
    got = row_sums(v, 2, True, (1, v, v + 1j, 1), (-1, 0.5, None, 1))
    assert np.allclose(got, [0.0, (v @ (v + 1j) - 1.5) / 3]) and got.dtype == complex
    # the sums of float32 arrays stay float32; of float64 ones, a float64 array (checked fast)
    v32 = v.astype(np.float32)
    got = row_sums(v32, 3, False, (1, v32, None, 0), (1, v32, v32, 2))
    assert got.dtype == np.float32 and got.tolist() == [6.0, 0.0, 14.0]
    got = row_sums(v, 3, True, (1, v, None, 0), (1, v, v, 2))
    assert got.dtype == np.float64 and got.tolist() == [2.0, 0.0, 14.0 / 3]
