"""The in-place pass (fmad/inplace.py, on the analysis of fmad/fresh.py): a large array
computed into the buffer of an operand no one else can see, with the same bits.

Evidence:
- each elementwise function and operator the pass writes in place computes the same bits
  into its operand's buffer as into a new one, on arrays of many sizes and magnitudes;
- every program of the tables (arrays, helpers, the rule tables, the benchmark problems
  and random array programs) differentiated with the pass on and off, with arrays of any
  size taken in place (``runtime_arrays.LARGE = 1``): values and gradients bit for bit
  equal, the same exception where one is raised, and the pass did write in place (counted);
- what others can see is never written: parameters, values returned, stored in a list,
  sliced or viewed, read by a helper or a function that may keep them, results of a data
  argument's own ``@`` (a class that returns an array it keeps), globals;
- exceptions raised after an operation done in place still name the user's line;
- the printed code is unchanged; P2 and P2s at N = 1e5 run with the peak memory of the
  hand-written gradient.
"""

from __future__ import annotations

import inspect
import math
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import fmad
from fmad import fresh, inplace, runtime_arrays
from tests import (
    test_arrays,
    test_helpers_soundness,
    test_rules_fd,
    test_rules_fd_elementwise,
    test_rules_fd_linalg,
    test_rules_fd_shapes,
    test_rules_fd_statistics,
)
from tests.randoracle import load
from tests.randprog import Program, array_programs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import problems  # noqa: E402


@pytest.fixture
def every_size(monkeypatch):
    """Arrays of any size are taken in place; counts the operations done in place."""
    monkeypatch.setattr(runtime_arrays, "LARGE", 1)
    counted = {"in place": 0}
    fits = runtime_arrays.fits

    def counting(*args: Any) -> bool:
        ok = fits(*args)
        counted["in place"] += ok
        return ok

    monkeypatch.setattr(runtime_arrays, "fits", counting)
    return counted


# -- the numpy loops ------------------------------------------------------------------------


def operand(n: int, scale: float, positive: bool, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=n) * scale
    return np.abs(a) + 1e-300 if positive else a


UNARY = sorted(fresh.UNARY, key=lambda f: f.__name__)
POSITIVE = {np.log, np.sqrt, np.log1p}


@pytest.mark.parametrize("ufunc", UNARY, ids=lambda f: f.__name__)
def test_each_function_computes_the_same_bits_into_its_operand(ufunc) -> None:
    for n in (1, 3, 16, 17, 1000, 40000):
        for seed, scale in enumerate((1e-300, 1e-5, 1.0, 30.0, 1e200)):
            a = operand(n, scale, ufunc in POSITIVE, seed)
            with np.errstate(all="ignore"):
                expected = ufunc(a)
                b = a.copy()
                got = ufunc(b, out=b)
            assert got is b
            assert got.tobytes() == expected.tobytes(), (ufunc, n, scale)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**2", "-u"])
def test_each_operator_computes_the_same_bits_into_an_operand(op) -> None:
    for n in (1, 5, 1000, 40000):
        for seed, scale in enumerate((1e-300, 1.0, 1e200)):
            a = operand(n, scale, False, seed)
            others = [operand(n, 1.0, False, seed + 7), 0.3, 2, np.float64(-1.5), np.float32(3.0)]
            with np.errstate(all="ignore"):
                if op == "**2":
                    cases = [(a**2, np.square, (a.copy(),)), (a**2.0, np.square, (a.copy(),))]
                elif op == "-u":
                    cases = [(-a, np.negative, (a.copy(),))]
                else:
                    ufunc = inplace._BINARY[
                        {"+": inplace.ast.Add, "-": inplace.ast.Sub}.get(op)
                        or {"*": inplace.ast.Mult, "/": inplace.ast.Div}[op]
                    ]
                    cases = []
                    for o in others:
                        left = eval(f"a {op} o")  # noqa: S307 (the operator as written)
                        right = eval(f"o {op} a")  # noqa: S307
                        cases += [(left, ufunc, (a.copy(), o)), (right, ufunc, (o, a.copy()))]
                for expected, ufunc, args in cases:
                    target = next(x for x in args if isinstance(x, np.ndarray) and x.size == n)
                    if isinstance(args[0], np.ndarray) and len(args) == 2:
                        target = args[0]
                    got = ufunc(*args, out=target)
                    assert type(got) is type(expected)
                    assert got.tobytes() == expected.tobytes(), (op, n, scale, args)


# -- the tables, with the pass on and off ---------------------------------------------------


def run(fn: Any, wrt: Any, args: dict[str, Any]) -> tuple:
    names = list(inspect.signature(fn).parameters)
    positional = [args[p] for p in names if p in args]
    try:
        value, grads = fmad.differentiate(fn, wrt=wrt)(*positional)
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))
    return ("value", bits(value), {k: bits(g) for k, g in grads.items()})


def bits(v: Any) -> Any:
    """What is compared: types, shapes and bytes, item by item in containers."""
    if isinstance(v, tuple | list):
        return (type(v).__name__, *(bits(x) for x in v))
    if isinstance(v, dict):
        return {k: bits(x) for k, x in v.items()}
    a = np.asarray(v)
    return (type(v).__name__, a.dtype.str, a.shape, a.tobytes())


def both_ways(monkeypatch, fn: Any, wrt: Any, args: dict[str, Any]) -> None:
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(inplace, "ENABLED", enabled)
        results.append(run(fn, wrt, args))
    assert results[0] == results[1], fn


@pytest.mark.parametrize(("fn", "make_args", "wrt"), test_arrays.MODELS)
def test_array_models_same_with_and_without(monkeypatch, every_size, fn, make_args, wrt) -> None:
    both_ways(monkeypatch, fn, wrt, make_args())
    assert every_size["in place"] > 0


@pytest.mark.parametrize(("fn", "wrt", "args"), test_helpers_soundness.EXACT)
def test_helper_table_same_with_and_without(monkeypatch, every_size, fn, wrt, args) -> None:
    both_ways(monkeypatch, fn, wrt, args)


@pytest.mark.parametrize("problem", problems.PROBLEMS, ids=lambda p: p.key)
def test_benchmark_problems_same_with_and_without(monkeypatch, every_size, problem) -> None:
    for size in problem.tiny_sizes:
        args = problem.make_args(**size)
        named = dict(zip(problem.params, args, strict=True))
        both_ways(monkeypatch, problem.fn, list(problem.wrt), named)
    if problem.key not in ("P1", "P5", "P6"):  # numbers: nothing to take in place
        assert every_size["in place"] > 0, problem.key


RULE_TABLES = [
    test_rules_fd,
    test_rules_fd_elementwise,
    test_rules_fd_linalg,
    test_rules_fd_shapes,
    test_rules_fd_statistics,
]


@pytest.mark.parametrize("table", RULE_TABLES, ids=lambda m: m.__name__.split(".")[-1])
def test_rule_tables_same_with_and_without(monkeypatch, every_size, table) -> None:
    rules = [r.values[0] if hasattr(r, "values") else r for r in table.ROWS]
    cases = [case for rule in rules for case in rule.cases]
    for case in cases[::8]:  # every eighth case: the whole tables take minutes
        both_ways(monkeypatch, case.fn, list(case.wrt), dict(case.args))
    if table in (test_rules_fd, test_rules_fd_elementwise):
        assert every_size["in place"] > 0


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(program=array_programs())
def test_random_array_programs_same_with_and_without(program: Program) -> None:
    fn, _ = load(program.source)
    results = []
    saved = runtime_arrays.LARGE
    runtime_arrays.LARGE = 1
    try:
        for enabled in (True, False):
            inplace.ENABLED = enabled
            results.append(run(fn, list(program.wrt), program.arguments()))
    finally:
        inplace.ENABLED = True
        runtime_arrays.LARGE = saved
    assert results[0] == results[1], program


# -- what others can see is never written ---------------------------------------------------

KEPT = np.linspace(0.5, 2.0, 8)


class Keeper:
    """A data argument whose ``@`` returns an array it keeps."""

    def __init__(self) -> None:
        self.kept = np.linspace(1.0, 3.0, 8)

    def __matmul__(self, other: Any) -> np.ndarray:
        return self.kept


def from_keeper(K, w):
    t = K @ w
    u = t + w
    return np.sum(u * u)


def returned(x, w):
    t = x * w
    u = t + 1.0
    return np.sum(u), t


def in_a_list(x, w):
    t = x * w
    box = [t]
    u = t * 2.0
    return np.sum(u) + np.sum(box[0])


def viewed(x, w):
    t = x * w
    v = t[1:]
    u = t + 1.0
    return np.sum(u) + np.sum(v)


def reshaped(x, w):
    t = x * w
    v = t.reshape(2, -1)
    u = t + 1.0
    return np.sum(u) + np.sum(v)


def copied(x, w):
    t = x * w
    v = t
    u = t + 1.0
    return np.sum(u) + np.sum(v)


def param_operand(x, w):
    u = x + w
    return np.sum(u * u)


def global_operand(x, w):
    t = KEPT * w
    u = t + x
    return np.sum(u * u)


STORE: list = []
keeps = STORE.append  # a function fmad does not read: it keeps its argument


def passed_to_a_function(x, w):
    t = x * 2.0
    keeps(t)
    u = t + w
    return np.sum(u * u)


SEEN = [returned, in_a_list, viewed, reshaped, copied, param_operand, global_operand]


@pytest.mark.parametrize("fn", SEEN, ids=lambda f: f.__name__)
def test_values_others_see_are_never_written(monkeypatch, every_size, fn) -> None:
    x = np.linspace(-1.0, 1.0, 8)
    w = 0.7
    x_before = x.copy()
    kept_before = KEPT.copy()
    both_ways(monkeypatch, fn, ["w"], {"x": x, "w": w})
    out = fmad.differentiate(fn, wrt=["w"])(x, w)
    assert x.tobytes() == x_before.tobytes()
    assert KEPT.tobytes() == kept_before.tobytes()
    if fn is returned:  # the returned array is the original's
        assert out[0][1].tobytes() == (x * w).tobytes()
    assert every_size["in place"] == 0 or fn in (returned, param_operand)


def test_a_value_passed_to_a_function_is_never_written(monkeypatch, every_size) -> None:
    x = np.linspace(-1.0, 1.0, 8)
    STORE.clear()
    fmad.differentiate(passed_to_a_function, wrt=["w"])(x, 0.7)
    assert all(t.tobytes() == (x * 2.0).tobytes() for t in STORE)
    assert STORE


def test_the_result_of_a_data_arguments_operation_is_never_written(every_size) -> None:
    keeper = Keeper()
    before = keeper.kept.copy()
    f = fmad.differentiate(from_keeper, wrt=["w"])
    try:
        f(keeper, np.linspace(0.1, 0.8, 8))
    except fmad.FmadError:
        pass  # refused is fine too; written is not
    assert keeper.kept.tobytes() == before.tobytes()
    assert every_size["in place"] == 0


def chain(x, w):
    t = x * w
    u = np.exp(t)
    v = u * 2.0
    z = v**2
    s = np.mean(z)
    return math.log(s - 1e9)


def test_an_error_after_an_operation_in_place_names_the_users_line(monkeypatch, every_size):
    x = np.linspace(-1.0, 1.0, 50)
    caught = []
    for enabled in (True, False):
        monkeypatch.setattr(inplace, "ENABLED", enabled)
        with pytest.raises(ValueError, match="math domain error") as info:
            fmad.differentiate(chain, wrt=["w"])(x, 0.3)
        caught.append(info.value.__traceback__.tb_next is not None)
        frames = [f for f in __import__("traceback").extract_tb(info.value.__traceback__)]
        assert frames[-1].filename == __file__
        assert frames[-1].lineno == chain.__code__.co_firstlineno + 6
    assert every_size["in place"] > 0


def test_a_shape_error_raises_as_without_the_pass(monkeypatch, every_size) -> None:
    x = np.linspace(-1.0, 1.0, 8)
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(inplace, "ENABLED", enabled)
        results.append(run(param_then_mismatch, ["w"], {"x": x, "y": np.ones(3), "w": 0.5}))
    assert results[0] == results[1]
    assert results[0][0] == "raised"


def param_then_mismatch(x, y, w):
    t = x * w
    u = t - y
    return np.sum(u)


# -- what is printed, and what it saves ----------------------------------------------------


def test_the_printed_code_is_unchanged(monkeypatch) -> None:
    shapes = {"X": (5, 1), "y": (5,), "w": (1,), "b": ()}
    texts = []
    for enabled in (True, False):
        monkeypatch.setattr(inplace, "ENABLED", enabled)
        f = fmad.differentiate(problems.p2_fn, wrt=["w", "b"])
        f(*problems.p2_args(N=5, d=1))
        texts.append((f.show(shapes=shapes), f.show(shapes=shapes, free=True), f.source))
    assert texts[0] == texts[1]
    assert "out=" not in "".join(texts[0])


@pytest.mark.parametrize(
    ("problem", "size"),
    [(problems.P2, {"N": 100000, "d": 1}), (problems.P2, {"N": 100000, "d": 10})]
    + [(problems.P2S, {"N": 100000})],
    ids=["P2-d1", "P2-d10", "P2s"],
)
def test_peak_memory_is_the_hand_written_ones(monkeypatch, problem, size) -> None:
    args = problem.make_args(**size)
    peaks = {}
    values = {}
    for which in ("hand", "fmad", "off"):
        monkeypatch.setattr(inplace, "ENABLED", which != "off")
        wrt = list(problem.wrt)
        f = problem.hand if which == "hand" else fmad.differentiate(problem.fn, wrt=wrt)
        f(*args)
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            values[which] = f(*args)
            peaks[which] = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()
    assert peaks["fmad"] <= 1.2 * peaks["hand"], peaks
    assert peaks["off"] >= 1.9 * peaks["hand"], peaks  # the pass is what saves it
    value, grads = values["fmad"]
    assert value == values["off"][0]
    for k in grads:
        assert np.asarray(grads[k]).tobytes() == np.asarray(values["off"][1][k]).tobytes()
