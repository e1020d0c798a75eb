"""The transposes of fmad/adjoints_elementwise.py and fmad/adjoints_arrays.py: reverse mode
equals forward mode to rounding and central differences (at smooth points), with
broadcasting, axes and keepdims; at the kinks (ties in max/min, abs at 0, clip at a bound,
tied order statistics, zeros in a product, a norm at 0) it follows forward mode's convention
exactly (tests/reverse_check.compare)."""

from __future__ import annotations

import numpy as np
import pytest

import fmad
from tests import reverse_transposes_module as m
from tests.fdcheck import check_gradients
from tests.reverse_check import compare

RNG = np.random.default_rng(12)


def values(*shape, low=0.3, high=1.7):
    return RNG.uniform(low, high, shape) * RNG.choice([-1.0, 1.0], shape)


A = np.array([[2.0, 0.5, 0.1], [0.3, 1.5, -0.4], [0.2, -0.1, 1.8]])
SMOOTH = [
    (m.builtin_abs, ["w"], {"w": -0.7}),
    (m.abs_forms, ["x", "w"], {"x": values(3, 1), "w": values(4)}),
    (
        m.clip_bounds,
        ["x", "lo", "hi"],
        {"x": np.array([-2.0, -0.5, 0.4, 3.0]), "lo": -1.0, "hi": np.array([2.0, 0.2, 0.2, 1.0])},
    ),
    (m.clip_keywords, ["x"], {"x": np.array([-2.0, 0.3, 0.9, 3.0]), "w": 0.1}),
    (m.builtin_extremes, None, {"a": 0.5, "b": 1.3, "c": -0.2}),
    (m.builtin_sum, ["a", "b", "xs"], {"a": 0.7, "b": -1.2, "xs": values(3, 2)}),
    (m.ufunc_forms, None, {"x": values(2, 1, low=0.5), "y": values(3, low=0.5)}),
    (m.remainders, None, {"x": np.array([[1.3], [2.6]]), "y": np.array([0.7, -0.9, 1.1])}),
    (m.log_base, None, {"x": 3.0, "b": 2.5}),
    (m.specials, ["x"], {"x": values(2, 3)}),
    (m.joins, None, {"a": values(2, 3), "b": values(2, 3)}),
    (m.rearranged, ["x"], {"x": values(3, 3)}),
    (m.moments, ["x"], {"x": values(3, 4), "ddof": 1}),
    (m.cumulative, ["x"], {"x": values(3, 4)}),
    (m.order_statistics, ["x"], {"x": values(5, 3)}),
    (m.contractions, None, {"a": values(2, 3), "b": values(3, 2)}),
    (m.linalg, None, {"a": A, "b": values(3, 2)}),
    (m.norms, ["x"], {"x": values(3, 2)}),
    (m.orderings, ["x"], {"x": values(3, 4)}),
    (m.differences, ["x"], {"x": values(4, 3)}),
    (m.products, ["x"], {"x": values(3, 2)}),
    (m.softmaxes, ["x"], {"x": values(2, 3)}),
    (m.averages, ["x"], {"x": values(4, 3), "w": np.array([1.0, 2.0, 0.5, 3.0])}),
    (m.decompositions, ["a"], {"a": A}),
    (m.array_api_norms, ["x"], {"x": values(3, 2)}),
    (m.conversions, ["p"], {"x": values(2, 3), "p": values(3)}),
    (m.products_more, None, {"a": values(2, 3), "b": values(2, 3), "p": values(3, 3)}),
    (m.einsum_forms, None, {"a": values(2, 2, 2), "b": values(2, 2, 2), "w": values(2)}),
    (m.linear_maps, None, {"x": values(3, 3), "s": 1.3}),
    (m.special_orders, None, {"x": values(2, 3, low=0.5), "a": np.array([0.2, 0.5, 0.7])}),
]


@pytest.mark.parametrize(("fn", "wrt", "args"), SMOOTH, ids=[c[0].__name__ for c in SMOOTH])
def test_transposes_match_forward_mode_and_differences(fn, wrt, args):
    assert compare(fn, wrt, args) == "same"
    dfn = fmad.differentiate(fn, wrt=wrt, mode="reverse")
    check_gradients(dfn, args, rtol=1e-5, atol=1e-7)


KINKS = [
    (m.builtin_abs, ["w"], {"w": 0.0}),
    (m.abs_forms, ["x", "w"], {"x": np.array([[0.0], [1.0]]), "w": np.array([0.0, 1.0, 2.0])}),
    # x at a bound: forward mode passes the derivative to x (bounds included), none to lo/hi
    (
        m.clip_bounds,
        ["x", "lo", "hi"],
        {"x": np.array([-1.0, 0.2, 0.5, 2.0]), "lo": -1.0, "hi": np.array([[2.0], [0.2]])},
    ),
    # ties: max(a, b) splits evenly, min(a, b, c) and max([...]) share among the tied
    (m.builtin_extremes, None, {"a": 1.0, "b": 1.0, "c": 1.0}),
    (m.builtin_extremes, None, {"a": 1.0, "b": 1.0, "c": 3.0}),
    (m.remainders, None, {"x": np.array([[1.4], [2.1]]), "y": np.array([0.7, -0.7, 0.7])}),
    (m.moments, ["x"], {"x": np.ones((3, 4)), "ddof": 0}),  # std 0: derivative 0
    (m.cumulative, ["x"], {"x": np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])}),
    (m.order_statistics, ["x"], {"x": np.array([[1.0, 2.0, 2.0]] * 5)}),  # every tie
    (m.norms, ["x"], {"x": np.zeros((3, 2))}),
    (m.norms, ["x"], {"x": np.array([[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0]])}),
    (m.orderings, ["x"], {"x": np.array([[1.0, 2.0, 2.0, 0.5]] * 3)}),  # stable order
    (m.products, ["x"], {"x": np.array([[0.0, 2.0], [0.0, 0.0], [3.0, 1.0]])}),
]


@pytest.mark.parametrize(("fn", "wrt", "args"), KINKS, ids=[c[0].__name__ for c in KINKS])
def test_kinks_follow_forward_mode(fn, wrt, args):
    assert compare(fn, wrt, args, rtol=1e-12) == "same"


@pytest.mark.parametrize(
    "bounds",
    [
        {"lo": -1.0, "hi": np.array([[2.0], [0.2]])},
        {"lo": np.array([[-1.0], [0.5]]), "hi": 2.5},
        {"lo": np.array([[-1.0], [0.5]]), "hi": np.array([2.0, 2.0, 0.3, 2.5])},
    ],
)
def test_clip_with_a_bound_that_broadcasts_x(bounds):
    # a bound of shape (2, 1) makes the result bigger than x (4,): each bound's derivative
    # sums over the result (d/dlo = 2 in the first case: x[0] is clipped to lo in both
    # rows). Forward mode gave 1 there (its mask of x < lo kept x's shape) until its masks
    # took the result's shape; both modes now agree with central differences
    args = {"x": np.array([-2.0, -0.5, 0.4, 3.0]), **bounds}
    for mode in ("forward", "reverse"):
        for wrt in (["x", "lo", "hi"], ["lo"], ["hi"]):
            dfn = fmad.differentiate(m.clip_bounds, wrt=wrt, mode=mode)
            _, grads = check_gradients(dfn, args, rtol=1e-6, atol=1e-8)
    _, grads = fmad.differentiate(m.clip_bounds, wrt=["lo"])(x=args["x"], lo=-1.0, hi=bounds["hi"])
    if np.ndim(bounds["hi"]) == 2:
        assert grads["lo"] == 2.0


def test_list_display_adjoint_reads_like_the_computation():
    text = fmad.differentiate(m.joins, mode="reverse").show()
    assert "fmad_tr.gather_adjoint(" in text
    assert "np.concatenate" in text


def test_pad_edge_statistics_are_refused():
    def padded(x):
        return np.sum(np.pad(x, 1, mode="mean") ** 2)

    with pytest.raises(fmad.ReverseModeError, match="mode='mean'") as info:
        fmad.differentiate(padded, mode="reverse")
    assert info.value.lineno == padded.__code__.co_firstlineno + 1


def test_column_transpose_is_refused_beyond_its_limit():
    def trapezoid(x):
        return np.trapezoid(x * 2.0)

    dfn = fmad.differentiate(trapezoid, mode="reverse")
    assert dfn(np.ones(50))[1]["x"].shape == (50,)
    with pytest.raises(fmad.ReverseModeError, match="column by column"):
        dfn(np.ones(5000))


def test_dense_transpose_is_refused_beyond_its_limit():
    def median(x):
        return np.median(x * 2.0)

    dfn = fmad.differentiate(median, mode="reverse")
    with pytest.raises(fmad.ReverseModeError, match="dense Jacobian"):
        dfn(np.ones(3000))


def test_a_dtype_fmad_cannot_see_is_refused():
    with pytest.raises(fmad.ReverseModeError, match="dtype 'kind'") as info:
        fmad.differentiate(m.dtype_from_argument, wrt=["x"], mode="reverse")
    assert info.value.lineno == m.dtype_from_argument.__code__.co_firstlineno + 1


# -- joins of the lists a function builds (fmad.reverse_containers' READERS) -----------------
def join_appended(w, b):
    parts = []
    for k in range(3):
        parts.append(w * float(k) + b)
    z = np.concatenate(parts)
    return np.sum(z**2)


def join_and_items(w, b):
    parts = [w, b * 2.0]
    z = np.vstack(parts)
    return np.sum(z * z) + np.sum(parts[0] * 3.0) + np.sum(sum(parts))


def join_twice(w, b):
    z = np.hstack([w, w, b])
    return np.sum(z**3)


def join_items_of_arrays(w, b):
    z = np.stack([w[0], b[1], w[1] * b[0]])
    return np.sum(z**2)


def join_tuple(w, b):
    t = (w, b)
    return np.sum(np.hstack(t) ** 2) + np.sum(np.vstack(t) * 0.5)


@pytest.mark.parametrize(
    "fn", [join_appended, join_and_items, join_twice, join_items_of_arrays, join_tuple]
)
def test_joins_of_lists_the_function_builds(fn):
    args = {"w": np.array([1.0, 2.0]), "b": np.array([3.0, -1.0])}
    assert compare(fn, ["w", "b"], args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=["w", "b"], mode="reverse"), args)


# -- splits: the list a split returns is a container; its items' adjoints join back ---------
def split_unpacked(w):
    a, b = np.split(w, 2)
    return np.sum(a * b) + np.sum(a**2)


def hsplit_item(W):
    parts = np.hsplit(W, [1])
    return np.sum(parts[1] ** 2) * 3.0


def vsplit_one_piece_read(W):
    top, bottom = np.vsplit(W, 2)
    return np.sum(top * 2.0)


def array_split_loop(w):
    pieces = np.array_split(w, 3)
    total = 0.0
    for p in pieces:
        total = total + np.sum(p) ** 2
    return total


def split_axis(W):
    a, b = np.split(W, [1], axis=1)
    return np.sum(a * b)


@pytest.mark.parametrize(
    ("fn", "arg"),
    [
        (split_unpacked, np.array([1.0, 2.0, -1.0, 0.5])),
        (hsplit_item, np.arange(1.0, 7.0).reshape(2, 3) / 3),
        (vsplit_one_piece_read, np.arange(1.0, 7.0).reshape(2, 3) / 3),
        (array_split_loop, np.arange(1.0, 8.0)),
        (split_axis, np.arange(1.0, 7.0).reshape(2, 3) / 3),
    ],
)
def test_splits(fn, arg):
    name = fn.__code__.co_varnames[0]
    assert compare(fn, [name], {name: arg}) == "same"
    check_gradients(fmad.differentiate(fn, wrt=[name], mode="reverse"), {name: arg})
