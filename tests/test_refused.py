"""Constructs fmad refuses, each at decoration time with a compiler-like message.

The message must name this file and the exact line of the construct; those lines carry a
``# LINE-<tag>`` marker comment so the expected number is read from the source, not typed.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import operator
import os

import pytest

import fmad

try:
    import scipy.special as scipy_special
except ImportError:  # scipy is an optional (examples) dependency
    scipy_special = None

THIS_FILE = os.path.basename(__file__)
_COUNTER = 0.0


def marker_line(tag: str) -> int:
    """The line number carrying the marker comment ``# LINE-<tag>`` in this file."""
    lines = inspect.getsource(inspect.getmodule(marker_line)).splitlines()
    found = [n for n, line in enumerate(lines, start=1) if line.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, f"marker {tag!r} found {len(found)} times"
    return found[0]


def assert_refused(fn, tags: list[str], words: list[str], wrt: list[str] | None = None) -> str:
    """``fmad.differentiate(fn)`` raises UnsupportedError at one of the ``tags`` lines.

    ``words``: at least one must appear in the message (lower case), naming the construct.
    """
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=wrt)
    error = info.value
    message = str(error)
    lines = [marker_line(tag) for tag in tags]
    assert error.lineno in lines, f"line {error.lineno}, expected one of {lines}: {message}"
    assert os.path.basename(error.filename) == THIS_FILE
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert any(f"{THIS_FILE}:{line}: " in message for line in lines), message
    assert any(word in message.lower() for word in words), f"{words} not in {message!r}"
    # The message says what to do instead, after a semicolon.
    assert ";" in message.split(": ", 1)[1], message
    return message


# ---------------------------------------------------------------- the refused functions


def uses_try(w):
    try:  # LINE-try
        y = w * 2.0
    except ValueError:
        y = 0.0
    return y


def uses_with(w):
    with contextlib.nullcontext():  # LINE-with
        y = w * 2.0
    return y


def uses_lambda(w):
    square = lambda z: z * z  # LINE-lambda
    return square(w)


def uses_yield(w):
    yield w * 2.0  # LINE-yield


async def uses_async(w):  # LINE-async
    return w * 2.0


def uses_await(w):
    async def inner(z):  # LINE-await-def
        return await z  # LINE-await

    return w * 2.0


def uses_global_write(w):
    global _COUNTER  # LINE-global
    _COUNTER = w  # LINE-global-write
    return w * 2.0


def make_nonlocal_writer():
    total = 0.0

    def uses_nonlocal_write(w):
        nonlocal total  # LINE-nonlocal
        total = total + w  # LINE-nonlocal-write
        return total

    return uses_nonlocal_write


def uses_class(w):
    class Point:  # LINE-class
        scale = 2.0

    return Point.scale * w


def uses_del(w):
    tmp = w * 2.0
    del tmp  # LINE-del
    return w


def uses_import(w):
    import math as m  # LINE-import

    return m.sin(w)


def uses_import_from(w):
    from math import sin  # LINE-import-from

    return sin(w)


def _pair_product(p, q):
    return p * q


def uses_starred_call(w):
    args = (w, 2.0)
    return _pair_product(*args)  # LINE-starred


def uses_attribute_assignment(cfg, w):
    cfg.x = w  # LINE-attribute-assignment
    return cfg.x * w


def uses_item_assignment(w):
    vals = [w, 1.0]
    vals[1] = w * 3.0  # LINE-item-assignment
    return vals[0] * vals[1]


def recursive_power(w, n):
    if n == 0:
        return 1.0
    return w * recursive_power(w, n - 1)  # LINE-recursion


def calls_ellipe(w):  # scipy.special.ellipe: a function fmad has no rule for
    return scipy_special.ellipe(w)  # LINE-ellipe


def calls_reduce(w):
    return functools.reduce(operator.mul, (w, w, 2.0))  # LINE-reduce


# ---------------------------------------------------------------- one test per construct


def test_try():
    assert_refused(uses_try, ["try"], ["try"])


def test_with():
    assert_refused(uses_with, ["with"], ["with"])


def test_lambda():
    assert_refused(uses_lambda, ["lambda"], ["lambda"])


def test_yield():
    assert_refused(uses_yield, ["yield"], ["yield", "generator"])


def test_async_def():
    assert_refused(uses_async, ["async"], ["async"])


def test_await():
    assert_refused(uses_await, ["await-def", "await"], ["await", "async"])


def test_global_write():
    assert_refused(uses_global_write, ["global", "global-write"], ["global"])


def test_nonlocal_write():
    assert_refused(make_nonlocal_writer(), ["nonlocal", "nonlocal-write"], ["nonlocal"])


def test_class():
    assert_refused(uses_class, ["class"], ["class"])


def test_del():
    assert_refused(uses_del, ["del"], ["del"])


@pytest.mark.parametrize(
    ("fn", "tag"),
    [(uses_import, "import"), (uses_import_from, "import-from")],
    ids=["import", "from"],
)
def test_import(fn, tag):
    assert_refused(fn, [tag], ["import"])


def test_starred_call_arguments():
    assert_refused(uses_starred_call, ["starred"], ["star", "*"])


def test_attribute_assignment():
    assert_refused(uses_attribute_assignment, ["attribute-assignment"], ["attribute"], wrt=["w"])


def test_item_assignment_into_active_value():
    assert_refused(uses_item_assignment, ["item-assignment"], ["item", "subscript", "["])


def test_recursion():
    assert_refused(recursive_power, ["recursion"], ["recurs"], wrt=["w"])


@pytest.mark.skipif(scipy_special is None, reason="scipy is not installed")
def test_call_without_source_or_rule_scipy():
    message = assert_refused(calls_ellipe, ["ellipe"], ["ellipe"])
    assert "register" in message


def test_call_without_source_or_rule_builtin():
    message = assert_refused(calls_reduce, ["reduce"], ["reduce"])
    assert "register" in message


# ---------------------------------------------------------------- calls on inactive data run


def inactive_calls(x, w):
    g = math.gamma(x) + functools.reduce(operator.mul, (x, 2.0))
    return g * w + math.gamma(3.0) * w * w


def test_calls_with_only_inactive_arguments_just_run():
    dfn = fmad.differentiate(inactive_calls, wrt=["w"])
    value, grads = dfn(4.0, 0.5)
    g = math.gamma(4.0) + 8.0
    assert value == inactive_calls(4.0, 0.5) == g * 0.5 + 2.0 * 0.25
    assert grads == {"w": g + 2.0 * 2.0 * 0.5}


# ---------------------------------------------------------------- wrt names


def with_locals(a, b):
    once = a * b
    twice = once + a
    twice = twice * b
    looped = 0.0
    for i in range(3):
        looped = looped + twice * i
    return looped + once


def test_wrt_not_a_parameter():
    with pytest.raises(fmad.WrtError, match="nope"):
        fmad.differentiate(with_locals, wrt=["a", "nope"])
    assert issubclass(fmad.WrtError, fmad.FmadError)


def test_wrt_a_global_name():
    with pytest.raises(fmad.WrtError, match="math"):
        fmad.differentiate(with_locals, wrt=["math"])


@pytest.mark.parametrize("name", ["twice", "looped"])
def test_wrt_a_local_assigned_more_than_once(name):
    with pytest.raises((fmad.WrtError, fmad.UnsupportedError)) as info:
        fmad.differentiate(with_locals, wrt=[name])
    assert name in str(info.value), str(info.value)


def test_wrt_a_local_assigned_once_is_accepted():
    dfn = fmad.differentiate(with_locals, wrt=["once"])
    value, grads = dfn(2.0, 3.0)
    assert value == with_locals(2.0, 3.0)
    # twice = (once + a) * b; looped = 3 * twice; d(looped + once)/d once = 3 * b + 1
    assert grads == {"once": 3.0 * 3.0 + 1.0}


# ---------------------------------------------------------------- functions without source


def test_function_made_by_exec_has_no_source():
    namespace: dict = {}
    exec("def made_by_exec(w):\n    return w * w\n", namespace)
    with pytest.raises(fmad.SourceError):
        fmad.differentiate(namespace["made_by_exec"])


def test_builtin_function_has_no_source():
    with pytest.raises(fmad.SourceError):
        fmad.differentiate(math.sin)


def test_lambda_as_the_function_is_refused():
    square = lambda w: w * w
    with pytest.raises((fmad.SourceError, fmad.UnsupportedError)):
        fmad.differentiate(square)


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_wrt_naming_a_star_parameter_is_refused(mode) -> None:
    # *xs is a tuple fmad does not seed: a WrtError at the def line, not an internal error
    from tests import helpers_module

    with pytest.raises(fmad.WrtError) as info:
        fmad.differentiate(helpers_module.star_args, wrt=["xs"], mode=mode)
    message = str(info.value)
    assert "helpers_module.py:" in message and "*xs" in message
