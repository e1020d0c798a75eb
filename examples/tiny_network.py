"""A 2-2-1 sigmoid network with binary cross-entropy, written two ways.

(a) nine scalar parameters, vectorized over the samples (``x1`` and ``x2`` are arrays);
(b) matrix parameters ``W1`` (2, 2), ``b1`` (2,), ``v`` (2,) and a scalar ``b3``.

Both describe the same network (``W1[i, j]`` is ``w{i+1}{j+1}``, the weight from input i
to hidden unit j), so fmad must give both the same gradients at the same point. Version (a)
is then trained on two Gaussian clusters.

    python examples/tiny_network.py [--outdir DIR]

With matplotlib installed, loss.png and decision_boundary.png are written to DIR (the
current directory by default).
"""

import argparse
from pathlib import Path

import numpy as np

import fmad

SCALAR_NAMES = ["w11", "w12", "w21", "w22", "b1", "b2", "v1", "v2", "b3"]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@fmad.differentiate(wrt=SCALAR_NAMES)
def loss_scalar_params(x1, x2, t, w11, w12, w21, w22, b1, b2, v1, v2, b3):
    h1 = sigmoid(w11 * x1 + w21 * x2 + b1)
    h2 = sigmoid(w12 * x1 + w22 * x2 + b2)
    p = sigmoid(v1 * h1 + v2 * h2 + b3)
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


@fmad.differentiate(wrt=["W1", "b1", "v", "b3"])
def loss_matrix_params(X, t, W1, b1, v, b3):
    H = sigmoid(X @ W1 + b1)
    p = sigmoid(H @ v + b3)
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


def predict(x1: np.ndarray, x2: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """The network's probability of class 1, from the scalar parameters."""
    p = params
    h1 = sigmoid(p["w11"] * x1 + p["w21"] * x2 + p["b1"])
    h2 = sigmoid(p["w12"] * x1 + p["w22"] * x2 + p["b2"])
    return sigmoid(p["v1"] * h1 + p["v2"] * h2 + p["b3"])


def as_matrix_params(s: dict[str, float]) -> dict[str, np.ndarray | float]:
    """The scalar parameters (or their gradients) laid out as version (b)'s arrays."""
    return {
        "W1": np.array([[s["w11"], s["w12"]], [s["w21"], s["w22"]]]),
        "b1": np.array([s["b1"], s["b2"]]),
        "v": np.array([s["v1"], s["v2"]]),
        "b3": s["b3"],
    }


def save_plots(
    outdir: Path, losses: list[float], X: np.ndarray, t: np.ndarray, params: dict[str, float]
) -> list[Path] | None:
    """Write loss.png and decision_boundary.png; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None

    outdir.mkdir(parents=True, exist_ok=True)
    loss_path = outdir / "loss.png"
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(losses)
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.set_yscale("log")
    ax.set_title("Training loss (scalar-parameter network)")
    fig.tight_layout()
    fig.savefig(loss_path, dpi=100)
    plt.close(fig)

    boundary_path = outdir / "decision_boundary.png"
    g1, g2 = np.meshgrid(np.linspace(-3.5, 6.5, 200), np.linspace(-3.5, 6.5, 200))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(g1, g2, predict(g1, g2, params), levels=20, cmap="RdBu_r", alpha=0.6)
    ax.contour(g1, g2, predict(g1, g2, params), levels=[0.5], colors="k")
    ax.scatter(X[:, 0], X[:, 1], c=t, cmap="RdBu_r", edgecolors="k", s=18)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("Decision boundary (p = 0.5)")
    fig.tight_layout()
    fig.savefig(boundary_path, dpi=100)
    plt.close(fig)
    return [loss_path, boundary_path]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outdir", type=Path, default=Path.cwd(), help="where to write the plots (default: .)"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    X = np.vstack([rng.normal((0.0, 0.0), 1.0, (100, 2)), rng.normal((3.0, 3.0), 1.0, (100, 2))])
    t = np.concatenate([np.zeros(100), np.ones(100)])
    x1, x2 = X[:, 0], X[:, 1]

    start = {
        "w11": rng.normal(),
        "w12": rng.normal(),
        "w21": rng.normal(),
        "w22": rng.normal(),
        "b1": rng.normal(0.0, 0.1),
        "b2": rng.normal(0.0, 0.1),
        "v1": rng.normal(),
        "v2": rng.normal(),
        "b3": rng.normal(0.0, 0.1),
    }

    # The same network, the same point: the gradients must agree.
    loss_a, grads_a = loss_scalar_params(x1, x2, t, **start)
    loss_b, grads_b = loss_matrix_params(X, t, **as_matrix_params(start))
    grads_a_as_b = as_matrix_params(grads_a)
    difference = max(float(np.max(np.abs(grads_a_as_b[k] - grads_b[k]))) for k in grads_b)
    print(f"Loss at the start: (a) {loss_a:.12f}  (b) {loss_b:.12f}")
    print(f"Max abs difference between the gradients of (a) and (b): {difference:.3e}")

    params = [fmad.Variable(name, value) for name, value in start.items()]
    result = fmad.train(
        loss_scalar_params, params, {"x1": x1, "x2": x2, "t": t}, lr=1.0, epochs=300
    )
    fitted = {p.name: p.value for p in params}
    accuracy = np.mean((predict(x1, x2, fitted) > 0.5) == t)
    print(f"Trained (a) for 300 epochs: loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    print(f"Accuracy on the 200 training points: {accuracy:.1%}")

    saved = save_plots(args.outdir, result.losses, X, t, fitted)
    if saved is None:
        print('Plots skipped: matplotlib is not installed (pip install "fmad[examples]").')
    else:
        print("Plots written to: " + ", ".join(str(path) for path in saved))
