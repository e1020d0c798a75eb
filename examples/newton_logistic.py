"""Logistic regression fitted by Newton's method with ``fmad.hessian``, and by SciPy's BFGS
with ``fmad.Objective``.

Newton's step solves ``H s = -g`` with the exact Hessian: on this well-posed problem it
converges in a handful of iterations, where a quasi-Newton method needs more. The script
also prints the second-order code of the loss for scalar parameters: fmad's own
first-order code, differentiated again.

    python examples/newton_logistic.py        (BFGS needs scipy: pip install scipy)
"""

import numpy as np

import fmad


def cross_entropy(X, t, w, b):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


def newton(X: np.ndarray, t: np.ndarray, iterations: int = 20, tol: float = 1e-10):
    """Newton's method on (w, b) stacked into one vector; returns (w, b, losses)."""
    hessian = fmad.hessian(cross_entropy, wrt=["w", "b"])
    w, b = np.zeros(X.shape[1]), 0.0
    losses = []
    for _ in range(iterations):
        loss, g, h = hessian(X, t, w, b)
        losses.append(loss)
        grad = np.append(g["w"], g["b"])
        H = np.block([[h["w"]["w"], h["w"]["b"][:, None]], [h["b"]["w"][None, :], h["b"]["b"]]])
        step = np.linalg.solve(H, -grad)
        w, b = w + step[:-1], b + step[-1]
        if np.abs(grad).max() < tol:
            break
    return w, b, losses


if __name__ == "__main__":
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal((0.0, 0.0), 1.5, (100, 2)), rng.normal((2.0, 2.0), 1.5, (100, 2))])
    t = np.concatenate([np.zeros(100), np.ones(100)])

    w, b, losses = newton(X, t)
    print(f"Newton with fmad.hessian: {len(losses)} iterations")
    for i, loss in enumerate(losses):
        print(f"  iteration {i}: loss {loss:.12f}")
    print(f"  w = {w}, b = {b:.6f}")

    try:
        from scipy.optimize import minimize
    except ImportError:
        print("BFGS: scipy is not installed (pip install scipy)")
    else:
        objective = fmad.Objective(cross_entropy, ["w", "b"], {"X": X, "t": t})
        x0 = objective.pack({"w": np.zeros(2), "b": 0.0})
        result = minimize(objective, x0, jac=True, method="BFGS", options={"gtol": 1e-10})
        fitted = objective.unpack(result.x)
        print(f"BFGS with fmad.Objective: {result.nit} iterations, loss {result.fun:.12f}")
        print(f"  w = {fitted['w']}, b = {fitted['b']:.6f}")
        gap = max(np.abs(fitted["w"] - w).max(), abs(fitted["b"] - b))
        print(f"  largest difference from Newton's solution: {gap:.1e}")

    print("\nThe second-order code of the loss (w and b numbers; see --order 2 --shapes):")
    print(fmad.hessian(cross_entropy, wrt=["w", "b"]).source)
