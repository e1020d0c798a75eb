"""Functions for tests/test_runtime_errors.py: their line numbers are asserted, so add new
functions at the end."""

import numpy as np


def reciprocal(w):
    r = 1.0 / w
    return r * 2.0


def log_of(w):
    t = w * 2.0
    z = np.log(t)
    return np.sum(z)


def with_tanh(w):
    z = np.tanh(w)
    return z * 3.0


def matmul_mismatch(X, w):
    r = X @ w
    return np.sum(r)


def uses_special(w):
    z = special(w)
    return z * 2.0


def special(x):
    return x * 1.0


def special_derivative(x):
    raise LookupError("the user's derivative failed")


def calls_argument(w, nonlinearity=np.tanh):
    z = nonlinearity(w)
    return z * 2.0


def calls_eigvals(A, b):
    x = np.linalg.eigvals(A * b)
    return np.sum(x)


def calls_fft(A, w):
    r = np.fft.fft(A * w)
    return np.sum(r)


def helper_divides(a):
    q = 1.0 / a
    return q * a


def calls_helper(w):
    z = helper_divides(w * 1.0)
    return z + w


def calls_nested(w):
    def inner(a):
        q = 1.0 / a
        return q * w

    z = inner(w - 1.0)
    return z
