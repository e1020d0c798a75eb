"""Reverse mode's np.where: the line that made an unselected branch never multiplies its zero
adjoint by an infinite partial (fmad/reverse_select.py, fmad/runtime_select.py).

``np.where(p > 0, np.log(p), 0.0)`` at ``p = 0``: forward mode's ``np.where`` picks the
other branch's tangent (0); reverse mode gave ``0 * (1 / 0) = nan``. Each case runs in both
modes at the kink (reverse equals forward mode's value there, bit for bit) and away from it
(both modes agree, and match central differences), in the generic code and in the variant
for the arguments' shapes (bit for bit the generic code's), and the float path.
"""

from __future__ import annotations

import math
import pathlib
import warnings

import numpy as np
import pytest

import fmad
from tests.fdcheck import check_gradients
from tests.reverse_check import check_refusal, compare
from tests.test_reverse_shapes import generic_result, same_bits


def log_branch(p):
    return np.sum(np.where(p > 0, np.log(p), 0.0))


def sqrt_times(p):
    return np.sum(np.where(p > 0, np.sqrt(p) * 2.0, 0.0))


def second_branch(p):
    return np.sum(np.where(p <= 0, 0.0, np.log(p)))


def deeper(p):
    return np.sum(np.where(p > 0, np.sin(np.sqrt(p) * p) / np.sqrt(p), 1.0))


def compared_branch(p):
    y = np.sqrt(p)
    return np.sum(np.where(y > 0, np.log(y), 0.0))


def read_by_two_branches(p):
    y = np.log(p)
    return np.sum(np.where(p > 0, y, 0.0)) + np.sum(np.where(p > 0, 2.0 * y, 1.0))


def nested(p):
    return np.sum(np.where(p > 0, np.where(p >= 0, np.log(p), 0.0), 0.0))


def power_function(p):
    return np.sum(np.where(p > 0, np.power(p, 0.5), 0.0))


def in_loop(p):
    acc = 0.0
    for i in range(3):
        acc = acc + np.sum(np.where(p > i, np.log(p - i), 0.0))
    return acc


def in_branch(p, flag):
    if flag > 0:
        r = np.sum(np.where(p > 0, p * np.log(p), 0.0))
    else:
        r = np.sum(p)
    return r


def broadcast_branch(p, q):
    return np.sum(np.where(q > 0, np.log(p), 0.0))


def scalar_branch(s, q):
    return np.sum(np.where(q > 0, np.sqrt(s) * q, 0.0))


def item(p):
    return np.where(p[0] > 0, np.log(p[0]), 0.0) + p[1]


Q = np.array([[0.0, 1.0, 1.0], [-1.0, 2.0, 0.0]])
KINKS = [
    # (function, arguments at the kink, arguments away from it); "q" and "flag" are data
    (log_branch, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
    (sqrt_times, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
    (second_branch, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
    (deeper, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
    (compared_branch, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([0.3, 1.0, 2.0])}),
    (read_by_two_branches, {"p": np.array([0.0, 1.0])}, {"p": np.array([-0.5, 1.0])}),
    (nested, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
    (power_function, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
    (in_loop, {"p": np.array([0.0, 1.0, 2.5])}, {"p": np.array([0.5, 1.5, 2.5])}),
    (
        in_branch,
        {"p": np.array([0.0, 1.0, 2.0]), "flag": 1.0},
        {"p": np.array([-0.5, 1.0, 2.0]), "flag": 1.0},
    ),
    (
        broadcast_branch,
        {"p": np.array([0.0, 1.0, 2.0]), "q": Q},
        {"p": np.array([0.5, 1.0, 2.0]), "q": Q},
    ),
    (scalar_branch, {"s": 0.0, "q": -np.abs(Q)}, {"s": 0.7, "q": Q}),
    (item, {"p": np.array([0.0, 1.0, 2.0])}, {"p": np.array([-0.5, 1.0, 2.0])}),
]
IDS = [fn.__name__ for fn, _, _ in KINKS]


def wrt_of(args):
    return [n for n in args if n not in ("q", "flag")]


def run(fn, args, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the primal's own log(0)...
        return fmad.differentiate(fn, wrt=wrt_of(args), mode=mode)(**args)


@pytest.mark.parametrize(("fn", "kink", "away"), KINKS, ids=IDS)
def test_at_the_kink_reverse_gives_forward_modes_value(fn, kink, away):
    fvalue, fgrads = run(fn, kink, "forward")
    rvalue, rgrads = run(fn, kink, "reverse")
    assert rvalue == fvalue
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert rvalue == fn(**kink)
    for name, want in fgrads.items():
        assert np.all(np.isfinite(want)), (name, want)  # forward mode's own answer: finite
        # the masked elements are forward mode's exactly; the others to rounding
        assert np.array_equal(rgrads[name] == 0.0, want == 0.0), (name, rgrads[name], want)
        np.testing.assert_allclose(rgrads[name], want, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize(("fn", "kink", "away"), KINKS, ids=IDS)
def test_away_from_the_kink_both_modes_match_differences(fn, kink, away):
    assert compare(fn, wrt_of(away), away) == "same"
    reverse = fmad.differentiate(fn, wrt=wrt_of(away), mode="reverse")
    check_gradients(reverse, away, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("fn", "kink", "away"), KINKS, ids=IDS)
def test_the_variant_is_the_generic_code_bit_for_bit(fn, kink, away):
    differentiated = fmad.differentiate(fn, wrt=wrt_of(kink), mode="reverse")
    for args in (kink, away, kink):  # the second call of a kind runs its variant
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value, grads = differentiated(**args)
            want_value, want_grads = generic_result(differentiated, (), dict(args))
        same_bits(value, want_value)
        for name in grads:
            same_bits(grads[name], want_grads[name])


def test_the_mask_is_in_the_printed_code():
    text = fmad.differentiate(sqrt_times, mode="reverse").source
    assert "fmad_sel.branch_mask(" in text
    assert "fmad_sel.narrow(" in text
    assert "fmad_sel.selected_only(" in text


def relu_layer(X, W, b):
    h = X @ W + b
    return np.sum(np.where(h > 0, h, 0.0) ** 2)


def no_where(p):
    return np.sum(np.log(p) * p)


def test_no_cost_where_nothing_needs_a_mask():
    # a ReLU: its branch is h = X @ W + b, whose contributions are g itself (and the
    # matmul's, with no infinite partial); a program without np.where: nothing at all
    for fn in (relu_layer, no_where):
        assert "fmad_sel" not in fmad.differentiate(fn, mode="reverse").source
    X, W, b = np.ones((3, 2)), np.ones((2, 2)), np.array([0.0, -3.0])
    assert compare(relu_layer, None, {"X": X, "W": W, "b": b}) == "same"


def both_branches(p):
    return np.sum(np.where(p > 0, np.log(p), np.sqrt(-p)))


def test_a_selected_infinite_partial_stays_infinite():
    # at 0 the second branch is selected and its derivative is infinite (forward mode's
    # too); the unselected log's is masked
    _, grads = run(both_branches, {"p": np.array([0.0, 1.0, -4.0])}, "reverse")
    assert grads["p"][0] == math.inf
    assert np.array_equal(grads["p"][1:], [1.0, -0.25])


def float_where(x):
    return np.where(x > 0, np.log(x), 0.0) * 3.0


def float_branch(x):
    return math.log(x) * 2.0 if x > 0 else 0.0


def test_floats():
    # np.where of a float: the generic path; a Python conditional: control flow (the float
    # fast path), which never runs the unselected branch
    for fn in (float_where, float_branch):
        for mode in ("forward", "reverse"):
            differentiated = fmad.differentiate(fn, mode=mode)
            for _ in range(2):  # the first call and the fast path
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    value, grads = differentiated(0.0)
                assert value == 0.0 and grads["x"] == 0.0, (fn.__name__, mode, grads)
                value, grads = differentiated(1.5)
                assert value == fn(1.5)
                assert math.isclose(grads["x"], (3.0 if fn is float_where else 2.0) / 1.5)


def read_elsewhere(p):
    y = np.log(p)  # LINE-elsewhere
    return np.sum(np.where(p > 0, y, 0.0)) + np.sum(np.maximum(y, -3.0))


def branch_before_loop(p):
    y = np.log(p)  # LINE-loop
    acc = 0.0
    for i in range(2):
        acc = acc + np.sum(np.where(p > 0, y * (i + 1.0), 0.0))
    return acc


@pytest.mark.parametrize("fn", [read_elsewhere, branch_before_loop])
def test_a_branch_that_cannot_be_masked_is_refused_where_it_would_give_nan(fn):
    # y is read by another line (or the np.where is in a loop): no mask is exact, and the
    # line that made y would multiply its zero adjoint by 1 / 0
    differentiated = fmad.differentiate(fn, mode="reverse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(fmad.ReverseModeError, match="np.where") as info:
            differentiated(np.array([0.0, 1.0, 2.0]))
    tag = "LINE-" + fn.__name__.split("_")[-1]
    text = pathlib.Path(__file__).read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if tag in t and "tag" not in t)
    check_refusal(info.value, fn)
    assert f"{pathlib.Path(__file__).name}:{line}: " in str(info.value), info.value
    # away from 0: no nan, the same gradient as forward mode
    assert compare(fn, None, {"p": np.array([0.5, 1.0, 2.0])}) == "same"
