"""The freeing pass (fmad/liveness.py): a ``del`` never frees a value that is still used.

Three kinds of evidence:
- hand-written functions for each construct (loops with carried values and values used
  after them, branches, early returns, ``while`` with ``break``/``continue``, nested
  functions and lambdas, names deleted then bound again, ``try``): the freed text runs to
  the same result on every path, and the names it must keep are never in a ``del``;
- random structured programs (branches, loops, ``break``, ``continue``, early returns,
  names that may be unbound): the freed program returns, logs and raises exactly what the
  original does;
- every program of the tables (tests/programs_module.py, arrays, helpers, the benchmark
  problems and random array programs) differentiated with the freeing on and off: values
  and gradients bit for bit equal; the printed code has no ``del`` line, ``show(free=True)``
  and ``python -m fmad show --free`` do.
"""

from __future__ import annotations

import ast
import inspect
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import fmad
from fmad import liveness
from tests import test_arrays, test_helpers_soundness, test_programs
from tests.randoracle import load
from tests.randprog import Program, array_programs, loop_programs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import problems  # noqa: E402


def compiled(text: str) -> Any:
    namespace: dict[str, Any] = {"np": np}
    exec(compile(text, "<test>", "exec"), namespace)
    return namespace["f"]


def outcome(fn: Any, *args: Any) -> tuple:
    log: list[Any] = []
    try:
        return ("value", fn(log, *args), log)
    except Exception as exc:  # the same exception, same message, on both sides
        return ("raised", type(exc).__name__, str(exc), log)


def deleted(text: str) -> set[str]:
    return {
        t.id
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Delete)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def same_everywhere(source: str, inputs: list[tuple]) -> str:
    """The freed text of ``source``; it behaves as ``source`` on every input."""
    text = textwrap.dedent(source)
    free = liveness.freed(text)
    original, freed = compiled(text), compiled(free)
    for args in inputs:
        assert outcome(freed, *args) == outcome(original, *args), (args, free)
    return free


# -- constructs -----------------------------------------------------------------------------

INTS = [(n, m) for n in range(-1, 5) for m in range(0, 4)]

CASES = {
    "loop-carried": (
        """
        def f(log, n, m):
            acc = 0
            t = n + 1
            u = m * 2
            for i in range(n):
                acc = acc + t
                t = t + u
            log.append(acc)
            return acc
        """,
        {"t", "u"},
    ),
    "used-after-loop": (
        """
        def f(log, n, m):
            big = [n] * 3
            last = None
            for i in range(m):
                last = i + n
                log.append(last)
            total = sum(big) + (last or 0)
            log.append(total)
            return total + n
        """,
        set(),
    ),
    "branches": (
        """
        def f(log, n, m):
            a = n + 1
            b = m + 2
            if n > m:
                c = a * 2
                log.append(c)
            else:
                c = b * 3
                log.append(a)
            d = c + 1
            log.append(d)
            return d + m
        """,
        set(),
    ),
    "elif": (
        """
        def f(log, n, m):
            a = n + 1
            b = m + 1
            if n == 0:
                r = a
            elif n == 1:
                r = b
                log.append(a)
            else:
                r = a + b
            log.append(r)
            return r * 2
        """,
        set(),
    ),
    "early-return": (
        """
        def f(log, n, m):
            a = n * 2
            b = m + a
            if m == 1:
                return a
            c = b + 1
            big = [c] * 3
            log.append(len(big))
            if n < 0:
                return b
            z = c + 1
            log.append(z)
            return z + a
        """,
        {"big", "b", "c"},
    ),
    "while-break-continue": (
        """
        def f(log, n, m):
            i = 0
            keep = n * 10
            tmp = m + 1
            while i < 6:
                i += 1
                step = i + tmp
                if step % 3 == 0:
                    continue
                if i > n + m:
                    break
                keep = keep + step
            else:
                log.append(-1)
            log.append(keep)
            return keep + i
        """,
        {"step", "tmp"},
    ),
    "for-else-break": (
        """
        def f(log, n, m):
            found = -1
            limit = m + 1
            for i in range(n):
                x = i * i
                if x > limit:
                    found = x
                    break
                log.append(x)
            else:
                found = limit
            return found + n
        """,
        {"limit"},
    ),
    "nested-function-and-lambda": (
        """
        def f(log, n, m):
            scale = n + 1
            shift = m + 2
            unused = [scale]

            def helper(z):
                inner = z * scale
                out = inner + 1
                log.append(out)
                return out

            add = lambda z: z + shift
            a = helper(m)
            b = add(a)
            return b + helper(1) + add(0)
        """,
        {"unused", "inner"},
    ),
    "deleted-then-rebound": (
        """
        def f(log, n, m):
            v = n + 1
            w = v * 2
            v = m + w
            w = v + 1
            for i in range(3):
                t = i + v
                log.append(t)
                t = t * 2
                log.append(t)
            return w + v
        """,
        {"t"},
    ),
    "maybe-unbound": (
        """
        def f(log, n, m):
            if n > 1:
                a = n * 3
            if m > 1:
                log.append(m)
            return a + 1
        """,
        set(),
    ),
    "try-except": (
        """
        def f(log, n, m):
            a = n + 1
            b = m + 1
            try:
                c = a * 2
                d = 10 // (m - 1)
                e = c + d
            except ZeroDivisionError as err:
                log.append(b)
                return a
            return e + b
        """,
        {"c", "d"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_freed_text_behaves_as_the_original_on_every_path(case: str) -> None:
    source, must_free = CASES[case]
    free = same_everywhere(source, INTS)
    gone = deleted(free)
    assert must_free <= gone, free
    # never a parameter, a name a nested scope reads, a def or an except name
    assert not gone & {"log", "n", "m", "scale", "shift", "helper", "add", "err"}, free


def test_names_read_by_later_iterations_are_never_freed_in_the_loop() -> None:
    free = same_everywhere(CASES["loop-carried"][0], INTS)
    body = free.split("for i in range(n):")[1].split("log.append")[0]
    inside = [line for line in body.splitlines() if line.startswith(" " * 8)]
    assert inside and not any("del" in line for line in inside)  # read by the next pass
    assert "del acc" not in free  # returned: nothing frees it before the return


def test_a_function_with_what_the_pass_cannot_model_is_left_alone() -> None:
    for body in ("a = n\n    del a", "x = [n]\n    print(locals())", "x = n\n    yield x"):
        text = f"def f(log, n, m):\n    {body}\n    return 1\n"
        assert liveness.freed(text) == text


def test_the_switch_turns_the_pass_off(monkeypatch) -> None:
    text = textwrap.dedent(CASES["branches"][0])
    assert liveness.freed(text) != text
    monkeypatch.setattr(liveness, "ENABLED", False)
    assert liveness.freed(text) == text


# -- random structured programs ------------------------------------------------------------


class Generator:
    """Random programs over small ints: assignments, ``if``/``elif``/``else``, ``for`` and
    ``while`` (bounded) with ``else``, ``break``, ``continue``, early returns, names that may
    be unbound when read, a nested function reading a local."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = ["a", "b", "c", "d", "e"]
        self.counters = 0

    def operand(self) -> str:
        r = self.rng.random()
        if r < 0.15:
            return str(self.rng.randint(0, 5))
        if r < 0.3:
            return self.rng.choice(["n", "m"])
        return self.rng.choice(self.names)

    def block(self, depth: int, loop: bool, indent: str) -> list[str]:
        lines: list[str] = []
        for _ in range(self.rng.randint(1, 4)):
            lines += self.statement(depth, loop, indent)
        return lines

    def statement(self, depth: int, loop: bool, indent: str) -> list[str]:
        r = self.rng.random()
        v = self.rng.choice(self.names)
        inner = indent + "    "
        if r < 0.35 or depth > 2:
            op = self.rng.choice(["+", "-", "*"])
            return [f"{indent}{v} = ({self.operand()} {op} {self.operand()}) % 97"]
        if r < 0.42:
            return [f"{indent}log.append({self.operand()})"]
        if r < 0.6:
            lines = [f"{indent}if {self.operand()} % 3 == {self.rng.randint(0, 2)}:"]
            lines += self.block(depth + 1, loop, inner)
            if self.rng.random() < 0.3:
                lines += [f"{indent}elif {self.operand()} % 2 == 0:"]
                lines += self.block(depth + 1, loop, inner)
            if self.rng.random() < 0.6:
                lines += [f"{indent}else:"] + self.block(depth + 1, loop, inner)
            return lines
        if r < 0.72:
            lines = [f"{indent}for {v} in range({self.operand()} % 4):"]
            lines += self.block(depth + 1, True, inner)
            if self.rng.random() < 0.3:
                lines += [f"{indent}else:"] + self.block(depth + 1, loop, inner)
            return lines
        if r < 0.8:
            self.counters += 1
            k = f"k{self.counters}"
            lines = [f"{indent}{k} = 0", f"{indent}while {k} < {self.operand()} % 4:"]
            lines += [f"{inner}{k} += 1"] + self.block(depth + 1, True, inner)
            return lines
        if r < 0.88 and loop:
            jump = self.rng.choice(["break", "continue"])
            return [f"{indent}if {self.operand()} % 2 == 0:", f"{inner}{jump}"]
        if r < 0.94:
            return [f"{indent}if {self.operand()} % 4 == 0:", f"{inner}return {self.operand()}"]
        if r < 0.97:
            return [f"{indent}g = lambda: {self.operand()}", f"{indent}log.append(g())"]
        return [f"{indent}{v} = [{self.operand()}, {self.operand()}]"]

    def program(self) -> str:
        body = ["    a = n + 1", "    b = m"] + self.block(0, False, "    ")
        body.append(f"    return ({self.operand()}, {self.operand()})")
        return "def f(log, n, m):\n" + "\n".join(body) + "\n"


def test_random_programs_return_log_and_raise_as_the_original() -> None:
    frees = 0
    for seed in range(400):
        text = Generator(seed).program()
        free = liveness.freed(text)
        frees += free.count("del ")
        original, freed_fn = compiled(text), compiled(free)
        for n, m in [(0, 0), (1, 2), (2, 5), (3, 1), (5, 3)]:
            assert outcome(freed_fn, n, m) == outcome(original, n, m), (seed, n, m, free)
    assert frees > 400  # the programs do free values


# -- the differentiated programs of the tables ---------------------------------------------


def both_ways(monkeypatch, fn: Any, wrt: Any, args: dict[str, Any]) -> None:
    """Differentiated with the freeing on and off: equal values and gradients, bit for bit."""
    names = list(inspect.signature(fn).parameters)
    positional = [args[p] for p in names if p in args]
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(liveness, "ENABLED", enabled)
        results.append(fmad.differentiate(fn, wrt=wrt)(*positional))
    (v1, g1), (v2, g2) = results
    assert type(v1) is type(v2)
    assert np.asarray(v1).tobytes() == np.asarray(v2).tobytes()
    assert list(g1) == list(g2)
    for k in g1:
        assert np.asarray(g1[k]).tobytes() == np.asarray(g2[k]).tobytes(), k


PROGRAM_ROWS = [
    pytest.param(fn, wrt, point, id=f"{p.id}-{i}")
    for p in test_programs.ROWS
    for fn, wrt, points in [p.values]
    for i, point in enumerate(points)
]


@pytest.mark.parametrize(("fn", "wrt", "point"), PROGRAM_ROWS)
def test_program_table_same_with_and_without_freeing(monkeypatch, fn, wrt, point) -> None:
    both_ways(monkeypatch, fn, wrt, point)


@pytest.mark.parametrize(("fn", "wrt", "args"), test_helpers_soundness.EXACT)
def test_helper_table_same_with_and_without_freeing(monkeypatch, fn, wrt, args) -> None:
    both_ways(monkeypatch, fn, wrt, args)


@pytest.mark.parametrize(("fn", "make_args", "wrt"), test_arrays.MODELS)
def test_array_models_same_with_and_without_freeing(monkeypatch, fn, make_args, wrt) -> None:
    both_ways(monkeypatch, fn, wrt, make_args())


@pytest.mark.parametrize("problem", problems.PROBLEMS, ids=lambda p: p.key)
def test_benchmark_problems_same_with_and_without_freeing(monkeypatch, problem) -> None:
    for size in problem.tiny_sizes:
        args = problem.make_args(**size)
        both_ways(
            monkeypatch, problem.fn, list(problem.wrt), dict(zip(problem.params, args, strict=True))
        )


def random_program_both_ways(program: Program) -> None:
    fn, _ = load(program.source)
    results = []
    for enabled in (True, False):
        liveness.ENABLED = enabled
        try:
            value, grads = fmad.differentiate(fn, wrt=list(program.wrt))(**program.arguments())
            results.append(("value", repr(value), {k: repr(g) for k, g in grads.items()}))
        except Exception as exc:
            results.append(("raised", type(exc).__name__, str(exc)))
        finally:
            liveness.ENABLED = True
    assert results[0] == results[1], program


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(program=array_programs())
def test_random_array_programs_same_with_and_without_freeing(program: Program) -> None:
    random_program_both_ways(program)


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(program=loop_programs())
def test_random_loop_programs_same_with_and_without_freeing(program: Program) -> None:
    random_program_both_ways(program)


# -- what is printed -----------------------------------------------------------------------


def test_printed_code_has_no_del_and_show_free_does() -> None:
    f = fmad.differentiate(problems.p3_fn, wrt=["w", "b"])
    shapes = {"X": (5, 2), "y": (5,), "w": (2,), "b": ()}
    printed = f.show(shapes=shapes)
    assert "del " not in printed
    assert "del " not in f.source
    free = f.show(shapes=shapes, free=True)
    assert "del " in free
    # the same code but for the del lines
    kept = [line for line in free.splitlines() if not line.strip().startswith("del ")]
    assert kept == printed.splitlines()


def test_cli_show_free_prints_del_lines() -> None:
    target = f"{ROOT / 'benchmarks' / 'problems.py'}:p3_fn"
    command = [sys.executable, "-m", "fmad", "show", target, "--wrt", "w,b"]
    command += ["--shapes", "X=5x2,y=5,w=2,b="]
    plain = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    free = subprocess.run([*command, "--free"], capture_output=True, text=True, cwd=ROOT)
    assert free.returncode == 0, free.stderr
    assert "del " not in plain.stdout
    assert "del " in free.stdout
