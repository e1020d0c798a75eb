"""Finite-difference rows of the cumulative rules (fmad/rules/cumulative.py) and of the
rules that move, repeat, select or split entries (fmad/rules/reshaping.py), fancy and
boolean indexing, the conventions (stable sort at ties, zeros in cumprod) and the refusals.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import fmad
from fmad import runtime_arrays as ra
from tests.test_rules_fd import (
    COMPOSITE_SHAPES,
    FLOAT,
    REDUCTION_SHAPES,
    Rule,
    check_rule,
    data_param,
    given,
    param_only,
)

# (x shape, p shape) whose product is at least 1-d / 2-d
ARRAY_SHAPES = [((4,), FLOAT), ((3,), (3,)), ((2, 3), (3,)), ((3, 1), (4,)), ((2, 3), (2, 3))]
MATRIX_SHAPES = [
    ((2, 3), FLOAT),
    ((2, 3), (3,)),
    ((3, 1), (4,)),
    ((2, 3), (2, 3)),
    ((3, 3), (3, 1)),
]
VECTOR_SHAPES = [((4,), FLOAT), ((3,), (3,)), ((1,), (1,)), ((3,), (1,))]
PARAMS = [(3,), (2, 3), (3, 1)]
MATRIX_PARAMS = [(2, 3), (3, 3), (3, 1)]


# --- cumulative ----------------------------------------------------------------------------


def cumsum_flat(x, p):
    return np.cumsum(x * p)


def cumsum_axis0(x, p):
    return np.cumsum(x * p, axis=0)


def cumsum_last(x, p):
    return np.cumsum(x * p, axis=-1, dtype=np.float64)


def cumsum_p(p):
    return np.cumsum(p)


def method_cumsum(x, p):
    return (x * p).cumsum(-1)


def cumprod_flat(x, p):
    return np.cumprod(x * p)


def cumprod_axis0(x, p):
    return np.cumprod(x * p, axis=0)


def cumprod_last(x, p):
    return np.cumprod(x * p, -1)


def cumprod_p(p):
    return np.cumprod(p)


def method_cumprod(x, p):
    return (x * p).cumprod(axis=0)


def diff_default(x, p):
    return np.diff(x * p)


def diff_twice_axis0(x, p):
    return np.diff(x * p, n=2, axis=0)


def diff_p(p):
    return np.diff(p)


def diff_ends(x, p):
    return np.diff(x * p, prepend=1.0, append=x[..., :2])


def diff_prepend_axis0(x, p):
    return np.diff(x * p, axis=0, prepend=x[:1])


def ediff1d_c(x, p):
    return np.ediff1d(x * p)


def ediff1d_ends(x, p):
    return np.ediff1d(x * p, to_end=[1.0, 2.0], to_begin=3.0)


def ediff1d_p(p):
    return np.ediff1d(p)


def trapezoid_c(x, p):
    return np.trapezoid(x * p)


def trapezoid_axis0(x, p):
    return np.trapezoid(x * p, dx=0.5, axis=0)


def trapezoid_samples(x, p):
    return np.trapezoid(x * p, x=np.linspace(0.0, 1.0, np.shape(x * p)[-1]))


def trapezoid_samples_nd(x, p):
    return np.trapezoid(p * x, x=np.cumsum(x * x, axis=0), axis=0)


def trapezoid_p(p):
    return np.trapezoid(p)


ROWS = [
    Rule(
        "np.cumsum",
        [
            *data_param(cumsum_flat, REDUCTION_SHAPES + [((), FLOAT), ((), ())]),
            *data_param(cumsum_axis0, ARRAY_SHAPES),
            *data_param(cumsum_last, ARRAY_SHAPES),
            *param_only(cumsum_p, PARAMS),
            *data_param(method_cumsum, ARRAY_SHAPES),
        ],
    ),
    Rule(
        "np.cumprod",
        [
            *data_param(cumprod_flat, REDUCTION_SHAPES + [((), FLOAT)]),
            *data_param(cumprod_axis0, ARRAY_SHAPES),
            *data_param(cumprod_last, ARRAY_SHAPES),
            *param_only(cumprod_p, PARAMS),
            *data_param(method_cumprod, ARRAY_SHAPES),
            given(cumprod_p, p=[2.0, 0.0, 3.0, 0.0, 1.5]),
            given(cumprod_axis0, x=[[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]], p=[0.5, -1.5]),
        ],
    ),
    Rule(
        "np.diff",
        [
            *data_param(diff_default, ARRAY_SHAPES),
            *data_param(diff_twice_axis0, [((4, 2), FLOAT), ((3, 2), (2,)), ((4, 1), (4, 1))]),
            *param_only(diff_p, PARAMS),
            *data_param(diff_ends, [((4,), FLOAT), ((2, 3), (3,)), ((3, 3), (3, 3))]),
            *data_param(diff_prepend_axis0, [((3, 2), FLOAT), ((3, 2), (3, 2))]),
        ],
    ),
    Rule(
        "np.ediff1d",
        [
            *data_param(ediff1d_c, REDUCTION_SHAPES),
            *data_param(ediff1d_ends, [((4,), FLOAT), ((2, 3), (3,)), ((3,), (3,))]),
            *param_only(ediff1d_p, PARAMS),
        ],
    ),
]
if hasattr(np, "trapezoid"):
    ROWS.append(
        Rule(
            "np.trapezoid",
            [
                *data_param(trapezoid_c, ARRAY_SHAPES),
                *data_param(trapezoid_axis0, MATRIX_SHAPES),
                *data_param(trapezoid_samples, ARRAY_SHAPES),
                *data_param(trapezoid_samples_nd, MATRIX_SHAPES),
                *param_only(trapezoid_p, PARAMS),
            ],
        )
    )
if hasattr(np, "trapz"):

    def trapz_c(x, p):
        return np.trapz(x * p, axis=0)  # noqa: NPY201 - only where numpy still has it

    ROWS.append(Rule("np.trapz", data_param(trapz_c, MATRIX_SHAPES)))


# --- moving, repeating, selecting -----------------------------------------------------------


def repeat_flat(x, p):
    return np.repeat(x * p, 2)


def repeat_axis(x, p):
    return np.repeat(x * p, [1, 2], axis=0)


def repeat_last(x, p):
    return np.repeat(x * p, 3, axis=-1)


def method_repeat(x, p):
    return (x * p).repeat(2, -1)


def tile_c(x, p):
    return np.tile(x * p, 2)


def tile_grow(x, p):
    return np.tile(x * p, (2, 1, 2))


def tile_p(p):
    return np.tile(p, (2, 1))


def pad_constant(x, p):
    return np.pad(x * p, 1, constant_values=7.0)


def pad_pairs(x, p):
    return np.pad(x * p, ((1, 0), (0, 2)), mode="constant")


def pad_edge(x, p):
    return np.pad(x * p, (2, 1), mode="edge")


def pad_reflect(x, p):
    return np.pad(x * p, 1, mode="reflect", reflect_type="odd")


def pad_symmetric(x, p):
    return np.pad(x * p, [(1, 2)], "symmetric")


def pad_wrap(p):
    return np.pad(p, 2, mode="wrap")


def roll_flat(x, p):
    return np.roll(x * p, 1)


def roll_axis(x, p):
    return np.roll(x * p, -1, axis=-1)


def roll_axes(x, p):
    return np.roll(x * p, (1, 2), axis=(0, 1))


def flip_all(x, p):
    return np.flip(x * p)


def flip_axis(x, p):
    return np.flip(x * p, axis=-1)


def fliplr_c(x, p):
    return np.fliplr(x * p)


def flipud_c(x, p):
    return np.flipud(x * p)


def rot90_c(x, p):
    return np.rot90(x * p)


def rot90_axes(x, p):
    return np.rot90(x * p, 3, axes=(-1, 0))


def copy_c(x, p):
    return np.copy(x * p)


def sort_last(x, p):
    return np.sort(x * p)


def sort_axis0(x, p):
    return np.sort(x * p, axis=0)


def sort_flat(x, p):
    return np.sort(x * p, axis=None)


def sort_p(p):
    return np.sort(p, kind="mergesort")


def take_flat(x, p):
    return np.take(x * p, [0, 2, 2])


def take_axis(x, p):
    return np.take(x * p, [[1], [0]], axis=-1)


def take_wrap(x, p):
    return np.take(x * p, [5, -7], axis=0, mode="wrap")


def method_take(x, p):
    return (x * p).take([1, 0])


def take_along_last(x, p):
    return np.take_along_axis(x * p, np.argsort(x, axis=-1), axis=-1)


def take_along_axis0(x, p):
    return np.take_along_axis(x * p, np.zeros((1,) + np.shape(x)[1:], dtype=int), axis=0)


def take_along_flat(x, p):
    return np.take_along_axis(x * p, np.array([2, 0]), axis=None)


def diag_build(x, p):
    return np.diag(x * p)


def diag_build_offset(x, p):
    return np.diag(x * p, -1)


def diag_extract(x, p):
    return np.diag(x * p, k=1)


def diagonal_c(x, p):
    return np.diagonal(x * p)


def diagonal_axes(x, p):
    return np.diagonal(x * p, offset=-1, axis1=-1, axis2=0)


def method_diagonal(x, p):
    return (x * p).diagonal(1)


def triu_c(x, p):
    return np.triu(x * p)


def triu_vector(x, p):
    return np.triu(x * p, 1)


def tril_c(x, p):
    return np.tril(x * p, k=-1)


def tril_p(p):
    return np.tril(p)


def moveaxis_c(x, p):
    return np.moveaxis(x * p, 0, -1)


def moveaxis_many(x, p):
    return np.moveaxis(np.expand_dims(x * p, 0), (0, -1), (-1, 1))


def swapaxes_c(x, p):
    return np.swapaxes(x * p, -1, 0)


def method_swapaxes(x, p):
    return (x * p).swapaxes(0, 1)


def broadcast_to_c(x, p):
    return np.broadcast_to(x * p, (2,) + np.shape(x * p))


def broadcast_to_p(x, p):
    return np.broadcast_to(p, np.shape(x)) * 1.0


def atleast_1d_c(x, p):
    return np.atleast_1d(x * p)


def atleast_2d_c(x, p):
    return np.atleast_2d(x * p)


def atleast_3d_c(x, p):
    return np.atleast_3d(x * p)


def split_sum(x, p):
    a, b = np.split(x * p, 2)
    return a * 2.0 + b


def split_axis(x, p):
    parts = np.split(x * p, [1], axis=-1)
    return parts[1] - parts[0]


def array_split_loop(x, p):
    total = 0.0
    for part in np.array_split(x * p, 3, axis=0):
        total = total + np.sum(part * part)
    return total


ROWS += [
    Rule(
        "np.repeat",
        [
            *data_param(repeat_flat, REDUCTION_SHAPES + [((), FLOAT)]),
            *data_param(repeat_axis, [((2, 3), FLOAT), ((2, 3), (3,)), ((2,), (2,))]),
            *data_param(repeat_last, ARRAY_SHAPES),
            *data_param(method_repeat, ARRAY_SHAPES),
        ],
    ),
    Rule(
        "np.tile",
        [
            *data_param(tile_c, ARRAY_SHAPES + [((), FLOAT)]),
            *data_param(tile_grow, ARRAY_SHAPES),
            *param_only(tile_p, PARAMS),
        ],
    ),
    Rule(
        "np.pad",
        [
            *data_param(pad_constant, ARRAY_SHAPES),
            *data_param(pad_pairs, MATRIX_SHAPES),
            *data_param(pad_edge, ARRAY_SHAPES),
            *data_param(pad_reflect, [((4,), FLOAT), ((3, 3), (3,)), ((2, 3), (2, 3))]),
            *data_param(pad_symmetric, ARRAY_SHAPES),
            *param_only(pad_wrap, PARAMS),
        ],
    ),
    Rule(
        "np.roll",
        [
            *data_param(roll_flat, REDUCTION_SHAPES),
            *data_param(roll_axis, ARRAY_SHAPES),
            *data_param(roll_axes, MATRIX_SHAPES),
        ],
    ),
    Rule(
        "np.flip",
        [
            *data_param(flip_all, REDUCTION_SHAPES + [((), FLOAT)]),
            *data_param(flip_axis, ARRAY_SHAPES),
            *data_param(fliplr_c, MATRIX_SHAPES),
            *data_param(flipud_c, ARRAY_SHAPES),
        ],
    ),
    Rule("np.rot90", data_param(rot90_c, MATRIX_SHAPES) + data_param(rot90_axes, MATRIX_SHAPES)),
    Rule("np.copy", data_param(copy_c, COMPOSITE_SHAPES + [((), FLOAT)])),
    Rule(
        "np.sort",
        [
            *data_param(sort_last, ARRAY_SHAPES),
            *data_param(sort_axis0, ARRAY_SHAPES),
            *data_param(sort_flat, REDUCTION_SHAPES[:5]),
            *param_only(sort_p, PARAMS),
        ],
    ),
    Rule(
        "np.take",
        [
            *data_param(take_flat, REDUCTION_SHAPES),
            *data_param(take_axis, MATRIX_SHAPES),
            *data_param(take_wrap, ARRAY_SHAPES),
            *data_param(method_take, REDUCTION_SHAPES),
        ],
    ),
    Rule(
        "np.take_along_axis",
        [
            *data_param(take_along_last, ARRAY_SHAPES),
            *data_param(take_along_axis0, ARRAY_SHAPES),
            *data_param(take_along_flat, [((3,), FLOAT), ((3,), (3,))]),
        ],
    ),
    Rule(
        "np.diag",
        [
            *data_param(diag_build, VECTOR_SHAPES),
            *data_param(diag_build_offset, VECTOR_SHAPES),
            *data_param(diag_extract, MATRIX_SHAPES),
        ],
    ),
    Rule(
        "np.diagonal",
        [
            *data_param(diagonal_c, MATRIX_SHAPES),
            *data_param(diagonal_axes, MATRIX_SHAPES),
            *data_param(method_diagonal, MATRIX_SHAPES),
        ],
    ),
    Rule(
        "np.triu-tril",
        [
            *data_param(triu_c, MATRIX_SHAPES),
            *data_param(triu_vector, VECTOR_SHAPES),
            *data_param(tril_c, MATRIX_SHAPES),
            *param_only(tril_p, MATRIX_PARAMS),
        ],
    ),
    Rule(
        "np.moveaxis-swapaxes",
        [
            *data_param(moveaxis_c, ARRAY_SHAPES),
            *data_param(moveaxis_many, MATRIX_SHAPES),
            *data_param(swapaxes_c, ARRAY_SHAPES),
            *data_param(method_swapaxes, MATRIX_SHAPES),
        ],
    ),
    Rule(
        "np.broadcast_to",
        [
            *data_param(broadcast_to_c, COMPOSITE_SHAPES + [((), FLOAT)]),
            *data_param(broadcast_to_p, [((3,), FLOAT), ((2, 3), (3,)), ((2, 3), (2, 1))]),
        ],
    ),
    Rule(
        "np.atleast_nd",
        [
            *data_param(atleast_1d_c, COMPOSITE_SHAPES + [((), FLOAT), ((), ())]),
            *data_param(atleast_2d_c, COMPOSITE_SHAPES + [((), FLOAT)]),
            *data_param(atleast_3d_c, COMPOSITE_SHAPES + [((), FLOAT)]),
        ],
    ),
    Rule(
        "np.split",
        [
            *data_param(split_sum, [((4,), FLOAT), ((4, 2), (2,)), ((2,), (2,))]),
            *data_param(split_axis, [((2, 2), FLOAT), ((3, 2), (3, 2)), ((2,), (2,))]),
            *data_param(array_split_loop, [((4,), FLOAT), ((5, 2), (2,)), ((4,), (4,))]),
        ],
    ),
]


def partition_last(x, p):
    return np.partition(x * p, 1)


def partition_axis0(x, p):
    return np.partition(x * p, (0, 1), axis=0)


def partition_flat(x, p):
    return np.partition(x * p, -1, axis=None)


def partition_p(p):
    return np.partition(p, 2)


def rollaxis_c(x, p):
    return np.rollaxis(x * p, -1)


def rollaxis_start(x, p):
    return np.rollaxis(np.expand_dims(x * p, 0), 0, 3)


def rollaxis_negative_start(x, p):
    return np.rollaxis(np.expand_dims(x * p, 0), 2, -2)


def hsplit_c(x, p):
    left, right = np.hsplit(x * p, 2)
    return left - 2.0 * right


def vsplit_c(x, p):
    top, bottom = np.vsplit(x * p, [1])
    return np.sum(top) * np.sum(bottom)


def dsplit_c(x, p):
    parts = np.dsplit(np.expand_dims(x * p, -1) * np.ones(2), 2)
    return parts[0] + 3.0 * parts[1]


ROWS += [
    Rule(
        "np.partition",
        [
            *data_param(partition_last, [((3,), FLOAT), ((2, 3), (3,)), ((3, 3), (3, 3))]),
            *data_param(partition_axis0, [((3, 2), FLOAT), ((3, 2), (3, 2)), ((4, 1), (3,))]),
            *data_param(partition_flat, REDUCTION_SHAPES[:5]),
            *param_only(partition_p, [(3,), (2, 4)]),
        ],
    ),
    Rule(
        "np.rollaxis",
        [
            *data_param(rollaxis_c, ARRAY_SHAPES),
            *data_param(rollaxis_start, MATRIX_SHAPES),
            *data_param(rollaxis_negative_start, MATRIX_SHAPES),
        ],
    ),
    Rule(
        "np.hsplit-vsplit-dsplit",
        [
            *data_param(hsplit_c, [((4,), FLOAT), ((2, 4), (4,)), ((4,), (4,)), ((3, 2), (3, 2))]),
            *data_param(vsplit_c, [((2, 3), FLOAT), ((2, 3), (3,)), ((3, 2), (3, 2))]),
            *data_param(dsplit_c, [((2, 3), FLOAT), ((2, 3), (2, 3))]),
        ],
    ),
]


def gradient_c(x, p):
    return np.gradient(x * p)[0]


def gradient_1d(x, p):
    return np.gradient(x * p, 0.5, edge_order=2)


def gradient_axis(x, p):
    return np.gradient(x * p, axis=-1)


def gradient_pair(x, p):
    gx, gy = np.gradient(x * p, 2.0, np.array([0.0, 1.0, 3.0]), axis=(0, 1))
    return gx * gy


def gradient_default_pair(x, p):
    gx, gy = np.gradient(p * x)
    return gx - 2.0 * gy


ROWS.append(
    Rule(
        "np.gradient",
        [
            *data_param(gradient_c, [((4,), FLOAT), ((3, 3), (3,)), ((4,), (4,))]),
            *data_param(gradient_1d, [((4,), FLOAT), ((3,), (3,)), ((5,), (1,))]),
            *data_param(gradient_axis, MATRIX_SHAPES),
            *data_param(gradient_pair, [((2, 3), FLOAT), ((2, 3), (3,)), ((2, 3), (2, 3))]),
            *data_param(gradient_default_pair, MATRIX_SHAPES),
        ],
    )
)


# --- fancy and boolean indexing -------------------------------------------------------------


def fancy_index(x, p):
    return (x * p)[[2, 0, 0]]


def fancy_index_pair(x, p):
    return (x * p)[[1, 0], [2, 2]]


def fancy_index_mixed(x, p):
    return (x * p)[:, [2, 0]]


def fancy_index_array(x, p):
    return p[np.argsort(x)]


def fancy_index_ellipsis(x, p):
    return (x * p)[..., [0, 0]]


def fancy_index_name_ellipsis(x, p):
    index = (Ellipsis, 0)
    return (x * p)[index]


def index_pair_names(x, p):
    total = 0.0
    for i in range(np.shape(x)[0]):
        for j in range(np.shape(x)[1]):
            total = total + (x * p)[i, j] * (i + 2.0 * j)
    return total


def mask_rows(x, p):
    return (x * p)[x[:, 0] > 0]


def mask_and_fancy(x, p):
    return (x * p)[x > 0][[0]]


ROWS += [
    Rule(
        "fancy-and-boolean-indexing",
        [
            *data_param(
                fancy_index, [((3,), FLOAT), ((3,), (3,)), ((3, 2), (2,)), ((3, 2), (3, 2))]
            ),
            *data_param(fancy_index_pair, MATRIX_SHAPES),
            *data_param(fancy_index_mixed, MATRIX_SHAPES),
            *data_param(fancy_index_array, [((3,), (3,)), ((4,), (4, 2))]),
            *data_param(fancy_index_ellipsis, ARRAY_SHAPES),
            *data_param(fancy_index_name_ellipsis, ARRAY_SHAPES),
            *data_param(index_pair_names, MATRIX_SHAPES),
            *data_param(mask_rows, [((3, 2), FLOAT), ((3, 2), (2,)), ((3, 2), (3, 2))]),
            given(mask_and_fancy, x=[[1.0, -2.0], [3.0, 4.0]], p=[0.5, -1.0]),
        ],
    ),
]


# --- the helpers' own rules (generated code differentiated again, with respect to p) -----


def ra_cumprod(x, p):
    return ra.cumprod_tangent(p * x, x, np.cumprod(x, axis=0), 0, None)


def ra_padded_diff(x, p):
    return ra.padded_diff(p * x, x, 1, -1, True, 0.0, True, x, None)


def ra_tile(x, p):
    return ra.tile_tangent(p * p * x, x, (2, 1), None)


def ra_diag(x, p):
    return ra.diag_tangent(p * x, x, 1, None)


def ra_tangent_index(x, p):
    return x[ra.tangent_index((Ellipsis, 0))] * p


ROWS += [
    Rule(
        "runtime_arrays.cumprod_tangent", data_param(ra_cumprod, [((3,), FLOAT), ((2, 3), FLOAT)])
    ),
    Rule(
        "runtime_arrays.padded_diff", data_param(ra_padded_diff, [((3,), FLOAT), ((2, 3), FLOAT)])
    ),
    Rule("runtime_arrays.tile_tangent", data_param(ra_tile, [((3,), FLOAT), ((2, 3), FLOAT)])),
    Rule("runtime_arrays.diag_tangent", data_param(ra_diag, [((3,), FLOAT), ((3, 3), FLOAT)])),
    Rule("runtime_arrays.tangent_index", data_param(ra_tangent_index, [((2, 3), FLOAT)])),
]


@pytest.mark.parametrize("rule", ROWS, ids=[rule.name for rule in ROWS])
def test_rule_matches_finite_differences(rule: Rule) -> None:
    check_rule(rule)


# --- conventions ----------------------------------------------------------------------------


def test_partition_matches_ties_in_their_order() -> None:
    p = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
    value, grads = fmad.differentiate(partition_p, wrt=["p"])(p)
    jacobian = grads["p"]
    assert sorted(np.argmax(jacobian, axis=1)) == list(range(5))  # a permutation
    np.testing.assert_array_equal(jacobian @ p, value)  # each row picks an equal entry


def index_with_ellipsis_name(x, p):
    e = Ellipsis
    return (x * p)[e, 0]


def test_an_ellipsis_held_in_a_name_never_indexes_the_direction_axis() -> None:
    x = np.arange(6.0).reshape(2, 3)
    value, grads = fmad.differentiate(index_with_ellipsis_name, wrt=["p"])(x, np.ones(3))
    np.testing.assert_array_equal(value, x[:, 0])
    np.testing.assert_array_equal(grads["p"], [[0.0, 0, 0], [3.0, 0, 0]])


def test_sort_follows_a_stable_sort_at_ties() -> None:
    _, grads = fmad.differentiate(sort_p, wrt=["p"])(np.array([2.0, 1.0, 2.0]))
    # sorted: [1 (entry 1), 2 (entry 0), 2 (entry 2)]
    np.testing.assert_array_equal(grads["p"], np.eye(3)[[1, 0, 2]])


def test_cumprod_with_zeros_is_exact() -> None:
    p = np.array([2.0, 0.0, 3.0])
    _, grads = fmad.differentiate(cumprod_p, wrt=["p"])(p)
    expected = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 6.0, 0.0]])
    np.testing.assert_array_equal(grads["p"], expected)


def split_in_scalar_code(x, p):
    first, second = np.split(x * p, 2)
    return np.sum(first) - np.sum(second)


def test_split_lists_its_parts_tangents() -> None:
    value, grads = fmad.differentiate(split_in_scalar_code, wrt=["p"])(np.arange(4.0), 2.0)
    assert value == split_in_scalar_code(np.arange(4.0), 2.0)
    assert grads["p"] == (0.0 + 1.0) - (2.0 + 3.0)


# --- refusals: error class, file and line ---------------------------------------------------


def cumsum_out(p, buf):
    return np.cumsum(p, out=buf)


def cumsum_axis_variable(p, axis):
    return np.cumsum(p, axis=axis)


def diff_active_prepend(x, p):
    return np.diff(x, prepend=p)


def pad_mean(p):
    return np.pad(p, 1, mode="mean")


def pad_active_constant(x, p):
    return np.pad(x, 1, constant_values=p)


def sort_order(p):
    return np.sort(p, order="a")


def take_out(p, buf):
    return np.take(p, [0], out=buf)


def atleast_two(p):
    return np.atleast_1d(p, p)


def trapezoid_active_x(x, p):
    return np.trapezoid(x, x=p)


def roll_active_shift(x, p):
    return np.roll(x, p)


def swapaxes_missing(p):
    return np.swapaxes(p, 0)


def partition_active_kth(x, p):
    return np.partition(x, p)


REFUSALS = [
    (cumsum_out, ("p", "buf"), "out="),
    (cumsum_axis_variable, ("p", "axis"), "axis"),
    (diff_active_prepend, ("x", "p"), "prepend="),
    (pad_mean, ("p",), "mode="),
    (pad_active_constant, ("x", "p"), "constant_values="),
    (sort_order, ("p",), "order="),
    (take_out, ("p", "buf"), "out="),
    (atleast_two, ("p",), "several arrays"),
    (roll_active_shift, ("x", "p"), "shift="),
    (swapaxes_missing, ("p",), "needs its argument 'axis2'"),
    (partition_active_kth, ("x", "p"), "kth="),
]
if hasattr(np, "trapezoid"):
    REFUSALS.append((trapezoid_active_x, ("x", "p"), "x="))


@pytest.mark.parametrize(
    ("fn", "params", "needle"), REFUSALS, ids=[f.__name__ for f, _, _ in REFUSALS]
)
def test_refusals_name_the_file_and_line(fn, params, needle) -> None:
    args = {"p": np.array([1.0, 2.0, 3.0]), "x": np.array([1.0, 2.0, 3.0])}
    args.update(buf=np.zeros(3), axis=0)
    if fn in (roll_active_shift, pad_active_constant, partition_active_kth):
        args["p"] = 1.0
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=["p"])(*[args[n] for n in params])
    line = fn.__code__.co_firstlineno + 1
    assert f"test_rules_fd_shapes.py:{line}:" in str(info.value)
    assert needle in str(info.value)


# --- fmad's output differentiated again (second derivatives, with respect to a scalar) ------

HEADER = (
    "import numpy as np\n\nfrom fmad import runtime as fmad_rt\n"
    "from fmad.runtime_arrays import diag_tangent, padded_diff, quantile_tangent, "
    "average_tangent, tile_tangent, cumprod_tangent\n\n\n"
)


def second_median(x, p):
    return np.median(x * p * p, axis=0)


def second_var(x, p):
    return np.std(x * p * p, axis=-1) + np.var(np.sin(x * p))


def second_average(x, p):
    return np.average(x * p, weights=np.exp(x * p), axis=0)


def second_rearranged(x, p):
    y = np.sin(x * p)
    parts = np.split(np.pad(np.sort(y, axis=0), ((1, 0), (1, 1)), mode="edge"), 2)
    return np.triu(parts[0]) * np.tile(y[:1], (1, 2)) + np.cumsum(np.diff(y, prepend=0.0))[0]


def second_selected(x, p):
    y = np.cos(x * p)
    return np.diag(np.diag(y)) * np.trapezoid(y * y, axis=0) + np.take(y, [1, 0])


SECOND = [second_median, second_var, second_rearranged, second_selected]


def printed(first, tmp_path):
    path = tmp_path / f"printed_{first.__name__}.py"
    path.write_text(HEADER + first.source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, first.__name__)


@pytest.mark.parametrize("fn", SECOND, ids=[f.__name__ for f in SECOND])
def test_generated_code_is_differentiated_again(fn, tmp_path) -> None:
    first = fmad.differentiate(fn, wrt=["p"])
    printed_fn = printed(first, tmp_path)
    x = np.array([[0.3, -1.2], [0.8, 0.5], [-0.4, 1.1]])
    p = 0.7
    value, grads = first(x, p)
    outputs, hess = fmad.differentiate(printed_fn, wrt=["p"])(x, p)
    np.testing.assert_array_equal(outputs[0], value)
    np.testing.assert_array_equal(outputs[1], grads["p"])
    h = 1e-6
    numeric = (printed_fn(x, p + h)[1] - printed_fn(x, p - h)[1]) / (2 * h)
    np.testing.assert_allclose(hess["p"][1], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("fn", [second_average, cumprod_last], ids=["average", "cumprod"])
def test_second_derivatives_through_helper_values_are_refused(fn, tmp_path) -> None:
    """average with weights and cumprod: their tangent helpers are not linear in the
    values (only in the tangents), so a second derivative through them is refused."""
    printed_fn = printed(fmad.differentiate(fn, wrt=["p"]), tmp_path)
    with pytest.raises(fmad.UnsupportedError, match="second derivative"):
        fmad.differentiate(printed_fn, wrt=["p"])
