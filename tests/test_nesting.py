"""A differentiated function called inside a differentiated function (issue 9): the inner
gradients are values the outer derivative follows exactly, with no perturbation confusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fmad


def inner(x, y):
    return x + y


d_inner = fmad.differentiate(inner, wrt=["y"])


def outer(x):
    v, g = d_inner(x, 1.0)
    return x * g["y"]


def loss(x, w, b):
    return math.tanh(w * x + b) ** 2


d_loss = fmad.differentiate(loss, wrt=["w", "b"])


def penalised(x, w, b):
    v, g = d_loss(x, w, b)
    return g["w"] ** 2 + v


def summed_in_a_loop(w, n):
    total = 0.0
    for i in range(n):
        v, g = d_loss(0.5 * i, w, 0.1)
        total = total + g["w"] * g["b"]
    return total


def passes_grads_on(x, w, b):
    v, g = d_loss(x, w, b)
    return sum(g.values())


def keeps_the_pair(x, w, b):
    pair = d_loss(x, w, b)
    return pair[0]


def central_difference(f, x: float, h: float = 1e-6) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


def test_the_forwarddiff_perturbation_confusion_case() -> None:
    # d/dx of x * d(x + y)/dy = d/dx of x * 1 = 1, not 2
    assert fmad.differentiate(outer, wrt=["x"])(1.0) == (1.0, {"x": 1.0})


@pytest.mark.parametrize("args", [(0.3, 0.8, -0.2), (-1.2, 0.1, 0.5)])
def test_a_gradient_norm_penalty_is_differentiated_exactly(args) -> None:
    value, grads = fmad.differentiate(penalised, wrt=["w", "b"])(*args)
    assert value == penalised(*args)
    for i, name in ((1, "w"), (2, "b")):
        expected = central_difference(lambda t, i=i: penalised(*replace(args, i, t)), args[i])
        assert math.isclose(grads[name], expected, rel_tol=1e-6, abs_tol=1e-9), name


def replace(args: tuple, i: int, value: float) -> tuple:
    return args[:i] + (value,) + args[i + 1 :]


def test_a_gradient_inside_a_loop_of_the_outer_function() -> None:
    value, grads = fmad.differentiate(summed_in_a_loop, wrt=["w"])(0.7, 4)
    assert value == summed_in_a_loop(0.7, 4)
    expected = central_difference(lambda w: summed_in_a_loop(w, 4), 0.7)
    assert math.isclose(grads["w"], expected, rel_tol=1e-6)


def test_the_second_order_code_is_shown() -> None:
    source = fmad.differentiate(penalised, wrt=["w"]).source
    assert "loss_fwd" in source and "d2" in source


@pytest.mark.parametrize("fn", [passes_grads_on, keeps_the_pair])
def test_uses_fmad_cannot_follow_by_name_are_refused(fn) -> None:
    with pytest.raises(fmad.UnsupportedError, match="test_nesting.py") as info:
        fmad.differentiate(fn, wrt=["w"])
    assert "['w']" in str(info.value)


def vector_inner(X, w):
    return np.sum(X * w)


d_vector = fmad.differentiate(vector_inner, wrt=["w"])


def calls_with_an_array(X, w):
    v, g = d_vector(X, w)
    return np.sum(g["w"]) * v


def test_the_inner_function_takes_numbers_only() -> None:
    differentiated = fmad.differentiate(calls_with_an_array, wrt=["w"])
    assert differentiated(2.0, 3.0)[1]["w"] == 2.0 * 2.0  # numbers: fine
    with pytest.raises(fmad.FmadError, match="takes numbers only"):
        differentiated(np.ones(3), np.ones(3))
