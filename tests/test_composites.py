"""Known composites (fmad/composites.py): the log of a sigmoid and binary cross-entropy get
their exact short derivative in both modes, and only where the code computes exactly them.

Evidence: the printed code has the short form where it should (``y - p``, ``1.0 - p``) and
not where it would be wrong (``p`` reassigned, made another way, the log of something else,
a value from another iteration, ``y`` carrying a derivative); in every case the value is
the original's bit for bit, and the gradients agree with central differences and with the
same function transformed with the short forms off (``composites.ENABLED = False``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fmad
from fmad import composites
from tests.fdcheck import check_gradients

MODES = ("forward", "reverse")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def sigmoid_ratio(a):
    """The other way to write it."""
    return np.exp(a) / (1 + np.exp(a))


def not_sigmoid(a):
    return 1.0 / (2.0 + np.exp(-a))


# -- where the short form applies --------------------------------------------------------
def bce_inline(X, y, w, b):
    z = X @ w + b
    p = 1.0 / (1.0 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def bce_helper(X, y, w, b):
    p = sigmoid(X @ w + b)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def bce_ratio_helper(X, y, w, b):
    p = sigmoid_ratio(X @ w + b)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def bce_ratio_inline(X, y, w, b):
    e = np.exp(X @ w + b)
    p = e / (1 + e)
    return -np.sum(np.log(1 - p) * (1 - y) + np.log(p) * y)


def bce_plus_exp(X, y, w, b):
    # p = 1 / (1 + exp(v)) is sigmoid(-v): the short form is p - y
    p = 1.0 / (1.0 + np.exp(X @ w + b))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def log_only(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    return np.sum(np.log(p)) + 0.5 * np.sum(p * p)


def log_complement_only(X, y, w, b):
    p = 1.0 / (np.exp(-(X @ w + b)) + 1.0)
    return np.sum(np.log(1 - p) * y)


def bce_scalar(x, y, w, b):
    p = 1.0 / (1.0 + math.exp(-(w * x + b)))
    return -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))


def network(x1, x2, y, w1, w2, w3, b1, b2):
    h = 1.0 / (1.0 + np.exp(-(w1 * x1 + w2 * x2 + b1)))
    out = 1.0 / (1.0 + np.exp(-(w3 * h + b2)))
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


def in_loop(xs, ys, w, b):
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        p = 1.0 / (1.0 + math.exp(-(w * x + b)))
        total = total - y * math.log(p) - (1.0 - y) * math.log(1.0 - p)
    return total


# -- where it must not apply --------------------------------------------------------------
def p_reassigned(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    p = 0.5 * p + 0.25
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def p_other_expression(X, y, w, b):
    p = not_sigmoid(X @ w + b)
    q = 1.0 / (2.0 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - q))


def log_of_other(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    q = p * p
    return -np.mean(y * np.log(q) + (1.0 - y) * np.log(2.0 - p))


def two_sigmoids(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    r = 1.0 / (1.0 + np.exp(-(X @ w - b)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - r))


def y_active(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    t = y * b
    return -np.mean(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))


def other_weight(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1.0 - 0.5 * y) * np.log(1.0 - p))


def loop_carried(x, w, b):
    total = 0.0
    for i in range(3):
        if i > 0:
            total = total + np.log(p)  # p of the previous iteration  # noqa: F821
        z = w * x + b * i
        p = 1.0 / (1.0 + np.exp(-z))  # noqa: F841 (read by the next iteration)
    return np.sum(total)


def base_rebound(x, w, b):
    total = 0.0
    z = w * x
    for _ in range(2):
        p = 1.0 / (1.0 + np.exp(-z))
        z = z + b
        total = total + np.log(p)
    return np.sum(total)


def data(n=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (rng.random(n) > 0.5) * 1.0
    return {"X": X, "y": y, "w": np.array([0.3, -0.7]), "b": 0.2}


FIRES = [
    (bce_inline, data, "y - p"),
    (bce_helper, data, "y - p"),
    (bce_ratio_helper, data, "y - p"),
    (bce_ratio_inline, data, "y - p"),
    (bce_plus_exp, data, "p - y"),
    (log_only, data, "1.0 - p"),
    (log_complement_only, data, "* p"),
    (bce_scalar, lambda: {"x": 0.7, "y": 1.0, "w": -0.4, "b": 0.3}, "y - p"),
    (
        network,
        lambda: {
            **{k: v for k, v in zip(("x1", "x2"), data()["X"].T, strict=True)},
            "y": data()["y"],
            **dict(zip(("w1", "w2", "w3", "b1", "b2"), (0.3, -0.5, 1.1, 0.1, -0.2), strict=True)),
        },
        "y - out",
    ),
]
SILENT = [p_reassigned, p_other_expression, log_of_other]
# the logs are logs of sigmoids, but the sum is not a cross-entropy of one
NOT_CROSS_ENTROPY = [two_sigmoids, other_weight, y_active]


@pytest.fixture
def restore():
    yield
    composites.ENABLED = True


def transformed(fn, args, mode, wrt=None):
    wrt = wrt or [k for k in args if k in ("w", "b") or k.startswith(("w", "b"))]
    return fmad.differentiate(fn, wrt=wrt, mode=mode)


def both_ways(fn, args, mode, wrt=None):
    """Gradients with the short forms on and off; values the same bits."""
    on = transformed(fn, args, mode, wrt)
    value, grads = check_gradients(on, args)
    composites.ENABLED = False
    try:
        off = transformed(fn, args, mode, wrt)
        value_off, grads_off = off(**args)
        text_off = off.source_for(**args)
    finally:
        composites.ENABLED = True
    assert np.array_equal(value, value_off)
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_off[name], rtol=1e-12, atol=1e-14)
    return on.source_for(**args), text_off


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fn", "make", "short"), FIRES, ids=[f[0].__name__ for f in FIRES])
def test_short_form_where_it_applies(fn, make, short, mode, restore):
    text, text_off = both_ways(fn, make(), mode)
    if mode == "reverse" and short[0] in "yp" and " - " in short:
        # reverse mode writes -(p - y): the negation folds into the loss's
        short = " - ".join(reversed(short.split(" - ")))
    assert short in text
    assert text != text_off
    if "y" in short:
        assert short not in text_off


@pytest.mark.parametrize("mode", MODES)
def test_cross_entropy_is_one_product(mode, restore):
    text, _ = both_ways(bce_inline, data(), mode)
    # neither the logs' nor the sigmoid's derivative is computed: one coefficient y - p
    assert "/ p" not in text and "exp_neg_z *" not in text and "* exp_neg_z" not in text
    if mode == "forward":
        assert "_partial = y - p" in text
    else:
        assert "dout_dz = dout_dy_mult_log_p_add_mult_1 * (p - y)" in text
        assert "return (neg_mean_1, dout_dw, dout_db)" in text  # no negation left


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", SILENT, ids=[f.__name__ for f in SILENT])
def test_no_short_form_where_it_would_be_wrong(fn, mode, restore):
    text, text_off = both_ways(fn, data(), mode)
    assert text == text_off


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", NOT_CROSS_ENTROPY, ids=[f.__name__ for f in NOT_CROSS_ENTROPY])
def test_no_cross_entropy_short_form(fn, mode, restore):
    # two_sigmoids: log(1 - r) of another sigmoid; other_weight: 1 - 0.5 y is not 1 - y;
    # y_active: t carries a derivative, and (t - p) would drop d/dt
    text, _ = both_ways(fn, data(), mode)
    assert not any(f"{a} - {b}" in text for a in "ytp" for b in "ptry" if a != b)
    assert "1.0 - p" in text or "* p" in text  # the logs' own short forms


def test_in_a_loop_forward(restore):
    args = {"xs": [0.5, -1.0, 2.0], "ys": [1.0, 0.0, 1.0], "w": 0.4, "b": -0.1}
    text, text_off = both_ways(in_loop, args, "forward")
    assert "1.0 - p" in text and text != text_off  # the logs' short forms, per iteration


@pytest.mark.parametrize("fn", [loop_carried, base_rebound])
def test_values_from_other_iterations(fn, restore):
    args = {"x": np.array([0.5, -1.0, 2.0]), "w": 0.4, "b": -0.3}
    text, text_off = both_ways(fn, args, "forward", wrt=["w", "b"])
    assert text == text_off


def test_switch_off_gives_the_chain(restore):
    composites.ENABLED = False
    text = fmad.differentiate(bce_inline, wrt=["w", "b"]).source_for(**data())
    assert "y - p" not in text and "/ p" in text


def label_changed_in_place(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    t = y * 1.0
    first = t * np.log(p)
    np.multiply(t, 0.0, out=t)  # t changes after the product read it
    return -np.mean(first + (1.0 - t) * np.log(1.0 - p))


def test_an_in_place_change_of_the_label_is_refused(restore):
    # the short form would read t after the change: the mutation pass refuses the change
    # (composites.harmless also keeps any window with such a statement out)
    with pytest.raises(fmad.UnsupportedError) as info:
        transformed(label_changed_in_place, data(), "forward")(**data())
    assert info.value.filename.endswith("test_composites.py")
    assert info.value.lineno == label_changed_in_place.__code__.co_firstlineno + 4
