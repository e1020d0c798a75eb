"""The public function's fast path compiled at its first use (fmad/lazy.py): the same code
printed, the same refusals at the same moment, the same values bit for bit, the dispatcher
compiled once (also from two threads at once), and the variants made once."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

import fmad
from fmad import api, lazy

SCALE = 3.0


def helper(u, v):
    return u * np.sin(v) + SCALE


def with_helper(x, w, b):
    return helper(w, x) * b + w**2


def three(x, w1, w2, w3):
    s = w1 * x + w2 * x * x
    return np.tanh(s) * w3


def keywords(x, w, *, b=0.5):
    return w * x + b * b


def starred(x, w, *args, **kwargs):
    return w * x + len(args) + len(kwargs)


def annotated(x: np.ndarray, w: float) -> float:
    return np.sum(w * x)


def make_closure():
    k = [2.0]
    factor = 2.0

    def f(w):
        return factor * w * w

    def set_factor(value):
        nonlocal factor
        factor = value

    return f, set_factor, k


def linear(X, y, w, b):
    return ((w * X + b) - y) ** 2


def scaled(x, w):
    return w * x * SCALE


def raises(x, w):
    return w / x


def refused(x, w):
    return np.frompyfunc(w, 1, 1)


FUNCTIONS = [
    (with_helper, (0.3, 1.5, -0.7)),
    (three, (0.3, 1.5, -0.7, 0.2)),
    (keywords, (0.3, 1.5)),
    (starred, (0.3, 1.5, 1, 2)),
    (annotated, (0.3, 1.5)),
    (linear, (3.0, 7.0, 0.5, 0.25)),
    (scaled, (0.3, 1.5)),
]


@pytest.fixture
def eager(monkeypatch):
    """A function made with the dispatcher compiled when it is decorated (as before)."""

    def make(fn, **options):
        with monkeypatch.context() as m:
            m.setattr(lazy, "ENABLED", False)
            return fmad.differentiate(fn, **options)

    return make


@pytest.mark.parametrize("fn, args", FUNCTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_the_same_code_and_values_as_the_eager_dispatcher(fn, args, eager) -> None:
    lazy_f = fmad.differentiate(fn)
    eager_f = eager(fn)
    assert lazy_f.source == eager_f.source
    assert lazy_f.flat_source == eager_f.flat_source
    assert lazy_f.show(free=True) == eager_f.show(free=True)
    for call in range(3):  # the first call compiles the dispatcher, the later run it
        value, grads = lazy_f(*args)
        expected_value, expected = eager_f(*args)
        assert value == expected_value and type(value) is type(expected_value)
        assert grads.keys() == expected.keys()
        for name in grads:
            assert np.array_equal(grads[name], expected[name]), (call, name)
    # array data and a keyword call take the general path in both
    x = np.linspace(0.1, 1.0, 5)
    value, grads = lazy_f(x, *args[1:])
    expected_value, expected = eager_f(x, *args[1:])
    assert np.array_equal(value, expected_value)
    for name in grads:
        assert np.array_equal(grads[name], expected[name])


def test_the_stub_becomes_the_dispatcher_at_the_first_fast_call() -> None:
    f = fmad.differentiate(with_helper)
    state = f.__fmad_lazy__
    stub_code = f.__code__
    assert state.builds == 0 and state.target is None
    f(np.ones(3), 1.5, -0.7)  # arrays: the general path, nothing compiled for the stub
    assert state.builds == 0 and f.__code__ is stub_code
    f(0.3, 1.5, -0.7)
    assert state.builds == 1 and state.target is f  # the code was swapped: no extra call
    assert f.__code__ is not stub_code
    for _ in range(5):
        f(0.3, 1.5, -0.7)
    assert state.builds == 1
    assert "fmad_first" not in f.__code__.co_names  # the stub's call is gone


def test_bundled_functions_with_array_data_never_compile_the_dispatcher() -> None:
    f = fmad.differentiate(three)
    x = np.linspace(0.0, 1.0, 7)
    for _ in range(3):
        f(x, 0.1, 0.2, 0.3)
    assert f.__fmad_lazy__.builds == 0
    value, grads = f(0.5, 0.1, 0.2, 0.3)
    assert f.__fmad_lazy__.builds == 1
    assert value == three(0.5, 0.1, 0.2, 0.3)


def test_a_closure_variable_rebound_later_is_seen() -> None:
    fn, set_factor, _ = make_closure()
    f = fmad.differentiate(fn)
    assert f(3.0) == (18.0, {"w": 12.0})
    set_factor(3.0)
    assert f(3.0) == (27.0, {"w": 18.0})
    assert f.__fmad_lazy__.target is f


def test_a_rebound_global_is_seen_before_and_after_the_swap(monkeypatch) -> None:
    f = fmad.differentiate(with_helper)
    before = f(0.3, 1.5, -0.7)
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 4.0)
    after = f(0.3, 1.5, -0.7)
    assert after[0] == with_helper(0.3, 1.5, -0.7) != before[0]


def test_refusals_stay_at_decoration() -> None:
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(refused)
    assert info.value.lineno == refused.__code__.co_firstlineno + 1


def test_errors_of_the_fast_path_point_at_the_user_line() -> None:
    f = fmad.differentiate(raises)
    for _ in range(2):  # raised by the stub's first call and by the dispatcher after it
        with pytest.raises(ZeroDivisionError) as info:
            f(0.0, 1.0)
        frames = [tb.tb_lineno for tb in _tracebacks(info.value.__traceback__)]
        assert raises.__code__.co_firstlineno + 1 in frames


def _tracebacks(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_different_free_variables_keep_the_stub_calling(monkeypatch) -> None:
    """Should the dispatcher read a name the stub did not mention, the stub cannot take its
    code: it calls it instead, with the same results."""
    real = lazy.dispatcher

    def with_one_more(transformed, variant, prepared, every, *rest):
        public, _ = prepared
        extra = public.inject(object(), "fmad_extra")
        return real(transformed, variant, prepared, [*every, extra], *rest)

    monkeypatch.setattr(lazy, "dispatcher", with_one_more)
    f = fmad.differentiate(with_helper)
    stub_code = f.__code__
    results = [f(0.3, 1.5, -0.7) for _ in range(3)]
    assert f.__code__ is stub_code and f.__fmad_lazy__.target is not f
    assert f.__fmad_lazy__.builds == 1
    monkeypatch.undo()
    assert results == [fmad.differentiate(with_helper)(0.3, 1.5, -0.7)] * 3


def _race(calls, count: int = 2) -> list:
    """Run ``calls()`` from ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_two_threads_at_the_first_call_compile_the_dispatcher_once(monkeypatch) -> None:
    real = lazy.dispatcher

    def slow(*args):
        time.sleep(0.05)  # both threads are past the guard before the first one is done
        return real(*args)

    monkeypatch.setattr(lazy, "dispatcher", slow)
    f = fmad.differentiate(with_helper)
    results = _race(lambda: f(0.3, 1.5, -0.7), count=3)
    assert f.__fmad_lazy__.builds == 1
    assert results[0] == results[1] == results[2] == f(0.3, 1.5, -0.7)


def test_two_threads_at_the_first_array_call_make_the_variant_once(monkeypatch) -> None:
    made = []

    class Counted(api.Variant):
        def __init__(self, *args, **kwargs) -> None:
            made.append(args[1])
            time.sleep(0.05)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api, "Variant", Counted)
    f = fmad.differentiate(three)
    assert len(made) == 1  # the variant for numbers, at decoration
    x = np.linspace(0.0, 1.0, 7)
    results = _race(lambda: f(x, 0.1, 0.2, 0.3), count=3)
    assert len(made) == 2  # and the bundled one, once
    for value, grads in results[1:]:
        assert np.array_equal(value, results[0][0])
        assert all(np.array_equal(grads[k], results[0][1][k]) for k in grads)


def test_reverse_mode_compiles_its_generic_code_at_first_use() -> None:
    f = fmad.differentiate(three, mode="reverse")
    reverse = f.__fmad_reverse__
    x = np.linspace(0.0, 1.0, 7)
    value, grads = f(x.sum(), 0.1, 0.2, 0.3)  # a variant for these kinds runs, not the generic
    assert reverse._generic is None
    generic_value, *generic_grads = reverse.compiled(x.sum(), 0.1, 0.2, 0.3)
    assert reverse.compiled is reverse.compiled  # compiled once
    assert generic_value == value
    assert np.allclose(generic_grads, [grads[w] for w in reverse.wrt], rtol=1e-14, atol=0)


def _same(got, want) -> None:
    value, grads = got
    expected_value, expected = want
    assert np.array_equal(value, expected_value) and type(value) is type(expected_value)
    assert grads.keys() == expected.keys()
    for name in grads:
        assert np.array_equal(grads[name], expected[name]) and type(grads[name]) is type(
            expected[name]
        )


def test_arithmetic_on_numbers_compiles_the_lean_dispatcher_then_the_full_one(eager) -> None:
    """Code that makes numbers from numbers, called with numbers, needs no freeing and no
    computing in place; called later with array data, it gets the full dispatcher."""
    f = fmad.differentiate(linear, wrt=["w", "b"])
    reference = eager(linear, wrt=["w", "b"])
    state = f.__fmad_lazy__
    assert state.lean
    _same(f(3.0, 7.0, 0.5, 0.25), reference(3.0, 7.0, 0.5, 0.25))
    assert (state.built, state.builds, state.target is f) == ("lean", 1, True)
    _same(f(3, 7, 0.5, 0.25), reference(3, 7, 0.5, 0.25))  # ints are numbers too
    assert state.builds == 1
    X = np.linspace(0.0, 1.0, 5)
    _same(f(X, 7.0, 0.5, 0.25), reference(X, 7.0, 0.5, 0.25))
    assert (state.built, state.builds, state.target is f) == ("full", 2, True)
    for args in ((3.0, 7.0, 0.5, 0.25), (X, X, 0.5, 0.25), (X, 7.0, 0.5, 0.25)):
        _same(f(*args), reference(*args))
    assert state.builds == 2


def test_array_data_first_compiles_the_full_dispatcher_only(eager) -> None:
    f = fmad.differentiate(linear, wrt=["w", "b"])
    X = np.linspace(0.0, 1.0, 5)
    _same(f(X, 7.0, 0.5, 0.25), eager(linear, wrt=["w", "b"])(X, 7.0, 0.5, 0.25))
    _same(f(3.0, 7.0, 0.5, 0.25), eager(linear, wrt=["w", "b"])(3.0, 7.0, 0.5, 0.25))
    assert (f.__fmad_lazy__.built, f.__fmad_lazy__.builds) == ("full", 1)


@pytest.mark.parametrize("fn", [with_helper, scaled, three, starred, annotated])
def test_only_arithmetic_of_its_own_names_is_lean(fn) -> None:
    """A call (numpy, a helper), a global (it may be an array), a bundle, ``*args``: the
    full dispatcher from the start."""
    assert not fmad.differentiate(fn).__fmad_lazy__.lean


def test_a_lean_dispatcher_that_cannot_be_taken_over_still_hands_on(monkeypatch) -> None:
    real = lazy.dispatcher

    def with_one_more(transformed, variant, prepared, every, *rest):
        public, _ = prepared
        extra = public.inject(object(), "fmad_extra")
        return real(transformed, variant, prepared, [*every, extra], *rest)

    monkeypatch.setattr(lazy, "dispatcher", with_one_more)
    f = fmad.differentiate(linear, wrt=["w", "b"])
    X = np.linspace(0.0, 1.0, 5)
    got = [f(3.0, 7.0, 0.5, 0.25), f(X, 7.0, 0.5, 0.25), f(3.0, 7.0, 0.5, 0.25)]
    assert (f.__fmad_lazy__.built, f.__fmad_lazy__.builds) == ("full", 2)
    assert f.__fmad_lazy__.target is not f
    monkeypatch.undo()
    plain = fmad.differentiate(linear, wrt=["w", "b"])
    for result, args in zip(got, [(3.0, 7.0, 0.5, 0.25), (X, 7.0, 0.5, 0.25)] * 2, strict=False):
        _same(result, plain(*args))
