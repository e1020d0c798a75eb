"""A two-layer network whose parameters live in a list of ``(W, b)`` layers, trained with
``fmad.train`` on a problem no linear model solves (the label is the sign of ``x1 * x2``).

The parameter ``layers`` is a list of tuples of arrays (JAX calls it a pytree): fmad
differentiates with respect to all of its leaves at once, and the gradient
``grads["layers"]`` is a list of ``(dW, db)`` tuples shaped like the layers. ``fmad.train``
steps every leaf.

    python examples/two_layer_network.py
"""

import numpy as np

import fmad


def forward(layers, X):
    """The network's probability of class 1: tanh hidden layers, a sigmoid output."""
    h = X
    for W, b in layers[:-1]:
        h = np.tanh(h @ W + b)
    W, b = layers[-1]
    z = h @ W + b
    return 1 / (1 + np.exp(-z[:, 0]))


def loss(layers, X, y):
    p = forward(layers, X)
    eps = 1e-12
    return -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    hidden = 8
    layers = [
        (rng.normal(size=(2, hidden)), np.zeros(hidden)),
        (rng.normal(size=(hidden, 1)) * 0.5, np.zeros(1)),
    ]

    grad_loss = fmad.differentiate(loss, wrt=["layers"])
    value, grads = grad_loss(layers, X, y)
    shapes = [tuple(np.shape(g) for g in layer) for layer in grads["layers"]]
    print(f"initial loss {value:.4f}; gradient shapes {shapes}")

    params = fmad.Variable("layers", layers)
    result = fmad.train(grad_loss, [params], {"X": X, "y": y}, lr=1.0, epochs=1500)
    trained = params.value
    accuracy = np.mean((forward(trained, X) > 0.5) == (y == 1.0))
    print(f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f} after {result.epochs} epochs")
    print(f"training accuracy {accuracy:.1%}")


if __name__ == "__main__":
    main()
