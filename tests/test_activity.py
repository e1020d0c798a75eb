"""fmad.activity: which names carry a derivative with respect to a parameter.

``Activity(flat, scope).active(seeds)`` runs on the flattened function; the names it leaves
out get no tangent at all, so a name wrongly left out would give a silently wrong gradient
and a name wrongly put in only costs time. Both directions are checked.
"""

from __future__ import annotations

import ast

import numpy as np

import fmad
from fmad.activity import Activity
from fmad.transform import prepare
from tests import passes_module as pm


def active(fn, *seeds: str) -> set[str]:
    _, scope, _, flat = prepare(fn)
    return Activity(flat, scope).active(set(seeds))


def tangent_targets(source: str) -> set[str]:
    return {
        n.id
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id.startswith("d")
    }


def test_values_computed_from_data_alone_are_inactive() -> None:
    assert active(pm.data_only, "w") == {"w", "y"}
    # the same values are active with respect to the data
    assert active(pm.data_only, "x") == {"x", "scaled", "shifted", "y"}
    assert active(pm.data_only, "x", "w") == {"x", "w", "scaled", "shifted", "y"}


def test_inactive_values_get_no_tangent_line() -> None:
    source = fmad.differentiate(pm.data_only, wrt=["w"]).source
    assert not {t for t in tangent_targets(source) if t.startswith(("dscaled", "dshifted"))}
    assert "dy_dw" in tangent_targets(source)


def test_loop_carried_values_are_active() -> None:
    found = active(pm.loop_carried, "w")
    # prev = acc comes before acc = prev * x + w in the loop body, yet it carries w's
    # derivative from the second iteration on
    assert {"acc", "prev", "prev_mult_x", "acc_add_prev"} <= found
    assert "x" not in found and "n" not in found
    assert {"acc", "prev"} <= active(pm.loop_carried, "x")
    assert active(pm.loop_carried, "n") == {"n"}
    value, grads = fmad.differentiate(pm.loop_carried, wrt=["w"])(0.5, 2.0, 3)
    # acc: 2, 3, 3.5; prev ends at 3: d(acc + prev)/dw = 1.75 + 1.5
    assert (value, grads) == (6.5, {"w": 3.25})


def test_zero_derivative_calls_and_comparisons_are_inactive() -> None:
    found = active(pm.zero_derivative_calls, "w")
    assert not {"floored", "count", "positive", "index"} & found
    assert "y" in found
    assert active(pm.compare_values, "w") == {"w", "w_mult_bigger", "add_1"}


def test_zero_derivative_methods_and_attributes_are_inactive() -> None:
    found = active(pm.methods, "w")
    assert {"v", "total"} <= found
    assert not {"where", "size"} & found
    value, grads = fmad.differentiate(pm.methods, wrt=["w"])(np.array([1.0, 3.0, 2.0]), 0.5)
    assert value == 3.0 + 1 + 3 and grads == {"w": 6.0}


def test_append_makes_a_list_active() -> None:
    found = active(pm.appended, "w")
    assert {"active", "total", "x_mult_w"} <= found
    assert not {"passive", "other", "x", "x_mult_2p0"} & found
    # with respect to the data, both lists are active
    assert {"active", "passive", "x", "total", "other"} <= active(pm.appended, "xs")


def test_nested_function_free_variables_carry_activity() -> None:
    # inner(x) reads scale = w * 2.0 from the enclosing function: active though x is not
    found = active(pm.nested_free_variables, "w")
    assert {"scale", "y"} <= found
    # passive(x) reads offset = x + 1.0 only: inactive with respect to w
    assert not {"offset", "z"} & found
    assert {"offset", "z", "y"} <= active(pm.nested_free_variables, "x")
    value, grads = fmad.differentiate(pm.nested_free_variables)(1.5, 0.5)
    # y = x * (2 w) = 1.5, z = x + (x + 1) = 4.0
    assert value == 5.5
    assert grads == {"x": 1.0 + 2.0, "w": 3.0}


def test_attributes_of_active_values_are_active_except_metadata() -> None:
    found = active(pm.subscripts_and_attributes, "X")
    assert {"X_T", "first", "last"} <= found
    assert not {"rows", "X_shape", "math_pi"} & found
