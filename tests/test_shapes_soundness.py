"""Issue 14, tangent shapes: loops over lists, tangents that change rank, list tangents met
by numpy, builtin reductions of lists and arrays, clip masks, the bundled variant, and
parameters fmad cannot take yet.

Every check: the value bit for bit the original's and gradients equal to central finite
differences (``check_gradients``), or a clear ``FmadError`` naming the file and line.
"""

from __future__ import annotations

import inspect
import math
import os

import numpy as np
import pytest
from fdcheck import check_gradients

import fmad

THIS_FILE = os.path.basename(__file__)


def marker_line(tag: str) -> int:
    """The line number carrying the marker comment ``# LINE-<tag>`` in this file."""
    lines = inspect.getsource(inspect.getmodule(marker_line)).splitlines()
    found = [n for n, line in enumerate(lines, start=1) if line.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, f"marker {tag!r} found {len(found)} times"
    return found[0]


def check(fn, wrt, **args):
    return check_gradients(fmad.differentiate(fn, wrt=wrt), args)


# -- item 8: loops over lists ------------------------------------------------------------------
def enumerate_list_param(p0, p1, n, zs):
    acc1 = 0.0
    for _j3, u2 in enumerate(zs):
        acc1 = acc1 + (np.clip(u2, -2.0, 0.5) - (0.899 * acc1))
    v4 = p0 + acc1
    return zs[-4] + v4


def test_enumerate_over_a_list_parameter():
    # enumerate() was taken for a function with no derivative: the loop was inactive
    _, grads = check(
        enumerate_list_param, ["p0", "zs"], p0=0.3, p1=0.2, n=3, zs=[-1.84, 1.02, -1.82, 0.43]
    )
    np.testing.assert_allclose(grads["zs"], [1.0010303, 0.0, 0.101, 1.0], rtol=1e-6)


def early_return_in_enumerate(p0, p1, bound):
    xs1 = [(abs(p0 * p0) + 0.3) ** 2.5]
    acc = 0.0
    for _j, u in enumerate(xs1):
        acc = acc + u * p1
        if acc > bound:
            return acc
    p0 = p0 + xs1[0]
    return p0 + acc


@pytest.mark.parametrize("bound", [-5.0, 0.1, 5.0])
def test_list_from_a_parameter_early_return_then_reassigned(bound):
    check(early_return_in_enumerate, ["p0", "p1"], p0=0.4, p1=0.7, bound=bound)


def enumerate_index_used(xs, w):
    acc = 0.0
    for i, x in enumerate(xs):
        acc = acc + i * x * w
        i = w * 2.0  # the index reassigned with a derivative: the next item resets it
        acc = acc + i
    return acc


def test_enumerate_index_carries_no_derivative():
    check(enumerate_index_used, ["xs", "w"], xs=[0.5, -1.5, 2.0], w=0.7)
    check(enumerate_index_used, ["xs", "w"], xs=np.array([0.5, -1.5, 2.0]), w=0.7)


def zip_and_enumerate_in_comprehension(xs, ys):
    products = [a * b for a, b in zip(xs, ys, strict=True)]
    return sum(products) + sum([i * y for i, y in enumerate(ys)])


def test_zip_and_enumerate_in_comprehensions():
    check(zip_and_enumerate_in_comprehension, ["xs", "ys"], xs=[1.0, 2.0], ys=[0.5, -0.25])


def enumerate_outside_a_for(xs):
    pairs = enumerate(xs, start=1)  # LINE-enumerate-assigned
    total = 0.0
    for i, x in pairs:
        total = total + i * x
    return total


def test_enumerate_outside_a_for_header_is_refused():
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(enumerate_outside_a_for)
    assert f"{THIS_FILE}:{marker_line('enumerate-assigned')}: " in str(info.value)
    assert "for" in str(info.value)


# -- item 12: a loop-carried tangent that starts as a constant ----------------------------------
def r1(p2, zs):
    v1 = zs[-2]
    return math.sin(p2 if 1.5 else v1)


def r2(W, bk):
    v1 = 3.0
    v2, _v3 = (min(v1, 0.25), W)
    v2, v1 = (v1, v2)
    return v1


def test_minimal_crashes_r1_r2():
    check(r1, ["p2", "zs"], p2=0.3, zs=[0.58, 0.81])
    check(r2, ["W", "bk"], W=np.ones((4, 3)), bk=np.ones(3))


def rank_changes(w, x):
    acc = 0.0  # a scalar 0 tangent, then an array one
    prod = 1.0
    for _ in range(3):
        acc = acc + w * x
        prod = prod * w
    return np.sum(acc) + np.sum(prod)


def test_tangent_changes_rank_in_loop():
    check(rank_changes, ["w", "x"], w=np.array([1.0, 2.0, 3.0]), x=2.0)


# -- item 14: clip masks are floats ---------------------------------------------------------
def neg_clip(w):
    return np.sum(-np.clip(w, -1.0, 1.0))


def one_minus_clip(x):
    return 1.0 - np.clip(x, -1, 1)


def test_clip_mask_negated():
    check(neg_clip, ["w"], w=np.array([0.5, 2.0, -0.3]))
    check(one_minus_clip, ["x"], x=np.float64(0.5))
    check(one_minus_clip, ["x"], x=0.5)


# -- item 15: builtin sum, min, max of a list or array parameter --------------------------------
def builtin_min(w):
    return min(w) * 2.0


def builtin_max_sum(w):
    return max(w) * 2.0 + sum(w)


def sum_and_index(p0, xs):
    v1 = xs[0]
    return v1 + sum(xs) * p0


@pytest.mark.parametrize("kind", [list, np.array])
def test_builtin_reductions_of_a_parameter(kind):
    check(builtin_min, ["w"], w=kind([0.3, 0.7]))
    check(builtin_max_sum, ["w"], w=kind([0.3, 0.7, -0.2]))
    check(sum_and_index, ["p0", "xs"], p0=0.5, xs=kind([0.25, 1.5]))


# -- item 17: a list of tangents met by a numpy function -----------------------------------
def list_mixing_constants(x):
    b = [1, x[0] * x[1] * x[2], 3]
    return np.sum(b)


def list_into_numpy(x, p):
    b = [1.0, x[0] * x[1], 3.0 * p]
    return np.mean(np.array(b)) + np.sum(np.stack(b)) + np.max(b) + np.mean(b)


def test_list_with_constants_reduced_by_numpy():
    check(list_mixing_constants, ["x"], x=np.array([1.0, 2.0, 3.0]))
    check(list_into_numpy, ["x", "p"], x=np.array([1.0, 2.0, 3.0]), p=0.25)
    check(list_into_numpy, ["x", "p"], x=[1.0, 2.0, 3.0], p=0.25)


# -- item 9: the bundled variant (three or more scalar parameters, array data) --------------
def bundle_no_array(X, a, b, c):
    return a * b + c


def bundle_constant(X, a, b, c):
    return 2.0


def bundle_partly(X, a, b, c):
    return np.sum(X * a) + b * b


def bundle_array_value(X, a, b, c):
    return X[0] * a + b - c


@pytest.mark.parametrize(
    "fn", [bundle_no_array, bundle_constant, bundle_partly, bundle_array_value]
)
def test_bundle_gives_one_gradient_per_parameter(fn):
    X = np.ones((3, 2))
    _, grads = check(fn, ["a", "b", "c"], X=X, a=0.5, b=1.5, c=1.0)
    assert list(grads) == ["a", "b", "c"]


# -- item 16: a wrt local assigned with a conditional expression -------------------------------
def wrt_conditional_local(p0, p1):
    t = p0 if p1 > 0 else p1
    return t * p0 + math.sin(t)


def wrt_boolop_local(p0, p1):
    t = p1 > 2.0 or p0 * 2.0
    return t * t


def wrt_local_augmented(p0, p1):
    t = p0 * 2.0
    t += 1.0  # LINE-augmented-wrt
    return t * p1


@pytest.mark.parametrize("p1", [0.5, -0.5])
def test_wrt_local_assigned_with_a_conditional_expression(p1):
    p0 = 0.3
    t = p0 if p1 > 0 else p1
    check_gradients(  # d/dp0 by finite differences, d/dt by hand
        fmad.differentiate(wrt_conditional_local, wrt=["p0", "t"]),
        {"p0": p0, "p1": p1},
        expected={"t": p0 + math.cos(t)},
    )


def test_wrt_local_assigned_with_or():
    check_gradients(
        fmad.differentiate(wrt_boolop_local, wrt=["t"]), {"p0": 0.3, "p1": 0.5}, expected={"t": 1.2}
    )


def test_wrt_local_assigned_twice_is_still_refused():
    with pytest.raises(fmad.WrtError) as info:
        fmad.differentiate(wrt_local_augmented, wrt=["t"])
    assert f"{THIS_FILE}:{marker_line('augmented-wrt')}: " in str(info.value)


# -- item 13: wrt arguments fmad cannot take yet ---------------------------------------------
def reads_container(d):  # LINE-container-def
    return d["a"] * 2.0 if isinstance(d, dict) else d[0][0] * 2.0


class Model:
    def __init__(self, c):
        self.c = c

    def loss(self, x, w):
        return (w * x - self.c) ** 2

    def scale(self, x):
        return x * 2.0


@pytest.mark.parametrize(
    "value, words",
    [
        ({"a": {1.0}}, "set"),
        ([(1.0, 2.0), ("x",)], "str"),
        ((1.0, (2.0, None)), "NoneType"),
        ({1.5: 1.0}, "key"),
        (np.array(["a"]), "dtype"),
        (Model(1.0).scale, "method"),
        (None, "NoneType"),
    ],
)
def test_unsupported_wrt_arguments_are_refused_at_call_time(value, words):
    df = fmad.differentiate(reads_container)
    with pytest.raises(fmad.UnsupportedError) as info:
        df(value)
    message = str(info.value)
    assert message.startswith(f"{info.value.filename}:{marker_line('container-def')}: ")
    assert os.path.basename(info.value.filename) == THIS_FILE
    assert "'d'" in message and words in message and "numbers" in message


def test_containers_are_parameter_trees():
    # (before issue 13 these were refused; see tests/test_containers.py)
    df = fmad.differentiate(reads_container)
    assert df({"a": 1.0}) == (2.0, {"d": {"a": 2.0}})
    assert df([(1.0, 2.0), (3.0,)]) == (2.0, {"d": [(2.0, 0.0), (0.0,)]})


def test_evenly_nested_lists_are_accepted():
    check(reads_container, None, d=[(1.0, 2.0), (3.0, 4.0)])
    check(reads_container, None, d=[[1.0, 2.0], [3.0, 4.0]])


def test_bound_method():
    model = Model(0.5)
    df = fmad.differentiate(model.loss)
    assert df.wrt == ("x", "w")
    check_gradients(df, {"x": 1.5, "w": 0.25})
    check_gradients(fmad.differentiate(model.loss, wrt=["w"]), {"x": 1.5, "w": 0.25})
    assert "def loss" in df.source


def norm_of_a_zero_start(v, c):
    t1 = 0.0
    if c > 0.03:
        t1 = np.maximum(v, c)
    return np.linalg.norm(t1) * c + np.linalg.norm(v * 0.0) * c


def test_norm_at_zero_has_zero_derivative():
    # the tangent of a zero vector is zero: 0/0 gave NaN
    check(norm_of_a_zero_start, ["v", "c"], v=np.array([0.5, -0.2, 0.1]), c=-0.5)
    check(norm_of_a_zero_start, ["v", "c"], v=np.array([0.5, -0.2, 0.1]), c=0.5)


# -- lists met by numpy functions: the factors see arrays ----------------------------------
def numpy_of_list_param(zs, b):
    return (
        np.dot(zs, zs) * b
        + np.inner(zs, zs)
        + np.sum(np.outer(zs, zs))
        + np.sum(np.maximum(zs, b))
        + np.sum(np.square(zs))  # 2 * zs repeated the list
        + np.sum(np.log1p(zs))
        + np.sum(np.arctan(zs))
    )


def numpy_of_list_local(w, b):
    xs = [b, 2.0, w[0]]
    ys = xs
    return np.sum(np.square(ys)) + np.sum(np.maximum(xs, 0.5 * b)) + np.sum(np.log1p(xs))


@pytest.mark.parametrize("kind", [list, tuple, np.array])
def test_numpy_functions_of_a_list(kind):
    check(numpy_of_list_param, None, zs=kind([0.1, 0.5, 0.7]), b=0.4)
    check(numpy_of_list_param, ["zs"], zs=kind([0.3]), b=0.4)
    check(numpy_of_list_local, None, w=np.array([0.3, -0.2]), b=0.4)


# -- list concatenation with a list parameter -----------------------------------------------
def concatenates_a_list_parameter(p0, p1, xs):
    acc1 = 0.0
    for _i, u3 in enumerate(xs):
        acc1 = acc1 + (acc1**3) * u3
    v4 = sum(xs)
    L5 = xs + [(v4**3)]  # the list parameter's array tangent, split into items
    return acc1 + v4 + sum(L5) + L5[0] * p0 + np.sum(L5) + np.sum(xs + (xs + [p1]))


@pytest.mark.parametrize("wrt", [["p0", "p1", "xs"], ["xs"], ["p1"]])
def test_concatenation_with_a_list_parameter(wrt):
    check(concatenates_a_list_parameter, wrt, p0=1.337, p1=-1.463, xs=[0.737, 1.937])


def test_adding_number_parameters_stays_plain():
    # scalar wrt parameters are numbers in their variant: no list check in the fast path
    source = fmad.differentiate(lambda_free_add).source
    assert "concat_tangent" not in source


def lambda_free_add(w, b):
    return w + b


# -- reproducers from /work/findings/shapes.md (the random-program helper) -------------------
def loop_over_mixed_list_returns(p0, w):
    for u3 in [1.5, np.max(w)]:
        return abs(u3)  # the item's tangent: a constant, an array on the next pass
    return p0


def loop_over_mixed_list_sums(p0, w):
    s = 0.0
    for u3 in [1.5, np.max(w)]:
        s = s + abs(u3)
    return s


def enumerate_list_display(p0):
    acc4 = 0.0
    for _i5, u6 in enumerate([p0, 2.0 * p0]):
        acc4 = acc4 + u6 * u6
    return acc4


def sum_of_list_with_reduction(v):
    L1 = [np.sum(v)]
    return np.sum(L1)


def test_findings_reproducers():
    w = np.array([1.737, 1.437, 0.437, 0.337])
    check(loop_over_mixed_list_returns, ["w"], p0=0.237, w=w)
    check(loop_over_mixed_list_sums, ["w"], p0=0.237, w=w)
    _, grads = check(enumerate_list_display, ["p0"], p0=0.3)
    assert math.isclose(grads["p0"], 3.0)
    check(sum_of_list_with_reduction, ["v"], v=np.array([0.037, 0.037, 0.037]))


# -- a constant that becomes an array, met by np.dot -------------------------------------------
def dot_of_a_constant_start(w, c):
    t3 = 1.0  # np.dot(1.0, w) is a product: the seed of w must not fold away
    if c > 0.03:
        t3 = -w
    return np.dot(t3, w) * c + np.sum(np.dot(w, 2.0))


def dot_scalar_matrix(W, c):
    return np.sum(np.dot(c, W)) + np.sum(np.dot(np.ones((2, 3)), W))


@pytest.mark.parametrize("c", [-0.436, 0.5])
def test_dot_with_a_scalar_operand(c):
    check(dot_of_a_constant_start, ["w"], w=np.array([0.3, -0.2, 0.8]), c=c)
    check(dot_scalar_matrix, ["W", "c"], W=np.arange(6.0).reshape(3, 2), c=c)


# -- found after merging: a zero tangent from one branch, lists met by arithmetic ----------


def zero_in_one_branch(y, w, c):
    if c > 0:
        v4 = y  # no derivative: its tangent is a zero that must still carry w's axis
    else:
        v4 = w[0] * y
    return np.sum(np.tanh(v4))


@pytest.mark.parametrize("c", [1.0, -1.0])
def test_zero_tangent_from_one_branch_meets_a_vectorized_reduction(c):
    dfn = fmad.differentiate(zero_in_one_branch, wrt=["w"])
    check_gradients(dfn, {"y": np.arange(5.0), "w": np.ones(4), "c": c})


def list_plus_array(w):
    return np.sum(np.ones(2) + [w, 2 * w])  # numpy addition, not concatenation


def list_repeated(w):
    return sum([w, 2 * w] * 2)


def tuple_arithmetic(w):
    return np.sum(np.tanh(0.5) - (w, 2 * w) / np.array([1.0, w]))  # numpy arithmetic


def list_times_a_variable(w, s):
    return np.sum([w, 2 * w] * s)  # LINE-list-times


@pytest.mark.parametrize("fn", [list_plus_array, list_repeated, tuple_arithmetic])
def test_lists_in_arithmetic(fn):
    check_gradients(fmad.differentiate(fn, wrt=["w"]), {"w": 1.5})


def test_a_list_times_a_variable_is_refused():
    # repetition (s an int) or numpy's product (s a float) cannot be told apart in advance
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(list_times_a_variable, wrt=["w"])
    assert f"{THIS_FILE}:{marker_line('list-times')}:" in str(info.value)
    assert "np.array" in str(info.value)
