"""Linear regression over 1,000 noisy samples, with the data as numpy arrays.

The parameters ``w`` and ``b`` are plain floats while ``X`` and ``y`` are arrays; fmad
differentiates the mean squared error through the numpy broadcasting and ``np.mean``.

    python examples/linear_regression_numpy.py
"""

import numpy as np

import fmad

TRUE_SLOPE = 2.5
TRUE_INTERCEPT = -1.0


@fmad.differentiate(wrt=["w", "b"])
def mse(X, y, w, b):
    return np.mean((w * X + b - y) ** 2)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    X = rng.uniform(-2.0, 2.0, size=1000)
    y = TRUE_SLOPE * X + TRUE_INTERCEPT + rng.normal(0.0, 0.5, size=X.shape)

    w = fmad.Variable("w", 0.0)
    b = fmad.Variable("b", 0.0)
    result = fmad.train(mse, [w, b], {"X": X, "y": y}, lr=0.1, epochs=200)

    polyfit_slope, polyfit_intercept = np.polyfit(X, y, deg=1)
    print(f"MSE: {result.losses[0]:.4f} at the first epoch, {result.losses[-1]:.4f} at the last")
    print(f"{'':10} {'slope':>10} {'intercept':>10}")
    print(f"{'truth':10} {TRUE_SLOPE:10.4f} {TRUE_INTERCEPT:10.4f}")
    print(f"{'fmad':10} {float(w.value):10.4f} {float(b.value):10.4f}")
    print(f"{'np.polyfit':10} {polyfit_slope:10.4f} {polyfit_intercept:10.4f}")
