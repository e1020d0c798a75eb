"""Finite-difference rows of the statistics rules (fmad/rules/statistics.py): var, std
(functions and methods), median, percentile, quantile, average; the ties conventions; the
refusals; and the rules of the fmad.runtime_arrays helpers they call.
"""

from __future__ import annotations

import numpy as np
import pytest

import fmad
from fmad import runtime_arrays as ra
from tests.test_rules_fd import (
    FLOAT,
    REDUCTION_PARAM_SHAPES,
    REDUCTION_SHAPES,
    Rule,
    check_rule,
    data_param,
    given,
    param_only,
    param_param,
    problems_with,
)

# reductions with an axis need a value of at least that many dimensions
AXIS_SHAPES = [s for s in REDUCTION_SHAPES if s[0] != (4,)] + [((4,), (4,))]
MATRIX_SHAPES = [
    ((2, 3), FLOAT),
    ((2, 3), (3,)),
    ((2, 3), (2, 3)),
    ((3, 1), (4,)),
    ((2, 3), (2, 1)),
]


def var_all(x, p):
    return np.var(x * p)


def var_axis0(x, p):
    return np.var(x * p, axis=0)


def var_last_keepdims_ddof(x, p):
    return np.var(x * p, axis=-1, ddof=1, keepdims=True)


def var_p(p):
    return np.var(p)


def var_p_positional(p):
    return np.var(p, 0, None, None, 1)


def std_all(x, p):
    return np.std(x * p)


def std_axis_last(x, p):
    return np.std(x * p, axis=-1)


def std_axis0_keepdims_ddof(x, p):
    return np.std(x * p, axis=0, ddof=1, keepdims=True)


def std_p(p):
    return np.std(p)


def std_p_float_dtype(p):
    return np.std(p, dtype=np.float64)


def method_var_c(x, p):
    return (x * p).var()


def method_var_axis(x, p):
    return (x * p).var(axis=-1, ddof=1)


def method_std_c(x, p):
    return (x * p).std(0)


def method_std_p(p):
    return p.std()


def median_all(x, p):
    return np.median(x * p)


def median_axis0(x, p):
    return np.median(x * p, axis=0)


def median_last_keepdims(x, p):
    return np.median(x * p, axis=-1, keepdims=True)


def median_p(p):
    return np.median(p)


def percentile_all(x, p):
    return np.percentile(x * p, 30.0)


def percentile_axis(x, p):
    return np.percentile(x * p, 75, axis=-1)


def percentile_many(x, p):
    return np.percentile(x * p, [10.0, 50.0, 100.0], axis=0, keepdims=True)


def percentile_p(p):
    return np.percentile(p, 40, method="linear")


def quantile_all(x, p):
    return np.quantile(x * p, 0.3)


def quantile_axis_tuple(x, p):
    return np.quantile(x * p, [[0.2], [0.9]], axis=(0, -1))


def quantile_p(p):
    return np.quantile(p, 0.0)


def average_plain(x, p):
    return np.average(x * p)


def average_axis(x, p):
    return np.average(x * p, axis=0)


def average_weights_data(x, p):
    return np.average(p, weights=x * x)


def average_weights_param(x, p):
    return np.average(x, weights=p * p, axis=-1)


def average_weights_both(p, q):
    return np.average(p * q, weights=q * q + 1.0)


def average_weights_1d(x, p):
    return np.average(x * p, axis=0, weights=[1.0, 2.0], keepdims=True)


def average_weights_1d_param(x, p):
    return np.average(x, axis=-1, weights=p * p)


def average_positional(x, p):
    return np.average(x * p, 0, x * x + 1.0)


ROWS = [
    Rule(
        "np.var",
        [
            *data_param(var_all, REDUCTION_SHAPES),
            *data_param(var_axis0, AXIS_SHAPES),
            *data_param(var_last_keepdims_ddof, AXIS_SHAPES),
            *param_only(var_p, REDUCTION_PARAM_SHAPES + [()]),
            *param_only(var_p_positional, [(3,), (2, 3)]),
        ],
    ),
    Rule(
        "np.std",
        [
            *data_param(std_all, REDUCTION_SHAPES),
            *data_param(std_axis_last, AXIS_SHAPES),
            *data_param(std_axis0_keepdims_ddof, MATRIX_SHAPES),
            *param_only(std_p, REDUCTION_PARAM_SHAPES),
            *param_only(std_p_float_dtype, [(3,), (2, 3)]),
        ],
    ),
    Rule(
        "method-var-std",
        [
            *data_param(method_var_c, REDUCTION_SHAPES),
            *data_param(method_var_axis, AXIS_SHAPES),
            *data_param(method_std_c, MATRIX_SHAPES),
            *param_only(method_std_p, [(3,), (2, 3)]),
        ],
    ),
    Rule(
        "np.median",
        [
            *data_param(median_all, REDUCTION_SHAPES),
            *data_param(median_axis0, AXIS_SHAPES),
            *data_param(median_last_keepdims, AXIS_SHAPES),
            *param_only(median_p, REDUCTION_PARAM_SHAPES + [(4,), ()]),
        ],
    ),
    Rule(
        "np.percentile",
        [
            *data_param(percentile_all, REDUCTION_SHAPES),
            *data_param(percentile_axis, AXIS_SHAPES),
            *data_param(percentile_many, MATRIX_SHAPES),
            *param_only(percentile_p, REDUCTION_PARAM_SHAPES),
        ],
    ),
    Rule(
        "np.quantile",
        [
            *data_param(quantile_all, REDUCTION_SHAPES),
            *data_param(quantile_axis_tuple, MATRIX_SHAPES),
            *param_only(quantile_p, REDUCTION_PARAM_SHAPES),
        ],
    ),
    Rule(
        "np.average",
        [
            *data_param(average_plain, REDUCTION_SHAPES),
            *data_param(average_axis, AXIS_SHAPES),
            *data_param(average_weights_data, [((3,), (3,)), ((2, 3), (2, 3)), ((), FLOAT)]),
            *data_param(average_weights_param, [((3,), (3,)), ((2, 3), (2, 3)), ((2, 3), (3,))]),
            *param_param(average_weights_both, [(FLOAT, FLOAT), ((3,), (3,)), (FLOAT, (2, 3))]),
            *data_param(average_weights_1d, [((2, 3), FLOAT), ((2, 3), (3,)), ((2,), (2,))]),
            *data_param(average_weights_1d_param, [((2, 3), (3,)), ((4, 3), (3,))]),
            *data_param(average_positional, [((2, 3), FLOAT), ((2, 3), (2, 3))]),
        ],
    ),
]


# --- the helpers' own rules (generated code differentiated again, with respect to p) -----


def ra_quantile(x, p):
    return ra.quantile_tangent(p * x, x, 0.3, None, False, None)


def ra_quantile_axis(x, p):
    return ra.quantile_tangent(p * p * x, x, [25.0, 60.0], 0, True, None, 100.0)


def ra_average(x, p):
    return ra.average_tangent(p * x, p * x * x, x, x * x + 1.0, None, False, None)


def ra_average_one(x, p):
    return ra.average_tangent(None, p * x, x, x * x + 1.0, -1, True, None)


ROWS += [
    Rule(
        "runtime_arrays.quantile_tangent",
        data_param(ra_quantile, [((3,), FLOAT), ((2, 3), FLOAT)])
        + data_param(ra_quantile_axis, [((3, 2), FLOAT)]),
    ),
    Rule(
        "runtime_arrays.average_tangent",
        data_param(ra_average, [((3,), FLOAT), ((2, 3), FLOAT)])
        + data_param(ra_average_one, [((2, 3), FLOAT)]),
    ),
]


@pytest.mark.parametrize("rule", ROWS, ids=[rule.name for rule in ROWS])
def test_rule_matches_finite_differences(rule: Rule) -> None:
    check_rule(rule)


# --- conventions at kinks and ties ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "p", "expected"),
    [
        (median_p, [1.0, 2.0, 2.0], [0.0, 0.5, 0.5]),
        (median_p, [2.0, 2.0, 2.0, 5.0], [1 / 3, 1 / 3, 1 / 3, 0.0]),
        (quantile_p, [1.0, 1.0, 3.0], [0.5, 0.5, 0.0]),
        (percentile_p, [3.0, 3.0, 3.0], [1 / 3, 1 / 3, 1 / 3]),
    ],
    ids=["median-pair", "median-three", "min-pair", "all-equal"],
)
def test_order_statistics_share_ties_evenly(fn, p, expected) -> None:
    _, grads = fmad.differentiate(fn, wrt=["p"])(np.array(p))
    np.testing.assert_allclose(grads["p"], np.array(expected), rtol=1e-12)


def percentile_100(p):
    return np.percentile(p, 100)


def max_of(p):
    return np.max(p)


def test_percentile_100_has_the_derivative_of_max() -> None:
    p = np.array([1.0, 4.0, 4.0, 2.0])
    _, a = fmad.differentiate(percentile_100, wrt=["p"])(p)
    _, b = fmad.differentiate(max_of, wrt=["p"])(p)
    np.testing.assert_allclose(a["p"], b["p"])


def test_std_of_equal_values_has_derivative_zero() -> None:
    _, grads = fmad.differentiate(std_p, wrt=["p"])(np.full(3, 2.0))
    np.testing.assert_array_equal(grads["p"], np.zeros(3))
    _, grads = fmad.differentiate(std_p, wrt=["p"])(2.0)
    assert grads["p"] == 0.0


def test_median_of_nan_is_nan_not_a_number_made_up() -> None:
    with np.errstate(invalid="ignore"):
        value, grads = fmad.differentiate(median_p, wrt=["p"])(np.array([1.0, np.nan, 2.0]))
    assert np.isnan(value)
    assert np.isnan(grads["p"]).all()


def test_average_with_given_weights_matches_rows() -> None:
    case = given(average_weights_both, ("p", "q"), p=[1.0, -2.0, 0.5], q=[0.3, 1.5, -0.7])
    assert problems_with(case) == []


# --- refusals: error class, file and line ---------------------------------------------------


def var_out(p, buf):
    return np.var(p, out=buf)


def var_where(p):
    return np.var(p, where=p > 0)


def var_int_dtype(p):
    return np.var(p, dtype=int)


def var_active_ddof(p):
    return np.var(np.ones(3), ddof=p)


def percentile_method(p):
    return np.percentile(p, 50, method="nearest")


def quantile_active_q(x, p):
    return np.quantile(x, p)


def median_overwrite(p):
    return np.median(p * 1.0, overwrite_input=True)


def average_returned(p):
    return np.average(p, weights=p, returned=True)


def quantile_weights(p):
    return np.quantile(p, 0.5, weights=np.ones(3), method="inverted_cdf")


REFUSALS = [
    (var_out, ("p", "buf"), "out="),
    (var_where, ("p",), "where="),
    (var_int_dtype, ("p",), "dtype="),
    (var_active_ddof, ("p",), "ddof="),
    (percentile_method, ("p",), "method="),
    (quantile_active_q, ("x", "p"), "q="),
    (median_overwrite, ("p",), "overwrite_input="),
    (average_returned, ("p",), "returned="),
    (quantile_weights, ("p",), "weights="),
]


@pytest.mark.parametrize(
    ("fn", "params", "needle"), REFUSALS, ids=[f.__name__ for f, _, _ in REFUSALS]
)
def test_refusals_name_the_file_and_line(fn, params, needle) -> None:
    args = {"p": np.array([1.0, 2.0, 3.0]), "x": np.array([1.0, 2.0, 3.0]), "buf": np.zeros(())}
    args["p"] = 0.5 if fn is quantile_active_q else args["p"]
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=["p"])(*[args[n] for n in params])
    line = fn.__code__.co_firstlineno + 1
    assert f"test_rules_fd_statistics.py:{line}:" in str(info.value)
    assert needle in str(info.value)
