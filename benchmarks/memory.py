"""Peak memory and page faults of one value+gradient call, each in a fresh subprocess.

    python benchmarks/memory.py [--sizes 100000,1000000] [--no-free] [--time]

Each (problem, size, function) runs in its own process, so that what one run allocated
(or the allocator kept) does not disturb the next. In it: build the arguments, call the
function twice (warm-up: fmad compiles its array variant on the first call), then

- peak: tracemalloc's peak during one call, less what was allocated before it (numpy
  reports its buffers to tracemalloc);
- faults: minor page faults per call over 5 calls (``resource.getrusage``): memory the
  allocator gave back to the system at the end of a call and takes back on the next;
- max RSS: the process's high-water mark (``ru_maxrss``) less the one after the warm-up
  calls' data was built, a cross-check of the peak from the system's side.

``fmad (no del)`` is fmad with its freeing pass (fmad/liveness.py) turned off: the code
before the pass, measured in the same run; ``fmad mode='reverse'`` is reverse mode (the
values its adjoint reads stay alive to the backward pass, or are computed again there:
fmad/reverse_inplace.py, fmad/reverse_remat.py). ``--time`` adds the time
ratio fmad / hand-written (interleaved median of repeated runs in one process).
"""

# ruff: noqa: E402  (the thread settings must come before numpy is imported)
from __future__ import annotations

import sys
from pathlib import Path

from timing import pin_threads

pin_threads()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import resource
import subprocess
import tracemalloc
from typing import Any

import problems

import fmad
from fmad import inplace, liveness

HERE = Path(__file__).resolve().parent
FUNCTIONS = ("hand-written", "fmad", "fmad (no del)", "fmad mode='reverse'")
# (problem, size) pairs of the memory targets, and the target for each problem
CASES = (
    ("P2", {"d": 1}),
    ("P2", {"d": 10}),
    ("P2s", {}),
    ("P3", {}),
)
TARGETS = {"P2": 1.2, "P2s": 1.2, "P3": 1.5}


def function_for(problem: problems.Problem, which: str) -> Any:
    if which == "hand-written":
        return problem.hand
    reverse = which == "fmad mode='reverse'"
    liveness.ENABLED = inplace.ENABLED = which == "fmad" or reverse
    return fmad.differentiate(
        problem.fn, wrt=list(problem.wrt), mode="reverse" if reverse else "forward"
    )


def measure_here(key: str, size: dict[str, int], which: str, timed: bool) -> dict[str, Any]:
    """One function at one size, in this process."""
    problem = next(p for p in problems.PROBLEMS if p.key == key)
    args = problem.make_args(**size)
    func = function_for(problem, which)
    func(*args)
    func(*args)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = func(*args)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    del result
    calls = 5
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        func(*args)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    out = {"peak": peak, "faults": faults / calls, "rss_kib": rss}
    if timed and which != "hand-written":
        from timing import CallTimer

        timers = [CallTimer(problem.hand, args), CallTimer(func, args)]
        ratios = []
        for _ in range(7):
            for t in timers:
                t.run()
            ratios.append(timers[1].per_call[-1] / timers[0].per_call[-1])
        ratios.sort()
        out["time_ratio"] = ratios[len(ratios) // 2]
    return out


def measure(
    key: str, size: dict[str, int], which: str, timed: bool = False
) -> dict[str, Any] | str:
    """One function at one size, in a fresh subprocess; a string says why it failed."""
    command = [sys.executable, str(HERE / "memory.py"), "--one", key, json.dumps(size), which]
    if timed:
        command.append("--time")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(done.stdout)


def table(
    sizes: list[int], timed: bool = False, keys: set[str] | None = None
) -> tuple[list[str], list[tuple]]:
    """Markdown lines, and (label, ratio, target) for each fmad row (problems ``keys``)."""
    lines = [
        "| case | function | peak | ÷ hand-written | minor faults / call | max RSS growth |"
        + (" time ÷ hand-written |" if timed else ""),
        "|---|---|---:|---:|---:|---:|" + ("---:|" if timed else ""),
    ]
    ratios = []
    for key, extra in CASES:
        if keys is not None and key not in keys:
            continue
        for n in sizes:
            size = {"N": n, **extra}
            label = f"{key} " + " ".join(f"{k}={v}" for k, v in size.items())
            results = {which: measure(key, size, which, timed) for which in FUNCTIONS}
            hand = results["hand-written"]
            for which, r in results.items():
                if isinstance(r, str):
                    lines.append(f"| {label} | {which} | failed: {r} | | | |")
                    continue
                ratio = r["peak"] / hand["peak"] if isinstance(hand, dict) else None
                ratio_text = "" if ratio is None else f"{ratio:.2f}x"
                time_text = f" {r['time_ratio']:.2f}x |" if "time_ratio" in r else " |"
                lines.append(
                    f"| {label} | {which} | {r['peak'] / 2**20:.1f} MiB | {ratio_text} "
                    f"| {r['faults']:.0f} | {r['rss_kib'] / 1024:.1f} MiB |"
                    + (time_text if timed else "")
                )
                if which == "fmad" and ratio is not None:
                    ratios.append((label, ratio, TARGETS[key]))
    return lines, ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("PROBLEM", "SIZE", "FUNCTION"))
    options = parser.parse_args()
    if options.one:
        key, size, which = options.one
        print(json.dumps(measure_here(key, json.loads(size), which, options.time)))
        return 0
    lines, _ = table([int(s) for s in options.sizes.split(",")], options.time)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
