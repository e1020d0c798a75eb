"""Reverse mode against hand-written backprop, fmad's forward mode and the peers.

    OMP_NUM_THREADS=1 python benchmarks/bench_reverse.py [--repeats 15] [--quick]

Problems: the MLP ``mean((tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2)`` (benchmarks/problems.py
P7, N = 256, d = 8, h in 4, 16, 64), logistic regression (P3) and the 2-2-1 network (P4),
and P3 and P4 written with a ``sigmoid`` helper (P3h, P4h: reverse mode inlines it).
``--helpers`` runs only P3, P4, P3h and P4h.
Rows: hand-written gradient (the reference), fmad forward, fmad reverse, and JAX
jit(value_and_grad) and torch CPU when importable (JAX also from /tmp/jaxvenv when that
exists). Every timer runs once per round, rounds interleaved, so that drifting machine load
hits all rows alike; a row's ratio is the median over rounds of (its time / the hand-written
time in the same round), with the lowest and highest round ratios as its spread.

The last table is the crossover behind ``mode="auto"`` (fmad/modes.py ``AUTO_THRESHOLD``):
forward / reverse time by the number of parameter elements (benchmarks/crossover.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import CallTimer, pin_threads  # noqa: E402

pin_threads()

import crossover  # noqa: E402  (benchmarks/ is this script's directory)
import numpy as np  # noqa: E402

import fmad  # noqa: E402
from benchmarks import peers  # noqa: E402
from benchmarks.problems import P3, P4, P7, Case, Problem  # noqa: E402
from fmad.modes import AUTO_THRESHOLD  # noqa: E402


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def p3_helper_fn(X, y, w, b):
    p = sigmoid(X @ w + b)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def p4_helper_fn(x1, x2, y, w11, w12, w21, w22, w31, w32, b1, b2, b3):
    h1 = sigmoid(w11 * x1 + w12 * x2 + b1)
    h2 = sigmoid(w21 * x1 + w22 * x2 + b2)
    out = sigmoid(w31 * h1 + w32 * h2 + b3)
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


# the same values bit for bit as P3 and P4 (the same operations in the same order)
P3H = dataclasses.replace(P3, key="P3h", fn=p3_helper_fn, title=P3.title + " (helper)")
P4H = dataclasses.replace(P4, key="P4h", fn=p4_helper_fn, title=P4.title + " (helper)")


def jax_path() -> None:
    """Make JAX importable from /tmp/jaxvenv when it is not installed here."""
    try:
        import jax  # noqa: F401, PLC0415
    except ImportError:
        for site in glob.glob("/tmp/jaxvenv/lib/python3*/site-packages"):
            sys.path.append(site)


def fmad_rows(problem: Problem) -> dict[str, object]:
    wrt = list(problem.wrt)
    return {
        "fmad forward": fmad.differentiate(problem.fn, wrt=wrt),
        "fmad reverse": fmad.differentiate(problem.fn, wrt=wrt, mode="reverse"),
    }


def peer_rows(problem: Problem, args: tuple) -> dict[str, tuple[object, tuple]]:
    rows = {}
    if problem.key in (P3H.key, P4H.key):
        return rows  # the peers translate problems.py's functions only
    for peer in (peers.JaxValueAndGrad(), peers.Torch()):
        reason = peer.unavailable() or peer.not_for(problem)
        if reason is not None:
            print(f"  ({peer.name}: skipped, {reason.splitlines()[0][:70]})")
            continue
        prepared = peer.prepare(problem, args)
        rows[peer.name] = (prepared.func, prepared.args)
    return rows


def check(problem: Problem, args: tuple, func) -> None:
    """Every fmad row gives the hand-written gradient (and fmad's value is the original's)."""
    value, grads = func(*args)
    hand_value, hand_grads = problem.hand(*args)
    assert value == problem.fn(*args)
    for name in problem.wrt:
        np.testing.assert_allclose(grads[name], hand_grads[name], rtol=1e-9, atol=1e-12)


def measure(case: Case, repeats: int) -> list[tuple[str, float, float, float, float]]:
    problem, args = case.problem, case.args()
    functions = {"hand-written": (problem.hand, args)}
    for name, func in fmad_rows(problem).items():
        check(problem, args, func)
        functions[name] = (func, args)
    functions.update(peer_rows(problem, args))
    timers = {name: CallTimer(f, a) for name, (f, a) in functions.items()}
    for _ in range(repeats):
        for timer in timers.values():
            timer.run()
    hand = timers["hand-written"].per_call
    rows = []
    for name, timer in timers.items():
        ratios = [t / h for t, h in zip(timer.per_call, hand, strict=True)]
        rows.append((name, timer.median, statistics.median(ratios), min(ratios), max(ratios)))
    return rows


def parameter_count(problem: Problem, args: tuple) -> int:
    return sum(int(np.size(args[problem.params.index(w)])) for w in problem.wrt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--helpers", action="store_true", help="P3, P4 and their helper forms")
    options = parser.parse_args()
    jax_path()
    repeats = 5 if options.quick else options.repeats
    cases = [Case(P7, {"N": 256, "h": h}) for h in (4, 16, 64)]
    plain = [Case(P3, {"N": 200}), Case(P3, {"N": 100_000}), Case(P4, {"N": 200})]
    helpers = [Case(P3H, {"N": 200}), Case(P3H, {"N": 100_000}), Case(P4H, {"N": 200})]
    cases += plain
    if options.quick:
        cases = [cases[0], cases[2], cases[3], cases[5]]
    else:
        cases += helpers
    if options.helpers:
        cases = [c for pair in zip(plain, helpers, strict=True) for c in pair]
    print(f"reverse mode, {repeats} interleaved rounds, OMP_NUM_THREADS=1\n")
    for case in cases:
        count = parameter_count(case.problem, case.args())
        print(f"{case.label} ({count} parameter elements): {case.problem.title}")
        print(f"  {'row':34} {'time/call':>11} {'x hand':>8}  spread")
        for name, median, ratio, low, high in measure(case, repeats):
            print(f"  {name:34} {median * 1e6:9.1f}us {ratio:8.2f}  {low:.2f}-{high:.2f}")
        print()
    print("crossover (mode='auto'): benchmarks/crossover.py")
    for line in crossover.table(crossover.measure(repeats), AUTO_THRESHOLD):
        print(line)


if __name__ == "__main__":
    main()
