"""A primal value reverse mode's adjoint reads, computed again in the backward pass so that the
primal computes over it in place (fmad/reverse_remat.py).

Evidence:
- P2 (d = 1 and 10) and P2s at a size the pass takes for real (BLAS's products, the column
  product of fmad/columns.py): value and gradients bit for bit those without it, and the
  code that runs computes the value again;
- it is not taken where it could give other numbers or gain nothing: a chain longer than
  ``LIMIT``, a chain that reads a global, a value the adjoint reads in two lines (a value
  two primal lines read is taken at the second);
- a chain that overflows warns as often as without the pass (its second run is quiet);
- the value is the plain function's, bit for bit.
"""

from __future__ import annotations

import sys
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmad
from fmad import reverse_remat, runtime_arrays
from tests.test_reverse_inplace import bits, running_texts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import problems  # noqa: E402


@pytest.fixture
def texts(monkeypatch):
    """The text of the code that runs, of each unit compiled."""
    return running_texts(monkeypatch)


def both(monkeypatch, texts, fn, wrt, args) -> tuple[Any, bool]:
    """The results with the pass on and off (the same), and whether it computed again."""
    results, again = [], []
    for enabled in (False, True):  # the texts kept are those with the pass
        monkeypatch.setattr(reverse_remat, "ENABLED", enabled)
        del texts[:]
        results.append(bits(fmad.differentiate(fn, wrt=wrt, mode="reverse")(*args)))
        again.append(any(" is None:" in t for t in texts))
    monkeypatch.setattr(reverse_remat, "ENABLED", True)
    assert results[0] == results[1], fn
    assert not again[0]
    return results[1], again[1]


@pytest.mark.parametrize(
    ("problem", "size"),
    [(problems.P2, {"N": 40000, "d": 1}), (problems.P2, {"N": 40000, "d": 10})]
    + [(problems.P2S, {"N": 40000})],
    ids=["P2-d1", "P2-d10", "P2s"],
)
def test_the_benchmark_problems_compute_again_with_the_same_bits(
    monkeypatch, texts, problem, size
) -> None:
    args = problem.make_args(**size)
    result, again = both(monkeypatch, texts, problem.fn, list(problem.wrt), args)
    assert again
    assert result[1] == bits(problem.fn(*args))  # the value is the plain function's
    if size.get("d") == 1:  # X @ w computed again as fmad/columns.py computes it
        assert any("column_product(X, w)" in t for t in texts)


def long_chain(x, y, w):
    r = np.exp(-(x * w + 1.0)) - y
    return np.mean(r**2)


def short_chain(x, y, w):
    r = np.exp(x * w) - y
    return np.mean(r**2)


G = np.linspace(0.0, 1.0, 40000)


def from_a_global(x, w):
    r = x * w - G
    return np.mean(r**2)


def read_again_by_the_primal(x, y, w):
    r = x * w - y
    s = np.mean(r**2)
    t = np.mean(r * 3.0)
    return s + t


def two_operands(x, y, w):
    r = x * w - y
    return np.mean(r**2) + np.mean(np.sin(r))


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (short_chain, True),
        (long_chain, False),
        (from_a_global, False),
        (read_again_by_the_primal, True),  # at its last primal read, r * 3.0
        (two_operands, False),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_taken_only_where_the_chain_gives_the_same_numbers(monkeypatch, texts, fn, expected):
    x = np.linspace(-1.0, 1.0, 40000)
    y = np.cos(x)
    args = (x, 0.7) if fn is from_a_global else (x, y, 0.7)
    _, again = both(monkeypatch, texts, fn, ["w"], args)
    assert again is expected


def test_a_small_array_is_never_computed_again(monkeypatch, texts) -> None:
    x = np.linspace(-1.0, 1.0, 100)
    y = np.cos(x)
    counted = {"large": 0}
    large = runtime_arrays.large

    def counting(*args: Any) -> bool:
        ok = large(*args)
        counted["large"] += ok
        return ok

    monkeypatch.setattr(runtime_arrays, "large", counting)
    both(monkeypatch, texts, short_chain, ["w"], (x, y, 0.7))
    assert counted["large"] == 0


def overflowing(x, w):
    r = x * w
    return np.mean(r**2)


def test_a_chain_that_overflows_warns_as_often_as_without(monkeypatch, texts) -> None:
    x = np.full(40000, 1e300)
    counts = []
    for enabled in (True, False):
        monkeypatch.setattr(reverse_remat, "ENABLED", enabled)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fmad.differentiate(overflowing, wrt=["w"], mode="reverse")(x, 1e10)
        counts.append(len([w for w in caught if issubclass(w.category, RuntimeWarning)]))
    assert counts[0] == counts[1] > 0
    assert any(" is None:" in t for t in texts)


def test_a_large_wide_product_is_not_computed_again(monkeypatch) -> None:
    """``X @ w`` with ten columns is computed again only up to ``SMALL`` elements of ``X``
    (reading a larger matrix again costs more than the memory saved); the bits either way."""
    args = problems.P2.make_args(N=40000, d=10)
    peaks, results = {}, {}
    for small in (2**20, 1000):
        monkeypatch.setattr(reverse_remat, "SMALL", small)
        f = fmad.differentiate(problems.p2_fn, wrt=["w", "b"], mode="reverse")
        f(*args)
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            results[small] = bits(f(*args))
            peaks[small] = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()
    one = 8 * 40000
    assert peaks[2**20] < 1.2 * one < 1.9 * one < peaks[1000], peaks
    assert results[2**20] == results[1000]
