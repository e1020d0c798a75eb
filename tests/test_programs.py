"""Language coverage of fmad on scalar programs: the table is the specification.

Every row differentiates a function of ``tests/programs_module.py`` and checks, at a few
points in a safe domain, that the value is the original's bit for bit, the inputs are left
alone and each gradient agrees with central finite differences of the original function.
"""

from __future__ import annotations

import inspect
import math
import os
import types

import numpy as np
import pytest

import fmad
from tests import programs_module as pm
from tests.fdcheck import check_gradients, same_value

SEQUENCE = [1.0, 2.0, -0.5]


def row(fn, wrt, *points, id=None):
    """One table row: differentiate ``fn`` wrt ``wrt`` (None: every parameter) at ``points``."""
    return pytest.param(fn, wrt, points, id=id or fn.__name__)


ROWS = [
    # branches: the derivative follows the branch taken
    row(pm.branch_on_param, None, {"w": 1.3}, {"w": -0.7}),
    row(pm.elif_on_param, None, {"w": -1.5}, {"w": 0.4}, {"w": 2.5}),
    row(
        pm.branch_on_data,
        ["w", "b"],
        {"x": 2.0, "w": 0.3, "b": 1.2},
        {"x": 0.5, "w": 0.3, "b": 1.2},
        {"x": -1.0, "w": 0.3, "b": 1.2},
    ),
    row(
        pm.bool_ops,
        ["w", "b"],
        {"x": 1.5, "w": 0.5, "b": 2.0},
        {"x": 0.5, "w": -1.5, "b": 1.0},
        {"x": 3.0, "w": -0.5, "b": 1.0},
    ),
    row(pm.chained_comparison, None, {"w": 0.5}, {"w": 1.5}),
    row(pm.comparison_values, ["w"], {"x": 0.5, "w": 1.2}, {"x": 1.5, "w": 1.2}),
    row(pm.conditional_expression, ["w"], {"x": 0.5, "w": 1.3}, {"x": -1.0, "w": -0.4}),
    row(pm.or_value, ["w"], {"c": 0.0, "w": 1.5}, {"c": 2.0, "w": 1.5}),
    row(pm.and_value, ["w"], {"c": 0.0, "w": 1.5}, {"c": 2.0, "w": 1.5}),
    # loops
    row(pm.while_halving, None, {"w": 5.0}, {"w": 0.7}),
    row(pm.while_counter, ["w"], {"n": 4, "w": 1.3}, {"n": 0, "w": 0.5}),
    row(pm.for_range, ["w", "b"], {"n": 5, "w": 0.7, "b": 0.2}, {"n": 0, "w": 0.7, "b": 0.2}),
    row(pm.for_range_start_step, None, {"w": 0.8}, {"w": -1.1}),
    row(pm.for_sequence, ["w", "b"], {"xs": SEQUENCE, "w": 0.3, "b": -0.2}, id="for_list"),
    row(pm.for_sequence, ["w", "b"], {"xs": tuple(SEQUENCE), "w": 0.3, "b": -0.2}, id="for_tuple"),
    row(
        pm.for_sequence,
        ["w", "b"],
        {"xs": np.array(SEQUENCE), "w": 0.3, "b": -0.2},
        id="for_numpy_array",
    ),
    row(pm.for_tuple_literal, None, {"w": 0.9}, {"w": -0.6}),
    row(
        pm.for_zip,
        ["w", "b"],
        {"xs": [1.0, 2.0, 3.0], "ys": [2.0, 2.5, 4.5], "w": 0.8, "b": 0.1},
        {"xs": np.array([1.0, 2.0]), "ys": np.array([0.0, 1.0]), "w": -0.4, "b": 0.3},
    ),
    row(pm.for_enumerate, ["w"], {"xs": [1.0, -2.0, 0.5], "w": 1.2}),
    row(pm.for_tuple_target, ["w"], {"pairs": [(1.0, 2.0), (0.5, -1.0)], "w": 0.7}),
    row(pm.for_break, ["w"], {"xs": [1.0, 1.5, 3.0, 4.0], "w": 0.6}, {"xs": [0.5, 1.0], "w": 0.6}),
    row(pm.for_break_on_param, None, {"w": 1.5}, {"w": 0.9}),
    row(pm.for_continue, ["w"], {"xs": [1.0, -1.0, 2.0], "w": 0.4}),
    row(pm.for_else, ["w"], {"xs": [1.0, 2.0], "w": 0.8}, {"xs": [1.0, -1.0, 2.0], "w": 0.8}),
    row(
        pm.early_return_in_loop,
        ["w"],
        {"xs": [1.0, 2.0, 4.0], "w": 1.0},
        {"xs": [1.0, 2.0, 4.0], "w": 0.1},
    ),
    row(
        pm.several_returns,
        None,
        {"w": 2.5, "b": 1.0},
        {"w": 1.0, "b": -1.0},
        {"w": -0.5, "b": 1.0},
        {"w": 1.5, "b": 2.0},
    ),
    row(pm.nested_loops, None, {"w": 0.7, "b": 1.3}),
    row(pm.nested_loops_data, ["w"], {"xs": [1.0, 2.0], "ys": [2.0, 3.0], "w": 0.5}),
    row(pm.reassign_from_itself, None, {"w": 0.3}, {"w": -1.2}),
    row(pm.reassign_straight, None, {"w": 0.6, "b": 1.1}),
    row(pm.reassign_parameter, None, {"w": 0.6, "b": 1.1}),
    # assignments and statements
    row(pm.augmented_assignment, None, {"w": 0.6, "b": 1.1}, {"w": -0.5, "b": 2.0}),
    row(pm.augmented_power_active, None, {"w": 0.6, "b": 1.1}, {"w": -1.3, "b": -0.4}),
    row(pm.tuple_swap, None, {"w": 0.9, "b": 1.1}),
    row(pm.tuple_unpack, None, {"w": 0.9, "b": 1.1}),
    row(pm.chained_assignment, None, {"w": 0.9}, {"w": -1.4}),
    row(pm.pass_and_docstring, None, {"w": 0.9}, {"w": -1.4}),
    row(pm.with_assert, None, {"w": 1.5}),
    # subscripts and containers
    row(pm.subscript_data, ["w"], {"xs": [1.0, 2.0, 3.0], "w": 0.5}),
    row(
        pm.subscript_data, ["w"], {"xs": np.array([1.0, 2.0, 3.0]), "w": 0.5}, id="subscript_array"
    ),
    row(pm.subscript_loop_index, ["w"], {"xs": [1.0, -2.0, 3.0], "w": 0.8}),
    row(pm.slice_data, ["w"], {"xs": [1.0, -2.0, 3.0, 5.0], "w": 0.8}),
    row(pm.list_of_active, None, {"w": 0.7, "b": -1.3}),
    row(pm.tuple_of_active, None, {"w": 0.7, "b": -1.3}),
    row(pm.list_indexed_in_loop, None, {"w": 0.7, "b": -1.3}),
    row(pm.list_built_by_append, ["w"], {"xs": [1.0, -2.0, 3.0], "w": 0.7}),
    # math.* and np.* functions, one row each
    row(pm.math_exp, None, {"w": 0.3}, {"w": -1.2}, {"w": 2.0}),
    row(pm.np_exp, None, {"w": 0.3}, {"w": -1.2}, {"w": 2.0}),
    row(pm.math_log, None, {"w": 0.5}, {"w": 3.0}),
    row(pm.np_log, None, {"w": 0.5}, {"w": 3.0}),
    row(pm.math_log1p, None, {"w": 0.5}, {"w": -1.0}),
    row(pm.np_log1p, None, {"w": 0.5}, {"w": -1.0}),
    row(pm.math_expm1, None, {"w": 0.3}, {"w": -1.0}),
    row(pm.np_expm1, None, {"w": 0.3}, {"w": -1.0}),
    row(pm.math_log2, None, {"w": 0.7}, {"w": 3.0}),
    row(pm.np_log2, None, {"w": 0.7}, {"w": 3.0}),
    row(pm.math_log10, None, {"w": 0.7}, {"w": 3.0}),
    row(pm.np_log10, None, {"w": 0.7}, {"w": 3.0}),
    row(pm.math_sqrt, None, {"w": 0.3}, {"w": 3.0}),
    row(pm.np_sqrt, None, {"w": 0.3}, {"w": 3.0}),
    row(pm.math_sin, None, {"w": 0.3}, {"w": -2.0}, {"w": 2.5}),
    row(pm.np_sin, None, {"w": 0.3}, {"w": -2.0}, {"w": 2.5}),
    row(pm.math_cos, None, {"w": 0.3}, {"w": -2.0}, {"w": 2.5}),
    row(pm.np_cos, None, {"w": 0.3}, {"w": -2.0}, {"w": 2.5}),
    row(pm.math_tan, None, {"w": 0.3}, {"w": -1.0}),
    row(pm.np_tan, None, {"w": 0.3}, {"w": -1.0}),
    row(pm.math_asin, None, {"w": 0.4}, {"w": -1.2}),
    row(pm.np_arcsin, None, {"w": 0.4}, {"w": -1.2}),
    row(pm.math_acos, None, {"w": 0.4}, {"w": -1.2}),
    row(pm.np_arccos, None, {"w": 0.4}, {"w": -1.2}),
    row(pm.math_atan, None, {"w": 0.4}, {"w": -3.0}),
    row(pm.np_arctan, None, {"w": 0.4}, {"w": -3.0}),
    row(pm.math_sinh, None, {"w": 0.4}, {"w": -1.5}),
    row(pm.np_sinh, None, {"w": 0.4}, {"w": -1.5}),
    row(pm.math_cosh, None, {"w": 0.4}, {"w": -1.5}),
    row(pm.np_cosh, None, {"w": 0.4}, {"w": -1.5}),
    row(pm.math_tanh, None, {"w": 0.4}, {"w": -1.5}),
    row(pm.np_tanh, None, {"w": 0.4}, {"w": -1.5}),
    row(pm.math_fabs, None, {"w": 0.8}, {"w": -1.3}),
    row(pm.np_fabs, None, {"w": 0.8}, {"w": -1.3}),
    row(pm.np_abs, None, {"w": 0.8}, {"w": -1.3}),
    row(pm.math_pow, None, {"w": 1.3, "b": 2.5}, {"w": 0.7, "b": -1.2}),
    row(pm.np_power_const_exponent, None, {"w": 0.8}, {"w": -1.3}),
    row(pm.np_power_const_base, None, {"w": 0.4}, {"w": -1.0}),
    row(pm.np_power_both, None, {"w": 1.3, "b": 0.5}, {"w": 0.6, "b": -2.0}),
    row(pm.np_maximum, None, {"w": 1.0, "b": 0.5}, {"w": 0.1, "b": 1.5}),
    row(pm.np_minimum, None, {"w": 1.0, "b": 0.5}, {"w": 0.1, "b": 1.5}),
    row(pm.np_clip, None, {"w": 0.2}, {"w": 0.8}, {"w": -0.9}),
    row(pm.np_where, None, {"w": 0.5}, {"w": -0.5}),
    row(pm.np_sign, None, {"w": 0.5}, {"w": -0.5}),
    row(pm.np_floor, None, {"w": 0.3}, {"w": -0.8}),
    row(pm.np_ceil, None, {"w": 0.3}, {"w": -0.8}),
    row(pm.math_floor_ceil, None, {"w": 0.3}, {"w": -0.8}),
    row(pm.builtin_round, None, {"w": 0.3}, {"w": 1.1}),
    # builtins
    row(pm.builtin_abs, None, {"w": 0.8}, {"w": -1.3}),
    row(pm.builtin_min, None, {"w": 0.3, "b": 1.0}, {"w": 1.0, "b": 0.5}, {"w": 2.0, "b": 3.0}),
    row(pm.builtin_max, None, {"w": 0.5, "b": 0.5}, {"w": 0.2, "b": 1.5}),
    row(pm.builtin_max_data, ["w"], {"xs": [1.0, 3.0, -2.0], "w": 0.7}),
    row(pm.builtin_sum_data, ["w"], {"xs": [1.0, 3.0, -2.0], "w": 0.7}),
    row(pm.builtin_sum_active, None, {"w": 0.7, "b": -1.3}),
    row(pm.builtin_len, ["w"], {"xs": [1.0, 3.0, -2.0], "w": 0.7}),
    row(pm.builtin_float, ["w"], {"x": 2.5, "w": 0.7}),
    row(pm.builtin_int, ["w"], {"x": 2.7, "w": 1.6}),
    row(pm.builtin_pow, None, {"w": 0.8}, {"w": -1.3}),
    row(pm.active_exponent, None, {"a": 1.3, "b": 2.5}, {"a": 0.7, "b": -1.2}),
    row(pm.active_exponent, ["b"], {"a": 1.3, "b": 2.5}, id="active_exponent_wrt_b"),
    row(pm.active_exponent_constant_base, None, {"b": 0.5}, {"b": -1.3}),
    # helpers and nested defs
    row(pm.uses_helper, ["w", "b"], {"x": 1.5, "w": 0.3, "b": -0.7}),
    row(pm.uses_helper_keywords, ["w", "b"], {"x": 1.5, "w": 0.3, "b": -0.7}),
    row(pm.uses_helper_of_helper, None, {"w": 0.3, "b": -0.7}),
    row(pm.uses_helper_branch_and_loop, None, {"w": 0.7}, {"w": -0.7}),
    row(pm.uses_helper_twice, None, {"w": 0.3, "b": -0.7}),
    row(pm.nested_def_arguments_only, None, {"w": 0.3, "b": -0.7}),
    row(pm.nested_def, None, {"w": 0.3, "b": -0.7}),
    # globals, closures, attributes
    row(pm.scaled_by_global, None, {"w": 0.3}, {"w": -1.7}),
    row(pm.active_from_global, None, {"w": 0.3}, {"w": -1.7}),
    row(pm.loop_over_global_tuple, None, {"w": 0.3}),
    row(pm.make_closure(2.0)[0], None, {"w": 0.3}, {"w": -1.7}, id="closure"),
    row(
        pm.attribute_of_data,
        ["w"],
        {"cfg": types.SimpleNamespace(scale=2.0, offset=0.5), "w": 0.3},
    ),
    row(pm.attribute_of_module, None, {"w": 0.3}),
    row(pm.attribute_of_active, None, {"w": 0.3}, {"w": -1.7}),
]


@pytest.mark.parametrize(("fn", "wrt", "points"), ROWS)
def test_program(fn, wrt, points):
    dfn = fmad.differentiate(fn, wrt=wrt)
    parameters = list(inspect.signature(fn).parameters)
    assert dfn.wrt == tuple(wrt if wrt is not None else parameters)
    assert dfn.__wrapped__ is fn
    for args in points:
        check_gradients(dfn, args)


def test_prints_like_the_original(capsys):
    dfn = fmad.differentiate(pm.prints)
    check_gradients(dfn, {"w": 0.5})
    capsys.readouterr()
    value, grads = dfn(0.5)
    printed = capsys.readouterr().out
    pm.prints(0.5)
    assert printed == capsys.readouterr().out == "y is 1.5\n"
    assert grads == {"w": 3.0}
    assert value == 0.75


def marker_line(module: types.ModuleType, tag: str) -> int:
    lines = inspect.getsource(module).splitlines()
    for number, line in enumerate(lines, start=1):
        if line.rstrip().endswith(f"# LINE-{tag}"):
            return number
    raise LookupError(tag)


@pytest.mark.parametrize(
    ("fn", "tag"),
    [(pm.sum_generator, "genexp"), (pm.sum_list_comprehension, "listcomp")],
    ids=["generator_expression", "list_comprehension"],
)
def test_comprehension_supported_or_refused_at_its_line(fn, tag):
    try:
        dfn = fmad.differentiate(fn, wrt=["w"])
    except fmad.UnsupportedError as error:
        line = marker_line(pm, tag)
        assert f"{os.path.basename(pm.__file__)}:{line}:" in str(error)
        assert error.lineno == line
        return
    for args in ({"xs": [1.0, -2.0, 3.0], "w": 0.7}, {"xs": np.array([0.5, 1.5]), "w": -1.1}):
        check_gradients(dfn, args)


def test_positional_and_keyword_calls_agree():
    dfn = fmad.differentiate(pm.branch_on_data, wrt=["w", "b"])
    by_position = dfn(2.0, 0.3, 1.2)
    by_keyword = dfn(b=1.2, x=2.0, w=0.3)
    mixed = dfn(2.0, b=1.2, w=0.3)
    assert same_value(by_position, by_keyword)
    assert same_value(by_position, mixed)
    assert by_position == (2.0 * 0.3 + 1.2, {"w": 2.0, "b": 1.0})


def test_decorator_forms():
    @fmad.differentiate
    def bare(w, b):
        return w * b + math.sin(w)

    @fmad.differentiate(wrt=["b"])
    def with_wrt(w, b):
        return w * b * b

    assert bare.wrt == ("w", "b")
    assert with_wrt.wrt == ("b",)
    check_gradients(bare, {"w": 0.4, "b": -1.5})
    check_gradients(with_wrt, {"w": 0.4, "b": -1.5})


# ---------------------------------------------------------------- math.* versus np.*

MATH_NUMPY_PAIRS = [
    (pm.math_exp, pm.np_exp, math.exp, np.exp, math.exp),
    (pm.math_log, pm.np_log, math.log, np.log, None),
    (pm.math_log1p, pm.np_log1p, math.log1p, np.log1p, None),
    (pm.math_expm1, pm.np_expm1, math.expm1, np.expm1, math.exp),
    (pm.math_log2, pm.np_log2, math.log2, np.log2, None),
    (pm.math_log10, pm.np_log10, math.log10, np.log10, None),
    (pm.math_sqrt, pm.np_sqrt, math.sqrt, np.sqrt, None),
    (pm.math_sin, pm.np_sin, math.sin, np.sin, math.cos),
    (pm.math_cos, pm.np_cos, math.cos, np.cos, math.sin),
    (pm.math_tan, pm.np_tan, math.tan, np.tan, math.cos),
    (pm.math_asin, pm.np_arcsin, math.asin, np.arcsin, None),
    (pm.math_acos, pm.np_arccos, math.acos, np.arccos, None),
    (pm.math_atan, pm.np_arctan, math.atan, np.arctan, None),
    (pm.math_sinh, pm.np_sinh, math.sinh, np.sinh, math.cosh),
    (pm.math_cosh, pm.np_cosh, math.cosh, np.cosh, math.sinh),
    (pm.math_tanh, pm.np_tanh, math.tanh, np.tanh, None),
    (pm.math_fabs, pm.np_fabs, math.fabs, np.fabs, None),
]
CANDIDATE_POINTS = [0.25, 0.5, 0.3, 0.7, 0.9, 0.1, 0.45, 0.8, 0.65, 0.15]


NUMPY_NAMES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}


def _numpy_twin(math_function):
    name = math_function.__name__
    return getattr(np, NUMPY_NAMES.get(name, name))


def _libraries_agree(math_function, numpy_function, companion, x: float) -> bool:
    """math.f and np.f (and the function the derivative needs) give the same bits at x.

    The two libraries' implementations may differ in the last bit at some points; there
    the gradients may differ for a good reason, so the comparison uses points where not.
    """
    if math_function(x) != numpy_function(x):
        return False
    return companion is None or companion(x) == _numpy_twin(companion)(x)


@pytest.mark.parametrize(
    ("math_fn", "np_fn", "math_function", "numpy_function", "companion"),
    MATH_NUMPY_PAIRS,
    ids=[pair[0].__name__.removeprefix("math_") for pair in MATH_NUMPY_PAIRS],
)
def test_math_and_numpy_give_identical_gradients(
    math_fn, np_fn, math_function, numpy_function, companion
):
    points = [
        x for x in CANDIDATE_POINTS if _libraries_agree(math_function, numpy_function, companion, x)
    ]
    assert points, "no candidate point where math and numpy agree"
    math_d = fmad.differentiate(math_fn)
    np_d = fmad.differentiate(np_fn)
    for x in points:
        # The functions take 0.5 * w; w = 2 * x makes that exactly x.
        _, math_grads = math_d(2.0 * x)
        _, np_grads = np_d(2.0 * x)
        assert math_grads["w"] == np_grads["w"], (x, math_grads, np_grads)


# ---------------------------------------------------------------- globals and closures at call time


def test_module_global_changed_after_decoration_is_seen(monkeypatch):
    dfn = fmad.differentiate(pm.scaled_by_global)
    _, grads = dfn(2.0)
    assert grads == {"w": 2.0 * 3.0 * 2.0}
    monkeypatch.setattr(pm, "SCALE", 5.0)
    value, grads = dfn(2.0)
    assert value == pm.scaled_by_global(2.0) == 5.0 * 4.0 + 0.5
    assert grads == {"w": 2.0 * 5.0 * 2.0}


def test_active_value_from_global_changed_after_decoration(monkeypatch):
    dfn = fmad.differentiate(pm.active_from_global)
    monkeypatch.setattr(pm, "SCALE", 0.5)
    value, grads = dfn(3.0)
    assert value == 2.25
    assert grads == {"w": 2.0 * 0.5 * 0.5 * 3.0}


def test_closure_cell_changed_after_decoration_is_seen():
    closure_fn, set_k = pm.make_closure(2.0)
    dfn = fmad.differentiate(closure_fn)
    assert dfn(3.0) == (18.0, {"w": 12.0})
    set_k(10.0)
    assert dfn(3.0) == (90.0, {"w": 60.0})


# ---------------------------------------------------------------- wrt an intermediate local


def test_wrt_intermediate_local():
    dfn = fmad.differentiate(pm.intermediate_local, wrt=["d"])
    assert dfn.wrt == ("d",)
    for a, b in [(0.3, 1.7), (-1.1, 0.4)]:
        d = a * b + math.sin(a)
        check_gradients(dfn, {"a": a, "b": b}, expected={"d": 2.0 * d + 3.0})


def test_active_exponent_wrt_exponent_is_not_zero():
    # Tangent gave 0.0 here: d(a**b)/db = a**b * log(a).
    dfn = fmad.differentiate(pm.active_exponent, wrt=["b"])
    value, grads = dfn(3.0, 2.0)
    assert value == 9.0
    assert grads["b"] == pytest.approx(9.0 * math.log(3.0), rel=1e-14)


# ---------------------------------------------------------------- kinks: documented behaviour


@pytest.mark.parametrize("fn", [pm.kink_abs, pm.kink_math_fabs, pm.kink_np_abs])
def test_abs_at_zero_has_zero_derivative(fn):
    value, grads = fmad.differentiate(fn)(0.0)
    assert value == 0.0
    assert grads == {"w": 0.0}


def test_np_sqrt_at_zero_gives_infinite_derivative():
    value, grads = fmad.differentiate(pm.np_sqrt)(0.0)
    assert value == 0.0
    assert grads["w"] == math.inf


def test_math_sqrt_at_zero_gives_infinite_derivative_or_division_error():
    # Python floats raise on 0.5 / 0.0 where numpy gives inf: either is the honest answer;
    # a finite number or NaN would be a wrong one. The error names the user's line.
    dfn = fmad.differentiate(pm.math_sqrt)
    try:
        value, grads = dfn(0.0)
    except fmad.DerivativeError as exc:
        assert isinstance(exc, ArithmeticError)
        assert "programs_module.py:" in str(exc)
        return
    assert value == 0.0
    assert grads["w"] == math.inf


def test_np_log_at_zero_gives_numpy_infinities():
    value, grads = fmad.differentiate(pm.np_log)(0.0)
    assert value == -math.inf
    assert grads["w"] == math.inf


def test_math_log_at_zero_raises_the_originals_value_error():
    with pytest.raises(ValueError) as original:
        pm.math_log(0.0)
    dfn = fmad.differentiate(pm.math_log)
    with pytest.raises(ValueError) as differentiated:
        dfn(0.0)
    assert str(differentiated.value) == str(original.value)


@pytest.mark.parametrize("fn", [pm.kink_np_maximum, pm.kink_np_minimum])
def test_maximum_minimum_tie_splits_evenly(fn):
    # At 2w == b + 1 both operands are selected: the derivative is the mean of both sides.
    value, grads = fmad.differentiate(fn)(1.0, 1.0)
    assert value == 2.0
    assert grads == {"w": 0.5 * 2.0, "b": 0.5 * 1.0}
