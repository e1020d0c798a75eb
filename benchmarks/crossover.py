"""The crossover behind ``mode="auto"``: forward and reverse mode side by side, by the number
of parameter elements.

    python benchmarks/crossover.py [--repeats 9]

``fmad.differentiate(fn, mode="auto")`` runs reverse mode for a call whose ``wrt`` arguments
have more than ``fmad.modes.AUTO_THRESHOLD`` elements in all, forward mode otherwise. This
times both modes of the same functions (interleaved rounds; a ratio is the median over
rounds of forward time / reverse time in the same round): the linear model P2
(``np.mean((X @ w + b - y) ** 2)``, N = 256) with d = 1 ... 16 features, the MLP P7 (N = 256,
d = 8) with h = 1, 2, 4 hidden units, and the scalar-parameter problems P3 (3 elements) and
P4 (9 numbers). ``benchmarks/run.py`` prints the same table in its report.
"""

# ruff: noqa: E402  (the thread settings must come before numpy is imported)
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from timing import CallTimer, pin_threads

pin_threads()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse

import numpy as np
import problems
from problems import Case

CASES = (
    *(Case(problems.P2, {"N": 256, "d": d}) for d in (1, 2, 4, 8, 16)),
    *(Case(problems.P7, {"N": 256, "h": h}) for h in (1, 2, 4)),
    Case(problems.P3, {"N": 200}),
    Case(problems.P4, {"N": 200}),
)


def elements(case: Case, args: tuple) -> int:
    problem = case.problem
    return sum(int(np.size(args[problem.params.index(w)])) for w in problem.wrt)


def measure(repeats: int, min_repeat_s: float = 0.02) -> list[tuple]:
    """Per case, by number of parameter elements: (case, elements, forward s, reverse s,
    median ratio, lowest, highest)."""
    import fmad  # noqa: PLC0415  (after the thread settings)

    rows = []
    for case in CASES:
        problem, args = case.problem, case.args()
        wrt = list(problem.wrt)
        timers = [
            CallTimer(fmad.differentiate(problem.fn, wrt=wrt, mode=mode), args, min_repeat_s=s)
            for mode, s in (("forward", min_repeat_s), ("reverse", min_repeat_s))
        ]
        for _ in range(repeats):
            for timer in timers:
                timer.run()
        forward, reverse = timers
        ratios = [f / r for f, r in zip(forward.per_call, reverse.per_call, strict=True)]
        rows.append(
            (
                case,
                elements(case, args),
                forward.median,
                reverse.median,
                statistics.median(ratios),
                min(ratios),
                max(ratios),
            )
        )
    return sorted(rows, key=lambda row: row[1])


def table(rows: list[tuple], threshold: int) -> list[str]:
    """The Markdown table and a sentence on where reverse mode overtakes forward mode."""
    lines = [
        "| case | parameter elements | forward | reverse | forward ÷ reverse | auto picks |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for case, count, forward, reverse, ratio, low, high in rows:
        picks = "reverse" if count > threshold else "forward"
        lines.append(
            f"| {case.label} | {count} | {forward * 1e6:.1f} µs | {reverse * 1e6:.1f} µs "
            f"| {ratio:.2f}x ({low:.2f}-{high:.2f}) | {picks} |"
        )
    ahead = [count for _, count, *_, ratio, _, _ in rows if ratio > 1.0]
    behind = [count for _, count, *_, ratio, _, _ in rows if ratio <= 1.0]
    lines.append("")
    if ahead:
        lines.append(
            f"Reverse mode is ahead from {min(ahead)} parameter elements on in these cases"
            + (f" (behind at {', '.join(map(str, sorted(set(behind))))})" if behind else "")
            + f"; `mode='auto'` switches above {threshold}."
        )
    else:
        lines.append(f"Reverse mode is not ahead here; `mode='auto'` switches above {threshold}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    options = parser.parse_args()
    from fmad.modes import AUTO_THRESHOLD  # noqa: PLC0415

    for line in table(measure(options.repeats), AUTO_THRESHOLD):
        print(line)


if __name__ == "__main__":
    main()
