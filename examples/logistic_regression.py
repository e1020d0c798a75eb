"""Logistic regression with a vector weight, checked against finite differences.

``w`` has shape (2,), so fmad carries both of its directions at once (vectorized forward
mode) and returns a gradient of shape (2,); ``b`` is a scalar.

    python examples/logistic_regression.py
"""

import numpy as np

import fmad


@fmad.differentiate(wrt=["w", "b"])
def cross_entropy(X, t, w, b):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


def central_differences(X: np.ndarray, t: np.ndarray, w: np.ndarray, b: float) -> dict:
    """The gradient by central finite differences on the original function."""
    loss = cross_entropy.__wrapped__
    eps = 1e-6
    grad_w = np.zeros_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = eps
        grad_w[i] = (loss(X, t, w + step, b) - loss(X, t, w - step, b)) / (2 * eps)
    grad_b = (loss(X, t, w, b + eps) - loss(X, t, w, b - eps)) / (2 * eps)
    return {"w": grad_w, "b": grad_b}


if __name__ == "__main__":
    rng = np.random.default_rng(42)
    X = np.vstack([rng.normal((0.0, 0.0), 1.0, (100, 2)), rng.normal((3.0, 3.0), 1.0, (100, 2))])
    t = np.concatenate([np.zeros(100), np.ones(100)])

    w = fmad.Variable("w", rng.normal(0.0, 0.1, size=2))
    b = fmad.Variable("b", 0.0)

    _, grads = cross_entropy(X, t, w, b)
    numeric = central_differences(X, t, w.value, b.value)
    print("Gradient at the start, fmad vs central differences:")
    print(f"  dL/dw: {grads['w']}  vs  {numeric['w']}")
    print(f"  dL/db: {grads['b']:.10f}  vs  {numeric['b']:.10f}")
    worst = max(np.max(np.abs(grads["w"] - numeric["w"])), abs(grads["b"] - numeric["b"]))
    print(f"  max abs difference: {worst:.2e}")

    result = fmad.train(cross_entropy, [w, b], {"X": X, "t": t}, lr=0.5, epochs=200)
    accuracy = np.mean(((X @ w.value + b.value) > 0) == t)
    print(f"Trained 200 epochs: loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    print(f"w = {w.value}, b = {b.value:.4f}")
    print(f"Accuracy on the 200 training points: {accuracy:.1%}")
