"""One finite-difference row per rule of an ``fmad_rt`` helper (fmad/rules/runtime.py).

Generated code calls these helpers; their rules let fmad differentiate its own output again.
Each row calls a helper the way generated code does, on values that depend on a scalar
parameter ``p`` (a second transform differentiates with respect to scalars only), both in
its tangent arguments and, for the products, in the value it multiplies by.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import fmad
from fmad import runtime as fmad_rt
from fmad import runtime_arrays as ra
from fmad import runtime_seed as rs
from tests.fdcheck import central_fd
from tests.test_rules_fd import FLOAT, Rule, check_rule, data_param, param_only

VECTORS = [((3,), FLOAT), ((1,), FLOAT)]
ARRAYS = [((3,), FLOAT), ((2, 3), FLOAT), ((3, 1), FLOAT)]
MATRICES = [((2, 3), FLOAT), ((3, 3), FLOAT)]
SAME_SHAPES = [((3,), (3,)), ((2, 3), (2, 3))]


def rt_real_values(x, p):
    return np.abs(fmad_rt.real_values(p * x, "abs()")) * x


def rt_full(x, p):
    return fmad_rt.full(p * 2.0, x)


def rt_full_array(x, p):
    return fmad_rt.full(p * x, x)


def rt_per_direction(x, p):
    # full applied to each of 3 directions of a tangent (x's shape + (3,)), stacked
    return ra.per_direction(fmad_rt.full, 3, (0,), p * np.ones(np.shape(x) + (3,)) * 2.0, x)


def rt_gradient(x, p):
    return fmad_rt.gradient(p * x, x)


def rt_items_tangents(x, p):
    return np.array(fmad_rt.items_tangents(p * x, x))


def rt_builtin_sum(x, p):
    return fmad_rt.builtin_sum(p * x, x)


def rt_builtin_extreme(x, p):
    return fmad_rt.builtin_extreme(p * x, x, np.max(x))


def rt_builtin_extreme_list(p):
    return fmad_rt.builtin_extreme([p * 2.0, p * p, 0.0], [1.0, 3.0, 3.0], 3.0)


def rt_matmul_left(x, p):
    return fmad_rt.matmul_left(p * x, x, p * np.transpose(x), None)


def rt_matmul_right(x, p):
    return fmad_rt.matmul_right(p * x, np.transpose(x), p * np.transpose(x), None)


def rt_seed_matmul_left(x, p):
    return fmad_rt.seed_matmul_left(p * x)


def rt_seed_matmul_right(x, p):
    return fmad_rt.seed_matmul_right(p * x, (3, 2))


def rt_seed_dot(x, p):
    return fmad_rt.seed_dot(p * x, (3,), True)


def rt_seed_dot_scalar(p):
    return fmad_rt.seed_dot(p * 2.0, (3,), False)


def rt_inner_left(x, p):
    return fmad_rt.inner_left(p * x, x, p * x, None)


def rt_inner_right(x, p):
    return fmad_rt.inner_right(p * x, x, p * x, None)


def rt_outer_left(x, p):
    return fmad_rt.outer_tangent(p * x, x, p * x, None, True)


def rt_outer_right(x, p):
    return fmad_rt.outer_tangent(p * x, x, p * x, None, False)


def rt_prod_tangent(x, p):
    return fmad_rt.prod_tangent(p * x, x, None, False, None)


def rt_prod_tangent_axis(x, p):
    return fmad_rt.prod_tangent(p * x, x, 0, True, None)


def rt_extreme_tangent(x, p):
    return fmad_rt.extreme_tangent(p * x, x, np.max(x), None, False, None)


def rt_transpose_tangent(x, p):
    return fmad_rt.transpose_tangent(p * x, x, None, None)


def rt_squeeze_tangent(x, p):
    return fmad_rt.squeeze_tangent(p * x, x, None, None)


def rt_expand_dims_tangent(x, p):
    return fmad_rt.expand_dims_tangent(p * x, x, 0, None)


def rt_reshape_tangent(x, p):
    return fmad_rt.reshape_tangent(p * x, x, -1, None)


def rt_join_tangent(x, p):
    return fmad_rt.join_tangent(np.concatenate, [p * x, x], [x, x], 0, None)


def rt_stack_tangents(x, p):
    return fmad_rt.stack_tangents([p * x, x], [x, x])


def rt_array_tangent(x, p):
    return fmad_rt.array_tangent([p * x, p], [x, x], None)


def rt_sum_product(x, p):
    return fmad_rt.sum_product(p * x, p * x, x, None)


def rt_mean_product(x, p):
    return fmad_rt.mean_product(p * x, p * x, x, None)


def rt_seed_sum(x, p):
    k = np.size(x)
    return rs.seed_sum(p * x, np.eye(k).reshape(np.shape(x) + (k,)), x, k)


def rt_seed_mean(x, p):
    k = np.size(x)
    return rs.seed_mean(p * x * x, np.eye(k).reshape(np.shape(x) + (k,)), x, k)


def rt_on_seed(x, p):
    k = np.size(x)
    return rs.on_seed(p * x, np.eye(k).reshape(np.shape(x) + (k,)))


def rt_concat_tangent(x, p):
    return fmad_rt.concat_tangent(p * x, x, None, x)


def rt_concat_tangent_lists(p):
    return np.array(fmad_rt.concat_tangent([p, 2.0 * p], [1.0, 2.0], [p * p], [3.0]))


RUNTIME_ROWS = [
    Rule("fmad_rt.full", data_param(rt_full, ARRAYS) + data_param(rt_full_array, ARRAYS)),
    Rule("fmad_rt.gradient", data_param(rt_gradient, ARRAYS)),
    Rule("runtime_arrays.per_direction", data_param(rt_per_direction, ARRAYS)),
    # with respect to an array parameter: the helper applied per direction (per_direction)
    Rule("fmad_rt.full of an array parameter", data_param(rt_full_array, SAME_SHAPES)),
    Rule("fmad_rt.mean_product of an array parameter", data_param(rt_mean_product, SAME_SHAPES)),
    Rule("fmad_rt.items_tangents", data_param(rt_items_tangents, ARRAYS)),
    Rule("fmad_rt.builtin_sum", data_param(rt_builtin_sum, ARRAYS)),
    Rule(
        "fmad_rt.builtin_extreme",
        data_param(rt_builtin_extreme, VECTORS) + param_only(rt_builtin_extreme_list, [FLOAT]),
    ),
    Rule("fmad_rt.matmul_left", data_param(rt_matmul_left, MATRICES)),
    Rule("fmad_rt.matmul_right", data_param(rt_matmul_right, MATRICES)),
    Rule("fmad_rt.seed_matmul_left", data_param(rt_seed_matmul_left, ARRAYS)),
    Rule("fmad_rt.seed_matmul_right", data_param(rt_seed_matmul_right, [((3,), FLOAT), *MATRICES])),
    Rule(
        "fmad_rt.seed_dot",
        data_param(rt_seed_dot, [((3,), FLOAT)]) + param_only(rt_seed_dot_scalar, [FLOAT]),
    ),
    Rule("runtime_seed.seed_sum", data_param(rt_seed_sum, ARRAYS)),
    Rule("runtime_seed.seed_mean", data_param(rt_seed_mean, ARRAYS)),
    Rule("runtime_seed.on_seed", data_param(rt_on_seed, ARRAYS)),
    Rule("fmad_rt.inner_left", data_param(rt_inner_left, ARRAYS)),
    Rule("fmad_rt.inner_right", data_param(rt_inner_right, ARRAYS)),
    Rule(
        "fmad_rt.outer_tangent",
        data_param(rt_outer_left, ARRAYS) + data_param(rt_outer_right, ARRAYS),
    ),
    Rule(
        "fmad_rt.prod_tangent",
        data_param(rt_prod_tangent, ARRAYS) + data_param(rt_prod_tangent_axis, ARRAYS),
    ),
    Rule("fmad_rt.extreme_tangent", data_param(rt_extreme_tangent, ARRAYS)),
    Rule("fmad_rt.real_values", data_param(rt_real_values, ARRAYS)),
    Rule("fmad_rt.transpose_tangent", data_param(rt_transpose_tangent, ARRAYS)),
    Rule("fmad_rt.squeeze_tangent", data_param(rt_squeeze_tangent, [((1, 3), FLOAT), *ARRAYS])),
    Rule("fmad_rt.expand_dims_tangent", data_param(rt_expand_dims_tangent, ARRAYS)),
    Rule("fmad_rt.reshape_tangent", data_param(rt_reshape_tangent, ARRAYS)),
    Rule("fmad_rt.join_tangent", data_param(rt_join_tangent, ARRAYS)),
    Rule("fmad_rt.stack_tangents", data_param(rt_stack_tangents, ARRAYS)),
    Rule("fmad_rt.array_tangent", data_param(rt_array_tangent, ARRAYS)),
    Rule("fmad_rt.sum_product", data_param(rt_sum_product, ARRAYS)),
    Rule("fmad_rt.mean_product", data_param(rt_mean_product, ARRAYS)),
    Rule(
        "fmad_rt.concat_tangent",
        data_param(rt_concat_tangent, ARRAYS) + param_only(rt_concat_tangent_lists, [FLOAT]),
    ),
]


@pytest.mark.parametrize("rule", RUNTIME_ROWS, ids=[rule.name for rule in RUNTIME_ROWS])
def test_runtime_rule_matches_finite_differences(rule: Rule) -> None:
    check_rule(rule)


def rt_prod_of_active_values(p):
    return fmad_rt.prod_tangent(p * 2.0, p * 3.0, None, False, None)


def rt_builtin_sum_of_array_parameter(x, p):
    return fmad_rt.builtin_sum([p * 1.0, p * 2.0], [x, x])


@pytest.mark.parametrize(
    ("fn", "args", "message"),
    [
        (rt_prod_of_active_values, {"p": 0.5}, "second derivative of np.prod"),
        (rt_builtin_sum_of_array_parameter, {"x": np.ones(3), "p": np.ones(3)}, "a scalar only"),
    ],
)
def test_runtime_rules_refuse_what_they_cannot_differentiate(fn, args, message) -> None:
    with pytest.raises(fmad.UnsupportedError, match=message):
        fmad.differentiate(fn, wrt=["p"])(**args)


def fit_loss(X, y, w, b):
    r = np.tanh(X @ w + b) - y
    return np.mean(r * r) + np.max(w) * np.sum(w)


def test_generated_array_code_is_differentiated_again(tmp_path) -> None:
    """fmad's code for an array parameter (mean_product, extreme_tangent, full...),
    differentiated again with respect to a scalar: second derivatives."""
    rng = np.random.default_rng(8)
    args = {"X": rng.normal(size=(5, 3)), "y": rng.normal(size=5), "w": rng.normal(size=3)}
    args["b"] = 0.3
    source = fmad.differentiate(fit_loss, wrt=["w", "b"]).source_for(*args.values())
    assert "fmad_rt.mean_product" in source and "fmad_rt.extreme_tangent" in source
    path = tmp_path / "generated_once.py"
    path.write_text("import numpy as np\nfrom fmad import runtime as fmad_rt\n\n\n" + source)
    spec = importlib.util.spec_from_file_location("generated_once", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    once = module.fit_loss
    value, grads = fmad.differentiate(once, wrt=["b"])(*args.values())
    assert value[0] == fit_loss(**args)
    for i, second in enumerate(grads["b"]):
        expected = central_fd(lambda i=i, **kw: once(**kw)[i], args, "b")
        np.testing.assert_allclose(second, expected, rtol=1e-6, atol=1e-8)
