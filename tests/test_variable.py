"""fmad.Variable: names that record the operation, values, numpy interop, no mutation."""

import numpy as np
import pytest

from fmad import Variable


@pytest.fixture
def w() -> Variable:
    return Variable("w", 1.5)


@pytest.fixture
def X() -> Variable:
    return Variable("X", 2.0)


def test_repr(w: Variable) -> None:
    assert repr(w) == "Variable('w', 1.5)"
    assert repr(w * Variable("X", 2.0)) == "Variable('w_mult_X', 3.0)"


@pytest.mark.parametrize(
    ("expression", "name", "value"),
    [
        (lambda w, X: w + X, "w_add_X", 3.5),
        (lambda w, X: w - X, "w_sub_X", -0.5),
        (lambda w, X: w * X, "w_mult_X", 3.0),
        (lambda w, X: w / X, "w_div_X", 0.75),
        (lambda w, X: w**X, "w_pow_X", 2.25),
        (lambda w, X: -w, "neg_w", -1.5),
        (lambda w, X: +w, "pos_w", 1.5),
        (lambda w, X: w * X + 1, "w_mult_X_add_1", 4.0),
        (lambda w, X: -(w * X), "neg_w_mult_X", -3.0),
    ],
)
def test_operators_name_the_operation(
    w: Variable, X: Variable, expression, name: str, value: float
) -> None:
    result = expression(w, X)
    assert isinstance(result, Variable)
    assert (result.name, result.value) == (name, value)


@pytest.mark.parametrize(
    ("expression", "name", "value"),
    [
        (lambda w: w + 2, "w_add_2", 3.5),
        (lambda w: 2 + w, "2_add_w", 3.5),
        (lambda w: w - 2, "w_sub_2", -0.5),
        (lambda w: 2 - w, "2_sub_w", 0.5),
        (lambda w: w * 2, "w_mult_2", 3.0),
        (lambda w: 2 * w, "2_mult_w", 3.0),
        (lambda w: w / 2, "w_div_2", 0.75),
        (lambda w: 3 / w, "3_div_w", 2.0),
        (lambda w: w**2, "w_pow_2", 2.25),
        (lambda w: 4**w, "4_pow_w", 8.0),
        (lambda w: w * 0.5, "w_mult_0p5", 0.75),
        (lambda w: w * -1, "w_mult_neg1", -1.5),
        (lambda w: np.float64(2.0) * w, "2p0_mult_w", 3.0),
    ],
)
def test_numbers_and_reflected_forms(w: Variable, expression, name: str, value: float) -> None:
    result = expression(w)
    assert isinstance(result, Variable)
    assert (result.name, result.value) == (name, value)


def test_array_operands_either_side() -> None:
    w = Variable("w", 2.0)
    X = np.array([1.0, 2.0, 3.0])
    for result, name in [(w * X, "w_mult_array"), (X * w, "array_mult_w")]:
        assert isinstance(result, Variable)
        assert result.name == name
        np.testing.assert_array_equal(result.value, [2.0, 4.0, 6.0])
    assert (X - w).name == "array_sub_w"
    np.testing.assert_array_equal((X - w).value, [-1.0, 0.0, 1.0])


def test_matmul() -> None:
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    v = Variable("v", np.array([1.0, -1.0]))
    assert (v @ A).name == "v_matmul_array"
    np.testing.assert_array_equal((v @ A).value, [-2.0, -2.0])
    assert (A @ v).name == "array_matmul_v"
    np.testing.assert_array_equal((A @ v).value, [-1.0, -1.0])
    assert (v @ v).name == "v_matmul_v"
    assert (v @ v).value == 2.0


def test_numpy_functions_return_variables(w: Variable) -> None:
    exp_w = np.exp(w)
    assert isinstance(exp_w, Variable)
    assert exp_w.name == "exp_w"
    assert exp_w.value == np.exp(1.5)
    assert np.maximum(w, 0).name == "maximum_w_0"
    v = Variable("v", np.array([1.0, 2.0, 6.0]))
    assert (np.mean(v).name, np.mean(v).value) == ("mean_v", 3.0)
    assert np.sum(v * 2).name == "sum_v_mult_2"
    np.testing.assert_array_equal(np.asarray(v), [1.0, 2.0, 6.0])
    assert np.shape(v) == (3,)


def test_lists_become_arrays() -> None:
    v = Variable("v", [1.0, 2.0])
    np.testing.assert_array_equal((v * 2).value, [2.0, 4.0])


def test_operands_are_not_mutated() -> None:
    data = np.array([1.0, 2.0])
    v = Variable("v", data)
    X = np.array([3.0, 4.0])
    results = [v + X, X + v, v * 2, -v, np.exp(v), v**2, X / v, v @ X]
    assert all(isinstance(r, Variable) for r in results)
    np.testing.assert_array_equal(data, [1.0, 2.0])
    np.testing.assert_array_equal(X, [3.0, 4.0])
    assert v.value is data
    assert v.name == "v"


def test_augmented_assignment_rebinds() -> None:
    data = np.array([1.0, 2.0])
    original = v = Variable("v", data)
    v += 1
    assert v.name == "v_add_1"
    assert original.value is data
    np.testing.assert_array_equal(data, [1.0, 2.0])


def test_comparisons_are_not_overloaded(w: Variable) -> None:
    assert w == w
    assert w != Variable("w", 1.5)  # identity: Variables are containers
    assert len({w, Variable("w", 1.5)}) == 2
    with pytest.raises(TypeError):
        _ = w < 2
    with pytest.raises(TypeError, match="compare the .value"):
        _ = np.array([1.0, 2.0]) < w


def test_unsupported_operands_raise(w: Variable) -> None:
    with pytest.raises(TypeError):
        _ = w * "a"
    with pytest.raises(TypeError):
        _ = w + [1.0, 2.0]


def test_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="name"):
        Variable(1.0, 2.0)  # type: ignore[arg-type]
