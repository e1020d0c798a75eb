"""A derivative rule in a module of its own (no fmad import): an export imports it."""

import numpy as np


def cube_root_derivative(x):
    return 1.0 / (3.0 * np.cbrt(x) ** 2)
