"""fmad's transform time: ``fmad.differentiate`` plus the first call, per problem and mode.

    python benchmarks/transform_time.py [--only P1,P4] [--repeats 7]

For each problem of the suite (P1-P6 and the MLP, P7) and each mode (forward, reverse), a
fresh transform of the user's function and its first call at the problem's smallest size.
The modes alternate within each round, so load drifting during the run hits both alike. The
first transform of each (cold: source read, rules looked up for the first time) is reported
apart; the others give the medians. Timings on a shared machine depend on its load: the load
average at the start and the end is printed with the table (targets are for a quiet one).
``benchmarks/run.py`` prints this table in its results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import problems  # noqa: E402
from problems import Problem  # noqa: E402

MODES = ("forward", "reverse")
# transform + first call on a quiet machine (issue 10)
TARGETS_S = {("P1", "forward"): 0.002, ("P4", "forward"): 0.010}


@dataclass
class Row:
    problem: Problem
    mode: str
    cold: float | None = None  # the first transform + call, seconds
    made: list[float] | None = None  # differentiate, later transforms
    first: list[float] | None = None  # the first call, later transforms
    error: str | None = None

    def median(self, which: str) -> float | None:
        if self.error is not None:
            return None
        made, first = self.made or [self.cold], self.first or [0.0]
        if which == "made":
            return statistics.median(made)
        if which == "first":
            return statistics.median(first)
        return statistics.median(a + b for a, b in zip(made, first, strict=True))


def once(problem: Problem, mode: str, args: tuple) -> tuple[float, float]:
    import fmad

    start = perf_counter()
    function = fmad.differentiate(problem.fn, wrt=list(problem.wrt), mode=mode)
    made = perf_counter()
    function(*args)
    return made - start, perf_counter() - made


def measure(selected: Sequence[Problem], repeats: int, modes: Sequence[str] = MODES) -> list[Row]:
    rows = []
    for problem in selected:
        args = problem.make_args(**problem.quick_sizes[0])
        mine = {mode: Row(problem, mode, made=[], first=[]) for mode in modes}
        for round_ in range(repeats):
            for mode in modes:
                row = mine[mode]
                if row.error is not None:
                    continue
                try:
                    made, first = once(problem, mode, args)
                except Exception as exc:  # reported in the table
                    row.error = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                    continue
                if round_ == 0:
                    row.cold = made + first
                else:
                    row.made.append(made)
                    row.first.append(first)
        rows += mine.values()
    return rows


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f} ms"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| problem | mode | cold | differentiate | first call | total | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        key = (row.problem.key, row.mode)
        if row.error is not None:
            lines.append(f"| {key[0]} | {key[1]} | {row.error} | | | | |")
            continue
        total = row.median("total")
        target = ""
        if key in TARGETS_S:
            met = total <= TARGETS_S[key]
            target = f"<= {TARGETS_S[key] * 1e3:.0f} ms: {'met' if met else '**NOT met**'}"
        lines.append(
            f"| {key[0]} | {key[1]} | {fmt_ms(row.cold)} | {fmt_ms(row.median('made'))} | "
            f"{fmt_ms(row.median('first'))} | {fmt_ms(total)} | {target} |"
        )
    return lines


def report(selected: Sequence[Problem], repeats: int) -> tuple[list[str], list[Row]]:
    """The section's lines (with the load average before and after) and its rows."""
    before = load_average()
    rows = measure(selected, repeats)
    lines = [
        f"`fmad.differentiate(fn, wrt=..., mode=...)` plus the first call (smallest size); "
        f"cold: the first transform of the run; the others: median of {max(1, repeats - 1)} "
        f"fresh transforms, the modes alternating. Load average (1, 5, 15 min) before: "
        f"{before}; after: {load_average()}.",
        "",
        *table(rows),
    ]
    return lines, rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated problem keys, e.g. P1,P4")
    parser.add_argument("--repeats", type=int, default=7, help="transforms per problem and mode")
    options = parser.parse_args(argv)
    wanted = {k.strip().upper() for k in (options.only or "").split(",") if k.strip()}
    selected = [p for p in problems.PROBLEMS if not wanted or p.key.upper() in wanted]
    lines, _ = report(selected, max(2, options.repeats))
    print("\n".join(lines))
    return 0


def targets(rows: list[Row]) -> list[tuple[str, Any, str, bool | None]]:
    """(what, measured, target, met) of each row with a target."""
    found = []
    for row in rows:
        key = (row.problem.key, row.mode)
        if key not in TARGETS_S:
            continue
        total = row.median("total")
        limit = f"<= {TARGETS_S[key] * 1e3:.0f} ms"
        what = f"{key[0]} transform + first call ({key[1]})"
        met = None if total is None else total <= TARGETS_S[key]
        found.append((what, fmt_ms(total), limit, met))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
