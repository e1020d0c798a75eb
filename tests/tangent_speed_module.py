"""Functions for tests/test_tangent_speed.py (fmad reads their source)."""

import numpy as np


def mse(X, y, w, b):
    return np.mean((X @ w + b - y) ** 2)


def logistic(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def scaled_terms(x, a, b):
    return np.sum(-3.0 * (a * x) ** 2 + 2 * b * x - a / 3.0 - (-b) * (2.5 * x))


def loop_mean(xs, w, b):
    total = 0.0
    for x in xs:
        total += (w * x + b) ** 2
    return total / len(xs)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def net(x1, x2, y, w1, w2, v, b1, b2):
    h = 1.0 / (1.0 + np.exp(-(w1 * x1 + w2 * x2 + b1)))
    out = 1.0 / (1.0 + np.exp(-(v * h + b2)))
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


def net_with_helper(x1, x2, y, w1, w2, v, b1, b2):
    h = sigmoid(w1 * x1 + w2 * x2 + b1)
    out = sigmoid(v * h + b2)
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


def bundle_mixed(x, y, a, b, c):
    u = a * x + b * np.sin(x) - c
    s = np.sum(u * u)  # the reduction of a product of two tangents made of rows
    m = np.mean(c * u, axis=0)  # over an axis: the tangent itself
    return s + m + np.max(u * b)


def bundle_reassigned(x, a, b, c, n):
    acc = a * x
    for _ in range(n):
        acc = acc * b + c * x
    return np.sum(acc) - np.mean(2.0 * acc)


def bundle_broadcast(x, a, b, c):
    # a tangent that is smaller than its value (a scalar seed row against an (N, 2) array)
    return np.mean(np.exp(a) * x + b - c * x[:, 0:1])
