"""User-style models that the array tests differentiate, and the finite differences they
are checked against.

The models live in a real file so fmad can read their source; they are plain functions
(not decorated) so each test chooses its own ``wrt``.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def linear_regression(X, y, w, b):
    return np.mean((X @ w + b - y) ** 2)


def linear_predictions(X, w, b):
    return X @ w + b


def elementwise_regression(X, y, w, b):
    return np.mean((w * X + b - y) ** 2)


def scaled_sum(X, w):
    return np.sum(X * w)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic_regression(X, y, w, b):
    p = sigmoid(X @ w + b)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def network_matrix(X, y, W1, b1, v, b3):
    # Row j of W1 holds the input weights of hidden unit j.
    hidden = np.tanh(X @ W1.T + b1)
    out = hidden @ v + b3
    return np.mean((out - y) ** 2)


def network_scalar(X, y, w11, w12, w21, w22, c1, c2, v1, v2, b3):
    x1 = X[:, 0]
    x2 = X[:, 1]
    h1 = np.tanh(w11 * x1 + w12 * x2 + c1)
    h2 = np.tanh(w21 * x1 + w22 * x2 + c2)
    out = v1 * h1 + v2 * h2 + b3
    return np.mean((out - y) ** 2)


def softmax_cross_entropy(X, Y, W, b):
    logits = X @ W + b
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * log_probs, axis=1))


# --- Test support: never differentiated. ---

FD_STEP = 1e-4
# Fourth-order central stencil: f'(x) ~ sum(c * f(x + k h)) / (12 h).
_STENCIL = ((2.0, -1.0), (1.0, 8.0), (-1.0, -8.0), (-2.0, 1.0))


def _like(original: Any, point: np.ndarray) -> Any:
    """``point`` in the kind of container ``original`` was (float stays float)."""
    if isinstance(original, float | int) and not isinstance(original, bool):
        return float(point)
    return point


def numeric_jacobian(fn: Callable[..., Any], args: dict[str, Any], name: str) -> np.ndarray:
    """d fn(**args) / d args[name] by central differences, shaped output + parameter.

    As in fmad, a value with exactly one element counts as a scalar loss: its gradient has
    the parameter's shape (a shape-(1,) loss of a shape-(1,) parameter gives shape (1,)).
    """
    base = args[name]
    point = np.array(base, dtype=float)
    out_shape = np.shape(fn(**args))
    jacobian = np.zeros(out_shape + point.shape)
    for index in np.ndindex(point.shape):
        step = FD_STEP * max(1.0, abs(float(point[index])))
        total = np.zeros(out_shape)
        for offset, coefficient in _STENCIL:
            shifted = point.copy()
            shifted[index] += offset * step
            value = fn(**{**args, name: _like(base, shifted)})
            total = total + coefficient * np.asarray(value, dtype=float)
        jacobian[(...,) + index] = total / (12.0 * step)
    if math.prod(out_shape) == 1:
        return jacobian.reshape(point.shape)
    return jacobian


def gradient_mismatch(actual: Any, expected: np.ndarray, rtol: float = 1e-6) -> str | None:
    """Why ``actual`` is not ``expected`` (shape first, then values), or None if it is."""
    if np.shape(actual) != np.shape(expected):
        return f"shape {np.shape(actual)} != expected {np.shape(expected)}"
    actual_array = np.asarray(actual, dtype=float)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    if not np.allclose(actual_array, expected, rtol=rtol, atol=1e-7 * scale):
        return f"values\n{actual_array!r}\n!= finite differences\n{expected!r}"
    return None
