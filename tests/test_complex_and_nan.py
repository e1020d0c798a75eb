"""Silent wrong answers fixed (issue 13): ``abs``, ``np.var``, ``np.std`` of complex values
carrying a derivative are refused at the user's line (their derivative is not the real
formula's); ``np.fmax``/``np.fmin`` with a NaN operand follow the other operand, as the value
does."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fmad
from tests.fdcheck import check_gradients

C = np.array([1.0 + 2.0j, -1.0 + 0.5j, 0.3 - 0.2j])


def line_of(fn, text):
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, s in enumerate(lines) if text in s)


def np_abs_complex(w):
    z = w * C + 0.5j
    return np.sum(np.abs(z))


def builtin_abs_complex(w):
    z = w * (1.0 + 2.0j)
    return abs(z)


def absolute_complex(w):
    return np.sum(np.absolute(w * C))


def var_complex(w):
    z = w * C
    return np.var(z)


def std_method_complex(w):
    z = w * C
    return z.std()


@pytest.mark.parametrize(
    "fn", [np_abs_complex, builtin_abs_complex, absolute_complex, var_complex, std_method_complex]
)
@pytest.mark.parametrize("w", [0.7, np.array([0.7, 0.2, -0.1])])
def test_complex_values_carrying_a_derivative_are_refused(fn, w):
    d = fmad.differentiate(fn)
    with pytest.raises(fmad.UnsupportedError) as info:
        d(w)
    assert str(info.value).startswith(f"{__file__}:{line_of(fn, 'return')}:")
    assert "complex" in str(info.value)


def abs_of_real(w, x):
    return np.sum(np.abs(w * x - 1.0)) + abs(w)


def var_of_real(w, x):
    return np.var(w * x) + np.std(x * w, ddof=1)


@pytest.mark.parametrize("fn", [abs_of_real, var_of_real])
def test_real_values_keep_their_derivative(fn):
    x = np.array([0.5, -1.0, 2.0, 3.0])
    check_gradients(fmad.differentiate(fn, wrt=["w"]), {"w": 0.7, "x": x})
    check_gradients(
        fmad.differentiate(fn, wrt=["w"]), {"w": np.array([0.7, 0.1, -0.3, 2.0]), "x": x}
    )


def abs_of_complex_data(w, z):
    return w * np.sum(np.abs(z))  # the complex value carries no derivative: fine


def test_abs_of_complex_data_without_a_derivative():
    check_gradients(fmad.differentiate(abs_of_complex_data, wrt=["w"]), {"w": 0.7, "z": C})


def fmax_fmin(a, b):
    return np.fmax(a, b) + 2.0 * np.fmin(a, b)


@pytest.mark.parametrize(
    ("a", "b", "da", "db"),
    [
        (np.nan, 2.0, 0.0, 3.0),
        (1.0, np.nan, 3.0, 0.0),
        (1.0, 2.0, 2.0, 1.0),
        (3.0, 2.0, 1.0, 2.0),
        (2.0, 2.0, 1.5, 1.5),
    ],
)
def test_fmax_and_fmin_follow_the_operand_that_is_not_nan(a, b, da, db):
    value, grads = fmad.differentiate(fmax_fmin)(a, b)
    assert value == fmax_fmin(a, b)
    assert grads == {"a": da, "b": db}


def test_fmax_with_nan_entries_in_arrays():
    a = np.array([np.nan, 1.0, 3.0, np.nan])
    b = np.array([2.0, np.nan, 1.0, np.nan])
    value, grads = fmad.differentiate(fmax_fmin, wrt=["a"])(a, b)
    np.testing.assert_array_equal(value, fmax_fmin(a, b))
    np.testing.assert_array_equal(np.diag(grads["a"]), [0.0, 3.0, 1.0, 3.0])
