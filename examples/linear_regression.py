"""The seed experiment: fit y = w * X + b to one sample by gradient descent.

fmad rewrites ``train_loop`` into a function that returns the loss together with its
derivatives with respect to ``w`` and ``b``; this script prints that generated code, then
trains with ``fmad.train``.

Why it converges: with ``r = w * X + b - y`` the gradients are ``2 * r * X`` and ``2 * r``,
so one step multiplies the residual by ``1 - 2 * lr * (X**2 + 1)``. For seed 0, X is about
-45.1 and that factor is about 0.59, so the loss (``r**2``) shrinks about 2.8-fold per epoch.

    python examples/linear_regression.py
    python -m fmad show examples/linear_regression.py:train_loop
"""

import numpy as np

import fmad


@fmad.differentiate(wrt=["w", "b"])
def train_loop(X, y, w, b):
    y_pred = w * X + b
    loss = (y_pred - y) ** 2
    return loss


if __name__ == "__main__":
    np.random.seed(0)
    X = np.random.uniform(-100, 0)
    y = np.random.uniform(0, 100)
    # Shape-(1,) parameters, as in the original article.
    w = fmad.Variable("w", np.random.rand(1))
    b = fmad.Variable("b", np.random.rand(1))
    lr = 1e-4
    epochs = 100

    print("Transformed code (primal and tangent lines):")
    print(train_loop.source)

    result = fmad.train(train_loop, [w, b], {"X": X, "y": y}, lr=lr, epochs=epochs)

    print(f"Training on one sample X={X:.4f}, y={y:.4f} (lr={lr}, {epochs} epochs):")
    for epoch in [*range(0, epochs, 10), epochs - 1]:
        print(f"  epoch {epoch:3d}  loss {result.losses[epoch]:.3e}")

    prediction = w.value * X + b.value
    print(f"Fitted: w={w.value[0]:.6f}, b={b.value[0]:.6f}")
    print(f"Prediction w*X+b = {prediction[0]:.10f}")
    print(f"Target         y = {y:.10f}")
