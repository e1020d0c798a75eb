"""Functions whose results are booleans, counts or indices carry no derivative: a value
computed through them stays exact, and the rest of the expression is differentiated."""

from __future__ import annotations

import numpy as np

import fmad


def counts_and_tests(w, x):
    m = np.any(x * w > 1.0) and not np.all(x * w > 1.0)
    k = np.count_nonzero(x * w > 0.5) + np.flatnonzero(x * w > 0.5).size
    i = np.searchsorted(np.sort(x * w), 0.7) + np.argpartition(x * w, 1)[0]
    j = np.argwhere(x * w > 0.5).size + int(np.logical_xor(x[0] * w > 0, x[1] * w > 0))
    return np.sum(x * w) * (2.0 if m else 1.0) + k + i + j + float(np.isscalar(w))


def test_boolean_count_and_index_functions_have_zero_derivative() -> None:
    x = np.array([0.2, 0.6, 0.9])
    value, grads = fmad.differentiate(counts_and_tests, wrt=["w"])(1.5, x)
    assert value == counts_and_tests(1.5, x)
    assert abs(grads["w"] - 2.0 * x.sum()) < 1e-12
