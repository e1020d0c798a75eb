"""Functions tests/test_export.py exports: globals, helpers and registered derivatives.

This module does not import fmad (the registrations are in the test), so an export that
imports a function from it runs without fmad. Its rules live in tests/export_rules.py.
"""

import math

import numpy as np

SCALE = 3.0
OFFSETS = np.array([0.5, -1.0, 2.0])
ORDER = (1, 2)


def softplus(x):
    return np.log1p(np.exp(x))


def softplus_derivative(x):
    return 1.0 / (1.0 + np.exp(-x))


def plain_helper(x):
    """Called on data only: the generated code calls it as the original does."""
    return math.cos(x) + ORDER[1]


def uses_globals(x, w):
    return SCALE * np.sum(OFFSETS * w) + plain_helper(x) * np.sum(w * w)


def bundled(X, a, b, c):
    return np.sum((a * X + b) ** 2 * c)


def registered(x, w):
    return softplus(w * x) + math.tanh(w)


def cube_root(x):
    return np.cbrt(x)


def registered_elsewhere(x, w):
    return cube_root(w * x + 2.0)


def with_defaults(x, w, scale=2.0, *, shift=0.5):
    return scale * w * x + shift * w


class Config:
    factor = 2.0

    def scaled(self, w):
        return self.factor * w


CONFIG = Config()


def uses_object(x, w):
    return CONFIG.factor * w * x
