"""Known pitfalls of source-to-source differentiation (DESIGN.md section 4, and the bugs the
Tangent project shipped): negative constants in printed code, active exponents, attribute
reads, globals rebound after the transform, shape-(1,) parameters, the primal value, and
inputs left alone.
"""

from __future__ import annotations

import copy
import functools
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fmad
from tests import passes_module as pm
from tests.fdcheck import central_fd, check_gradients, same_value

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


@functools.cache
def transformed_once(fn, wrt: tuple[str, ...] | None = None):
    """One transform per function for the property tests (transforming is the slow part)."""
    return fmad.differentiate(fn, wrt=wrt)


def arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    size = math.prod(shape)
    return st.lists(finite, min_size=size, max_size=size).map(
        lambda xs: np.array(xs, dtype=float).reshape(shape)
    )


# ---------------------------------------------------------------- negative constants


def test_negative_constants_are_printed_in_parentheses() -> None:
    source = fmad.differentiate(pm.negative_constants).source
    assert "(-2.0) ** 2" in source
    # -2.0 ** 2 is -(2.0 ** 2) == -4.0 in Python
    assert not re.search(r"(?<![(\w])-\d+(\.\d*)? \*\*", source), source
    assert re.search(r"\*\* \(-1\.5\)|\*\* -1\.5", source), source


@SETTINGS
@given(w=st.floats(0.05, 20.0))
def test_printed_source_executed_gives_the_compiled_numbers(w: float) -> None:
    compiled = transformed_once(pm.negative_constants)
    namespace = dict(pm.negative_constants.__globals__)
    exec(compiled.source, namespace)
    printed = namespace["negative_constants"]
    value, grads = compiled(w)
    assert printed(w) == (value, *grads.values())  # the printed code returns a flat tuple
    assert same_value(value, pm.negative_constants(w))
    assert math.isclose(grads["w"], 4.0 - 1.5 * w**-2.5, rel_tol=1e-12)


# ---------------------------------------------------------------- a ** b


def test_power_with_respect_to_the_exponent_is_not_zero() -> None:
    _, grads = check_gradients(fmad.differentiate(pm.power), {"a": 1.5, "b": 2.5})
    assert math.isclose(grads["b"], 1.5**2.5 * math.log(1.5), rel_tol=1e-12)
    assert grads["b"] != 0.0


@pytest.mark.parametrize(
    "args",
    [
        {"a": np.array([1.5, 2.0, 0.5]), "b": 0.75},
        {"a": np.array([1.5, 2.0, 0.5]), "b": np.array([0.75, 2.0, -1.0])},
        {"a": 3.0, "b": np.array([0.5, 1.5])},
    ],
    ids=["array-base", "both-arrays", "array-exponent"],
)
def test_power_with_array_operands(args) -> None:
    check_gradients(fmad.differentiate(pm.power), args)


# ---------------------------------------------------------------- attribute reads


@pytest.mark.parametrize(
    ("fn", "wrt", "args"),
    [
        (pm.transposed, ["w"], {"X": np.arange(6.0).reshape(2, 3), "w": 1.5}),
        (pm.transposed, ["w"], {"X": np.arange(6.0).reshape(2, 3), "w": np.array([1.5])}),
        (pm.transposed, ["X"], {"X": np.arange(6.0).reshape(2, 3), "w": np.arange(2.0)}),
        (pm.matrix_transpose, ["W"], {"W": np.arange(6.0).reshape(2, 3), "x": np.ones(2)}),
        (pm.real_part, ["w"], {"x": np.array([1.5, -2.0]), "w": 0.5}),
        (pm.real_part, ["x", "w"], {"x": 1.5, "w": 0.5}),
    ],
    ids=["T-scalar", "T-shape1", "T-array-param", "T-matmul", "real-array", "real-float"],
)
def test_attribute_reads_differentiate(fn, wrt, args) -> None:
    _, grads = check_gradients(fmad.differentiate(fn, wrt=wrt), args)
    assert any(np.any(np.asarray(g) != 0) for g in grads.values())


def test_real_part_of_complex_data() -> None:
    x = np.array([1.0 + 2.0j, 3.0 - 1.0j])
    value, grads = fmad.differentiate(pm.real_part, wrt=["w"])(x, 0.5)
    assert same_value(value, pm.real_part(x, 0.5))
    # z.real * 2.0 with z = x * w: d/dw = 2 Re(x)
    assert np.array_equal(grads["w"], 2.0 * x.real)


# ---------------------------------------------------------------- globals rebound


def test_a_global_value_rebound_after_decoration_is_seen(monkeypatch) -> None:
    differentiated = fmad.differentiate(pm.reads_scale)
    assert differentiated(1.5) == (4.5, {"w": 3.0})
    monkeypatch.setattr(pm, "SCALE", 5.0)
    assert differentiated(1.5) == (7.5, {"w": 5.0})


def test_a_global_function_rebound_after_decoration_is_seen(monkeypatch) -> None:
    differentiated = fmad.differentiate(pm.calls_activation)
    assert differentiated(2.0) == (4.0, {"w": 2.0})
    monkeypatch.setattr(pm, "activation", pm.cube)
    assert pm.calls_activation(2.0) == 8.0
    assert differentiated(2.0) == (8.0, {"w": 12.0})


def test_a_global_rule_function_rebound_after_decoration_is_seen(monkeypatch) -> None:
    differentiated = fmad.differentiate(pm.calls_elementwise)
    assert differentiated(0.5) == (np.sin(0.5), {"w": np.cos(0.5)})
    monkeypatch.setattr(pm, "ELEMENTWISE", np.tanh)
    value, grads = differentiated(0.5)
    assert value == np.tanh(0.5)
    assert math.isclose(grads["w"], 1.0 - np.tanh(0.5) ** 2, rel_tol=1e-12)


# ---------------------------------------------------------------- shape-(1,) parameters


class NoFloat(np.ndarray):
    """An array that refuses float(): fmad must keep shapes, never convert."""

    def __float__(self) -> float:
        raise AssertionError("float() was called on a shape-(1,) array")


def no_float(a: np.ndarray) -> NoFloat:
    return np.asarray(a, dtype=float).view(NoFloat)


@pytest.mark.parametrize(
    ("fn", "data"),
    [
        (pm.train_loop, (0.3, 1.2)),
        (pm.mean_loss, (np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5))),
        (pm.mixed_model, (np.linspace(-1.0, 1.0, 5).reshape(5, 1), np.linspace(0.0, 1.0, 5))),
    ],
    ids=["train_loop", "mean_loss", "mixed_model"],
)
def test_shape_1_parameters_keep_their_shape(fn, data) -> None:
    rng = np.random.default_rng(3)
    w, b = rng.random(1), rng.random(1)
    X, y = (no_float(np.atleast_1d(d)) for d in data)
    differentiated = fmad.differentiate(fn, wrt=["w", "b"])
    value, grads = differentiated(X, y, no_float(w), no_float(b))
    assert same_value(value, fn(X, y, no_float(w), no_float(b)))
    for name, param in (("w", w), ("b", b)):
        assert type(grads[name]) is np.ndarray and grads[name].shape == (1,), grads[name]
        plain = {"X": np.asarray(X), "y": np.asarray(y), "w": w, "b": b}
        want = central_fd(fn, plain, name).reshape(np.shape(value) + (1,))
        if np.ndim(value) == 1 and np.size(value) == 1:  # a shape-(1,) loss
            want = want.reshape(1)
        assert np.allclose(grads[name], want, rtol=1e-6, atol=1e-8), (name, param)


# ---------------------------------------------------------------- the primal value


@SETTINGS
@given(args=st.tuples(finite, finite, finite, finite))
def test_primal_is_bit_for_bit_scalars(args) -> None:
    train_loop = transformed_once(pm.train_loop, ("w", "b"))
    assert same_value(train_loop(*args)[0], pm.train_loop(*args))
    x, w, b, _ = args
    nested = transformed_once(pm.nested_expression)
    assert same_value(nested(x, w, b)[0], pm.nested_expression(x, w, b))


@SETTINGS
@given(args=st.tuples(finite, finite, finite, st.integers(0, 5)))
def test_primal_is_bit_for_bit_through_loops_and_helpers(args) -> None:
    loop = transformed_once(pm.loop_branch_helper, ("w", "b"))
    assert same_value(loop(*args)[0], pm.loop_branch_helper(*args))


@SETTINGS
@given(X=arrays((4, 2)), y=arrays((4,)), w=arrays((2,)), b=finite, shape1=arrays((1,)))
def test_primal_is_bit_for_bit_with_arrays(X, y, w, b, shape1) -> None:
    model = transformed_once(pm.mixed_model)
    assert same_value(model(X, y, w, b)[0], pm.mixed_model(X, y, w, b))
    assert same_value(model(X, y, w, shape1)[0], pm.mixed_model(X, y, w, shape1))
    loss = transformed_once(pm.mean_loss, ("w", "b"))
    assert same_value(loss(y, y, shape1, shape1)[0], pm.mean_loss(y, y, shape1, shape1))


@SETTINGS
@given(a=st.floats(0.1, 4.0), b=finite, xs=st.lists(finite, max_size=4))
def test_primal_is_bit_for_bit_power_and_lists(a, b, xs) -> None:
    assert same_value(transformed_once(pm.power)(a, b)[0], pm.power(a, b))
    comprehension = transformed_once(pm.comprehension, ("w",))
    assert same_value(comprehension(xs, b)[0], pm.comprehension(xs, b))


# ---------------------------------------------------------------- inputs are not mutated


@pytest.mark.parametrize(
    ("fn", "wrt", "args"),
    [
        (pm.mixed_model, None, (np.eye(3), np.ones(3), np.full(3, 0.5), np.ones(1))),
        (pm.train_loop, None, (np.arange(3.0), np.ones(3), np.ones(1), np.zeros(1))),
        (pm.appends_to_input, None, ([1.0, 2.0], 0.5)),
        (pm.comprehension, None, ([1.0, -2.0], 0.5)),
        (pm.augmented_item, ["w"], ([1.0, 2.0], 0.5)),
    ],
    ids=["mixed_model", "train_loop", "list-loop", "comprehension", "item-augment"],
)
def test_inputs_are_not_mutated(fn, wrt, args) -> None:
    before = copy.deepcopy(args)
    fmad.differentiate(fn, wrt=wrt)(*args)
    assert same_value(args, before)


def test_in_place_add_on_an_input_array_is_refused() -> None:
    """``x += w`` on an ndarray mutates the caller's array in Python. fmad never changes its
    inputs, and its rewrite ``x = x + w`` would give the caller a different array than the
    original does, so it refuses at call time (once it knows ``x`` is an array) with the
    user's line; a number ``x`` is rebound, as in Python (see tests/test_mutation.py)."""
    x = np.arange(3.0)
    with pytest.raises(fmad.UnsupportedError, match=r"passes_module\.py:\d+: 'x \+= w'"):
        fmad.differentiate(pm.in_place_add, wrt=["w"])(x, 0.5)
    assert np.array_equal(x, np.arange(3.0))
    value, grads = fmad.differentiate(pm.in_place_add, wrt=["w"])(2.0, 0.5)
    assert value == pm.in_place_add(2.0, 0.5)
    assert grads["w"] == 2.0 + 2 * 0.5


def test_in_place_add_on_an_input_list_is_refused() -> None:
    xs = [1.0, 2.0]
    with pytest.raises(fmad.UnsupportedError, match=r"passes_module\.py:\d+: 'xs \+= \[w\]'"):
        fmad.differentiate(pm.in_place_list, wrt=["w"])(xs, 3.0)
    assert xs == [1.0, 2.0]


def test_list_concatenation_with_an_inactive_list() -> None:
    value, grads = fmad.differentiate(pm.list_concatenation, wrt=["w"])([1.0, 2.0], 3.0)
    assert value == pm.list_concatenation([1.0, 2.0], 3.0) == 7.0
    assert grads == {"w": 2.0}
