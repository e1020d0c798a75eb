"""Conversions of values that carry a derivative: to a floating type the derivative passes
through; to an integer or boolean type (a step function) it is zero; a type fmad cannot see
when it transforms the function is refused (a guess would be a silent wrong derivative)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from fdcheck import check_gradients

import fmad

THIS_FILE = os.path.basename(__file__)


def astype_int(w):
    x = w * 2.5
    return np.sum(x.astype(int) * w)


def astype_float32_string(w):
    x = w * 2.5
    return np.sum(x.astype("float32") * w)


def asarray_int64(w):
    return np.sum(np.asarray(w * 2.5, dtype=np.int64) * w)


def array_bool_positional(w):
    return np.sum(np.array(w * 2.5, bool) * w)


def asarray_float(w):
    return np.sum(np.asarray(w * 2.5, float) * w)


def astype_unknown(w, t):
    return np.sum((w * 2.5).astype(t) * w)


W = np.array([1.1, 2.3])


@pytest.mark.parametrize(
    ("fn", "want"),
    [
        (astype_int, [2.0, 5.0]),  # d(int(2.5 w) * w)/dw = int(2.5 w)
        (asarray_int64, [2.0, 5.0]),
        (array_bool_positional, [1.0, 1.0]),
    ],
)
def test_integer_and_boolean_conversions_have_zero_derivative(fn, want):
    value, grads = fmad.differentiate(fn, wrt=["w"])(W)
    assert value == fn(W)
    np.testing.assert_array_equal(grads["w"], want)


def test_floating_conversion_keeps_the_derivative():
    check_gradients(fmad.differentiate(asarray_float, wrt=["w"]), {"w": W})


def test_float32_conversion_keeps_the_derivative():
    # float32 rounding swamps finite differences: compare with d(2.5 w * w)/dw = 5 w
    value, grads = fmad.differentiate(astype_float32_string, wrt=["w"])(W)
    assert value == astype_float32_string(W)
    np.testing.assert_allclose(grads["w"], 5.0 * W, rtol=1e-6)


def test_a_dtype_unknown_at_transform_time_is_refused():
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(astype_unknown, wrt=["w"])
    line = astype_unknown.__code__.co_firstlineno + 1
    assert f"{THIS_FILE}:{line}:" in str(info.value)
    assert "dtype 't'" in str(info.value)
