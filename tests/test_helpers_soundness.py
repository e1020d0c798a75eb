"""Helpers calling helpers, nested helpers, decorators, recursion (issue 14, item 11, item 7
and the minimal crashes r3, r4, r5): each program gives the exact value and a gradient equal
to central differences, or an UnsupportedError naming the file and line."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import fmad
from tests import helpers_module as hm
from tests.fdcheck import check_gradients, same_value

MODULE_FILE = os.path.basename(hm.__file__)


def marker_line(tag: str) -> int:
    lines = inspect.getsource(hm).splitlines()
    found = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, f"marker {tag!r} found {len(found)} times"
    return found[0]


def assert_refused(fn, tag: str, words: list[str], wrt=None, args=None) -> str:
    """Refused at decoration time (or at the call, with ``args``) at the ``tag`` line."""
    with pytest.raises(fmad.UnsupportedError) as info:
        dfn = fmad.differentiate(fn, wrt=wrt)
        if args is not None:
            dfn(*args)
    error = info.value
    message = str(error)
    assert os.path.basename(error.filename) == MODULE_FILE, message
    assert error.lineno == marker_line(tag), message
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert any(w in message.lower() for w in words), message
    assert ";" in message.split(": ", 1)[1], message  # says what to do instead
    return message


ARRAY = np.array([0.4, -1.2, 0.7])

EXACT = [
    (hm.three_levels, None, {"w": 0.3, "b": -0.7}),
    (hm.three_levels, ["b"], {"w": 0.3, "b": -0.7}),
    (hm.patterns, None, {"w": 0.3, "b": -0.7}),
    (hm.patterns, ["w"], {"w": 0.3, "b": -0.7}),
    (hm.shared_variant, None, {"w": ARRAY, "b": 0.8}),
    (hm.shared_variant, ["b"], {"w": ARRAY, "b": 0.8}),
    (hm.shared_variant, None, {"w": 0.25, "b": 0.8}),
    (hm.keyword_calls, None, {"w": 0.3, "b": -0.7}),
    (hm.unpacked, None, {"w": 0.3, "b": -0.7}),
    (hm.loops_and_branches, None, {"w": 0.3, "b": -0.7}),
    (hm.loops_and_branches, None, {"w": -0.4, "b": 0.6}),
    (hm.nested_calls_module, None, {"w": 0.3, "b": -0.7}),
    (hm.nested_calls_module, ["b"], {"w": 0.3, "b": -0.7}),
    (hm.r5, None, {"p1": 0.3, "p2": 0.7}),
    (hm.r5, ["p2"], {"p1": 0.3, "p2": 0.7}),
    (hm.nested_in_nested, None, {"w": 0.3, "b": -0.7}),
    (hm.sibling_chain, None, {"w": 0.3, "b": -0.7}),
    (hm.sibling_chain, ["w"], {"w": 0.3, "b": -0.7}),
    (hm.calls_helper_with_nested, None, {"w": 0.3, "b": -0.7}),
    (hm.shadowed, None, {"w": 0.3, "b": -0.7}),
    (hm.shadowed_parameter, None, {"w": 0.3, "b": -0.7}),
    (hm.two_shadowed_bindings, None, {"w": 0.3}),
    (hm.r3, ["w", "b"], {"y": np.linspace(-1.0, 1.0, 5), "w": np.ones(4), "b": 0.5}),
    (hm.r4, ["w", "b"], {"w": np.array([0.3, 0.9]), "b": 0.5}),
    (hm.returns_none, None, {"w": 0.3}),
    (hm.calls_wrapper_without_wraps, None, {"w": 0.3}),
    (hm.calls_staticmethod, None, {"w": 0.3}),
    (hm.calls_wrapped_inactive, ["w"], {"w": 0.3, "c": 1.5}),
]


@pytest.mark.parametrize(
    ("fn", "wrt", "args"),
    EXACT,
    ids=[f"{fn.__name__}-{','.join(wrt or ['all'])}" for fn, wrt, _ in EXACT],
)
def test_exact_value_and_gradient(fn, wrt, args) -> None:
    check_gradients(fmad.differentiate(fn, wrt=wrt), args)


def test_r3_r4_gradients_are_zero_with_the_parameter_shape() -> None:
    _, grads = fmad.differentiate(hm.r4, wrt=["w", "b"])(np.array([0.3, 0.9]), 0.5)
    assert np.array_equal(grads["w"], np.zeros(2)) and grads["b"] == 0.0
    _, grads = fmad.differentiate(hm.r3, wrt=["w", "b"])(np.ones(5), np.ones(4), 0.5)
    assert np.array_equal(grads["w"], np.zeros(4))


def test_every_caller_reaches_the_variant_by_its_own_name() -> None:
    # the variant scale(w, <w active>) is called from shared_variant and from reduce
    dfn = fmad.differentiate(hm.shared_variant, wrt=["w"])
    source = dfn.source_for(ARRAY, 0.8)
    assert source.count("def scale_fwd") == 1
    value, _ = dfn(ARRAY, 0.8)
    assert same_value(value, hm.shared_variant(ARRAY, 0.8))


def test_variants_of_one_helper_have_distinct_names() -> None:
    source = fmad.differentiate(hm.patterns).source
    names = [line.split("(")[0] for line in source.splitlines() if line.startswith("def mix_")]
    assert len(names) == len(set(names)) >= 3, names


def test_nested_variants_sit_in_the_function_that_defines_them() -> None:
    source = fmad.differentiate(hm.r5).source
    # inner10's variant calls a variant of inner5, which is defined in r5 (not in inner10)
    assert "    def inner5_fwd" in source and "        def inner5_fwd" not in source


# ---------------------------------------------------------------- decorators


def test_helper_wrapped_by_a_decorator_is_refused() -> None:
    message = assert_refused(hm.calls_wrapped, "calls-wrapped", ["decorator"])
    assert f"{MODULE_FILE}:{marker_line('wrapped-helper')}" in message


def test_lru_cache_helper_is_refused() -> None:
    message = assert_refused(hm.calls_cached, "calls-cached", ["decorator"])
    assert f"{MODULE_FILE}:{marker_line('cached-helper')}" in message


def test_differentiated_function_called_inside_is_differentiated_through() -> None:
    # value + grads["x"] = w**2 + 2 w: its derivative is 2 w + 2 (see tests/test_nesting.py)
    assert fmad.differentiate(hm.calls_differentiated)(0.7) == (0.7 * 0.7 + 1.4, {"w": 3.4})


def test_decorated_function_itself_is_refused() -> None:
    assert_refused(hm.decorated_top, "decorated-top", ["decorator"])


def test_decorated_helper_with_a_registered_derivative_works() -> None:
    # the refusal suggests fmad.register: it must work for a decorated function
    fmad.register(hm.cube_doubled, lambda x: 6.0 * x * x)
    check_gradients(fmad.differentiate(hm.calls_registered_decorated), {"w": 0.7})


def test_wrapper_without_wraps_is_differentiated_through() -> None:
    value, grads = fmad.differentiate(hm.calls_wrapper_without_wraps)(0.3)
    assert value == hm.calls_wrapper_without_wraps(0.3)
    assert grads["w"] == pytest.approx(4.0 * 0.3)


def test_bound_method_and_partial_are_refused_with_what_to_do() -> None:
    assert_refused(hm.calls_bound_method, "bound-method", ["bound method"])
    assert_refused(hm.calls_partial, "partial", ["partial"])


# ---------------------------------------------------------------- refused shapes


def test_mutual_recursion_is_refused() -> None:
    message = assert_refused(hm.mutual_recursion, "pong", ["recursi"])
    assert "'ping'" in message


def test_star_args_with_an_active_argument_is_refused() -> None:
    assert_refused(hm.calls_star_args, "star-args", ["*args"])
    assert_refused(hm.calls_star_kwargs, "star-kwargs", ["**kwargs"])


def test_nested_default_reading_an_active_value_is_refused() -> None:
    assert_refused(hm.active_default, "active-default", ["default"])


def test_nested_function_defined_twice_is_refused() -> None:
    assert_refused(hm.redefined, "redefined", ["more than once"], wrt=["w"])
