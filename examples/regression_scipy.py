"""Fit the same regression with fmad.train and with scipy's BFGS, fed fmad's gradients.

``scipy.optimize.minimize(..., jac=True)`` wants one function returning the value and the
gradient together, which is exactly what an fmad-differentiated function computes.

scipy is optional: ``pip install "fmad[examples]"`` (or ``pip install scipy``).

    python examples/regression_scipy.py
"""

import sys

import numpy as np

import fmad


@fmad.differentiate(wrt=["w0", "w1"])
def mse(x, y, w0, w1):
    return np.mean((w0 + w1 * x - y) ** 2)


if __name__ == "__main__":
    rng = np.random.default_rng(7)
    x = rng.uniform(0.0, 10.0, size=150)
    y = 3.0 - 0.8 * x + rng.normal(0.0, 1.0, size=x.shape)

    slope, intercept = np.polyfit(x, y, deg=1)
    print(f"{'np.polyfit':18} w0={intercept:.6f}  w1={slope:.6f}")

    w0 = fmad.Variable("w0", 0.0)
    w1 = fmad.Variable("w1", 0.0)
    result = fmad.train(mse, [w0, w1], {"x": x, "y": y}, lr=0.02, epochs=3000)
    print(
        f"{'fmad.train':18} w0={w0.value:.6f}  w1={w1.value:.6f}"
        f"  (3000 epochs, MSE {result.losses[-1]:.6f})"
    )

    try:
        from scipy.optimize import minimize
    except ImportError:
        print(
            "scipy is not installed, so the BFGS comparison is skipped. Install it with\n"
            '  pip install "fmad[examples]"   or   pip install scipy'
        )
        sys.exit(0)

    def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grads = mse(x, y, theta[0], theta[1])
        return value, np.array([grads["w0"], grads["w1"]])

    fit = minimize(value_and_gradient, np.zeros(2), jac=True, method="BFGS")
    print(
        f"{'scipy BFGS + fmad':18} w0={fit.x[0]:.6f}  w1={fit.x[1]:.6f}"
        f"  ({fit.nit} iterations, {fit.njev} gradient calls, MSE {fit.fun:.6f})"
    )
