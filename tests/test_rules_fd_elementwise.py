"""Finite-difference rows of fmad/rules/arithmetic.py (numpy's arithmetic as functions, the
elementwise extras, polyval, cross) and fmad/rules/special.py (scipy.special, when scipy can
be imported: without it those rows are simply not built), with the refusals of the ufunc
keywords and options fmad does not model, and the documented conventions at kinks."""

from __future__ import annotations

import inspect
import math
import os

import numpy as np
import pytest

import fmad
from tests.test_rules_fd import (
    BINARY_SHAPES,
    COMPOSITE_SHAPES,
    FLOAT,
    REDUCTION_SHAPES,
    SAME_SHAPES,
    SCALAR_PAIR,
    Rule,
    binary_rule,
    check_rule,
    data_param,
    given,
    param_only,
    param_param,
    unary_rule,
)

try:
    import scipy.special as special
except ImportError:  # scipy is optional: its rows are not built
    special = None


# --- numpy's arithmetic called as functions ------------------------------------------------
def add_xp(x, p):
    return np.add(x, p)


def add_px(x, p):
    return np.add(p, x)


def add_pq(p, q):
    return np.add(p, q)


def add_pp(p):
    return np.add(p, p)


def subtract_xp(x, p):
    return np.subtract(x, p)


def subtract_px(x, p):
    return np.subtract(p, x)


def subtract_pq(p, q):
    return np.subtract(p, q)


def multiply_xp(x, p):
    return np.multiply(x, p)


def multiply_px(x, p):
    return np.multiply(p, x)


def multiply_pq(p, q):
    return np.multiply(p, q)


def multiply_pp(p):
    return np.multiply(p, p)


def divide_xp(x, p):
    return np.divide(x, p)


def divide_px(x, p):
    return np.true_divide(p, x)


def divide_pq(p, q):
    return np.divide(p, q)


def divide_pp(p):
    return np.divide(p, p * p)


def float_power_xp(x, p):
    return np.float_power(x, p)


def float_power_px(x, p):
    return np.float_power(p, x)


def float_power_pq(p, q):
    return np.float_power(p, q)


def mod_xp(x, p):
    return np.mod(x, p)


def mod_px(x, p):
    return np.remainder(p, x)


def mod_pq(p, q):
    return np.mod(p, q)


def fmod_xp(x, p):
    return np.fmod(x, p)


def fmod_px(x, p):
    return np.fmod(p, x)


def fmod_pq(p, q):
    return np.fmod(p, q)


def operator_mod_sum(x, p):
    return np.sum(p % x)


def np_mod_sum(x, p):
    return np.sum(np.mod(p, x)) + np.sum(np.fmod(p, x))


def add_float64(x, p):
    return np.add(x, p, dtype=np.float64) + np.exp(p, where=True)


# --- elementwise functions of one argument -------------------------------------------------
def exp2_p(p):
    return np.exp2(p)


def exp2_c(x, p):
    return np.exp2(x * p)


def degrees_p(p):
    return np.degrees(p) + np.rad2deg(p)


def degrees_c(x, p):
    return np.degrees(x * p) * np.rad2deg(p)


def radians_p(p):
    return np.radians(p) + np.deg2rad(p)


def radians_c(x, p):
    return np.radians(x * p) * np.deg2rad(p)


def sinc_p(p):
    return np.sinc(p)


def sinc_c(x, p):
    return np.sinc(x * p)


def real_c(x, p):
    return np.real(x * p) + np.imag(x * p) + np.real(np.conj(x * p) * (x + 1.0j))


def real_p(p):
    return np.real(p) * np.conjugate(p) + np.imag(p)


def angle_c(x, p):
    return np.angle(x * p) + np.angle(x * p + 1.0j * p * p, deg=True)


def real_if_close_c(x, p):
    return np.real_if_close(x * p) + np.real_if_close(x * p + 1e-20j)


def nan_to_num_c(x, p):
    return np.nan_to_num(x * p)


def nan_to_num_options(x, p):
    return np.nan_to_num(x * p, nan=1.0, posinf=2.0, neginf=-3.0)


def nan_to_num_p(p):
    return np.nan_to_num(p)


# --- elementwise functions of two arguments ------------------------------------------------
def logaddexp_xp(x, p):
    return np.logaddexp(x, p)


def logaddexp_px(x, p):
    return np.logaddexp(p, x)


def logaddexp_pq(p, q):
    return np.logaddexp(p, q)


def logaddexp2_xp(x, p):
    return np.logaddexp2(x, p)


def logaddexp2_px(x, p):
    return np.logaddexp2(p, x)


def logaddexp2_pq(p, q):
    return np.logaddexp2(p, q)


def hypot_xp(x, p):
    return np.hypot(x, p)


def hypot_px(x, p):
    return np.hypot(p, x)


def hypot_pq(p, q):
    return np.hypot(p, q)


def arctan2_xp(x, p):
    return np.arctan2(x, p)


def arctan2_px(x, p):
    return np.arctan2(p, x)


def arctan2_pq(p, q):
    return np.arctan2(p, q)


def copysign_xp(x, p):
    return np.copysign(x, p) * p


def copysign_px(x, p):
    return np.copysign(p, x)


def copysign_pq(p, q):
    return np.copysign(p, q) + np.copysign(q * q, p)


def math_copysign_xp(x, p):
    return math.copysign(p, x) + math.copysign(x, p) * p


def ldexp_p(p):
    return np.ldexp(p, 3)


def ldexp_c(x, p):
    return np.ldexp(x * p, np.array([1, -2, 3]))


def zero_derivative_c(x, p):
    flags = np.signbit(p) + np.isneginf(p) + np.isposinf(p) + np.isreal(p) + np.iscomplex(p)
    close = np.isclose(p, x) + np.allclose(p, x) + np.array_equal(p, x) + np.array_equiv(p, x)
    return (np.floor_divide(p, 0.3) + flags + close + np.spacing(p)) * x


# --- polynomials and the cross product -----------------------------------------------------
def polyval_xp(x, p):
    return np.polyval(p, x)


def polyval_px(x, p):
    return np.polyval(x, p)


def polyval_pq(p, q):
    return np.polyval(p, q)


def polyval_list(x, p):
    return np.polyval([p, 2.0, p * p], x)


def cross_xp(x, p):
    return np.cross(x, p)


def cross_px(x, p):
    return np.cross(p, x)


def cross_pq(p, q):
    return np.cross(p, q)


def cross_axis0(x, p):
    return np.cross(p, x, axis=0)


def cross_axes(x, p):
    return np.cross(p, x, axisa=0, axisb=-1, axisc=0)


def cross_sum(x, p):
    return np.sum(np.cross(x * p, x))


def clip_keywords(x, p):
    return np.clip(p, a_min=-1.0, a_max=1.0) * x + np.asarray(p).clip(min=-1.0)


def clip_min_max(x, p):  # numpy >= 2.1 names the bounds min= and max= too
    return np.clip(p, min=-1.0, max=1.0) * x + np.clip(p, max=1.0)


NEW_CLIP = np.lib.NumpyVersion(np.__version__) >= "2.1.0"


# --- the rows ------------------------------------------------------------------------------
# (point, coefficients): polyval(coefficients, point); (2,) against (3, 2): one polynomial
# per column
POLY_SHAPES = [(FLOAT, (3,)), ((4,), (2,)), ((2, 3), (4,)), ((3,), (1,)), ((2,), (3, 2))]
CROSS_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((4, 3), (4, 3)), ((2, 1, 3), (4, 3))]


def _swap(shapes):
    return [(b, a) for a, b in shapes]


ROWS = [
    binary_rule("np.add", add_xp, add_px, add_pq, add_pp),
    binary_rule("np.subtract", subtract_xp, subtract_px, subtract_pq),
    binary_rule("np.multiply", multiply_xp, multiply_px, multiply_pq, multiply_pp),
    binary_rule("np.divide", divide_xp, divide_px, divide_pq, divide_pp),
    Rule(
        "np.float_power",
        [
            *data_param(float_power_xp, BINARY_SHAPES, "pos", "real"),
            *data_param(float_power_px, BINARY_SHAPES, "int", "pos"),
            *param_param(float_power_pq, BINARY_SHAPES, "pos", "real"),
        ],
    ),
    binary_rule("np.mod", mod_xp, mod_px, mod_pq),
    binary_rule("np.fmod", fmod_xp, fmod_px, fmod_pq),
    Rule(
        "mod-broadcast-reduced",
        data_param(operator_mod_sum, [((4,), (3, 1)), ((2, 3), (3,)), ((3,), FLOAT)], "pos")
        + data_param(np_mod_sum, [((4,), (3, 1)), ((2, 3), (3,)), ((3,), FLOAT)], "pos"),
    ),
    Rule("ufunc-float-dtype", data_param(add_float64, BINARY_SHAPES)),
    unary_rule("np.exp2", exp2_p, exp2_c),
    unary_rule("np.degrees", degrees_p, degrees_c),
    unary_rule("np.radians", radians_p, radians_c),
    Rule(
        "np.sinc",
        [
            *unary_rule("", sinc_p, sinc_c).cases,
            given(sinc_p, p=[0.0, 1e-3, -0.02, 0.0318, 0.04, 0.5, -1.3]),
            given(sinc_p, p=0.0),
        ],
    ),
    Rule(
        "np.real-imag-conj",
        [
            *param_only(real_p, SAME_SHAPES),
            *data_param(real_c, COMPOSITE_SHAPES),
            given(real_c, x=np.array([1.0 + 2.0j, -0.5j, 3.0]), p=0.7),
            given(real_c, x=np.array([1.0 + 2.0j, -0.5j, 3.0]), p=[0.7, -1.2, 2.0]),
        ],
    ),
    Rule(
        "np.angle-real_if_close",
        [
            *data_param(angle_c, COMPOSITE_SHAPES),
            *data_param(real_if_close_c, COMPOSITE_SHAPES),
            given(angle_c, x=np.array([1.0 + 2.0j, -0.5j, 3.0, -2.0]), p=0.7),
            given(angle_c, x=np.array([1.0 + 2.0j, -0.5j, -2.0]), p=[0.7, -1.2, 2.0]),
        ],
    ),
    Rule(
        "np.nan_to_num",
        [
            *param_only(nan_to_num_p, SAME_SHAPES),
            *data_param(nan_to_num_c, COMPOSITE_SHAPES),
            given(nan_to_num_options, x=[1.0, np.inf, -np.inf, 2.0], p=0.7),
            given(nan_to_num_options, x=[1.0, np.inf, -np.inf, 2.0], p=[0.5] * 4),
        ],
    ),
    binary_rule("np.logaddexp", logaddexp_xp, logaddexp_px, logaddexp_pq),
    binary_rule("np.logaddexp2", logaddexp2_xp, logaddexp2_px, logaddexp2_pq),
    binary_rule("np.hypot", hypot_xp, hypot_px, hypot_pq),
    binary_rule("np.arctan2", arctan2_xp, arctan2_px, arctan2_pq),
    Rule(
        "np.copysign",
        [
            *binary_rule("", copysign_xp, copysign_px, copysign_pq).cases,
            *data_param(math_copysign_xp, SCALAR_PAIR),
        ],
    ),
    Rule(
        "np.ldexp",
        param_only(ldexp_p, SAME_SHAPES) + data_param(ldexp_c, [((3,), FLOAT), ((2, 3), (3,))]),
    ),
    Rule("zero-derivative-extras", data_param(zero_derivative_c, COMPOSITE_SHAPES, "real", "frac")),
    Rule(
        "np.polyval",
        [
            *data_param(polyval_xp, POLY_SHAPES),
            *data_param(polyval_px, _swap(POLY_SHAPES)),
            *param_param(polyval_pq, _swap(POLY_SHAPES)),
            *data_param(polyval_list, [(FLOAT, FLOAT), ((3,), FLOAT), ((2, 2), FLOAT)]),
        ],
    ),
    Rule(
        "np.clip-keywords",
        data_param(clip_keywords, COMPOSITE_SHAPES, "real", "clip")
        + (data_param(clip_min_max, COMPOSITE_SHAPES, "real", "clip") if NEW_CLIP else []),
    ),
    Rule(
        "np.cross",
        [
            *data_param(cross_xp, CROSS_SHAPES),
            *data_param(cross_px, _swap(CROSS_SHAPES)),
            *param_param(cross_pq, CROSS_SHAPES),
            *data_param(cross_axis0, [((3,), (3,)), ((3, 2), (3, 2)), ((3, 1), (3, 4))]),
            *data_param(cross_axes, [((2, 3), (3, 2)), ((4, 3), (3, 4))]),
            *data_param(cross_sum, [((3,), FLOAT), ((2, 3), (3,)), ((2, 3), (2, 1))]),
        ],
    ),
]


# --- scipy.special -------------------------------------------------------------------------
def expit_p(p):
    return special.expit(p)


def expit_c(x, p):
    return special.expit(x * p)


def logit_p(p):
    return special.logit(0.5 + 0.5 * p)


def logit_c(x, p):
    return special.logit(0.5 + 0.4 * np.tanh(x * p))


def log_expit_p(p):
    return special.log_expit(p)


def log_expit_c(x, p):
    return special.log_expit(x * p)


def erf_p(p):
    return special.erf(p) + special.erfc(p)


def erf_c(x, p):
    return special.erf(x * p) * special.erfc(p)


def erfinv_p(p):
    return special.erfinv(p) + special.erfcinv(1.0 + p)


def erfinv_c(x, p):
    return special.erfinv(np.tanh(x * p)) * special.erfcinv(1.0 + np.tanh(p))


def ndtr_p(p):
    return special.ndtr(p) + special.log_ndtr(p)


def ndtr_c(x, p):
    return special.ndtr(x * p) * special.log_ndtr(p)


def gammaln_p(p):
    return special.gammaln(p) + special.gamma(p)


def gammaln_c(x, p):
    return special.gammaln(x * p) * special.gamma(x * p)


def digamma_p(p):
    return special.digamma(p) + special.polygamma(1, p) + special.polygamma(2, p)


def digamma_c(x, p):
    return special.digamma(x * p) * special.polygamma(1, p)


def xlogy_xp(x, p):
    return special.xlogy(x, p) + special.xlog1py(x, p)


def xlogy_px(x, p):
    return special.xlogy(p, x) + special.xlog1py(p, x)


def xlogy_pq(p, q):
    return special.xlogy(p, q) + special.xlog1py(p, q)


def xlogy_zero(x, p):
    return special.xlogy(x * 0.0, p)


def logsumexp_c(x, p):
    return special.logsumexp(x * p)


def logsumexp_axis0(x, p):
    return special.logsumexp(x * p, axis=0)


def logsumexp_axis_last(x, p):
    return special.logsumexp(x * p, -1)


def logsumexp_keepdims(x, p):
    return special.logsumexp(x * p, axis=-1, keepdims=True)


def logsumexp_keepdims_all(x, p):
    return special.logsumexp(x * p, keepdims=True)


def logsumexp_tuple(x, p):
    return special.logsumexp(x * p, axis=(0, 1))


def logsumexp_p(p):
    return special.logsumexp(p, axis=0)


def softmax_c(x, p):
    return special.softmax(x * p)


def softmax_axis(x, p):
    return special.softmax(x * p, axis=-1)


def softmax_p(p):
    return special.softmax(p, 0)


def log_softmax_c(x, p):
    return special.log_softmax(x * p)


def log_softmax_axis(x, p):
    return special.log_softmax(x * p, axis=0)


def log_softmax_p(p):
    return special.log_softmax(p, axis=-1)


def rgamma_p(p):
    return special.rgamma(p) + special.gammasgn(p) * p


def rgamma_c(x, p):
    return special.rgamma(x * p)


def beta_xp(x, p):
    return special.beta(x, p) + special.betaln(x, p)


def beta_px(x, p):
    return special.beta(p, x) + special.betaln(p, x)


def beta_pq(p, q):
    return special.beta(p, q) * special.betaln(q, p)


def bessel_p(p):
    return special.j0(p) + special.j1(p) + special.y0(p) + special.y1(p)


def bessel_c(x, p):
    return special.i0(x * p) + special.i1(x * p) + special.i0e(p) * special.i1e(x * p)


def bessel_order_c(x, p):
    jy = special.jv(1.5, x * p) + special.jn(2, p) + special.yv(0.5, p) + special.yn(1, x * p)
    return jy + special.iv(2.5, p) + special.ive(1, x * p) + special.kv(1, p) * special.kve(2, p)


def gammainc_c(x, p):
    return special.gammainc(x, p) + special.gammaincc(x, p * p)


def betainc_c(x, p):
    return special.betainc(x + 1.0, 2.5, 0.45 * np.tanh(p) + 0.5)


def multigammaln_c(x, p):
    return special.multigammaln(x * x + 2.0 + p * p, 3)


def refused_bessel_order(x, p):
    return special.jv(p, x)  # LINE-order-v


def refused_gammainc_shape(x, p):
    return special.gammainc(p, x)  # LINE-gammainc


PARAM_SHAPES = [(3,), (2, 3), (1,), (3, 1)]
TWO_D = [((2, 3), FLOAT), ((2, 3), (3,)), ((2, 3), (2, 3)), ((3, 1), (4,))]

if special is not None:
    ROWS += [
        unary_rule("scipy.special.expit", expit_p, expit_c),
        unary_rule("scipy.special.logit", logit_p, logit_c, "unit"),
        unary_rule("scipy.special.log_expit", log_expit_p, log_expit_c),
        unary_rule("scipy.special.erf", erf_p, erf_c),
        unary_rule("scipy.special.erfinv", erfinv_p, erfinv_c, "unit"),
        unary_rule("scipy.special.ndtr", ndtr_p, ndtr_c),
        unary_rule("scipy.special.gammaln", gammaln_p, gammaln_c, "pos"),
        unary_rule("scipy.special.digamma", digamma_p, digamma_c, "pos"),
        Rule(
            "scipy.special.xlogy",
            [
                *data_param(xlogy_xp, BINARY_SHAPES, "real", "pos"),
                *data_param(xlogy_px, BINARY_SHAPES, "pos", "real"),
                *param_param(xlogy_pq, BINARY_SHAPES, "real", "pos"),
                *data_param(xlogy_zero, BINARY_SHAPES, "real", "pos"),
            ],
        ),
        unary_rule("scipy.special.rgamma", rgamma_p, rgamma_c, "pos"),
        binary_rule("scipy.special.beta", beta_xp, beta_px, beta_pq, None, "pos", "pos"),
        unary_rule("scipy.special.bessel", bessel_p, bessel_c, "pos"),
        Rule(
            "scipy.special.bessel-order", data_param(bessel_order_c, COMPOSITE_SHAPES, "pos", "pos")
        ),
        Rule("scipy.special.gammainc", data_param(gammainc_c, BINARY_SHAPES, "pos", "pos")),
        Rule("scipy.special.betainc", data_param(betainc_c, BINARY_SHAPES, "pos", "real")),
        Rule(
            "scipy.special.multigammaln",
            data_param(multigammaln_c, [(FLOAT, FLOAT), ((3,), FLOAT), ((3,), (3,))]),
        ),
        Rule(
            "scipy.special.logsumexp",
            [
                *data_param(logsumexp_c, REDUCTION_SHAPES),
                *data_param(logsumexp_keepdims_all, REDUCTION_SHAPES),
                *data_param(logsumexp_axis0, REDUCTION_SHAPES),
                *data_param(logsumexp_axis_last, REDUCTION_SHAPES),
                *data_param(logsumexp_keepdims, REDUCTION_SHAPES),
                *data_param(logsumexp_tuple, TWO_D),
                *param_only(logsumexp_p, PARAM_SHAPES),
            ],
        ),
        Rule(
            "scipy.special.softmax",
            [
                *data_param(softmax_c, REDUCTION_SHAPES),
                *data_param(softmax_axis, REDUCTION_SHAPES),
                *param_only(softmax_p, PARAM_SHAPES),
            ],
        ),
        Rule(
            "scipy.special.log_softmax",
            [
                *data_param(log_softmax_c, REDUCTION_SHAPES),
                *data_param(log_softmax_axis, REDUCTION_SHAPES),
                *param_only(log_softmax_p, PARAM_SHAPES),
            ],
        ),
    ]


@pytest.mark.parametrize("rule", ROWS, ids=[rule.name for rule in ROWS])
def test_rule_matches_finite_differences(rule: Rule) -> None:
    check_rule(rule)


# --- conventions at kinks ------------------------------------------------------------------
def test_hypot_at_the_origin_is_zero() -> None:
    _, grads = fmad.differentiate(hypot_pq, wrt=["p", "q"])(0.0, 0.0)
    assert grads == {"p": 0.0, "q": 0.0}
    _, grads = fmad.differentiate(hypot_pq, wrt=["p"])(np.array([0.0, 3.0]), np.array([0.0, 4.0]))
    np.testing.assert_array_equal(grads["p"], np.diag([0.0, 0.6]))


def test_sinc_at_zero_is_zero_and_exact_nearby() -> None:
    p = np.array([0.0, 1e-9, 1e-5, 0.03, 0.04])
    _, grads = fmad.differentiate(sinc_p, wrt=["p"])(p)
    u = np.pi * p
    exact = np.where(p == 0, 0.0, (np.cos(u) * u - np.sin(u)) / (u * p + (p == 0)))
    small = u[:3] ** 2
    exact[:3] = -(np.pi**2) * p[:3] / 3 * (1 - small / 10 + small**2 / 280)  # the series
    np.testing.assert_allclose(np.diag(grads["p"]), exact, rtol=1e-12, atol=0)


def test_fmod_quotient_is_numpy_s_own() -> None:
    # np.fmod(1.0, 0.1) = 0.1 - 5.5e-17: the quotient is 9, although trunc(1.0 / 0.1) is 10
    _, grads = fmad.differentiate(fmod_pq, wrt=["p", "q"])(1.0, 0.1)
    assert grads["q"] == -9.0
    assert grads["p"] == 1.0


def test_nan_to_num_replaced_elements_have_no_derivative() -> None:
    x = np.array([1.0, np.inf, np.nan, -np.inf])
    _, grads = fmad.differentiate(nan_to_num_c, wrt=["p"])(x, 0.5)
    np.testing.assert_array_equal(grads["p"], [1.0, 0.0, 0.0, 0.0])


def test_copysign_at_zero_is_zero() -> None:
    _, grads = fmad.differentiate(copysign_pq, wrt=["p"])(np.array([0.0, 2.0]), -1.0)
    np.testing.assert_array_equal(grads["p"], [[0.0, 0.0], [0.0, -1.0]])


def test_ufunc_float32_dtype_is_accepted() -> None:
    def f(p):
        return np.multiply(p, p, dtype=np.float32)

    value, grads = fmad.differentiate(f, wrt=["p"])(np.array([1.5, 2.0]))
    assert value.dtype == np.float32
    np.testing.assert_allclose(grads["p"], np.diag([3.0, 4.0]))


# --- refusals ------------------------------------------------------------------------------
THIS_FILE = os.path.basename(__file__)


def refused_where(x, p):
    return np.exp(p, where=x > 0)  # LINE-where


def refused_casting(x, p):
    return np.add(p, x, casting="unsafe")  # LINE-casting


def refused_int_dtype(x, p):
    return np.multiply(p, x, dtype=int)  # LINE-dtype


def refused_order(x, p):
    return np.hypot(p, x, order="C")  # LINE-order


def refused_subok(x, p):
    return np.maximum(p, x, subok=False)  # LINE-subok


def refused_nan_to_num_copy(x, p):
    return np.nan_to_num(x * p, copy=False)  # LINE-copy


def refused_nan_to_num_active(x, p):
    return np.nan_to_num(x, nan=p)  # LINE-nan


def refused_cross_axis(x, p):
    a = len(x) - 4
    return np.cross(p, x, axis=a)  # LINE-cross


def refused_logsumexp_b(x, p):
    return special.logsumexp(p, b=x)  # LINE-b


def refused_logsumexp_sign(x, p):
    return special.logsumexp(p, return_sign=True)  # LINE-sign


def refused_softmax_keyword(x, p):
    return special.softmax(p, axis=0, out=x)  # LINE-softmax


def refused_clip_bound(x, p):
    return np.clip(x, a_min=p)  # LINE-clip


def _line(tag: str) -> int:
    lines = inspect.getsource(inspect.getmodule(_line)).splitlines()
    found = [n for n, s in enumerate(lines, 1) if s.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1
    return found[0]


NUMPY_REFUSALS = [
    (refused_where, "where", "where="),
    (refused_casting, "casting", "casting="),
    (refused_int_dtype, "dtype", "dtype="),
    (refused_order, "order", "order="),
    (refused_subok, "subok", "subok="),
    (refused_nan_to_num_copy, "copy", "in place"),
    (refused_nan_to_num_active, "nan", "nan="),
    (refused_cross_axis, "cross", "axis="),
    (refused_clip_bound, "clip", "a_min="),
]
SCIPY_REFUSALS = [
    (refused_logsumexp_b, "b", "b="),
    (refused_logsumexp_sign, "sign", "return_sign="),
    (refused_softmax_keyword, "softmax", "out"),
    (refused_bessel_order, "order-v", "first argument"),
    (refused_gammainc_shape, "gammainc", "first argument"),
]


def _check_refused(fn, tag: str, words: str) -> None:
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=["p"])
    error, message = info.value, str(info.value)
    assert os.path.basename(error.filename) == THIS_FILE
    assert error.lineno == _line(tag), message
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert words in message, message
    assert ";" in message.split(": ", 1)[1], message  # then what to write instead


@pytest.mark.parametrize(
    ("fn", "tag", "words"), NUMPY_REFUSALS, ids=[t for _, t, _ in NUMPY_REFUSALS]
)
def test_refused(fn, tag, words) -> None:
    _check_refused(fn, tag, words)


@pytest.mark.skipif(special is None, reason="scipy is not installed")
@pytest.mark.parametrize(
    ("fn", "tag", "words"), SCIPY_REFUSALS, ids=[t for _, t, _ in SCIPY_REFUSALS]
)
def test_refused_scipy(fn, tag, words) -> None:
    _check_refused(fn, tag, words)


# --- fmad's output through these rules is differentiated again -----------------------------
def second_order_mix(x, p):
    a = np.hypot(x, p) + np.sinc(x * p) + np.logaddexp(p, x) + np.arctan2(p, x)
    b = np.mod(p, x) + np.fmod(p, x) + np.polyval(np.array([1.0, 2.0, 0.5]) * p, x)
    c = np.nan_to_num(p * x) + np.angle(x * p + 1.0j) + np.real_if_close(x * p)
    d = np.copysign(p * p, x) + np.exp2(p) * np.degrees(x) + np.divide(x, p)
    e = np.sum(np.cross(np.array([1.0, 2.0, 3.0]) * p, np.array([0.5, -1.0, 2.0]) * p * p))
    return np.sum(a + b + c + d) + e


def test_printed_code_is_differentiated_again(tmp_path) -> None:
    first = fmad.differentiate(second_order_mix, wrt=["p"])
    path = tmp_path / "printed_mix.py"
    header = "import numpy as np\n\nfrom fmad import runtime as fmad_rt\n\n\n"
    path.write_text(header + first.source)
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - a test
    printed = namespace["second_order_mix"]
    x, p = np.array([0.7, 1.9, -1.3]), 1.3
    value, grads = first(x, p)
    assert printed(x, p) == (value, grads["p"])
    (_, dp), hess = fmad.differentiate(printed, wrt=["p"])(x, p)
    h = 1e-5
    expected = (printed(x, p + h)[1] - printed(x, p - h)[1]) / (2 * h)
    assert dp == grads["p"]
    np.testing.assert_allclose(hess["p"][1], expected, rtol=1e-6)
