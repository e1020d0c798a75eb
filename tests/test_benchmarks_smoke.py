"""The benchmark problems at tiny sizes: references, fmad and finite differences agree.

Correctness only; nothing here measures time. The benchmark's ratios are only meaningful if
the hand-written references are right, so they are checked against finite differences too.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import peers  # noqa: E402
import problems  # noqa: E402

import fmad  # noqa: E402

TINY_CASES = [
    problems.Case(problem, size) for problem in problems.PROBLEMS for size in problem.tiny_sizes
]


def relative_error(got, want) -> float:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def assert_gradients_close(problem, args, grads, reference, tolerance) -> None:
    assert list(grads) == list(problem.wrt)
    for name, position in zip(problem.wrt, problem.wrt_positions, strict=True):
        assert np.shape(grads[name]) == np.shape(args[position]), name
        assert relative_error(grads[name], reference[name]) < tolerance, name


@pytest.fixture(params=TINY_CASES, ids=lambda case: case.label)
def case(request):
    return request.param


def test_hand_written_matches_function_and_finite_differences(case):
    problem, args = case.problem, case.args()
    value, grads = problem.hand(*args)
    assert relative_error(value, problem.fn(*args)) < 1e-12
    _, fd_grads = peers.central_differences(problem, args)
    assert_gradients_close(problem, args, grads, fd_grads, peers.FD_TOLERANCE)


def test_fmad_matches_hand_written(case):
    problem, args = case.problem, case.args()
    value, grads = fmad.differentiate(problem.fn, wrt=list(problem.wrt))(*args)
    assert np.array_equal(value, problem.fn(*args))  # the contract: the original's value
    ref_value, ref_grads = problem.hand(*args)
    assert relative_error(value, ref_value) < peers.EXACT_TOLERANCE
    assert_gradients_close(problem, args, grads, ref_grads, peers.EXACT_TOLERANCE)


def test_every_problem_is_covered_and_a_wrong_reference_is_caught():
    assert {case.problem.key for case in TINY_CASES} == {p.key for p in problems.PROBLEMS}
    # A wrong reference must be caught: perturbing one gradient breaks the comparison.
    problem, args = problems.P6, problems.P6.make_args()
    _, grads = problem.hand(*args)
    _, fd_grads = peers.central_differences(problem, args)
    with pytest.raises(AssertionError):
        assert_gradients_close(problem, args, {**grads, "c": grads["c"] * 1.001}, fd_grads, 1e-6)


def test_run_script_writes_a_results_table(tmp_path):
    output = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--only", "P6", "--peers", "fd"]
        + ["--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text(encoding="utf-8")
    assert "### P6" in text
    assert "| hand-written (reference) |" in text
    assert "| central finite differences |" in text
    assert "FAIL" not in text and "failed" not in text


def test_the_crossover_table_says_where_auto_switches() -> None:
    import crossover  # noqa: PLC0415  (imported here: it pins the BLAS threads)

    cases = crossover.CASES
    rows = [
        (cases[0], 2, 2e-5, 1e-5, 0.8, 0.7, 0.9),
        (cases[1], 3, 2e-5, 1e-5, 1.3, 1.2, 1.4),
        (cases[-1], 9, 2e-5, 1e-5, 2.0, 1.8, 2.2),
    ]
    lines = crossover.table(rows, 8)
    assert lines[2].endswith("| 0.80x (0.70-0.90) | forward |")
    assert lines[-3].endswith("| reverse |")
    assert lines[-1] == (
        "Reverse mode is ahead from 3 parameter elements on in these cases (behind at 2); "
        "`mode='auto'` switches above 8."
    )
    assert all(crossover.elements(c, c.args()) > 0 for c in cases[:2])


def test_the_hessian_benchmark_runs_and_its_references_agree() -> None:
    # bench_hessian checks fmad's Hessian against the hand-written one before timing
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_hessian.py"),
            "--d",
            "3",
            "--n",
            "20",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| fmad |" in done.stdout


def test_the_transform_time_table_has_both_modes_and_the_load() -> None:
    import transform_time  # noqa: PLC0415

    lines, rows = transform_time.report([problems.P1, problems.P6], repeats=2)
    assert [(r.problem.key, r.mode) for r in rows] == [
        ("P1", "forward"),
        ("P1", "reverse"),
        ("P6", "forward"),
        ("P6", "reverse"),
    ]
    assert all(r.error is None and len(r.made) == 1 for r in rows)
    assert "Load average" in lines[0]
    assert lines[-4].startswith("| P1 | forward |") and "<= 2 ms" in lines[-4]
    assert [t[0] for t in transform_time.targets(rows)] == ["P1 transform + first call (forward)"]
