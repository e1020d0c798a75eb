"""The Hessian of P3 (logistic regression, w of size d, N samples): fmad.hessian against a
hand-written Hessian, and JAX's jax.hessian when JAX is installed, in the same run.

    python benchmarks/bench_hessian.py [--d 10] [--n 200] [--repeats 15]

Every peer returns the value, the gradient and the Hessian blocks of (w, b). Runs of the
peers are interleaved (so drifting load hits all alike), BLAS threads are pinned to 1, and
the ratio to the hand-written Hessian is reported with its spread over the runs.
"""

# ruff: noqa: E402  (the thread settings must come before numpy is imported)
import sys
from pathlib import Path

from timing import CallTimer, pin_threads

pin_threads()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import statistics

import numpy as np

import fmad


def loss(X, y, w, b):
    z = X @ w + b
    p = 1.0 / (1.0 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def hand(X, y, w, b):
    """Value, gradient and Hessian of the mean cross-entropy, by hand."""
    n = X.shape[0]
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    value = -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
    r = p - y
    s = p * (1.0 - p) / n
    Xs = X * s[:, None]
    hess = {
        "w": {"w": X.T @ Xs, "b": Xs.sum(axis=0)},
        "b": {"w": Xs.sum(axis=0), "b": s.sum()},
    }
    return value, {"w": r @ X / n, "b": r.sum() / n}, hess


def jax_hessian():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def jloss(params, X, y):
        z = X @ params["w"] + params["b"]
        p = 1.0 / (1.0 + jnp.exp(-z))
        return -jnp.mean(y * jnp.log(p) + (1.0 - y) * jnp.log(1.0 - p))

    value_grad = jax.jit(jax.value_and_grad(jloss))
    hessian = jax.jit(jax.hessian(jloss))

    def run(X, y, w, b):
        params = {"w": w, "b": b}
        value, grads = value_grad(params, X, y)
        return value, grads, hessian(params, X, y)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(options.n, options.d))
    y = (rng.random(options.n) < 0.5).astype(float)
    args = (X, y, rng.normal(scale=0.1, size=options.d), 0.05)

    peers = {"hand": hand, "fmad": fmad.hessian(loss, wrt=["w", "b"])}
    jax_peer = jax_hessian()
    if jax_peer is not None:
        peers["jax"] = jax_peer
    expected = hand(*args)[2]
    for peer in peers.values():
        got = peer(*args)[2]
        for a in ("w", "b"):
            for b in ("w", "b"):
                np.testing.assert_allclose(np.asarray(got[a][b]), expected[a][b], rtol=1e-9)
    timers = {name: CallTimer(peer, args) for name, peer in peers.items()}
    for _ in range(options.repeats):
        for timer in timers.values():
            timer.run()
    base = timers["hand"].per_call
    print(
        f"Hessian of P3 (logistic regression), N={options.n}, d={options.d}, "
        f"{options.repeats} interleaved runs, BLAS threads 1"
    )
    print("| peer | median per call | ratio to hand-written (median, min-max over runs) |")
    print("|---|---|---|")
    for name, timer in timers.items():
        ratios = [t / h for t, h in zip(timer.per_call, base, strict=True)]
        print(
            f"| {name} | {timer.median * 1e6:.1f} us | {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    if jax_peer is None:
        print("(jax is not installed: pip install jax to compare with jax.hessian)")


if __name__ == "__main__":
    main()
