"""jvp, hvp, hessian and Objective: fmad's first-order code transformed again.

Hessians are checked against analytic ones and against central differences of fmad's own
gradient (loops, branches and helpers included); ``hvp`` against ``hessian``; ``Objective``
against SciPy's optimizers reaching the least-squares solution."""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

import fmad
from tests import passes_module as pm

RNG = np.random.default_rng(7)
X = RNG.normal(size=(8, 3))
Y = RNG.normal(size=8)
W = RNG.normal(size=3)


def logistic(X, t, w, b):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


def two_params_loop(x, w, b):
    acc = 0.0
    for i in range(3):
        if i % 2 == 0:
            acc = acc + pm.scaled_helper(x, w) * b
        else:
            acc = acc + math.sin(w * b)
    return acc * acc


def vector_output(X, w):
    return X @ w


# ---------------------------------------------------------------- jvp


def test_jvp_is_the_directional_derivative() -> None:
    jvp = fmad.jvp(pm.mse, wrt=["w", "b"])
    direction = {"w": RNG.normal(size=3), "b": 0.7}
    value, tangent = jvp((X, Y, W, 0.2), direction)
    _, grads = fmad.differentiate(pm.mse, wrt=["w", "b"])(X, Y, W, 0.2)
    assert value == pm.mse(X, Y, W, 0.2)
    assert math.isclose(tangent, grads["w"] @ direction["w"] + grads["b"] * 0.7, rel_tol=1e-12)


def test_jvp_names_left_out_are_zero_and_the_tangent_has_the_value_shape() -> None:
    jvp = fmad.jvp(vector_output, wrt=["w"])
    value, tangent = jvp((X, W), {"w": np.ones(3)})
    np.testing.assert_array_equal(value, X @ W)
    np.testing.assert_allclose(tangent, X.sum(axis=1), rtol=1e-12)
    value, tangent = jvp((X, W), {})
    assert tangent.shape == value.shape and not tangent.any()


def test_jvp_with_ones_is_the_elementwise_derivative() -> None:
    def softplus(x):
        return np.log1p(np.exp(x))

    xs = np.linspace(-2, 2, 5)
    _, tangent = fmad.jvp(softplus)((xs,), {"x": np.ones(5)})
    np.testing.assert_allclose(tangent, 1 / (1 + np.exp(-xs)), rtol=1e-12)
    assert "dx_dv" in fmad.jvp(softplus).source


@pytest.mark.parametrize(
    ("tangents", "message"),
    [({"q": 1.0}, "does not differentiate"), ({"w": np.ones(2)}, "has shape")],
)
def test_jvp_bad_directions_are_explained(tangents, message) -> None:
    with pytest.raises(fmad.WrtError, match=message):
        fmad.jvp(pm.mse, wrt=["w", "b"])((X, Y, W, 0.2), tangents)


# ---------------------------------------------------------------- hessian


def test_hessian_of_mean_squared_error_is_analytic() -> None:
    value, grads, hess = fmad.hessian(pm.mse, wrt=["w", "b"])(X, Y, W, 0.2)
    n = len(Y)
    assert value == pm.mse(X, Y, W, 0.2)
    np.testing.assert_allclose(grads["w"], 2 / n * X.T @ (X @ W + 0.2 - Y), rtol=1e-12)
    np.testing.assert_allclose(hess["w"]["w"], 2 / n * X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(hess["w"]["b"], 2 / n * X.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(hess["b"]["w"], 2 / n * X.sum(axis=0), rtol=1e-12)
    assert math.isclose(hess["b"]["b"], 2.0, rel_tol=1e-12)
    assert hess["w"]["w"].shape == (3, 3) and hess["w"]["b"].shape == (3,)


def test_hessian_of_the_seed_example_with_numbers() -> None:
    value, grads, hess = fmad.hessian(pm.train_loop, wrt=["w", "b"])(3.0, 7.0, 0.5, 0.25)
    assert (value, grads) == pm_first_order()
    assert hess == {"w": {"w": 18.0, "b": 6.0}, "b": {"w": 6.0, "b": 2.0}}
    assert type(hess["w"]["w"]) is float


def pm_first_order():
    return fmad.differentiate(pm.train_loop, wrt=["w", "b"])(3.0, 7.0, 0.5, 0.25)


def numeric_hessian(fn, wrt, args: dict, h=1e-6) -> dict:
    """Central differences of fmad's own gradient, parameter by parameter."""
    grad = fmad.differentiate(fn, wrt=wrt)
    out: dict = {a: {} for a in wrt}
    for b in wrt:
        base = np.asarray(args[b], dtype=float)
        columns = []
        for j in range(base.size):
            up, down = dict(args), dict(args)
            step = np.zeros(base.size)
            step[j] = h
            up[b] = (base.ravel() + step).reshape(base.shape)
            down[b] = (base.ravel() - step).reshape(base.shape)
            if base.ndim == 0:
                up[b], down[b] = float(up[b]), float(down[b])
            gu, gd = grad(**up)[1], grad(**down)[1]
            columns.append({a: (np.asarray(gu[a]) - np.asarray(gd[a])) / (2 * h) for a in wrt})
        for a in wrt:
            stacked = np.stack([c[a] for c in columns], axis=-1)
            out[a][b] = stacked.reshape(np.shape(args[a]) + np.shape(args[b]))
    return out


CASES = [
    (pm.loop_branch_helper, ["x", "w", "b"], {"x": 0.3, "w": 1.2, "b": 0.7, "n": 5}),
    (pm.nested_expression, ["x", "w", "b"], {"x": 0.4, "w": -0.3, "b": 1.1}),
    (pm.power, ["a", "b"], {"a": 1.5, "b": 2.5}),
    (two_params_loop, ["w", "b"], {"x": 0.3, "w": 0.8, "b": -0.6}),
    (logistic, ["w", "b"], {"X": X, "t": (Y > 0).astype(float), "w": W * 0.3, "b": 0.1}),
    (pm.mse, ["w", "b"], {"X": X, "y": Y, "w": W, "b": 0.2}),
]


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES)
def test_hessian_matches_differences_of_the_gradient_and_is_symmetric(fn, wrt, args) -> None:
    value, grads, hess = fmad.hessian(fn, wrt=wrt)(**args)
    assert value == fn(**args)
    expected = numeric_hessian(fn, wrt, args)
    for a in wrt:
        for b in wrt:
            np.testing.assert_allclose(hess[a][b], expected[a][b], rtol=1e-5, atol=1e-7)
            # hess[b][a], its axes swapped back, is hess[a][b] to rounding
            ra, rb = np.ndim(args[a]), np.ndim(args[b])
            swapped = np.transpose(hess[b][a], [*range(rb, rb + ra), *range(rb)])
            np.testing.assert_allclose(hess[a][b], swapped, rtol=1e-10, atol=1e-12)


def test_hessian_source_is_the_first_order_code_differentiated_again() -> None:
    source = fmad.hessian(pm.train_loop, wrt=["w", "b"]).source
    assert "d2loss_dw_dw" in source and "d2loss_dw_db" in source
    assert "# line" in source
    shown = fmad.hessian(pm.mse, wrt=["w", "b"]).show(shapes={"X": (None, 3), "w": (3,)})
    assert "d2" in shown and "per_direction" in shown  # one pass, helpers per direction


def test_hessian_needs_a_scalar_output() -> None:
    with pytest.raises(fmad.FmadError, match="scalar output"):
        fmad.hessian(vector_output, wrt=["w"])(X, W)


# ---------------------------------------------------------------- hvp


def test_hvp_is_the_hessian_times_the_direction() -> None:
    args = (X, (Y > 0).astype(float), W * 0.3, 0.1)
    v = {"w": RNG.normal(size=3), "b": -0.4}
    value, grads, hv = fmad.hvp(logistic, wrt=["w", "b"])(args, v)
    _, grads_h, hess = fmad.hessian(logistic, wrt=["w", "b"])(*args)
    assert value == logistic(*args)
    np.testing.assert_allclose(grads["w"], grads_h["w"], rtol=1e-12)
    expected_w = hess["w"]["w"] @ v["w"] + hess["w"]["b"] * v["b"]
    expected_b = hess["b"]["w"] @ v["w"] + hess["b"]["b"] * v["b"]
    np.testing.assert_allclose(hv["w"], expected_w, rtol=1e-10)
    assert math.isclose(hv["b"], expected_b, rel_tol=1e-10)


# ---------------------------------------------------------------- Objective


def test_objective_pack_and_unpack_round_trip() -> None:
    obj = fmad.Objective(pm.mse, ["w", "b"], {"X": X, "y": Y})
    x0 = obj.pack({"w": W, "b": 0.2})
    assert x0.dtype == np.float64 and x0.shape == (4,)
    params = obj.unpack(x0)
    np.testing.assert_array_equal(params["w"], W)
    assert params["b"] == 0.2 and type(params["b"]) is float
    value, grad = obj(x0)
    assert value == pm.mse(X, Y, W, 0.2)
    np.testing.assert_allclose(grad[:3], 2 / 8 * X.T @ (X @ W + 0.2 - Y), rtol=1e-12)
    np.testing.assert_allclose(obj.hess(x0), obj.hess(x0).T, atol=1e-14)
    p = RNG.normal(size=4)
    np.testing.assert_allclose(obj.hessp(x0, p), obj.hess(x0) @ p, rtol=1e-10)
    with pytest.raises(fmad.WrtError, match="numbers"):
        obj.unpack(np.zeros(3))


def test_objective_needs_pack_before_unpack() -> None:
    with pytest.raises(fmad.WrtError, match="pack"):
        fmad.Objective(pm.mse, ["w", "b"], {"X": X, "y": Y}).unpack(np.zeros(4))


@pytest.mark.parametrize(
    ("method", "extra"),
    [("BFGS", None), ("Newton-CG", "hess"), ("trust-ncg", "hessp"), ("trust-exact", "hess")],
)
def test_scipy_minimize_reaches_the_least_squares_solution(method, extra) -> None:
    optimize = pytest.importorskip("scipy.optimize")
    truth = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    obj = fmad.Objective(pm.mse, ["w", "b"], {"X": X, "y": truth})
    options = {} if extra is None else {extra: getattr(obj, extra)}
    result = optimize.minimize(
        obj, obj.pack({"w": np.zeros(3), "b": 0.0}), jac=True, method=method, **options
    )
    design = np.hstack([X, np.ones((8, 1))])
    solution = np.linalg.lstsq(design, truth, rcond=None)[0]
    np.testing.assert_allclose(result.x, solution, atol=1e-5)


def test_scipy_least_squares_with_residuals_and_jac() -> None:
    optimize = pytest.importorskip("scipy.optimize")

    def residuals(x, y, a, k):
        return a * np.exp(k * x) - y

    xs = np.linspace(0, 1, 20)
    obj = fmad.Objective(residuals, ["a", "k"], {"x": xs, "y": 2.0 * np.exp(-1.3 * xs)})
    result = optimize.least_squares(obj.residuals, obj.pack({"a": 1.0, "k": 0.0}), jac=obj.jac)
    np.testing.assert_allclose(result.x, [2.0, -1.3], rtol=1e-8)
    assert obj.jac(result.x).shape == (20, 2)


def test_the_second_pass_reuses_what_the_first_pass_computed() -> None:
    """Forward over forward recomputes the first pass's partials; the optimizer turns a
    top-level statement that computes again what an earlier one did into a copy of it."""
    shown = fmad.hessian(logistic, wrt=["w", "b"]).show(shapes={"X": (None, 3), "w": (3,)})
    body = ast.parse(shown).body[-1].body
    computed = [
        ast.unparse(s.value)
        for s in body
        if isinstance(s, ast.Assign) and isinstance(s.value, ast.BinOp | ast.UnaryOp)
    ]
    assert computed, shown
    assert len(computed) == len(set(computed)), shown
