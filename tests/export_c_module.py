"""Functions the C export's tests export (tests/test_export_c.py); lines marked LINE-<tag>
are where a refusal must point."""

import math

import numpy as np


def affine(a, b, scale=2.0):
    return a * scale + b


def rows_loop(X, y, w0, w1, b):
    """A loss over the rows of a 2-D array, with a helper, a branch and a while."""
    total = 0.0
    for i in range(len(X)):
        r = affine(w0, X[i, 0], 1.0) * X[i, 1] + w1 * X[i, 0] + b - y[i]
        if r > 1.0:
            total += 2.0 * r - 1.0
        else:
            total += r * r
    k = 0
    while k < 3 and total > 100.0:
        total = math.sqrt(total)
        k += 1
    return total / len(X) + 0.5 * math.exp(-(w0**2))


def integer_ops(xs, n, w):
    acc = 0.0
    for i in range(-n, n + 1):
        acc += w * (i // 3) + (i % 4) * xs[i % len(xs)] - w ** (i % 3)
    return acc + w * (7.5 // w) - (w % -1.25)


def domain_error(w):
    return math.log(w) * w


def nested(w):
    def inner(z):  # LINE-nested
        return z * z

    return inner(w)


def prints(w):
    print(w)  # LINE-print
    return w * w


def list_sum(w, b):
    return sum([w, b * w])  # LINE-list


def matmul(X, y, w, b):
    r = X @ w + b - y
    return np.mean(r**2) + 0.1 * np.sum(w**2)


def logistic(X, labels, w, b):
    margins = labels * (X @ w + b)
    return np.mean(np.log(1.0 + np.exp(-margins))) + 0.01 * np.dot(w, w)


def scalar_params_whole_arrays(x, y, w, b):
    return np.mean((w * x + b - y) ** 2) + abs(w) * len(x)


def array_branch(X, w):
    if w[0] > 0.0:  # LINE-array-branch
        return np.sum(X @ w)
    return 0.0


def maybe_unbound(xs, n, w):
    for i in range(n):
        last = xs[i] * w
    if w > 0.0:
        extra = w * w
    else:
        return last - w
    return last + extra
