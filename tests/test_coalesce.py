"""Copies coalesced in the code that runs (fmad/coalesce.py), and the freeing pass after it.

- hand-written functions: each copy that may go goes (``loss += e`` in a loop keeps one
  name), each that may not stays (a read of the target or a jump between, a value read
  twice or bound twice, a nested scope, a handler that reads the target, the user's name
  and fmad's);
- random structured programs (loops nested in loops, ``while``, ``break``/``continue``,
  early returns, names read after the loop, lambdas) with copies: coalesced, then freed,
  each returns, logs and raises exactly what the original does;
- differentiated programs (the loop tables, random loop programs, the benchmark problems)
  with the pass on and off: values and gradients bit for bit equal; the printed code is
  unchanged and ``show(free=True)`` prints the code that runs;
- an array computed in a loop whose sum is coalesced is still freed in the loop, and an
  exception in a coalesced line is the user's, at the user's line.
"""

from __future__ import annotations

import ast
import math
import random
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import fmad
from fmad import coalesce, liveness
from tests.randoracle import load
from tests.randprog import Program, loop_programs
from tests.test_liveness import INTS, compiled, deleted, outcome

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import problems  # noqa: E402


def run_text(source: str, users: set[str] = frozenset()) -> str | None:
    """``source`` coalesced (None: nothing changed)."""
    tree = ast.parse(textwrap.dedent(source)).body[0]
    new = coalesce.coalesced(tree, lambda: set(users))
    return None if new is None else ast.unparse(new) + "\n"


def copies(text: str) -> list[str]:
    """The copies ``a = t`` in ``text``, but for copies of a parameter (they stay)."""
    return [
        ast.unparse(s)
        for s in ast.walk(ast.parse(text))
        if isinstance(s, ast.stmt) and coalesce.is_copy(s) and s.value.id not in PARAMETERS
    ]


def freed_in(text: str) -> set[str]:
    """The names the ``del`` lines of ``text`` (any part of a function) free."""
    lines = [line.strip() for line in text.splitlines()]
    return {n.strip() for line in lines if line.startswith("del ") for n in line[4:].split(",")}


PARAMETERS = {"log", "n", "m", "xs", "w", "b", "x", "y", "X", "row"}  # and loop targets


def same_everywhere(source: str, inputs: list[tuple] = INTS) -> str:
    """``source`` coalesced, then freed; it behaves as ``source`` on every input."""
    text = textwrap.dedent(source)
    new = run_text(text)
    assert new is not None, text
    freed = liveness.freed(new)
    original, changed = compiled(text), compiled(freed)
    for args in inputs:
        assert outcome(changed, *args) == outcome(original, *args), (args, freed)
    return freed


# -- what goes and what stays -------------------------------------------------------------


def test_loop_carried_sums_keep_one_name_and_stay_alive() -> None:
    source = """
        def f(log, n, m):
            acc = 0
            dacc = 0
            for i in range(n):
                t = i * m
                acc_add = acc + t
                dacc_add = dacc + m
                acc = acc_add
                dacc = dacc_add
            log.append(acc)
            return acc + dacc
    """
    freed = same_everywhere(source)
    assert copies(freed) == []
    assert "acc = acc + t" in freed and "dacc = dacc + m" in freed
    # the loop-carried names are never freed in the loop; the temporary is
    assert not deleted(freed) & {"acc", "dacc"}
    assert "t" in deleted(freed)


NOT_COALESCED = {
    "target read between": """
        def f(log, n, m):
            a = n
            t = m + 1
            log.append(a)
            a = t
            return a
    """,
    "target bound between": """
        def f(log, n, m):
            t = m + 1
            a = n
            a = t
            return a
    """,
    "a branch between (a break may skip the copy)": """
        def f(log, n, m):
            a = 0
            for i in range(n):
                t = i + m
                if i == m:
                    break
                a = t
            return a
    """,
    "a continue between": """
        def f(log, n, m):
            a = 0
            for i in range(n):
                t = i + m
                if i == 1:
                    continue
                a = t
            return a
    """,
    "value read twice": """
        def f(log, n, m):
            t = m + 1
            a = t
            return a + t
    """,
    "value bound twice": """
        def f(log, n, m):
            if n:
                t = m + 1
            else:
                t = m + 2
            a = t
            return a
    """,
    "value bound before the loop, copied in it": """
        def f(log, n, m):
            a = 0
            t = m + 1
            for i in range(n):
                a = t
            return a
    """,
    "copy before the value (the last iteration's)": """
        def f(log, n, m):
            a = 0
            for i in range(n):
                a = t if i else a
                t = i + m
            return a
    """,
    "target read by a lambda": """
        def f(log, n, m):
            a = n
            g = lambda: a
            t = m + 1
            log.append(g())
            a = t
            return a
    """,
    "a parameter copied": """
        def f(log, n, m):
            a = m
            return a
    """,
    "the user's name and fmad's": """
        def f(log, n, m):
            dt = m + 1
            a = dt
            return a
    """,
}


@pytest.mark.parametrize("case", list(NOT_COALESCED))
def test_copies_that_must_stay_stay(case: str) -> None:
    source = NOT_COALESCED[case]
    users = {"a", "t", "n", "m", "log", "g", "i"}  # "dt" is fmad's
    new = run_text(source, users)
    if new is not None:  # another copy may go; this one stays
        assert copies(new), new
    # whatever happens, the behaviour is the original's
    text = textwrap.dedent(source)
    for args in INTS:
        out = run_text(text, users) or text
        assert outcome(compiled(liveness.freed(out)), *args) == outcome(compiled(text), *args)


def test_a_handler_that_reads_the_target_keeps_the_copy() -> None:
    reads = """
        def f(log, n, m):
            a = n
            try:
                t = 10 // m
                u = 10 // (m - 1)
                a = t
            except ZeroDivisionError:
                log.append(a)
                raise
            return a + u
    """
    assert run_text(reads) is None
    reraises = reads.replace("log.append(a)", "log.append(n)")
    freed = same_everywhere(reraises)
    assert copies(freed) == []
    falls_through = reads.replace("log.append(a)\n                raise", "log.append(n)")
    assert run_text(falls_through) is None


def test_chains_of_copies_and_several_in_one_block() -> None:
    freed = same_everywhere(
        """
        def f(log, n, m):
            a = 1
            b = 2
            for i in range(n):
                t = a * i + m
                u = b + i
                c = t
                log.append(m)
                a = c
                b = u
                v = a + b
                log.append(i)
                e = v
                log.append(e)
            return a, b
        """
    )
    assert copies(freed) == []
    assert "a = a * i + m" in freed and "b = b + i" in freed


def test_a_function_the_pass_cannot_model_is_left_alone() -> None:
    for body in ("t = n\n    a = t\n    del a", "t = n + 1\n    a = t\n    print(locals())"):
        assert run_text(f"def f(log, n, m):\n    {body}\n    return 1\n") is None


def test_the_switch_turns_the_pass_off(monkeypatch) -> None:
    source = "def f(log, n, m):\n    t = n + 1\n    a = t\n    return a\n"
    assert run_text(source) is not None
    monkeypatch.setattr(coalesce, "ENABLED", False)
    assert run_text(source) is None


# -- random programs ----------------------------------------------------------------------


class Generator:
    """Programs over small ints with single-use temporaries and copies of them: loops (nested,
    ``while``, ``else``), ``break``/``continue``, early returns, names read after loops,
    lambdas reading locals, statements between a temporary and its copy."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = ["a", "b", "c", "d"]
        self.temps = 0
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

    def simple(self, indent: str) -> list[str]:
        v = self.rng.choice(self.names)
        if self.rng.random() < 0.3:
            return [f"{indent}log.append({self.operand()})"]
        return [f"{indent}{v} = ({self.operand()} + {self.operand()}) % 97"]

    def statement(self, depth: int, loop: bool, indent: str) -> list[str]:
        r = self.rng.random()
        v = self.rng.choice(self.names)
        inner = indent + "    "
        if r < 0.4 or depth > 2:
            self.temps += 1
            t = f"t{self.temps}"
            op = self.rng.choice(["+", "-", "*", "//"])
            lines = [f"{indent}{t} = ({self.operand()} {op} {self.operand()}) % 97"]
            between = self.rng.choice([0, 0, 1, 2])
            for _ in range(between):
                if loop and self.rng.random() < 0.15:
                    jump = self.rng.choice(["break", "continue"])
                    lines += [f"{indent}if {self.operand()} % 2 == 0:", f"{inner}{jump}"]
                else:
                    lines += self.simple(indent)
            lines.append(f"{indent}{v} = {t}")
            return lines
        if r < 0.5:
            if not loop or self.rng.random() < 0.4:
                return self.simple(indent)
            # a temporary read once by the next statement, on the same line: folded in loops
            self.temps += 1
            t = f"t{self.temps}"
            op, op2 = self.rng.choice(["+", "-", "*", "//"]), self.rng.choice(["+", "*", "//"])
            first = f"{t} = ({self.operand()} {op} {self.operand()}) % 97"
            use = self.rng.choice([f"({t} {op2} {{0}})", f"({{0}} {op2} {t})", f"-{t}"])
            use = use.format(self.operand())
            return [f"{indent}{first}; {v} = {use} % 97"]
        if r < 0.62:
            lines = [f"{indent}if {self.operand()} % 3 == {self.rng.randint(0, 2)}:"]
            lines += self.block(depth + 1, loop, inner)
            if self.rng.random() < 0.6:
                lines += [f"{indent}else:"] + self.block(depth + 1, loop, inner)
            return lines
        if r < 0.76:
            lines = [f"{indent}for {v} in range({self.operand()} % 4):"]
            lines += self.block(depth + 1, True, inner)
            if self.rng.random() < 0.3:
                lines += [f"{indent}else:"] + self.block(depth + 1, loop, inner)
            return lines
        if r < 0.84:
            self.counters += 1
            k = f"k{self.counters}"
            lines = [f"{indent}{k} = 0", f"{indent}while {k} < {self.operand()} % 4:"]
            lines += [f"{inner}{k} += 1"] + self.block(depth + 1, True, inner)
            return lines
        if r < 0.9 and loop:
            jump = self.rng.choice(["break", "continue"])
            return [f"{indent}if {self.operand()} % 2 == 0:", f"{inner}{jump}"]
        if r < 0.95:
            return [f"{indent}if {self.operand()} % 4 == 0:", f"{inner}return {self.operand()}"]
        return [f"{indent}g = lambda: {self.operand()}", f"{indent}log.append(g())"]

    def program(self) -> str:
        body = ["    a = n + 1", "    b = m", "    c = 0", "    d = 1"] + self.block(
            0, False, "    "
        )
        body.append(f"    return ({self.operand()}, {self.operand()}, {self.operand()})")
        return "def f(log, n, m):\n" + "\n".join(body) + "\n"


def temporaries(text: str) -> int:
    return sum(1 for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name) and n.id[0] == "t")


def test_random_programs_coalesced_and_freed_behave_as_the_original() -> None:
    merged = folded = 0
    for seed in range(400):
        text = Generator(seed).program()
        new = run_text(text)
        if new is None:
            continue
        merged += len(copies(text)) - len(copies(new))
        folded += temporaries(text) - temporaries(new) - 2 * (len(copies(text)) - len(copies(new)))
        freed = liveness.freed(new)
        original, changed = compiled(text), compiled(freed)
        for n, m in [(0, 0), (1, 2), (2, 5), (3, 1), (5, 3), (4, 0)]:
            assert outcome(changed, n, m) == outcome(original, n, m), (seed, n, m, freed)
    assert merged > 300  # the programs do coalesce copies
    assert folded > 100  # and fold temporaries


def both_ways(fn: Any, wrt: list[str], args: tuple) -> tuple:
    """Differentiated with the pass on and off: equal values and gradients, bit for bit."""
    results = []
    for enabled in (True, False):
        coalesce.ENABLED = enabled
        try:
            results.append(fmad.differentiate(fn, wrt=wrt)(*args))
        finally:
            coalesce.ENABLED = True
    (v1, g1), (v2, g2) = results
    assert type(v1) is type(v2)
    assert np.asarray(v1).tobytes() == np.asarray(v2).tobytes()
    assert list(g1) == list(g2)
    for k in g1:
        assert np.asarray(g1[k]).tobytes() == np.asarray(g2[k]).tobytes(), k
    return results[0]


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(program=loop_programs())
def test_random_loop_programs_same_with_and_without_coalescing(program: Program) -> None:
    fn, _ = load(program.source)
    results = []
    for enabled in (True, False):
        coalesce.ENABLED = enabled
        try:
            value, grads = fmad.differentiate(fn, wrt=list(program.wrt))(**program.arguments())
            results.append(("value", repr(value), {k: repr(g) for k, g in grads.items()}))
        except Exception as exc:
            results.append(("raised", type(exc).__name__, str(exc)))
        finally:
            coalesce.ENABLED = True
    assert results[0] == results[1], program


@pytest.mark.parametrize("problem", problems.PROBLEMS, ids=lambda p: p.key)
def test_benchmark_problems_same_with_and_without_coalescing(problem) -> None:
    for size in problem.tiny_sizes:
        both_ways(problem.fn, list(problem.wrt), problem.make_args(**size))


# -- differentiated code --------------------------------------------------------------------


def test_p5_runs_without_copies_and_prints_as_before() -> None:
    f = fmad.differentiate(problems.p5_fn, wrt=["w", "b"])
    printed = f.show()
    assert "loss = loss_add_loss_pow" in printed  # the printed code is unchanged
    free = f.show(free=True)  # what runs
    assert copies(free) == []
    assert "loss = loss + loss_pow" in free
    assert "dloss_dw = dloss_dw + dloss_pow_dw" in free
    body = free.split("for i in range(n):")[-1].split("# line 402")[0]
    assert "loss_pow" in freed_in(body)
    assert not freed_in(body) & {"loss", "dloss_dw", "dloss_db"}  # carried: kept in the loop
    args = problems.p5_args(7)
    value, grads = both_ways(problems.p5_fn, ["w", "b"], args)
    assert value == problems.p5_fn(*args)
    hand_value, hand = problems.p5_hand(*args)
    assert grads["w"] == pytest.approx(hand["w"], rel=1e-12)
    assert grads["b"] == pytest.approx(hand["b"], rel=1e-12)


def loop_of_arrays(X, w, b):
    acc = 0.0
    for row in X:
        big = np.tanh(w * row + b)
        acc += np.sum(big * big)
    return acc


def test_an_array_in_a_coalesced_loop_is_still_freed_in_the_loop() -> None:
    f = fmad.differentiate(loop_of_arrays, wrt=["w", "b"])
    free = f.show(free=True)
    assert copies(free) == []
    body = free.split("for row in X:")[-1]
    # the tanh and its square are freed in the loop, before the next row's
    assert {"big", "w_mult_row_add_b"} <= freed_in(body), free
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 50))
    value, grads = both_ways(loop_of_arrays, ["w", "b"], (X, 0.3, -0.2))
    assert value == loop_of_arrays(X, 0.3, -0.2)
    h = 1e-6
    for name, (dw, db) in (("w", (h, 0.0)), ("b", (0.0, h))):
        fd = (loop_of_arrays(X, 0.3 + dw, -0.2 + db) - loop_of_arrays(X, 0.3 - dw, -0.2 - db)) / (
            2 * h
        )
        assert grads[name] == pytest.approx(fd, rel=1e-6)


def nested_loops(xs, w):
    total = 0.0
    for x in xs:
        inner = 0.0
        k = 0
        while k < 3:
            k += 1
            if x * k > 2.5:
                break
            inner += w * x * k
        else:
            inner += 1.0
        total += inner * w
    return total + inner


def test_nested_loops_while_break_and_a_name_read_after_the_loop() -> None:
    xs = [0.5, 1.0, 2.0, 0.1]
    f = fmad.differentiate(nested_loops, wrt=["w"])
    assert copies(f.show(free=True)) == []
    value, grads = both_ways(nested_loops, ["w"], (xs, 0.7))
    assert value == nested_loops(xs, 0.7)
    h = 1e-6
    fd = (nested_loops(xs, 0.7 + h) - nested_loops(xs, 0.7 - h)) / (2 * h)
    assert grads["w"] == pytest.approx(fd, rel=1e-6)


def failing(xs, w):
    acc = 0.0
    for x in xs:
        acc += w / (x - 2.0)
    return acc


def test_an_error_in_a_coalesced_line_is_the_users_at_the_users_line() -> None:
    f = fmad.differentiate(failing, wrt=["w"])
    assert copies(f.show(free=True)) == []
    with pytest.raises(ZeroDivisionError) as info:
        f([1.0, 2.0], 0.5)
    frame = info.traceback[-1]
    assert frame.path == Path(__file__) and frame.lineno + 1 == failing.__code__.co_firstlineno + 3


# -- single-use temporaries folded in loops ---------------------------------------------


SCALE = 3


def test_temporaries_in_a_loop_fold_into_the_statement_that_reads_them() -> None:
    source = """
        def f(log, n, m):
            acc = 0
            for i in range(n):
                u = i * m; v = u + 1; w = v - n
                acc = acc + w
            return acc
    """
    freed = same_everywhere(source)
    assert "w = i * m + 1 - n" in freed


NOT_FOLDED = {
    "outside a loop": """
        def f(log, n, m):
            u = n * m; v = u + 1
            return v
    """,
    "another line": """
        def f(log, n, m):
            for i in range(n):
                u = i * m
                v = u + 1
                log.append(v)
            return n
    """,
    "an operation before it": """
        def f(log, n, m):
            for i in range(n):
                u = i // m; v = n // (m - 1) + u
                log.append(v)
            return n
    """,
    "a global read before it": """
        def f(log, n, m):
            for i in range(n):
                u = i * m; v = SCALE + u
                log.append(v)
            return n
    """,
    "read twice": """
        def f(log, n, m):
            for i in range(n):
                u = i * m; v = u + u
                log.append(v)
            return n
    """,
    "into a matrix product": """
        def f(log, n, m):
            for i in range(n):
                u = M * i; v = u @ M
                log.append(float(v[0, 0]))
            return n
    """,
    "a matrix product": """
        def f(log, n, m):
            for i in range(n):
                u = M @ M; v = u * i
                log.append(float(v[0, 0]))
            return n
    """,
}


@pytest.mark.parametrize("case", list(NOT_FOLDED))
def test_temporaries_that_must_stay_stay(case: str) -> None:
    text = textwrap.dedent(NOT_FOLDED[case])
    new = run_text(text)
    assert new is None or "u = " in new, new
    namespace: dict[str, Any] = {"np": np, "SCALE": SCALE, "M": np.eye(2) * 2.0}
    exec(compile(text, "<test>", "exec"), namespace)
    original = namespace["f"]
    exec(compile(new or text, "<test>", "exec"), namespace)
    for args in INTS:
        assert outcome(namespace["f"], *args) == outcome(original, *args)


def test_the_fold_switch_keeps_temporaries(monkeypatch) -> None:
    source = (
        "def f(log, n, m):\n    for i in range(n):\n        u = i * m; v = u + 1\n    return v\n"
    )
    assert "u = " not in run_text(source)
    monkeypatch.setattr(coalesce, "FOLD", False)
    assert run_text(source) is None


def sqrt_sum(xs, w):
    acc = 0.0
    for x in xs:
        acc += math.sqrt(w * x) * x
    return acc


def test_a_derivative_error_in_a_loop_is_still_the_derivatives() -> None:
    f = fmad.differentiate(sqrt_sum, wrt=["w"])
    assert f([1.0, 2.0], 0.5)[0] == sqrt_sum([1.0, 2.0], 0.5)
    with pytest.raises(fmad.DerivativeError, match=r"test_coalesce\.py:\d+:"):
        f([1.0, 0.0], 0.5)


def running_total(xs, w):
    total = 0.0
    for x in xs:
        total += (w * x - 1.0) ** 2
        if total > 50.0:
            return total * 0.5
    return total


def uses_a_helper(xs, w, b):
    first = running_total(xs, w)
    second = running_total(xs, b)
    return first * second + first


def test_helpers_with_loops_and_early_returns_same_with_and_without() -> None:
    for xs in ([0.5, 1.5, -2.0], [3.0, 4.0, 5.0, 6.0], []):
        value, grads = both_ways(uses_a_helper, ["w", "b"], (xs, 0.7, 1.3))
        assert value == uses_a_helper(xs, 0.7, 1.3)
        h = 1e-6
        fd_w = (uses_a_helper(xs, 0.7 + h, 1.3) - uses_a_helper(xs, 0.7 - h, 1.3)) / (2 * h)
        fd_b = (uses_a_helper(xs, 0.7, 1.3 + h) - uses_a_helper(xs, 0.7, 1.3 - h)) / (2 * h)
        assert grads["w"] == pytest.approx(fd_w, rel=1e-6, abs=1e-9)
        assert grads["b"] == pytest.approx(fd_b, rel=1e-6, abs=1e-9)
    free = fmad.differentiate(uses_a_helper, wrt=["w", "b"]).show(free=True)
    helper = free.split("def uses_a_helper")[0]
    assert "total = total + " in helper and copies(helper) == []
