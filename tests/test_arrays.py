"""Vector and matrix parameters in realistic models, checked element by element against
finite differences; plus the array-side promises: primal bit-identical, inputs untouched,
shape-(1,) and list parameters, shape errors at the user's line, no materialised identity."""

from __future__ import annotations

import ast
import copy
import inspect
import re
from typing import Any

import numpy as np
import pytest

import fmad
from tests import arrays_module as models
from tests.arrays_module import gradient_mismatch, numeric_jacobian


def regression_data(rng: np.random.Generator, n: int = 20, d: int = 3) -> dict[str, Any]:
    X = rng.normal(size=(n, d))
    return {"X": X, "y": X @ rng.normal(size=d) + 0.3 + rng.normal(0.0, 0.1, n)}


def linear_args() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {**regression_data(rng), "w": rng.normal(size=3), "b": 0.2}


def logistic_args() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 4))
    y = (X[:, 0] - X[:, 2] + rng.normal(0.0, 0.5, 30) > 0).astype(float)
    return {"X": X, "y": y, "w": rng.normal(0.0, 0.5, 4), "b": -0.1}


def network_args() -> dict[str, Any]:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 2))
    return {
        "X": X,
        "y": np.sin(X[:, 0]) + X[:, 1],
        "W1": rng.normal(size=(2, 2)),
        "b1": rng.normal(size=2),
        "v": rng.normal(size=2),
        "b3": 0.1,
    }


def softmax_args() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 10)
    return {
        "X": rng.normal(size=(10, 4)),
        "Y": np.eye(3)[labels],
        "W": rng.normal(0.0, 0.5, (4, 3)),
        "b": rng.normal(0.0, 0.1, 3),
    }


MODELS = [
    (models.linear_regression, linear_args, ["w", "b"]),
    (models.logistic_regression, logistic_args, ["w", "b"]),
    (models.network_matrix, network_args, ["W1", "b1", "v", "b3"]),
    (models.softmax_cross_entropy, softmax_args, ["W", "b"]),
]
MODEL_IDS = ["linear-regression", "logistic-regression", "network-2-2-1", "softmax-xent"]


def call(fn, wrt: list[str], args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    names = inspect.signature(fn).parameters
    return fmad.differentiate(fn, wrt=wrt)(*[args[name] for name in names])


@pytest.mark.parametrize(("fn", "make_args", "wrt"), MODELS, ids=MODEL_IDS)
def test_model_gradients_match_finite_differences(fn, make_args, wrt) -> None:
    args = make_args()
    _, grads = call(fn, wrt, args)
    assert list(grads) == wrt
    for name in wrt:
        assert np.shape(grads[name]) == np.shape(args[name]), name
        mismatch = gradient_mismatch(grads[name], numeric_jacobian(fn, args, name))
        assert mismatch is None, f"d/d{name}: {mismatch}"


@pytest.mark.parametrize(("fn", "make_args", "wrt"), MODELS, ids=MODEL_IDS)
def test_model_value_is_bit_identical_to_the_original(fn, make_args, wrt) -> None:
    args = make_args()
    value, _ = call(fn, wrt, args)
    expected = fn(**args)
    assert type(value) is type(expected)
    assert np.asarray(value).tobytes() == np.asarray(expected).tobytes()


@pytest.mark.parametrize(("fn", "make_args", "wrt"), MODELS, ids=MODEL_IDS)
def test_model_inputs_are_not_mutated(fn, make_args, wrt) -> None:
    args = make_args()
    before = copy.deepcopy(args)
    call(fn, wrt, args)
    for name, value in before.items():
        assert type(args[name]) is type(value), name
        assert np.array_equal(args[name], value), name


def test_linear_regression_with_keyword_arguments() -> None:
    args = linear_args()
    by_position = call(models.linear_regression, ["w", "b"], args)
    by_keyword = fmad.differentiate(models.linear_regression, wrt=["w", "b"])(**args)
    assert by_keyword[0] == by_position[0]
    np.testing.assert_array_equal(by_keyword[1]["w"], by_position[1]["w"])
    assert by_keyword[1]["b"] == by_position[1]["b"]


def test_jacobian_of_array_output_has_output_then_parameter_axes() -> None:
    args = linear_args()
    X, w = args["X"], args["w"]
    _, grads = fmad.differentiate(models.linear_predictions, wrt=["w", "b"])(X, w, 0.5)
    assert np.shape(grads["w"]) == X.shape  # (N,) + (d,)
    np.testing.assert_allclose(grads["w"], X, rtol=1e-14)
    np.testing.assert_array_equal(grads["b"], np.ones(len(X)))


def test_matrix_network_matches_nine_scalar_parameters() -> None:
    args = network_args()
    W1, b1, v = args["W1"], args["b1"], args["v"]
    scalar_args = {
        "X": args["X"],
        "y": args["y"],
        "w11": W1[0, 0],
        "w12": W1[0, 1],
        "w21": W1[1, 0],
        "w22": W1[1, 1],
        "c1": b1[0],
        "c2": b1[1],
        "v1": v[0],
        "v2": v[1],
        "b3": args["b3"],
    }
    scalar_wrt = ["w11", "w12", "w21", "w22", "c1", "c2", "v1", "v2", "b3"]
    matrix_value, matrix = call(models.network_matrix, ["W1", "b1", "v", "b3"], args)
    scalar_value, scalar = call(models.network_scalar, scalar_wrt, scalar_args)

    np.testing.assert_allclose(matrix_value, scalar_value, rtol=1e-12)
    as_matrix = [[scalar["w11"], scalar["w12"]], [scalar["w21"], scalar["w22"]]]
    np.testing.assert_allclose(matrix["W1"], as_matrix, rtol=1e-10)
    np.testing.assert_allclose(matrix["b1"], [scalar["c1"], scalar["c2"]], rtol=1e-10)
    np.testing.assert_allclose(matrix["v"], [scalar["v1"], scalar["v2"]], rtol=1e-10)
    np.testing.assert_allclose(matrix["b3"], scalar["b3"], rtol=1e-10)
    for name in scalar_wrt:
        mismatch = gradient_mismatch(
            scalar[name], numeric_jacobian(models.network_scalar, scalar_args, name)
        )
        assert mismatch is None, f"d/d{name}: {mismatch}"


def test_shape_one_parameters_give_shape_one_gradients() -> None:
    legacy = np.random.RandomState(0)  # np.random.rand(1), without touching global state
    w, b = legacy.rand(1), legacy.rand(1)
    rng = np.random.default_rng(4)
    X = rng.uniform(-2.0, 2.0, 50)
    y = 2.5 * X - 1.0
    args = {"X": X, "y": y, "w": w, "b": b}
    value, grads = call(models.elementwise_regression, ["w", "b"], args)
    assert np.shape(value) == ()
    for name in ("w", "b"):
        assert isinstance(grads[name], np.ndarray)
        assert grads[name].shape == (1,)
        mismatch = gradient_mismatch(
            grads[name], numeric_jacobian(models.elementwise_regression, args, name)
        )
        assert mismatch is None, f"d/d{name}: {mismatch}"


@pytest.mark.parametrize("container", [list, tuple])
def test_list_and_tuple_parameters_act_like_arrays(container) -> None:
    args = linear_args()
    as_array = call(models.linear_regression, ["w", "b"], args)
    w = container(args["w"].tolist())
    before = copy.deepcopy(w)
    value, grads = call(models.linear_regression, ["w", "b"], {**args, "w": w})
    assert w == before
    assert value == as_array[0]
    assert np.shape(grads["w"]) == (3,)
    np.testing.assert_allclose(grads["w"], as_array[1]["w"], rtol=1e-14)
    np.testing.assert_allclose(grads["b"], as_array[1]["b"], rtol=1e-14)


def test_variable_holding_an_array_is_unwrapped() -> None:
    args = linear_args()
    plain = call(models.linear_regression, ["w", "b"], args)
    w = fmad.Variable("w", args["w"].copy())
    value, grads = call(models.linear_regression, ["w", "b"], {**args, "w": w})
    assert value == plain[0]
    np.testing.assert_array_equal(grads["w"], plain[1]["w"])
    np.testing.assert_array_equal(w.value, args["w"])


def line_of(fn, text: str) -> int:
    """The line number, in its file, of the first line of ``fn`` containing ``text``."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize(
    ("fn", "args", "marker", "shapes"),
    [
        (
            models.linear_regression,
            {"X": np.ones((100, 3)), "y": np.ones(100), "w": np.ones(2), "b": 0.0},
            "X @ w",
            [r"\(100, ?3\)", r"\(2,\)"],
        ),
        (
            models.scaled_sum,
            {"X": np.ones((100, 3)), "w": np.ones(2)},
            "X * w",
            [r"\(100, ?3\)", r"\(2,\)"],
        ),
    ],
    ids=["matmul", "broadcast"],
)
def test_shape_error_names_the_user_line_and_the_shapes(fn, args, marker, shapes) -> None:
    wrt = [name for name in args if name in ("w", "b")]
    with pytest.raises(fmad.ShapeError) as caught:
        call(fn, wrt, args)
    assert isinstance(caught.value, fmad.FmadError)
    message = str(caught.value)
    # Like a compiler's message: path/to/arrays_module.py:LINE: ...
    assert f"arrays_module.py:{line_of(fn, marker)}" in message, message
    for shape in shapes:
        assert re.search(shape, message), message


def test_vector_seed_is_folded_not_materialised_as_an_identity() -> None:
    args = linear_args()
    differentiated = fmad.differentiate(models.linear_regression, wrt=["w", "b"])
    source = differentiated.source_for(args["X"], args["y"], args["w"], args["b"])
    ast.parse(source)
    assert "X @ w" in source or "matmul" in source
    assert not re.search(r"\beye\b|identity", source, re.IGNORECASE), source
