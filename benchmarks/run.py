"""Benchmark fmad against a hand-written gradient and its peers.

    python benchmarks/run.py [--quick] [--only P1,P2] [--peers hand,fmad,fd] [--output PATH]

Prints one Markdown table per problem size and writes benchmarks/RESULTS.md. Every time is
the median per-call time of one value+gradient evaluation, and every ratio is against the
hand-written gradient measured in the same run.
"""

# ruff: noqa: E402  (the thread settings must come before numpy is imported)
import sys
from pathlib import Path

from timing import pin_threads

pin_threads()
# Run from a checkout: the fmad next to this directory, whether installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import datetime
import importlib
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Self

import crossover
import memory
import numpy as np
import peers
import problems
import transform_time
from peers import Peer, Result
from problems import Case, Problem
from timing import THREAD_VARIABLES, CallTimer

HERE = Path(__file__).resolve().parent
TRAIN_TARGET = 0.10  # fmad.train per-epoch overhead over a minimal loop


@dataclass(frozen=True)
class Settings:
    quick: bool
    repeats: int
    min_repeat_s: float = 0.02
    transform_repeats: int = 5
    memory_sizes: tuple[int, ...] = ()  # N of the peak-memory table
    train_runs: int = 5
    train_epochs: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool) -> Self:
        if quick:
            return cls(
                quick=True,
                repeats=3,
                transform_repeats=3,
                memory_sizes=(100_000,),
                train_runs=3,
                train_epochs={"P1": 2000, "P2": 200},
            )
        return cls(
            quick=False,
            repeats=11,
            memory_sizes=(100_000, 1_000_000),
            train_epochs={"P1": 20_000, "P2": 2000},
        )


@dataclass
class Row:
    peer: Peer
    seconds: float | None = None  # median per call; None when skipped or failed
    setup_s: float | None = None
    check: str = ""
    passed: bool | None = None  # correctness; None when not checked


@dataclass
class CaseReport:
    case: Case
    rows: list[Row]

    @property
    def hand_s(self) -> float | None:
        return self.rows[0].seconds

    def ratio(self, row: Row) -> float | None:
        if row.seconds is None or not self.hand_s:
            return None
        return row.seconds / self.hand_s


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    target: str
    met: bool | None  # None: could not be measured


# --- measuring --------------------------------------------------------------------------


def relative_error(got: Any, want: Any) -> float:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(float(np.max(np.abs(want))), np.finfo(float).tiny)
    return float(np.max(np.abs(got - want))) / scale


def check(problem: Problem, args: tuple, peer: Peer, result: Result, reference: tuple) -> Row:
    """Compare a peer's value (and gradient) with the hand-written one."""
    ref_value, ref_grads = reference
    errors = [relative_error(result.value, ref_value)]
    if peer.gradient:
        for name, position in zip(problem.wrt, problem.wrt_positions, strict=True):
            if result.grads is None or name not in result.grads:
                return Row(peer, check=f"FAIL: no gradient for {name}", passed=False)
            got, want_shape = result.grads[name], np.shape(args[position])
            if np.shape(got) != want_shape:
                text = f"FAIL: {name} gradient shape {np.shape(got)}, expected {want_shape}"
                return Row(peer, check=text, passed=False)
            errors.append(relative_error(got, ref_grads[name]))
    worst = max(errors)
    bound = f"{'FD ' if peer.tolerance > peers.EXACT_TOLERANCE else ''}bound {peer.tolerance:g}"
    what = "" if peer.gradient else "value only, gradient n/a; "
    if worst < peer.tolerance:
        return Row(peer, check=f"ok ({what}rel err {worst:.1e}, {bound})", passed=True)
    return Row(peer, check=f"FAIL ({what}rel err {worst:.1e} > {bound})", passed=False)


def run_case(case: Case, selected: Sequence[Peer], settings: Settings) -> CaseReport:
    problem, args = case.problem, case.args()
    reference = problem.hand(*args)
    rows, timers = [], []
    for peer in selected:
        missing = peer.unavailable() or peer.not_for(problem)
        if missing:
            rows.append(Row(peer, check=f"skipped: {missing}"))
            continue
        try:
            prepared = peer.prepare(problem, args)
            output = prepared.func(*prepared.args)
            row = check(problem, args, peer, prepared.convert(output), reference)
            row.setup_s = prepared.setup_s
            timer = CallTimer(prepared.func, prepared.args, min_repeat_s=settings.min_repeat_s)
            timers.append((row, timer))
        except peers.SkipPeer as exc:  # the peer does not apply to this problem: said so
            rows.append(Row(peer, check=f"skipped: {exc}"))
            continue
        except Exception as exc:  # one failing peer must not stop the run; it is reported
            row = Row(peer, check=f"failed: {type(exc).__name__}: {one_line(exc)}", passed=False)
        rows.append(row)
    # Round-robin: each round times every peer once, so load drifting during the case
    # (this is a shared 2-core machine) shifts all peers alike instead of one.
    for _ in range(settings.repeats):
        for _, timer in timers:
            timer.run()
    for row, timer in timers:
        row.seconds = timer.median
    return CaseReport(case, rows)


def one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def differentiate(problem: Problem) -> Any:
    import fmad

    return fmad.differentiate(problem.fn, wrt=list(problem.wrt))


def minimal_loop(fn: Callable[..., Any], args: tuple, problem: Problem, lr: float, epochs: int):
    """Gradient descent with nothing but the call and the update: the baseline for train."""
    args = list(args)
    slots = list(zip(problem.wrt, problem.wrt_positions, strict=True))
    losses = []
    for _ in range(epochs):
        loss, grads = fn(*args)
        losses.append(loss)
        for name, position in slots:
            args[position] = args[position] - lr * grads[name]
    return losses


def train_overhead(case: Case, lr: float, epochs: int, settings: Settings) -> tuple:
    """(per-epoch train seconds, per-epoch minimal loop seconds, same losses?)."""
    import fmad

    problem, args = case.problem, case.args()
    differentiated = differentiate(problem)
    data = {n: v for n, v in zip(problem.params, args, strict=True) if n not in problem.wrt}

    def with_train() -> list[float]:
        params = [
            fmad.Variable(n, args[i])
            for n, i in zip(problem.wrt, problem.wrt_positions, strict=True)
        ]
        return fmad.train(differentiated, params, data, lr=lr, epochs=epochs).losses

    def with_loop() -> list[Any]:
        return minimal_loop(differentiated, args, problem, lr, epochs)

    same = [float(x) for x in with_train()] == [float(x) for x in with_loop()]
    runs: dict[str, list[float]] = {"train": [], "loop": []}
    for _ in range(settings.train_runs):  # alternating, so load drift hits both alike
        for label, run in (("train", with_train), ("loop", with_loop)):
            start = perf_counter()
            run()
            runs[label].append(perf_counter() - start)
    train_s, loop_s = (statistics.median(runs[k]) / epochs for k in ("train", "loop"))
    return train_s, loop_s, same


# --- formatting -------------------------------------------------------------------------


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def met_text(met: bool | None) -> str:
    return {True: "met", False: "**NOT met**", None: "not measured"}[met]


def case_table(report: CaseReport) -> str:
    lines = [
        "| peer | time / call | ÷ hand-written | target | setup (one-time) | check |",
        "|---|---:|---:|---|---:|---|",
    ]
    for row in report.rows:
        ratio = report.ratio(row)
        target = ""
        if row.peer.key == "fmad":
            target = f"<= {report.case.problem.target}x: {met_text(fmad_met(report))}"
        name = row.peer.name
        lines.append(
            f"| {name} | {fmt_time(row.seconds)} | {fmt_ratio(ratio)} | {target} "
            f"| {fmt_time(row.setup_s)} | {row.check} |"
        )
    return "\n".join(lines)


def fmad_met(report: CaseReport) -> bool | None:
    for row in report.rows:
        if row.peer.key == "fmad":
            ratio = report.ratio(row)
            if ratio is None:
                return None
            return bool(row.passed) and ratio <= report.case.problem.target
    return None


def machine_lines(selected: Sequence[Peer]) -> list[str]:
    versions = [f"numpy {np.__version__}"]
    for peer in selected:
        if peer.module and not peer.unavailable():
            versions.append(f"{peer.module} {peer.version()}")
    if any(p.key in ("jax", "jacfwd") and not p.unavailable() for p in selected):
        versions.append(f"jaxlib {importlib.import_module('jaxlib').__version__}")
    threads = ", ".join(f"{name}={os.environ[name]}" for name in THREAD_VARIABLES)
    return [
        f"- platform: `{platform.platform()}` ({platform.machine()})",
        f"- CPUs: {os.cpu_count()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- versions: {', '.join(dict.fromkeys(versions))}",
        f"- threads: {threads}; XLA_FLAGS=`{os.environ.get('XLA_FLAGS', '')}`; "
        "torch.set_num_threads(1)",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- load average at start (1, 5, 15 min): {load_average()}",
    ]


def load_average() -> str:
    """Other processes on a 2-core machine skew timings; the load says how much."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):  # not on Windows
        return "n/a"


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, fewer repeats")
    parser.add_argument("--only", help="comma-separated problem keys, e.g. P1,P2s")
    parser.add_argument(
        "--peers",
        help="comma-separated peer keys (hand-written is always included): "
        + ",".join(p.key for p in peers.PEERS),
    )
    parser.add_argument(
        "--output", type=Path, default=HERE / "RESULTS.md", help="default: %(default)s"
    )
    return parser.parse_args(argv)


def select(keys: str | None, items: Sequence[Any], what: str) -> list[Any]:
    if not keys:
        return list(items)
    wanted = [k.strip().lower() for k in keys.split(",") if k.strip()]
    known = {item.key.lower(): item for item in items}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        names = ", ".join(item.key for item in items)
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {names}")
    return [item for item in items if item.key.lower() in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    settings = Settings.make(options.quick)
    selected_problems = select(options.only, problems.PROBLEMS, "problem")
    selected_peers = select(options.peers, peers.PEERS, "peer")
    if peers.PEERS[0] not in selected_peers:
        selected_peers.insert(0, peers.PEERS[0])
    fmad_missing = peers.Fmad().unavailable()
    started = perf_counter()
    out: list[str] = []

    def emit(text: str = "", echo: bool = True) -> None:
        if echo:
            print(text, flush=True)
        out.append(text)

    mode = "quick" if settings.quick else "full"
    emit("# fmad benchmark results")
    emit()
    command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    emit(f"Mode: **{mode}** (`{command}`).")
    emit()
    emit("## Machine")
    emit()
    for line in machine_lines(selected_peers):
        emit(line)
    emit()
    emit("## How to read")
    emit()
    emit(
        f"- time / call: median over {settings.repeats} timeit repeats (each >= "
        f"{settings.min_repeat_s * 1e3:.0f} ms, after warm-up) of one value+gradient call."
    )
    emit(
        "- ÷ hand-written: that time over the hand-written analytic gradient's, same run. "
        "Rows marked value only compute the loss alone (no gradient)."
    )
    emit(
        "- setup: fmad transform + first call; SymPy expression, diff and lambdify + first "
        "call; JAX tracing and compilation (first call); others none."
    )
    emit(
        f"- check: every peer against the hand-written value and gradient, max relative "
        f"error; exact methods bound {peers.EXACT_TOLERANCE:g}, central finite differences "
        f"bound {peers.FD_TOLERANCE:g} (labelled FD)."
    )
    emit()

    targets: list[Target] = []
    transform_lines: list[str] = []
    if not fmad_missing:
        # Before the case tables: the first transform of each function is then a cold one.
        transform_lines, transform_rows = transform_time.report(
            selected_problems, settings.transform_repeats
        )
        targets += [Target(*t) for t in transform_time.targets(transform_rows)]

    reports = []
    for case in problems.cases(selected_problems, settings.quick):
        report = run_case(case, selected_peers, settings)
        reports.append(report)
        emit(f"### {case.label}: {case.problem.title}")
        emit()
        emit(case_table(report))
        emit()
        fmad_row = next((r for r in report.rows if r.peer.key == "fmad"), None)
        if fmad_row is not None:
            targets.append(
                Target(
                    f"{case.label} time ÷ hand-written",
                    fmt_ratio(report.ratio(fmad_row)),
                    f"<= {case.problem.target}x",
                    fmad_met(report),
                )
            )

    if not fmad_missing and any(peer.key == "fmad-rev" for peer in selected_peers):
        from fmad.modes import AUTO_THRESHOLD

        emit("## Reverse mode: where mode='auto' switches")
        emit()
        emit(
            "Forward and reverse mode of the same functions, by the number of parameter "
            "elements (benchmarks/crossover.py; interleaved rounds, forward ÷ reverse is the "
            f"median of the per-round ratios, lowest-highest in brackets). `mode='auto'` runs "
            f"reverse mode above {AUTO_THRESHOLD} elements (fmad/modes.py `AUTO_THRESHOLD`)."
        )
        emit()
        for line in crossover.table(crossover.measure(settings.repeats), AUTO_THRESHOLD):
            emit(line)
        emit()

    emit("## fmad transform time")
    emit()
    if fmad_missing:
        emit(f"skipped: fmad {fmad_missing}")
    else:
        for line in transform_lines:
            emit(line)
    emit()

    memory_keys = {p.key for p in selected_problems} & {key for key, _ in memory.CASES}
    if not fmad_missing and memory_keys:
        emit("## Peak memory")
        emit()
        emit(
            "One value+gradient call, each function in a fresh subprocess (benchmarks/"
            "memory.py): tracemalloc peak (numpy buffers included), minor page faults per "
            "call (memory the allocator returned to the system and takes back on the next "
            "call) and the growth of the process's max RSS after warm-up. `fmad (no del)`: "
            "fmad with its freeing pass (fmad/liveness.py) off, the code before it."
        )
        emit()
        lines, ratios = memory.table(list(settings.memory_sizes), keys=memory_keys)
        for line in lines:
            emit(line)
        emit()
        for label, ratio, target in ratios:
            met = ratio <= target
            targets.append(Target(f"{label} peak memory", f"{ratio:.2f}x", f"<= {target}x", met))

    train_cases = [
        (problems.Case(problems.P1, {}), 0.01),
        (problems.Case(problems.P2, {"N": 1000, "d": 1}), 0.1),
    ]
    train_cases = [(c, lr) for c, lr in train_cases if c.problem in selected_problems]
    if not fmad_missing and train_cases:
        emit("## fmad.train per-epoch overhead")
        emit()
        emit(
            "`fmad.train(f, params, data, lr=..., epochs=E)` against a minimal loop calling "
            f"the same differentiated `f` and updating the parameters; median of "
            f"{settings.train_runs} runs."
        )
        emit()
        emit("| case | epochs | train / epoch | loop / epoch | overhead | same losses | target |")
        emit("|---|---:|---:|---:|---:|---|---|")
        for case, lr in train_cases:
            epochs = settings.train_epochs[case.problem.key]
            try:
                train_s, loop_s, same = train_overhead(case, lr, epochs, settings)
            except Exception as exc:
                emit(f"| {case.label} | {epochs} | failed: {type(exc).__name__}: {one_line(exc)} |")
                targets.append(Target(f"{case.label} train overhead", "failed", "<= 10%", None))
                continue
            overhead = train_s / loop_s - 1.0
            met = overhead <= TRAIN_TARGET
            emit(
                f"| {case.label} | {epochs} | {fmt_time(train_s)} | {fmt_time(loop_s)} "
                f"| {overhead:+.0%} | {'yes' if same else 'NO'} | <= 10%: {met_text(met)} |"
            )
            targets.append(
                Target(f"{case.label} train overhead", f"{overhead:+.0%}", "<= 10%", met)
            )
        emit()

    emit("## Targets (fmad)")
    emit()
    emit("| what | measured | target | status |")
    emit("|---|---:|---|---|")
    for t in targets:
        emit(f"| {t.what} | {t.measured} | {t.target} | {met_text(t.met)} |")
    emit()

    if not fmad_missing:
        emit("## Appendix: code fmad generated (smallest size of each problem)", echo=False)
        emit(echo=False)
        for problem in selected_problems:
            args = problem.make_args(**problem.quick_sizes[0])
            try:
                source = differentiate(problem).source_for(*args)
            except Exception as exc:
                source = f"# failed: {type(exc).__name__}: {one_line(exc)}"
            for line in (f"### {problem.key}", "", "```python", source.rstrip(), "```", ""):
                emit(line, echo=False)

    emit(
        f"Total benchmark time: {perf_counter() - started:.0f} s; load average at the end: "
        f"{load_average()}."
    )
    options.output.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {options.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
