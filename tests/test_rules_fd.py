"""One test row per derivative rule, each checked against central finite differences.

Every row runs its rule on scalars and on arrays of several shapes (0-d, 1-d, 2-d,
broadcasting such as (3, 1) against (4,)), with the differentiated parameter as a Python
float, a vector and a matrix where the rule allows it. A row reports every failing case,
not only the first. Gradients follow the jax.jacfwd convention: shape(value) + shape(param).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import fmad
from tests.arrays_module import gradient_mismatch, numeric_jacobian

FLOAT = "float"  # a Python float rather than an array; () is a 0-d array


# --- Test data ---------------------------------------------------------------------------


def draw(shape: Any, domain: str, key: str) -> Any:
    """Deterministic values of ``shape`` from ``domain``, away from the rule's kinks."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    size = () if shape == FLOAT else shape
    sign = rng.choice([-1.0, 1.0], size)
    if domain == "real":  # nonzero, so that division, abs and sign are smooth
        values = sign * rng.uniform(0.2, 2.0, size)
    elif domain == "pos":
        values = rng.uniform(0.5, 2.0, size)
    elif domain == "unit":
        values = rng.uniform(-0.8, 0.8, size)
    elif domain == "above1":  # arccosh
        values = rng.uniform(1.2, 3.0, size)
    elif domain == "int":  # integer-valued floats, for exponents of negative bases
        values = rng.integers(1, 4, size).astype(float)
    elif domain == "frac":  # away from integers and halves (floor, ceil, round)
        values = rng.integers(-3, 3, size) + rng.choice([0.0, 0.5], size)
        values = values + rng.uniform(0.1, 0.4, size)
    elif domain == "clip":  # inside or outside [-1, 1], never near its ends
        magnitude = np.where(rng.random(size) < 0.5, rng.uniform(0.2, 0.9, size), 1.5)
        values = sign * magnitude
    else:
        raise ValueError(domain)
    return float(values) if shape == FLOAT else np.asarray(values, dtype=float)


@dataclass(frozen=True)
class Case:
    fn: Callable[..., Any]
    args: dict[str, Any]
    wrt: tuple[str, ...]

    def describe(self) -> str:
        shapes = ", ".join(f"{k}={_kind(v)}" for k, v in self.args.items())
        return f"{self.fn.__name__}({shapes}) wrt {','.join(self.wrt)}"


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    return type(value).__name__


@dataclass(frozen=True)
class Rule:
    name: str
    cases: list[Case]


def data_param(fn: Callable, shapes: list, x: str = "real", p: str = "real") -> list[Case]:
    """fn(x, p): x is data, p the parameter."""
    name = fn.__name__
    return [
        Case(fn, {"x": draw(xs, x, f"{name}/{i}/x"), "p": draw(ps, p, f"{name}/{i}/p")}, ("p",))
        for i, (xs, ps) in enumerate(shapes)
    ]


def param_param(fn: Callable, shapes: list, p: str = "real", q: str = "real") -> list[Case]:
    """fn(p, q): both are parameters."""
    name = fn.__name__
    return [
        Case(
            fn,
            {"p": draw(ps, p, f"{name}/{i}/p"), "q": draw(qs, q, f"{name}/{i}/q")},
            ("p", "q"),
        )
        for i, (ps, qs) in enumerate(shapes)
    ]


def param_only(fn: Callable, shapes: list, p: str = "real") -> list[Case]:
    """fn(p): the parameter alone."""
    return [
        Case(fn, {"p": draw(ps, p, f"{fn.__name__}/{i}/p")}, ("p",)) for i, ps in enumerate(shapes)
    ]


def given(fn: Callable, wrt: tuple[str, ...] = ("p",), **args: Any) -> Case:
    """A case with hand-picked values (lists become float arrays)."""
    values = {k: np.asarray(v, dtype=float) if isinstance(v, list) else v for k, v in args.items()}
    return Case(fn, values, wrt)


# Pairs of (x or p shape, p or q shape) for elementwise binary rules.
BINARY_SHAPES = [
    (FLOAT, FLOAT),
    ((), ()),
    ((4,), FLOAT),  # a scalar parameter broadcast against array data
    (FLOAT, (3,)),
    ((3,), (3,)),
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3, 1), (4,)),
    ((4,), (3, 1)),
    ((1,), (1,)),
    ((2, 3), ()),
]
SAME_SHAPES = [FLOAT, (), (3,), (2, 3), (1,)]
# (x shape, p shape) for a unary rule applied to x * p.
COMPOSITE_SHAPES = [
    ((4,), FLOAT),
    (FLOAT, (3,)),
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3, 1), (4,)),
    ((2, 3), (2, 3)),
]
SCALAR_PAIR = [(FLOAT, FLOAT)]
# (x shape, p shape) for reductions of x * p, and parameter shapes for reductions of p.
REDUCTION_SHAPES = [
    ((2, 3), FLOAT),
    ((4,), FLOAT),
    ((2, 3), (3,)),
    ((2, 3), (2, 3)),
    ((2, 3), (2, 1)),
    ((3, 1), (4,)),
    ((4,), (4,)),
]
REDUCTION_PARAM_SHAPES = [(3,), (2, 3), (1,), (3, 1)]
MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((1, 3), (3, 1))]
INNER_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 3), (4, 3))]
OUTER_SHAPES = [((3,), (2,)), ((2, 2), (3,)), ((3,), (3,)), ((1,), (4,))]


def swapped(shapes: list) -> list:
    return [(b, a) for a, b in shapes]


# --- The functions the rules are applied in (module level, so fmad can read them) ---------


def add_xp(x, p):
    return x + p


def add_px(x, p):
    return p + x


def add_pq(p, q):
    return p + q


def add_pp(p):
    return p + p


def sub_xp(x, p):
    return x - p


def sub_px(x, p):
    return p - x


def sub_pq(p, q):
    return p - q


def sub_pp(p):
    return p - p


def mul_xp(x, p):
    return x * p


def mul_px(x, p):
    return p * x


def mul_pq(p, q):
    return p * q


def mul_pp(p):
    return p * p


def div_xp(x, p):
    return x / p


def div_px(x, p):
    return p / x


def div_pq(p, q):
    return p / q


def div_pp(p):
    return p / p


def pow_2(p):
    return p**2


def pow_3(p):
    return p**3


def pow_half(p):
    return p**0.5


def pow_minus_2(p):
    return p**-2


def pow_float_2(p):
    return p**2.0


def pow_composite(x, p):
    return (x * p) ** 2


def pow_data_exponent(x, p):
    return p**x


def pow_active_exponent(x, p):
    return x**p


def pow_constant_base(p):
    return 2.0**p


def pow_pq(p, q):
    return p**q


def pow_pp(p):
    return p**p


def power_xp(x, p):
    return np.power(x, p)


def power_px(x, p):
    return np.power(p, x)


def power_pq(p, q):
    return np.power(p, q)


def power_const(p):
    return np.power(p, 3)


def neg_p(p):
    return -p


def neg_composite(x, p):
    return -(x * p)


def pos_p(p):
    return +p


def pos_composite(x, p):
    return +(x * p)


def maximum_xp(x, p):
    return np.maximum(x, p)


def maximum_px(x, p):
    return np.maximum(p, x)


def maximum_pq(p, q):
    return np.maximum(p, q)


def maximum_pp(p):
    return np.maximum(p, p)


def minimum_xp(x, p):
    return np.minimum(x, p)


def minimum_px(x, p):
    return np.minimum(p, x)


def minimum_pq(p, q):
    return np.minimum(p, q)


def minimum_pp(p):
    return np.minimum(p, p)


def clip_p(p):
    return np.clip(p, -1.0, 1.0)


def clip_composite(x, p):
    return np.clip(p, -1.0, 1.0) * x


def clip_active_lower(x, p):
    return np.clip(x, p, 1.5)


def clip_active_upper(x, p):
    return np.clip(x, -1.5, p)


def where_branches(x, p):
    return np.where(x > 0, p * x, p)


def where_one_branch(x, p):
    return np.where(x > 0, p, 0.0)


def where_other_branch(x, p):
    return np.where(x > 0, 1.0, p * p)


def where_active_condition(p):
    return np.where(p > 0, p, 0.1 * p)


def exp_p(p):
    return np.exp(p)


def exp_c(x, p):
    return np.exp(x * p)


def log_p(p):
    return np.log(p)


def log_c(x, p):
    return np.log(x * p)


def log1p_p(p):
    return np.log1p(p)


def log1p_c(x, p):
    return np.log1p(x * p)


def expm1_p(p):
    return np.expm1(p)


def expm1_c(x, p):
    return np.expm1(x * p)


def log2_p(p):
    return np.log2(p)


def log2_c(x, p):
    return np.log2(x * p)


def log10_p(p):
    return np.log10(p)


def log10_c(x, p):
    return np.log10(x * p)


def sqrt_p(p):
    return np.sqrt(p)


def sqrt_c(x, p):
    return np.sqrt(x * p)


def sin_p(p):
    return np.sin(p)


def sin_c(x, p):
    return np.sin(x * p)


def cos_p(p):
    return np.cos(p)


def cos_c(x, p):
    return np.cos(x * p)


def tan_p(p):
    return np.tan(p)


def tan_c(x, p):
    return np.tan(x * p)


def arcsin_p(p):
    return np.arcsin(p)


def arcsin_c(x, p):
    return np.arcsin(x * p)


def arccos_p(p):
    return np.arccos(p)


def arccos_c(x, p):
    return np.arccos(x * p)


def arctan_p(p):
    return np.arctan(p)


def arctan_c(x, p):
    return np.arctan(x * p)


def sinh_p(p):
    return np.sinh(p)


def sinh_c(x, p):
    return np.sinh(x * p)


def cosh_p(p):
    return np.cosh(p)


def cosh_c(x, p):
    return np.cosh(x * p)


def tanh_p(p):
    return np.tanh(p)


def tanh_c(x, p):
    return np.tanh(x * p)


def np_abs_p(p):
    return np.abs(p)


def np_abs_c(x, p):
    return np.abs(x * p)


def abs_p(p):
    return abs(p)


def abs_c(x, p):
    return abs(x * p)


def sign_p(p):
    return np.sign(p)


def sign_c(x, p):
    return np.sign(x * p) * p


def floor_p(p):
    return np.floor(p)


def floor_c(x, p):
    return np.floor(p) * p * x


def ceil_p(p):
    return np.ceil(p)


def ceil_c(x, p):
    return np.ceil(p) * p * x


def round_p(p):
    return np.round(p)


def round_c(x, p):
    return np.round(p) * p * x


def math_exp_p(p):
    return math.exp(p)


def math_exp_c(x, p):
    return math.exp(x * p)


def math_log_p(p):
    return math.log(p)


def math_log_c(x, p):
    return math.log(x * p)


def math_log_base(p):
    return math.log(p, 2.0)


def math_log1p_p(p):
    return math.log1p(p)


def math_log1p_c(x, p):
    return math.log1p(x * p)


def math_expm1_p(p):
    return math.expm1(p)


def math_expm1_c(x, p):
    return math.expm1(x * p)


def math_log2_p(p):
    return math.log2(p)


def math_log2_c(x, p):
    return math.log2(x * p)


def math_log10_p(p):
    return math.log10(p)


def math_log10_c(x, p):
    return math.log10(x * p)


def math_sqrt_p(p):
    return math.sqrt(p)


def math_sqrt_c(x, p):
    return math.sqrt(x * p)


def math_sin_p(p):
    return math.sin(p)


def math_sin_c(x, p):
    return math.sin(x * p)


def math_cos_p(p):
    return math.cos(p)


def math_cos_c(x, p):
    return math.cos(x * p)


def math_tan_p(p):
    return math.tan(p)


def math_tan_c(x, p):
    return math.tan(x * p)


def math_asin_p(p):
    return math.asin(p)


def math_asin_c(x, p):
    return math.asin(x * p)


def math_acos_p(p):
    return math.acos(p)


def math_acos_c(x, p):
    return math.acos(x * p)


def math_atan_p(p):
    return math.atan(p)


def math_atan_c(x, p):
    return math.atan(x * p)


def math_sinh_p(p):
    return math.sinh(p)


def math_sinh_c(x, p):
    return math.sinh(x * p)


def math_cosh_p(p):
    return math.cosh(p)


def math_cosh_c(x, p):
    return math.cosh(x * p)


def math_tanh_p(p):
    return math.tanh(p)


def math_tanh_c(x, p):
    return math.tanh(x * p)


def math_fabs_p(p):
    return math.fabs(p)


def math_fabs_c(x, p):
    return math.fabs(x * p)


def math_pow_xp(x, p):
    return math.pow(x, p)


def math_pow_px(x, p):
    return math.pow(p, x)


def math_pow_pq(p, q):
    return math.pow(p, q)


def math_floor_c(x, p):
    return math.floor(p) * p * x


def math_ceil_c(x, p):
    return math.ceil(p) * p * x


def matmul_xp(x, p):
    return x @ p


def matmul_px(x, p):
    return p @ x


def matmul_pq(p, q):
    return p @ q


def matmul_pp(p):
    return p @ p


def dot_xp(x, p):
    return np.dot(x, p)


def dot_px(x, p):
    return np.dot(p, x)


def dot_pq(p, q):
    return np.dot(p, q)


def np_matmul_xp(x, p):
    return np.matmul(x, p)


def np_matmul_px(x, p):
    return np.matmul(p, x)


def np_matmul_pq(p, q):
    return np.matmul(p, q)


def inner_xp(x, p):
    return np.inner(x, p)


def inner_px(x, p):
    return np.inner(p, x)


def inner_pq(p, q):
    return np.inner(p, q)


def outer_xp(x, p):
    return np.outer(x, p)


def outer_px(x, p):
    return np.outer(p, x)


def outer_pq(p, q):
    return np.outer(p, q)


def sum_all(x, p):
    return np.sum(x * p)


def sum_axis0(x, p):
    return np.sum(x * p, axis=0)


def sum_axis_last(x, p):
    return np.sum(x * p, axis=-1)


def sum_keepdims(x, p):
    return np.sum(x * p, axis=-1, keepdims=True)


def sum_keepdims_all(x, p):
    return np.sum(x * p, keepdims=True)


def sum_p(p):
    return np.sum(p)


def sum_p_axis0(p):
    return np.sum(p, axis=0)


def mean_all(x, p):
    return np.mean(x * p)


def mean_axis0(x, p):
    return np.mean(x * p, axis=0)


def mean_axis_last(x, p):
    return np.mean(x * p, axis=-1)


def mean_keepdims(x, p):
    return np.mean(x * p, axis=-1, keepdims=True)


def mean_keepdims_all(x, p):
    return np.mean(x * p, keepdims=True)


def mean_p(p):
    return np.mean(p)


def mean_p_axis0(p):
    return np.mean(p, axis=0)


def prod_all(x, p):
    return np.prod(x * p)


def prod_axis0(x, p):
    return np.prod(x * p, axis=0)


def prod_axis_last(x, p):
    return np.prod(x * p, axis=-1)


def prod_keepdims(x, p):
    return np.prod(x * p, axis=-1, keepdims=True)


def prod_keepdims_all(x, p):
    return np.prod(x * p, keepdims=True)


def prod_p(p):
    return np.prod(p)


def prod_p_axis0(p):
    return np.prod(p, axis=0)


def max_all(x, p):
    return np.max(x * p)


def max_axis0(x, p):
    return np.max(x * p, axis=0)


def max_axis_last(x, p):
    return np.max(x * p, axis=-1)


def max_keepdims(x, p):
    return np.max(x * p, axis=-1, keepdims=True)


def max_keepdims_all(x, p):
    return np.max(x * p, keepdims=True)


def max_p(p):
    return np.max(p)


def max_p_axis0(p):
    return np.max(p, axis=0)


def min_all(x, p):
    return np.min(x * p)


def min_axis0(x, p):
    return np.min(x * p, axis=0)


def min_axis_last(x, p):
    return np.min(x * p, axis=-1)


def min_keepdims(x, p):
    return np.min(x * p, axis=-1, keepdims=True)


def min_keepdims_all(x, p):
    return np.min(x * p, keepdims=True)


def min_p(p):
    return np.min(p)


def min_p_axis0(p):
    return np.min(p, axis=0)


def method_sum_c(x, p):
    return (x * p).sum()


def method_sum_p(p):
    return p.sum()


def method_sum_axis(x, p):
    return (x * p).sum(axis=0)


def method_mean_c(x, p):
    return (x * p).mean()


def method_mean_p(p):
    return p.mean()


def method_mean_axis(x, p):
    return (x * p).mean(axis=-1)


def method_T_p(p):
    return p.T


def method_T_c(x, p):
    return (x * p).T


def method_T_matmul(x, p):
    return p.T @ x


def method_reshape_flat(p):
    return p.reshape(-1)


def method_reshape_args(p):
    return p.reshape(3, 2)


def method_reshape_tuple(p):
    return p.reshape((2, 3))


def method_reshape_c(x, p):
    return (x * p).reshape(-1)


def method_ravel_p(p):
    return p.ravel()


def method_ravel_c(x, p):
    return (x * p).ravel()


def method_dot_px(x, p):
    return p.dot(x)


def method_dot_xp(x, p):
    return x.dot(p)


def method_dot_pq(p, q):
    return p.dot(q)


def transpose_p(p):
    return np.transpose(p)


def transpose_axes(p):
    return np.transpose(p, (1, 0))


def transpose_c(x, p):
    return np.transpose(x * p)


def reshape_p(p):
    return np.reshape(p, (3, 2))


def reshape_flat(p):
    return np.reshape(p, -1)


def reshape_c(x, p):
    return np.reshape(x * p, (-1,))


def squeeze_p(p):
    return np.squeeze(p)


def squeeze_axis(p):
    return np.squeeze(p, axis=0)


def squeeze_c(x, p):
    return np.squeeze(x * p)


def expand_dims_first(p):
    return np.expand_dims(p, 0)


def expand_dims_last(p):
    return np.expand_dims(p, -1)


def expand_dims_c(x, p):
    return np.expand_dims(x * p, 1)


def concatenate_px(x, p):
    return np.concatenate([p, x])


def concatenate_xpp(x, p):
    return np.concatenate([x, p, p])


def concatenate_pq(p, q):
    return np.concatenate((p, q))


def concatenate_axis1(x, p):
    return np.concatenate([p, x], axis=1)


def concatenate_axis_last(x, p):
    return np.concatenate([x * p, p], axis=-1)


def stack_px(x, p):
    return np.stack([p, x])


def stack_pq_axis1(p, q):
    return np.stack([p, q], axis=1)


def stack_xp_axis_last(x, p):
    return np.stack((x, p * x), axis=-1)


def hstack_px(x, p):
    return np.hstack([p, x])


def hstack_pq(p, q):
    return np.hstack((p, q))


def vstack_px(x, p):
    return np.vstack([p, x])


def vstack_pq(p, q):
    return np.vstack([p, q])


def index_first(p):
    return p[0]


def index_last(p):
    return p[-1]


def index_pair(p):
    return p[1, 2]


def index_by_data(p, i):
    return p[i] * 2.0


def index_active(x, p):
    return (x * p)[1]


def slice_tail(p):
    return p[1:]


def slice_column(p):
    return p[:, 1]


def slice_step(p):
    return p[::2]


def slice_block(p):
    return p[1:, :2]


def slice_active(x, p):
    return (x * p)[:, 0]


def index_data_row(x, p):
    return x[0] * p


def index_data_column(x, p):
    return x[:, 1] * p


def slice_data_tail(x, p):
    return x[1:] * p


def mask_param(x, p):
    return p[x > 0]


def mask_data(x, p):
    return x[x > 0] * p


def mask_active(x, p):
    return (x * p)[x > 0]


def norm_p(p):
    return np.linalg.norm(p)


def norm_diff(x, p):
    return np.linalg.norm(p - x)


def norm_scaled(x, p):
    return np.linalg.norm(x * p)


def logsumexp_p(p):
    return np.log(np.sum(np.exp(p)))


def logsumexp_c(x, p):
    return np.log(np.sum(np.exp(x * p)))


def uses_len(x, p):
    return np.sum(x * p) / len(x)


def uses_len_param(p):
    return np.sum(p * p) / len(p)


def uses_shape(x, p):
    rows = x.shape[0]
    return np.sum(x * p) / rows


def uses_param_shape(p):
    return p * p.shape[-1]


def uses_zeros(p):
    total = np.zeros(p.shape)
    return total + p * p


def uses_ones(x, p):
    return np.ones(x.shape) * p


def uses_ones_like(x, p):
    return np.sum(np.ones_like(p) * p * x)


def uses_zeros_like(p):
    return np.zeros_like(p) + p


# --- Rows for the rules that share code with a row above (aliases, methods, builtins) ---


def pow_builtin_xp(x, p):
    return pow(x, p)


def pow_builtin_pq(p, q):
    return pow(p, q)


def mod_xp(x, p):
    return x % p


def mod_px(x, p):
    return p % x


def mod_pq(p, q):
    return p % q


def cbrt_p(p):
    return np.cbrt(p)


def cbrt_c(x, p):
    return np.cbrt(x * p)


def arcsinh_p(p):
    return np.arcsinh(p)


def arcsinh_c(x, p):
    return np.arcsinh(x * p)


def arccosh_p(p):
    return np.arccosh(p)


def arccosh_c(x, p):
    return np.arccosh(x * p)


def arctanh_p(p):
    return np.arctanh(p)


def arctanh_c(x, p):
    return np.arctanh(x * p)


def square_p(p):
    return np.square(p)


def square_c(x, p):
    return np.square(x * p)


def reciprocal_p(p):
    return np.reciprocal(p)


def reciprocal_c(x, p):
    return np.reciprocal(x * p)


def positive_p(p):
    return np.positive(p)


def positive_c(x, p):
    return np.positive(x * p)


def negative_p(p):
    return np.negative(p)


def negative_c(x, p):
    return np.negative(x * p)


def fabs_p(p):
    return np.fabs(p)


def fabs_c(x, p):
    return np.fabs(x * p)


def math_cbrt_p(p):
    return math.cbrt(p)


def math_cbrt_c(x, p):
    return math.cbrt(x * p)


def math_asinh_p(p):
    return math.asinh(p)


def math_asinh_c(x, p):
    return math.asinh(x * p)


def math_acosh_p(p):
    return math.acosh(p)


def math_acosh_c(x, p):
    return math.acosh(x * p)


def math_atanh_p(p):
    return math.atanh(p)


def math_atanh_c(x, p):
    return math.atanh(x * p)


def fmax_xp(x, p):
    return np.fmax(x, p)


def fmax_px(x, p):
    return np.fmax(p, x)


def fmax_of_pq(p, q):
    return np.fmax(p, q)


def fmin_xp(x, p):
    return np.fmin(x, p)


def fmin_px(x, p):
    return np.fmin(p, x)


def fmin_pq(p, q):
    return np.fmin(p, q)


def amax_p(p):
    return np.amax(p)


def amax_axis(x, p):
    return np.amax(x * p, axis=0)


def amin_p(p):
    return np.amin(p)


def amin_axis(x, p):
    return np.amin(x * p, axis=-1)


def method_prod_c(x, p):
    return (x * p).prod()


def method_prod_axis(x, p):
    return (x * p).prod(axis=0)


def method_max_c(x, p):
    return (x * p).max()


def method_max_axis(x, p):
    return (x * p).max(axis=-1)


def method_min_c(x, p):
    return (x * p).min()


def method_min_axis(x, p):
    return (x * p).min(axis=0)


def builtin_max_pq(p, q):
    return max(p, q)


def builtin_max_list(x, p):
    return max([p, 2.0 * p * x, x])


def builtin_max_vector(p):
    return max(p)


def builtin_min_pq(p, q):
    return min(p, q)


def builtin_min_list(x, p):
    return min([p, 2.0 * p * x, x])


def builtin_min_vector(p):
    return min(p)


def builtin_sum_list(x, p):
    return sum([p, x * p, 2.0])


def builtin_sum_vector(p):
    return sum(p)


def builtin_sum_start(x, p):
    return sum([x * p, p], p)


def float_c(x, p):
    return float(x * p)


def float64_c(x, p):
    return np.float64(x * p)


def asarray_p(x, p):
    return np.asarray(p) * x


def asanyarray_p(x, p):
    return np.asanyarray(p) * x


def asarray_float(x, p):
    return np.asarray(x * p, dtype=float)


def enumerate_header(x, p):
    total = 0.0
    for i, v in enumerate([p, x * p]):
        total = total + i * v
    return total


def zip_header(x, p):
    total = 0.0
    for a, b in zip([p, p * p], [x, 2.0 * x]):  # noqa: B905 - fmad takes no keywords here
        total = total + a * b
    return total


def reversed_header(x, p):
    total = 0.0
    for v in reversed([x, 2.0 * x]):  # reversed() of values with a derivative is refused
        total = total * v + p
    return total


def real_c(x, p):
    return (x * p).real


def imag_c(x, p):
    return (x * p).imag + p


def ravel_p(p):
    return np.ravel(p)


def ravel_c(x, p):
    return np.ravel(x * p)


def method_copy_c(x, p):
    return (x * p).copy()


def method_transpose_c(x, p):
    return (x * p).transpose()


def method_transpose_axes(p):
    return p.transpose(1, 0)


def method_item_c(x, p):
    return (x * p).item()


def method_astype_float(x, p):
    return (x * p).astype(float)


def method_astype_int(x, p):
    return (x * p).astype(int) * p


def method_clip_p(p):
    return p.clip(-1.0, 1.0)


def method_squeeze_p(p):
    return p.squeeze()


def method_flatten_c(x, p):
    return (x * p).flatten()


# --- The rows ------------------------------------------------------------------------


def binary_rule(name: str, xp, px, pq, pp=None, x: str = "real", p: str = "real") -> Rule:
    cases = data_param(xp, BINARY_SHAPES, x, p) + data_param(px, BINARY_SHAPES, x, p)
    cases += param_param(pq, BINARY_SHAPES, p, x)
    if pp is not None:
        cases += param_only(pp, SAME_SHAPES, p)
    return Rule(name, cases)


def unary_rule(name: str, pure, composite, domain: str = "real", data: str | None = None) -> Rule:
    cases = param_only(pure, SAME_SHAPES, domain)
    cases += data_param(composite, COMPOSITE_SHAPES, data or domain, domain)
    return Rule(name, cases)


def math_rule(name: str, pure, composite, domain: str = "real") -> Rule:
    cases = [] if pure is None else param_only(pure, [FLOAT], domain)
    return Rule(name, cases + data_param(composite, SCALAR_PAIR, domain, domain))


def reduction_rule(name: str, fns: list, param_fns: list) -> Rule:
    all_fn, axis0, axis_last, keepdims, keepdims_all = fns
    p_all, p_axis0 = param_fns
    cases = data_param(all_fn, REDUCTION_SHAPES) + data_param(keepdims_all, REDUCTION_SHAPES)
    for fn in (axis0, axis_last, keepdims):
        cases += data_param(fn, REDUCTION_SHAPES)
    cases += param_only(p_all, [FLOAT, (), *REDUCTION_PARAM_SHAPES])
    cases += param_only(p_axis0, REDUCTION_PARAM_SHAPES)
    return Rule(name, cases)


def matmul_rule(name: str, xp, px, pq, shapes: list, pp=None) -> Rule:
    cases = data_param(xp, shapes) + data_param(px, swapped(shapes)) + param_param(pq, shapes)
    if pp is not None:
        cases += param_only(pp, [(2, 2), (3, 3)])
    return Rule(name, cases)


ROWS = [
    binary_rule("add", add_xp, add_px, add_pq, add_pp),
    binary_rule("sub", sub_xp, sub_px, sub_pq, sub_pp),
    binary_rule("mult", mul_xp, mul_px, mul_pq, mul_pp),
    binary_rule("div", div_xp, div_px, div_pq, div_pp),
    Rule(
        "pow-constant-exponent",
        [
            *param_only(pow_2, SAME_SHAPES),
            *param_only(pow_3, SAME_SHAPES),
            *param_only(pow_half, SAME_SHAPES, "pos"),
            *param_only(pow_minus_2, SAME_SHAPES),
            *param_only(pow_float_2, SAME_SHAPES),
            *data_param(pow_composite, COMPOSITE_SHAPES),
        ],
    ),
    Rule(
        "pow-active-exponent",
        [
            *data_param(pow_active_exponent, BINARY_SHAPES, "pos", "real"),
            *param_only(pow_constant_base, SAME_SHAPES),
            *param_param(pow_pq, BINARY_SHAPES, "pos", "real"),
            *param_only(pow_pp, SAME_SHAPES, "pos"),
        ],
    ),
    Rule(
        "pow-active-base",
        [
            # A negative base with an inactive integer exponent: no log(base) may leak in.
            *data_param(pow_data_exponent, BINARY_SHAPES, "int", "real"),
            *data_param(pow_data_exponent, BINARY_SHAPES, "real", "pos"),
        ],
    ),
    Rule(
        "np.power",
        [
            *data_param(power_xp, BINARY_SHAPES, "pos", "real"),
            *data_param(power_px, BINARY_SHAPES, "int", "real"),
            *param_param(power_pq, BINARY_SHAPES, "pos", "real"),
            *param_only(power_const, SAME_SHAPES),
        ],
    ),
    Rule(
        "unary-minus",
        param_only(neg_p, SAME_SHAPES) + data_param(neg_composite, COMPOSITE_SHAPES),
    ),
    Rule(
        "unary-plus",
        param_only(pos_p, SAME_SHAPES) + data_param(pos_composite, COMPOSITE_SHAPES),
    ),
    binary_rule("np.maximum", maximum_xp, maximum_px, maximum_pq),
    binary_rule("np.minimum", minimum_xp, minimum_px, minimum_pq),
    Rule(
        "np.clip",
        [
            *param_only(clip_p, SAME_SHAPES, "clip"),
            *data_param(clip_composite, COMPOSITE_SHAPES, "real", "clip"),
            given(clip_active_lower, x=[-2.0, -0.5, 0.5, 2.0], p=0.1),
            given(clip_active_lower, x=[-2.0, -0.5, 0.5, 2.0], p=[-1.7, 0.3, 0.2, 1.0]),
            given(clip_active_upper, x=[-2.0, -0.5, 0.5, 2.0], p=0.1),
            given(clip_active_upper, x=[[-2.0, 0.5], [1.0, 2.0]], p=[0.7, 1.2]),
        ],
    ),
    Rule(
        "np.where",
        [
            *data_param(where_branches, BINARY_SHAPES),
            *data_param(where_one_branch, BINARY_SHAPES),
            *data_param(where_other_branch, BINARY_SHAPES),
            *param_only(where_active_condition, SAME_SHAPES),
        ],
    ),
    unary_rule("np.exp", exp_p, exp_c),
    unary_rule("np.log", log_p, log_c, "pos"),
    unary_rule("np.log1p", log1p_p, log1p_c, "unit"),
    unary_rule("np.expm1", expm1_p, expm1_c),
    unary_rule("np.log2", log2_p, log2_c, "pos"),
    unary_rule("np.log10", log10_p, log10_c, "pos"),
    unary_rule("np.sqrt", sqrt_p, sqrt_c, "pos"),
    unary_rule("np.sin", sin_p, sin_c),
    unary_rule("np.cos", cos_p, cos_c),
    unary_rule("np.tan", tan_p, tan_c, "unit"),
    unary_rule("np.arcsin", arcsin_p, arcsin_c, "unit"),
    unary_rule("np.arccos", arccos_p, arccos_c, "unit"),
    unary_rule("np.arctan", arctan_p, arctan_c),
    unary_rule("np.sinh", sinh_p, sinh_c),
    unary_rule("np.cosh", cosh_p, cosh_c),
    unary_rule("np.tanh", tanh_p, tanh_c),
    unary_rule("np.abs", np_abs_p, np_abs_c),
    unary_rule("abs", abs_p, abs_c),
    unary_rule("np.sign", sign_p, sign_c),
    unary_rule("np.floor", floor_p, floor_c, "frac", "real"),
    unary_rule("np.ceil", ceil_p, ceil_c, "frac", "real"),
    unary_rule("np.round", round_p, round_c, "frac", "real"),
    math_rule("math.exp", math_exp_p, math_exp_c),
    math_rule("math.log", math_log_p, math_log_c, "pos"),
    Rule("math.log-base", param_only(math_log_base, [FLOAT], "pos")),
    math_rule("math.log1p", math_log1p_p, math_log1p_c, "unit"),
    math_rule("math.expm1", math_expm1_p, math_expm1_c),
    math_rule("math.log2", math_log2_p, math_log2_c, "pos"),
    math_rule("math.log10", math_log10_p, math_log10_c, "pos"),
    math_rule("math.sqrt", math_sqrt_p, math_sqrt_c, "pos"),
    math_rule("math.sin", math_sin_p, math_sin_c),
    math_rule("math.cos", math_cos_p, math_cos_c),
    math_rule("math.tan", math_tan_p, math_tan_c, "unit"),
    math_rule("math.asin", math_asin_p, math_asin_c, "unit"),
    math_rule("math.acos", math_acos_p, math_acos_c, "unit"),
    math_rule("math.atan", math_atan_p, math_atan_c),
    math_rule("math.sinh", math_sinh_p, math_sinh_c),
    math_rule("math.cosh", math_cosh_p, math_cosh_c),
    math_rule("math.tanh", math_tanh_p, math_tanh_c),
    math_rule("math.fabs", math_fabs_p, math_fabs_c),
    Rule(
        "math.pow",
        [
            *data_param(math_pow_xp, SCALAR_PAIR, "pos", "real"),
            *data_param(math_pow_px, SCALAR_PAIR, "int", "real"),
            *data_param(math_pow_px, SCALAR_PAIR, "real", "pos"),
            *param_param(math_pow_pq, SCALAR_PAIR, "pos", "real"),
        ],
    ),
    Rule("math.floor", data_param(math_floor_c, SCALAR_PAIR, "real", "frac")),
    Rule("math.ceil", data_param(math_ceil_c, SCALAR_PAIR, "real", "frac")),
    matmul_rule("matmul-operator", matmul_xp, matmul_px, matmul_pq, MATMUL_SHAPES, matmul_pp),
    Rule(
        "np.dot",
        [
            *matmul_rule("", dot_xp, dot_px, dot_pq, MATMUL_SHAPES).cases,
            *data_param(dot_xp, [((3,), FLOAT), ((2, 3), FLOAT)]),
        ],
    ),
    matmul_rule("np.matmul", np_matmul_xp, np_matmul_px, np_matmul_pq, MATMUL_SHAPES),
    matmul_rule("np.inner", inner_xp, inner_px, inner_pq, INNER_SHAPES),
    matmul_rule("np.outer", outer_xp, outer_px, outer_pq, OUTER_SHAPES),
    reduction_rule(
        "np.sum",
        [sum_all, sum_axis0, sum_axis_last, sum_keepdims, sum_keepdims_all],
        [sum_p, sum_p_axis0],
    ),
    reduction_rule(
        "np.mean",
        [mean_all, mean_axis0, mean_axis_last, mean_keepdims, mean_keepdims_all],
        [mean_p, mean_p_axis0],
    ),
    reduction_rule(
        "np.prod",
        [prod_all, prod_axis0, prod_axis_last, prod_keepdims, prod_keepdims_all],
        [prod_p, prod_p_axis0],
    ),
    reduction_rule(
        "np.max",
        [max_all, max_axis0, max_axis_last, max_keepdims, max_keepdims_all],
        [max_p, max_p_axis0],
    ),
    reduction_rule(
        "np.min",
        [min_all, min_axis0, min_axis_last, min_keepdims, min_keepdims_all],
        [min_p, min_p_axis0],
    ),
    Rule(
        "method-sum",
        [
            *data_param(method_sum_c, REDUCTION_SHAPES),
            *param_only(method_sum_p, REDUCTION_PARAM_SHAPES),
            *data_param(method_sum_axis, REDUCTION_SHAPES),
        ],
    ),
    Rule(
        "method-mean",
        [
            *data_param(method_mean_c, REDUCTION_SHAPES),
            *param_only(method_mean_p, REDUCTION_PARAM_SHAPES),
            *data_param(method_mean_axis, REDUCTION_SHAPES),
        ],
    ),
    Rule(
        "attribute-T",
        [
            *param_only(method_T_p, [(3,), (2, 3), (3, 1)]),
            *data_param(method_T_c, REDUCTION_SHAPES),
            *data_param(method_T_matmul, [((2,), (2, 3)), ((2, 4), (2, 3))]),
        ],
    ),
    Rule(
        "method-reshape",
        [
            *param_only(method_reshape_flat, [(3,), (2, 3), (3, 1)]),
            *param_only(method_reshape_args, [(6,), (2, 3)]),
            *param_only(method_reshape_tuple, [(6,), (3, 2)]),
            *data_param(method_reshape_c, REDUCTION_SHAPES),
        ],
    ),
    Rule(
        "method-ravel",
        param_only(method_ravel_p, [(3,), (2, 3)]) + data_param(method_ravel_c, REDUCTION_SHAPES),
    ),
    Rule(
        "method-dot",
        [
            *data_param(method_dot_px, swapped(MATMUL_SHAPES)),
            *data_param(method_dot_xp, MATMUL_SHAPES),
            *param_param(method_dot_pq, MATMUL_SHAPES),
        ],
    ),
    Rule(
        "np.transpose",
        [
            *param_only(transpose_p, [(3,), (2, 3), (1, 4)]),
            *param_only(transpose_axes, [(2, 3), (3, 1)]),
            *data_param(transpose_c, REDUCTION_SHAPES),
        ],
    ),
    Rule(
        "np.reshape",
        [
            *param_only(reshape_p, [(6,), (2, 3)]),
            *param_only(reshape_flat, [(3,), (2, 3)]),
            *data_param(reshape_c, REDUCTION_SHAPES),
        ],
    ),
    Rule(
        "np.squeeze",
        [
            *param_only(squeeze_p, [(1, 3), (3, 1), (1,), (1, 1)]),
            *param_only(squeeze_axis, [(1, 3), (1,)]),
            *data_param(squeeze_c, [((1, 3), FLOAT), ((3, 1), (1,)), ((1, 4), (1, 4))]),
        ],
    ),
    Rule(
        "np.expand_dims",
        [
            *param_only(expand_dims_first, [FLOAT, (3,), (2, 3)]),
            *param_only(expand_dims_last, [(), (3,), (2, 3)]),
            *data_param(expand_dims_c, [((3,), FLOAT), ((2, 3), (3,)), ((4,), (4,))]),
        ],
    ),
    Rule(
        "np.concatenate",
        [
            *data_param(concatenate_px, [((2,), (3,)), ((1, 3), (2, 3))]),
            *data_param(concatenate_xpp, [((2,), (3,)), ((2, 2), (1, 2))]),
            *param_param(concatenate_pq, [((3,), (2,)), ((2, 2), (3, 2))]),
            *data_param(concatenate_axis1, [((2, 1), (2, 3)), ((3, 2), (3, 2))]),
            *data_param(concatenate_axis_last, [((3,), (3,)), ((2, 3), (2, 3)), ((1, 3), (2, 3))]),
        ],
    ),
    Rule(
        "np.stack",
        [
            *data_param(stack_px, [(FLOAT, FLOAT), ((3,), (3,)), ((2, 3), (2, 3))]),
            *param_param(stack_pq_axis1, [((3,), (3,)), ((2, 3), (2, 3))]),
            *data_param(stack_xp_axis_last, [((3,), FLOAT), ((3,), (3,)), ((2, 3), (3,))]),
        ],
    ),
    Rule(
        "np.hstack",
        [
            *data_param(hstack_px, [((2,), (3,)), ((2, 1), (2, 3)), ((3,), FLOAT)]),
            *param_param(hstack_pq, [((3,), (2,)), ((2, 2), (2, 1))]),
        ],
    ),
    Rule(
        "np.vstack",
        [
            *data_param(vstack_px, [((3,), (3,)), ((1, 3), (2, 3))]),
            *param_param(vstack_pq, [((3,), (3,)), ((2, 2), (1, 2))]),
        ],
    ),
    Rule(
        "index",
        [
            *param_only(index_first, [(3,), (2, 3)]),
            *param_only(index_last, [(4,), (3, 2)]),
            *param_only(index_pair, [(2, 3), (3, 3)]),
            given(index_by_data, p=[1.0, -2.0, 3.0], i=1),
            *data_param(index_active, [((3,), FLOAT), ((3,), (3,)), ((2, 3), (3,))]),
        ],
    ),
    Rule(
        "slice",
        [
            *param_only(slice_tail, [(3,), (3, 2)]),
            *param_only(slice_column, [(2, 3), (4, 2)]),
            *param_only(slice_step, [(5,), (3, 2)]),
            *param_only(slice_block, [(3, 3), (2, 4)]),
            *data_param(slice_active, [((2, 3), FLOAT), ((2, 3), (3,)), ((3, 1), (4,))]),
        ],
    ),
    Rule(
        "index-data",
        [
            *data_param(index_data_row, [((3,), FLOAT), ((2, 3), FLOAT), ((2, 3), (3,))]),
            *data_param(index_data_column, [((2, 3), FLOAT), ((4, 2), (4,)), ((3, 2), (2, 1))]),
            *data_param(slice_data_tail, [((4,), FLOAT), ((4,), (3,)), ((3, 2), (2, 2))]),
        ],
    ),
    Rule(
        "boolean-mask",
        [
            *data_param(mask_param, [((4,), (4,)), ((2, 3), (2, 3))]),
            *data_param(mask_data, [((5,), FLOAT), ((2, 3), FLOAT)]),
            *data_param(mask_active, [((4,), FLOAT), ((2, 3), (3,)), ((5,), (5,))]),
        ],
    ),
    Rule(
        "np.linalg.norm",
        [
            *param_only(norm_p, [(3,), (1,), (5,)]),
            *data_param(norm_diff, [((3,), (3,)), ((4,), FLOAT)]),
            *data_param(norm_scaled, [((3,), FLOAT), ((3,), (3,))]),
        ],
    ),
    Rule(
        "logsumexp",
        param_only(logsumexp_p, [(3,), (2, 3), (1,)])
        + data_param(logsumexp_c, [((4,), FLOAT), ((2, 3), (3,)), ((3, 1), (4,))]),
    ),
    Rule(
        "inactive-helpers",
        [
            *data_param(uses_len, [((4,), FLOAT), ((4,), (4,)), ((2, 3), (3,))]),
            *param_only(uses_len_param, [(3,), (2, 3)]),
            *data_param(uses_shape, [((4,), FLOAT), ((2, 3), (2, 3))]),
            *param_only(uses_param_shape, [(3,), (2, 3)]),
            *param_only(uses_zeros, [(), (3,), (2, 3)]),
            *data_param(uses_ones, [((2, 3), FLOAT), ((2, 3), (3,))]),
            *data_param(uses_ones_like, [((4,), FLOAT), ((2, 3), (3,))]),
            *param_only(uses_zeros_like, [(3,), (2, 3)]),
        ],
    ),
    Rule(
        "pow",
        [
            *data_param(pow_builtin_xp, SCALAR_PAIR, "pos", "real"),
            *param_param(pow_builtin_pq, SCALAR_PAIR, "pos", "real"),
        ],
    ),
    binary_rule("mod", mod_xp, mod_px, mod_pq),
    unary_rule("np.cbrt", cbrt_p, cbrt_c),
    unary_rule("np.arcsinh", arcsinh_p, arcsinh_c),
    unary_rule("np.arccosh", arccosh_p, arccosh_c, "above1", "above1"),
    unary_rule("np.arctanh", arctanh_p, arctanh_c, "unit"),
    unary_rule("np.square", square_p, square_c),
    unary_rule("np.reciprocal", reciprocal_p, reciprocal_c),
    unary_rule("np.positive", positive_p, positive_c),
    unary_rule("np.negative", negative_p, negative_c),
    unary_rule("np.fabs", fabs_p, fabs_c),
    math_rule("math.cbrt", math_cbrt_p, math_cbrt_c),
    math_rule("math.asinh", math_asinh_p, math_asinh_c),
    Rule("math.acosh", param_only(math_acosh_p, [FLOAT], "above1")),
    math_rule("math.atanh", math_atanh_p, math_atanh_c, "unit"),
    binary_rule("np.fmax", fmax_xp, fmax_px, fmax_of_pq),
    binary_rule("np.fmin", fmin_xp, fmin_px, fmin_pq),
    Rule(
        "np.amax",
        param_only(amax_p, REDUCTION_PARAM_SHAPES) + data_param(amax_axis, REDUCTION_SHAPES),
    ),
    Rule(
        "np.amin",
        param_only(amin_p, REDUCTION_PARAM_SHAPES) + data_param(amin_axis, REDUCTION_SHAPES),
    ),
    Rule(
        "method-prod",
        data_param(method_prod_c, REDUCTION_SHAPES)
        + data_param(method_prod_axis, REDUCTION_SHAPES),
    ),
    Rule(
        "method-max",
        data_param(method_max_c, REDUCTION_SHAPES) + data_param(method_max_axis, REDUCTION_SHAPES),
    ),
    Rule(
        "method-min",
        data_param(method_min_c, REDUCTION_SHAPES) + data_param(method_min_axis, REDUCTION_SHAPES),
    ),
    Rule(
        "builtin-max",
        [
            *param_param(builtin_max_pq, SCALAR_PAIR),
            *data_param(builtin_max_list, SCALAR_PAIR),
            *param_only(builtin_max_vector, [(3,), (1,)]),
        ],
    ),
    Rule(
        "builtin-min",
        [
            *param_param(builtin_min_pq, SCALAR_PAIR),
            *data_param(builtin_min_list, SCALAR_PAIR),
            *param_only(builtin_min_vector, [(3,), (1,)]),
        ],
    ),
    Rule(
        "builtin-sum",
        [
            *data_param(builtin_sum_list, [(FLOAT, FLOAT), ((3,), FLOAT), ((3,), (3,))]),
            *param_only(builtin_sum_vector, [(3,), (2, 3)]),
            *data_param(builtin_sum_start, [(FLOAT, FLOAT), ((3,), FLOAT)]),
        ],
    ),
    Rule("float", data_param(float_c, SCALAR_PAIR) + data_param(float64_c, SCALAR_PAIR)),
    Rule(
        "np.asarray",
        [
            *data_param(asarray_p, COMPOSITE_SHAPES),
            *data_param(asanyarray_p, COMPOSITE_SHAPES),
            *data_param(asarray_float, COMPOSITE_SHAPES),
        ],
    ),
    Rule(
        "for-header-iteration",
        [
            *data_param(enumerate_header, SCALAR_PAIR),
            *data_param(zip_header, SCALAR_PAIR),
            *data_param(reversed_header, SCALAR_PAIR),
        ],
    ),
    Rule(
        "attribute-real-imag",
        data_param(real_c, COMPOSITE_SHAPES) + data_param(imag_c, COMPOSITE_SHAPES),
    ),
    Rule(
        "np.ravel",
        param_only(ravel_p, [(3,), (2, 3)]) + data_param(ravel_c, REDUCTION_SHAPES),
    ),
    Rule(
        "array-methods",
        [
            *data_param(method_copy_c, COMPOSITE_SHAPES),
            *data_param(method_transpose_c, REDUCTION_SHAPES),
            *param_only(method_transpose_axes, [(2, 3), (3, 1)]),
            *data_param(method_item_c, [((1,), FLOAT), ((1, 1), (1,))]),
            *data_param(method_astype_float, COMPOSITE_SHAPES),
            *data_param(method_astype_int, [((3,), FLOAT), ((2, 3), FLOAT)]),
            *param_only(method_clip_p, [(3,), (2, 3)], "clip"),
            *param_only(method_squeeze_p, [(1, 3), (3, 1), (1,)]),
            *data_param(method_flatten_c, REDUCTION_SHAPES),
        ],
    ),
]


# --- Running a case -------------------------------------------------------------------


@functools.cache
def differentiated(fn: Callable[..., Any], wrt: tuple[str, ...]) -> Any:
    return fmad.differentiate(fn, wrt=list(wrt))


def problems_with(case: Case) -> list[str]:
    """Everything wrong with fmad's answer for ``case`` (empty when all is right)."""
    names = list(inspect.signature(case.fn).parameters)
    untouched = copy.deepcopy(case.args)
    try:
        value, grads = differentiated(case.fn, case.wrt)(*[case.args[n] for n in names])
    except Exception as error:  # reported with the case, so a row shows all its failures
        return [f"raised {type(error).__name__}: {error}"]
    problems = []
    expected = case.fn(**case.args)
    if np.shape(value) != np.shape(expected) or not np.array_equal(value, expected):
        problems.append(f"value {value!r} != original {expected!r}")
    if list(grads) != list(case.wrt):
        problems.append(f"gradient keys {list(grads)} != wrt {list(case.wrt)}")
    for name in case.wrt:
        if name not in grads:
            continue
        mismatch = gradient_mismatch(grads[name], numeric_jacobian(case.fn, case.args, name))
        if mismatch:
            problems.append(f"d/d{name}: {mismatch}")
    for name, before in untouched.items():
        if not np.array_equal(case.args[name], before):
            problems.append(f"argument {name} was mutated")
    return problems


def check_rule(rule: Rule) -> None:
    """Run every case of ``rule``; fail with all the failing cases, not only the first."""
    assert rule.cases
    failures = []
    for case in rule.cases:
        failures += [f"{case.describe()}: {problem}" for problem in problems_with(case)]
    if failures:
        pytest.fail(f"{len(failures)} failure(s):\n" + "\n".join(failures), pytrace=False)


@pytest.mark.parametrize("rule", ROWS, ids=[rule.name for rule in ROWS])
def test_rule_matches_finite_differences(rule: Rule) -> None:
    check_rule(rule)


# --- The reduction trap, ties, and the kinds of scalar gradients ----------------------------


def sum_of_shifted(x, b):
    return np.sum(x + b)


def mean_of_shifted(x, b):
    return np.mean(x + b)


@pytest.mark.parametrize(
    ("fn", "x", "b", "expected"),
    [
        (sum_of_shifted, np.arange(5.0), 0.5, 5.0),
        (sum_of_shifted, np.arange(5.0), np.array(0.5), np.array(5.0)),
        (sum_of_shifted, np.ones((5, 3)), np.zeros(3), np.full(3, 5.0)),
        (sum_of_shifted, np.ones((5, 3)), np.zeros((5, 1)), np.full((5, 1), 3.0)),
        (mean_of_shifted, np.arange(5.0), 0.5, 1.0),
        (mean_of_shifted, np.ones((5, 3)), np.zeros(3), np.full(3, 1.0 / 3.0)),
        (mean_of_shifted, np.ones((4, 3)), np.zeros((4, 1)), np.full((4, 1), 0.25)),
    ],
    ids=["sum-float", "sum-0d", "sum-row", "sum-column", "mean-float", "mean-row", "mean-column"],
)
def test_reduction_of_broadcast_parameter_counts_every_element(fn, x, b, expected) -> None:
    # A broadcast parameter appears in every element it was broadcast to: d sum(x + b)/db = N.
    _, grads = fmad.differentiate(fn, wrt=["b"])(x, b)
    assert np.shape(grads["b"]) == np.shape(expected)
    np.testing.assert_allclose(grads["b"], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("fn", "p", "expected"),
    [
        (max_p, [1.0, 3.0, 3.0, 2.0], [0.0, 0.5, 0.5, 0.0]),
        (max_p, [2.0, 2.0, 2.0], [1 / 3, 1 / 3, 1 / 3]),
        (min_p, [1.0, 3.0, 1.0, 2.0], [0.5, 0.0, 0.5, 0.0]),
        (max_p_axis0, [[1.0, 5.0], [1.0, 4.0]], [[[0.5, 0.0], [0.5, 0.0]], [[0, 1.0], [0, 0]]]),
        (min_p_axis0, [[1.0, 5.0], [1.0, 4.0]], [[[0.5, 0.0], [0.5, 0.0]], [[0, 0], [0, 1.0]]]),
        (maximum_pp, [1.0, -2.0], np.eye(2)),
        (minimum_pp, [1.0, -2.0], np.eye(2)),
    ],
    ids=["max-two", "max-three", "min-two", "max-axis0", "min-axis0", "maximum-self", "min-self"],
)
def test_ties_split_the_derivative_evenly(fn, p, expected) -> None:
    _, grads = fmad.differentiate(fn, wrt=["p"])(np.array(p))
    np.testing.assert_allclose(grads["p"], np.array(expected), rtol=1e-12)


@pytest.mark.parametrize("fn", [maximum_xp, maximum_px, minimum_xp, minimum_px])
def test_elementwise_tie_with_data_gives_half(fn) -> None:
    x = np.array([1.0, -2.0, 0.5])
    _, grads = fmad.differentiate(fn, wrt=["p"])(x, x.copy())
    np.testing.assert_allclose(grads["p"], 0.5 * np.eye(3), rtol=1e-12)


@pytest.mark.parametrize("fn", [maximum_pq, minimum_pq])
def test_elementwise_tie_between_parameters_gives_half_each(fn) -> None:
    _, grads = fmad.differentiate(fn, wrt=["p", "q"])(1.5, 1.5)
    assert grads == {"p": 0.5, "q": 0.5}


@pytest.mark.parametrize(
    ("fn", "args"),
    [(mul_xp, (2.0, 3.0)), (math_exp_c, (0.5, 0.25)), (pow_3, (1.5,)), (abs_p, (-2.0,))],
)
def test_float_parameter_with_float_value_gives_python_float(fn, args) -> None:
    value, grads = fmad.differentiate(fn, wrt=["p"])(*args)
    assert isinstance(value, float)
    assert isinstance(grads["p"], float)
