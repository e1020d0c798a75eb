"""A loss written as a plain Python loop, with an absolute error.

Mean absolute error regression over data held in lists: fmad differentiates straight
through the ``for`` loop and through ``abs`` (whose derivative is the sign of its
argument), so the tangent lines simply sit inside the loop body. Two gross outliers show
why one would want the absolute error: least squares is dragged towards them, the mean
absolute error fit is not.

    python examples/loop_and_abs.py
    python -m fmad show examples/loop_and_abs.py:mean_absolute_error
"""

import numpy as np

import fmad


@fmad.differentiate(wrt=["w", "b"])
def mean_absolute_error(xs, ts, w, b):
    total = 0.0
    for x, t in zip(xs, ts, strict=True):
        total += abs(w * x + b - t)
    return total / len(xs)


if __name__ == "__main__":
    rng = np.random.default_rng(1)
    xs = np.linspace(0.0, 5.0, 20)
    ts = 2.0 * xs + 1.0 + rng.normal(0.0, 0.1, size=xs.shape)
    ts[4] += 15.0
    ts[15] -= 12.0
    xs, ts = xs.tolist(), ts.tolist()

    print("Transformed code:")
    print(mean_absolute_error.source)

    w = fmad.Variable("w", 0.0)
    b = fmad.Variable("b", 0.0)
    # The gradient of an absolute error does not shrink near the optimum, so a fixed step
    # keeps hopping around it: take smaller steps in stages.
    for lr in (0.05, 0.01, 0.002):
        result = fmad.train(mean_absolute_error, [w, b], {"xs": xs, "ts": ts}, lr=lr, epochs=300)
        print(
            f"lr={lr:<6} 300 epochs: MAE {result.losses[-1]:.4f}, w={w.value:.4f}, b={b.value:.4f}"
        )

    slope, intercept = np.polyfit(xs, ts, deg=1)
    print("\nData: t = 2.0 * x + 1.0 + small noise, with two outliers")
    print(f"mean absolute error fit (fmad): w={w.value:.4f}, b={b.value:.4f}")
    print(f"least squares fit (np.polyfit):  w={slope:.4f}, b={intercept:.4f}")
