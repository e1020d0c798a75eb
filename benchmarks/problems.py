"""Benchmark problems: data, the function a user writes, and the hand-written reference.

Each problem has
- ``fn``: the loss as a user would write it. fmad, finite differences, autograd, JAX and
  PyTorch all differentiate this very source (the array peers run it with their own ``np``);
- ``hand``: value and analytic gradient written the way a careful person would. It is the
  reference every peer is timed and checked against, so it must be fast *and* right
  (tests/test_benchmarks_smoke.py checks it against central finite differences);
- ``symbolic``: the expression the SymPy peer differentiates;
- sizes for the full run, the quick run and the smoke test.

Rules the hand-written references follow (measured on the benchmark machine, numpy 2.x,
one BLAS thread):
- ``X[:, 0] * w[0]`` instead of ``X @ w`` when d == 1: numpy's matmul of an (N, 1) matrix
  by a vector is about 10x slower than the elementwise product, with the same bits.
- ``r @ r / n`` for a mean of squares: one BLAS pass, no squared temporary (3x faster than
  ``np.mean(r ** 2)``).
- the derivative chain simplified by hand where a person would (sigmoid + cross-entropy
  gives ``p - y``), and shared factors computed once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Args = tuple[Any, ...]
Grads = dict[str, Any]


@dataclass
class SymbolicForm:
    """What the SymPy peer differentiates and how it feeds the lambdified result.

    With ``mean_over_samples`` the expression is the loss of one sample; the lambdified
    value and gradients are arrays over samples and their means are the loss and gradient.
    Otherwise the expression is the whole loss (traced from ``fn`` with symbols).
    """

    expr: Any
    params: list[Any]  # one symbol per scalar parameter element
    data: list[Any]  # symbols fed with ``data_values``
    data_values: list[Any]
    param_values: Callable[[Args], list[Any]]  # the call's arguments -> values for ``params``
    pack: Callable[[list[Any]], Grads]  # one derivative per symbol -> {wrt name: gradient}
    mean_over_samples: bool


@dataclass(frozen=True)
class Problem:
    key: str
    title: str
    fn: Callable[..., Any]
    wrt: tuple[str, ...]
    hand: Callable[..., tuple[Any, Grads]]
    make_args: Callable[..., Args]  # keyword arguments: one size from ``sizes``
    sizes: tuple[dict[str, int], ...]
    quick_sizes: tuple[dict[str, int], ...]
    tiny_sizes: tuple[dict[str, int], ...]  # smoke test
    symbolic: Callable[[Any, Args], SymbolicForm] | None  # (sympy, args) -> form; None: none
    target: float = 1.3  # fmad time / hand-written time

    # Cached: inspect.signature costs microseconds, and loops that time calls read these.
    @functools.cached_property
    def params(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.fn).parameters)

    @functools.cached_property
    def wrt_positions(self) -> tuple[int, ...]:
        return tuple(self.params.index(name) for name in self.wrt)


@dataclass(frozen=True)
class Case:
    """One problem at one size."""

    problem: Problem
    size: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        sizes = " ".join(f"{k}={v}" for k, v in self.size.items())
        return f"{self.problem.key} {sizes}".strip()

    def args(self) -> Args:
        return self.problem.make_args(**self.size)


def traced_form(problem: Problem, sp: Any, args: Args) -> SymbolicForm:
    """Run ``fn`` with a SymPy symbol for each (scalar) parameter; data stay numbers."""
    symbols = [sp.Symbol(name) for name in problem.wrt]
    traced = list(args)
    for position, symbol in zip(problem.wrt_positions, symbols, strict=True):
        traced[position] = symbol
    return SymbolicForm(
        expr=problem.fn(*traced),
        params=symbols,
        data=[],
        data_values=[],
        param_values=lambda call_args: [call_args[i] for i in problem.wrt_positions],
        pack=lambda derivs: dict(zip(problem.wrt, derivs, strict=True)),
        mean_over_samples=False,
    )


def two_clusters(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points in 2-D: half around (0, 0) labelled 0, half around (3, 3) labelled 1."""
    rng = np.random.default_rng(42)
    half = n // 2
    X = np.vstack([rng.normal(0.0, 1.0, (half, 2)), rng.normal(3.0, 1.0, (n - half, 2))])
    y = np.concatenate([np.zeros(half), np.ones(n - half)])
    return X, y


# --- P1: one sample, Python floats ------------------------------------------------------


def p1_fn(X, y, w, b):
    return ((w * X + b) - y) ** 2


def p1_hand(X: float, y: float, w: float, b: float) -> tuple[float, Grads]:
    r = w * X + b - y
    twice_r = 2.0 * r
    # r * r is one multiplication; float ** 2 goes through libm pow (same result, slower).
    return r * r, {"w": twice_r * X, "b": twice_r}


def p1_args() -> Args:
    return (3.0, 7.0, 0.5, 0.25)


P1 = Problem(
    key="P1",
    title="((w*X + b) - y) ** 2, Python floats",
    fn=p1_fn,
    wrt=("w", "b"),
    hand=p1_hand,
    make_args=p1_args,
    sizes=({},),
    quick_sizes=({},),
    tiny_sizes=({},),
    symbolic=lambda sp, args: traced_form(P1, sp, args),
)


# --- P2: linear regression, mean squared error ------------------------------------------


def p2_fn(X, y, w, b):
    return np.mean((X @ w + b - y) ** 2)


def p2_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[Any, Grads]:
    n, d = X.shape
    if d == 1:
        # Same bits as X @ w (one product per row), about 10x faster for an (N, 1) matrix.
        column = X[:, 0]
        r = column * w[0] + b - y
        grad_w = np.array([(column @ r) * (2.0 / n)])
    else:
        r = X @ w + b - y
        grad_w = (r @ X) * (2.0 / n)
    return (r @ r) / n, {"w": grad_w, "b": r.sum() * (2.0 / n)}


@functools.cache
def p2_args(N: int, d: int) -> Args:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, d))
    y = X @ np.linspace(1.0, 2.0, d) + 0.5 + 0.1 * rng.normal(size=N)
    return (X, y, np.linspace(0.1, 1.0, d), 0.25)


def p2_symbolic(sp: Any, args: Args) -> SymbolicForm:
    X, y = args[0], args[1]
    d = X.shape[1]
    xs, ws = sp.symbols(f"x0:{d}"), sp.symbols(f"w0:{d}")
    y_s, b_s = sp.symbols("y b")
    return SymbolicForm(
        expr=(sum(wj * xj for wj, xj in zip(ws, xs, strict=True)) + b_s - y_s) ** 2,
        params=[*ws, b_s],
        data=[*xs, y_s],
        data_values=[*(X[:, j] for j in range(d)), y],
        param_values=lambda a: [*a[2], a[3]],
        pack=lambda g: {"w": np.array(g[:d]), "b": g[d]},
        mean_over_samples=True,
    )


P2 = Problem(
    key="P2",
    title="np.mean((X @ w + b - y) ** 2), w shape (d,), b scalar",
    fn=p2_fn,
    wrt=("w", "b"),
    hand=p2_hand,
    make_args=p2_args,
    sizes=(
        {"N": 1000, "d": 1},
        {"N": 100_000, "d": 1},
        {"N": 1_000_000, "d": 1},
        {"N": 100_000, "d": 10},
    ),
    quick_sizes=({"N": 1000, "d": 1}, {"N": 100_000, "d": 1}, {"N": 10_000, "d": 10}),
    tiny_sizes=({"N": 7, "d": 1}, {"N": 7, "d": 3}),
    symbolic=p2_symbolic,
)


# --- P2s: the same with two scalar parameters -------------------------------------------


def p2s_fn(x, y, w0, w1):
    return np.mean((w0 + w1 * x - y) ** 2)


def p2s_hand(x: np.ndarray, y: np.ndarray, w0: float, w1: float) -> tuple[Any, Grads]:
    n = x.size
    r = w0 + w1 * x - y
    return (r @ r) / n, {"w0": r.sum() * (2.0 / n), "w1": (r @ x) * (2.0 / n)}


@functools.cache
def p2s_args(N: int) -> Args:
    rng = np.random.default_rng(1)
    x = rng.normal(size=N)
    return (x, 1.5 * x + 0.5 + 0.1 * rng.normal(size=N), 0.1, 0.2)


def p2s_symbolic(sp: Any, args: Args) -> SymbolicForm:
    x_s, y_s, w0, w1 = sp.symbols("x y w0 w1")
    return SymbolicForm(
        expr=(w0 + w1 * x_s - y_s) ** 2,
        params=[w0, w1],
        data=[x_s, y_s],
        data_values=[args[0], args[1]],
        param_values=lambda a: [a[2], a[3]],
        pack=lambda g: {"w0": g[0], "w1": g[1]},
        mean_over_samples=True,
    )


P2S = Problem(
    key="P2s",
    title="np.mean((w0 + w1 * x - y) ** 2), scalars w0, w1",
    fn=p2s_fn,
    wrt=("w0", "w1"),
    hand=p2s_hand,
    make_args=p2s_args,
    sizes=({"N": 1000}, {"N": 100_000}, {"N": 1_000_000}),
    quick_sizes=({"N": 1000}, {"N": 100_000}),
    tiny_sizes=({"N": 7},),
    symbolic=p2s_symbolic,
)


# --- P3: logistic regression ------------------------------------------------------------


def p3_fn(X, y, w, b):
    z = X @ w + b
    p = 1.0 / (1.0 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def p3_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[Any, Grads]:
    n = X.shape[0]
    # For d == 2, X @ w and r @ X beat the column-by-column forms (measured).
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    loss = -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
    # d(loss)/dz = (p - y) / n: the sigmoid's derivative cancels the cross-entropy's.
    r = p - y
    return loss, {"w": (r @ X) / n, "b": r.sum() / n}


@functools.cache
def p3_args(N: int) -> Args:
    X, y = two_clusters(N)
    return (X, y, np.array([0.1, -0.2]), 0.05)


def p3_symbolic(sp: Any, args: Args) -> SymbolicForm:
    x0, x1, y_s, w0, w1, b_s = sp.symbols("x0 x1 y w0 w1 b")
    p = 1 / (1 + sp.exp(-(w0 * x0 + w1 * x1 + b_s)))
    X = args[0]
    return SymbolicForm(
        expr=-(y_s * sp.log(p) + (1 - y_s) * sp.log(1 - p)),
        params=[w0, w1, b_s],
        data=[x0, x1, y_s],
        data_values=[X[:, 0], X[:, 1], args[1]],
        param_values=lambda a: [a[2][0], a[2][1], a[3]],
        pack=lambda g: {"w": np.array(g[:2]), "b": g[2]},
        mean_over_samples=True,
    )


P3 = Problem(
    key="P3",
    title="logistic regression: sigmoid + binary cross-entropy, two clusters in 2-D",
    fn=p3_fn,
    wrt=("w", "b"),
    hand=p3_hand,
    make_args=p3_args,
    sizes=({"N": 200}, {"N": 100_000}),
    quick_sizes=({"N": 200}, {"N": 100_000}),
    tiny_sizes=({"N": 8},),
    symbolic=p3_symbolic,
)


# --- P4: 2-2-1 sigmoid network ----------------------------------------------------------

P4_PARAMS = ("w11", "w12", "w21", "w22", "w31", "w32", "b1", "b2", "b3")


def p4_fn(x1, x2, y, w11, w12, w21, w22, w31, w32, b1, b2, b3):
    h1 = 1.0 / (1.0 + np.exp(-(w11 * x1 + w12 * x2 + b1)))
    h2 = 1.0 / (1.0 + np.exp(-(w21 * x1 + w22 * x2 + b2)))
    out = 1.0 / (1.0 + np.exp(-(w31 * h1 + w32 * h2 + b3)))
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


def p4_hand(x1, x2, y, w11, w12, w21, w22, w31, w32, b1, b2, b3) -> tuple[Any, Grads]:
    n = y.size
    h1 = 1.0 / (1.0 + np.exp(-(w11 * x1 + w12 * x2 + b1)))
    h2 = 1.0 / (1.0 + np.exp(-(w21 * x1 + w22 * x2 + b2)))
    out = 1.0 / (1.0 + np.exp(-(w31 * h1 + w32 * h2 + b3)))
    loss = -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))
    # Backpropagation: one reverse sweep gives all nine derivatives.
    d3 = (out - y) / n  # d(loss)/d(output pre-activation), sigmoid and BCE cancel
    d1 = d3 * w31 * h1 * (1.0 - h1)  # d(loss)/d(hidden pre-activations)
    d2 = d3 * w32 * h2 * (1.0 - h2)
    grads = {
        "w11": d1 @ x1,
        "w12": d1 @ x2,
        "w21": d2 @ x1,
        "w22": d2 @ x2,
        "w31": d3 @ h1,
        "w32": d3 @ h2,
        "b1": d1.sum(),
        "b2": d2.sum(),
        "b3": d3.sum(),
    }
    return loss, grads


@functools.cache
def p4_args(N: int) -> Args:
    X, y = two_clusters(N)
    weights = (0.5, -0.4, 0.3, 0.8, 1.2, -0.7, 0.1, -0.2, 0.05)
    return (np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1]), y, *weights)


def p4_symbolic(sp: Any, args: Args) -> SymbolicForm:
    x1, x2, y_s = sp.symbols("x1 x2 y")
    w11, w12, w21, w22, w31, w32, b1, b2, b3 = params = sp.symbols(P4_PARAMS)

    def sigmoid(a: Any) -> Any:
        return 1 / (1 + sp.exp(-a))

    h1 = sigmoid(w11 * x1 + w12 * x2 + b1)
    h2 = sigmoid(w21 * x1 + w22 * x2 + b2)
    out = sigmoid(w31 * h1 + w32 * h2 + b3)
    return SymbolicForm(
        expr=-(y_s * sp.log(out) + (1 - y_s) * sp.log(1 - out)),
        params=list(params),
        data=[x1, x2, y_s],
        data_values=list(args[:3]),
        param_values=lambda a: list(a[3:]),
        pack=lambda g: dict(zip(P4_PARAMS, g, strict=True)),
        mean_over_samples=True,
    )


P4 = Problem(
    key="P4",
    title="2-2-1 sigmoid network, binary cross-entropy, vectorized over samples",
    fn=p4_fn,
    wrt=P4_PARAMS,
    hand=p4_hand,
    make_args=p4_args,
    sizes=({"N": 200},),
    quick_sizes=({"N": 200},),
    tiny_sizes=({"N": 8},),
    symbolic=p4_symbolic,
)


# --- P5: a Python loop over samples in lists --------------------------------------------


def p5_fn(x, y, w, b):
    n = len(x)
    loss = 0.0
    for i in range(n):
        loss += (w * x[i] + b - y[i]) ** 2
    return loss / n


def p5_hand(x: Sequence[float], y: Sequence[float], w: float, b: float) -> tuple[float, Grads]:
    loss = sum_r_x = sum_r = 0.0
    for xi, yi in zip(x, y, strict=True):
        r = w * xi + b - yi
        loss += r * r
        sum_r_x += r * xi
        sum_r += r
    n = len(x)
    return loss / n, {"w": 2.0 * sum_r_x / n, "b": 2.0 * sum_r / n}


@functools.cache
def p5_args(n: int) -> Args:
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 10.0, n)
    y = 2.0 * x + 1.0 + rng.normal(size=n)
    return (x.tolist(), y.tolist(), 0.5, 0.25)


P5 = Problem(
    key="P5",
    title="Python for loop over 150 samples in lists, scalars",
    fn=p5_fn,
    wrt=("w", "b"),
    hand=p5_hand,
    make_args=p5_args,
    sizes=({"n": 150},),
    quick_sizes=({"n": 150},),
    tiny_sizes=({"n": 5},),
    symbolic=lambda sp, args: traced_form(P5, sp, args),
)


# --- P6: the textbook expression graph --------------------------------------------------


def p6_fn(a, b, c, f):
    return (a * b + c) * f


def p6_hand(a: float, b: float, c: float, f: float) -> tuple[float, Grads]:
    d = a * b + c
    return d * f, {"a": f * b, "b": f * a, "c": f, "f": d}


def p6_args() -> Args:
    return (2.0, -3.0, 10.0, -2.0)


P6 = Problem(
    key="P6",
    title="L = (a*b + c) * f at a=2, b=-3, c=10, f=-2",
    fn=p6_fn,
    wrt=("a", "b", "c", "f"),
    hand=p6_hand,
    make_args=p6_args,
    sizes=({},),
    quick_sizes=({},),
    tiny_sizes=({},),
    symbolic=lambda sp, args: traced_form(P6, sp, args),
)


# --- P7: one-hidden-layer tanh network (MLP), matrix parameters ------------------------
# The cost of forward mode with many parameters, on the record: the directions grow with
# the number of parameter elements (d*h + 2h + 1), hand-written backprop's cost does not.


def p7_fn(X, y, W1, b1, W2, b2):
    H = np.tanh(X @ W1 + b1)
    out = H @ W2 + b2
    return np.mean((out - y) ** 2)


def p7_hand(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: float
) -> tuple[Any, Grads]:
    n = y.size
    H = np.tanh(X @ W1 + b1)
    r = H @ W2 + b2 - y
    loss = r @ r / n
    # Backpropagation: d loss / d out, then through the output layer and tanh.
    g = (2.0 / n) * r
    dA = np.outer(g, W2) * (1.0 - H * H)  # d loss / d hidden pre-activation, (N, h)
    return loss, {"W1": X.T @ dA, "b1": dA.sum(axis=0), "W2": H.T @ g, "b2": g.sum()}


@functools.cache
def p7_args(N: int, h: int, d: int = 8) -> Args:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    W1 = rng.normal(scale=1.0 / np.sqrt(d), size=(d, h))
    b1 = rng.normal(scale=0.1, size=h)
    W2 = rng.normal(scale=1.0 / np.sqrt(h), size=h)
    return (X, y, W1, b1, W2, 0.05)


P7 = Problem(
    key="P7",
    title="MLP mean((tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2), N=256, d=8, hidden h",
    fn=p7_fn,
    wrt=("W1", "b1", "W2", "b2"),
    hand=p7_hand,
    make_args=p7_args,
    sizes=({"N": 256, "h": 4}, {"N": 256, "h": 16}, {"N": 256, "h": 64}),
    quick_sizes=({"N": 256, "h": 4}, {"N": 256, "h": 16}),
    tiny_sizes=({"N": 6, "h": 2, "d": 3},),
    symbolic=None,  # matrix parameters: no symbolic form (the SymPy peer skips it)
)


PROBLEMS: tuple[Problem, ...] = (P1, P2, P2S, P3, P4, P5, P6, P7)


def cases(problems: Sequence[Problem], quick: bool) -> list[Case]:
    return [Case(p, size) for p in problems for size in (p.quick_sizes if quick else p.sizes)]
