"""Reverse mode through helpers of the user's module (issue 12): each call's body inlined.

Every program gives the original's exact value, forward mode's gradient to rtol 1e-10 and
central differences; every refusal is a ReverseModeError at the marked line of the file.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import fmad
from tests import helpers_module as hm
from tests import reverse_helpers_module as rh
from tests.fdcheck import check_gradients
from tests.reverse_check import compare

RNG = np.random.default_rng(12)
X = RNG.normal(size=(30, 3))
Y = (X[:, 0] > 0.0) * 1.0

PROGRAMS = [
    (rh.logistic, ["w", "b"], {"X": X, "y": Y, "w": np.array([0.1, -0.2, 0.3]), "b": 0.05}),
    (
        rh.mlp,
        ["W1", "b1", "W2", "b2"],
        {
            "X": X,
            "y": Y,
            "W1": RNG.normal(size=(3, 4)),
            "b1": RNG.normal(size=4),
            "W2": RNG.normal(size=4),
            "b2": 0.3,
        },
    ),
    (rh.calls_reassigns, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (rh.branch_and_loop, ["w", "b"], {"w": 0.7, "b": 0.4}),
    (rh.branch_and_loop, ["w", "b"], {"w": -1.5, "b": 0.2}),
    (rh.same_names, ["w", "b"], {"w": 0.7, "b": -0.4}),
    # tests/helpers_module.py: the programs whose helpers are straight-line code
    (hm.three_levels, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.patterns, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.shared_variant, ["w", "b"], {"w": np.array([0.3, -0.8, 1.1]), "b": 1.3}),
    (hm.keyword_calls, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.r4, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.calls_staticmethod, ["w"], {"w": 0.7}),
]


@pytest.mark.parametrize(("fn", "wrt", "args"), PROGRAMS, ids=lambda v: getattr(v, "__name__", ""))
def test_helpers_give_forwards_gradient_and_the_exact_value(fn, wrt, args):
    assert compare(fn, wrt, args, rtol=1e-10) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args)


def test_auto_mode_takes_reverse_for_a_helper():
    args = PROGRAMS[1][2]
    auto = fmad.differentiate(rh.mlp, wrt=PROGRAMS[1][1], mode="auto")
    reverse = fmad.differentiate(rh.mlp, wrt=PROGRAMS[1][1], mode="reverse")
    value, grads = auto(**args)
    rvalue, rgrads = reverse(**args)
    assert value == rvalue
    for name in grads:
        assert np.array_equal(grads[name], rgrads[name])


def test_the_printed_adjoint_quotes_the_helpers_lines():
    text = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse").source
    line = inspect.getsourcelines(rh.sigmoid)[1] + 1
    assert f"# line {line}: return 1.0 / (1.0 + np.exp(-z))" in text
    code = [s.split("#")[0] for s in text.splitlines()]
    assert not any("sigmoid" in s for s in code), text  # inlined: no call is left


def marker_line(tag: str) -> int:
    lines = inspect.getsource(rh).splitlines()
    found = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, tag
    return found[0]


@pytest.mark.parametrize(
    ("fn", "tag", "what"),
    [
        (rh.calls_recursive, "recursive", "recursion"),
        (rh.calls_star, "star", "*args or **kwargs"),
        (rh.calls_kwargs, "kwargs", "*args or **kwargs"),
        (rh.calls_mutable_default, "mutable", "not a constant"),
        (rh.calls_closure, "closure", "enclosing function"),
        (rh.calls_other_module, "other-module", "another module"),
        (rh.shadows_np, "shadows", "the global 'np'"),
        (rh.calls_unreadable, "unreadable", "helper 'unreadable'"),
    ],
)
def test_refused_at_the_line_with_what_to_do(fn, tag, what):
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(fn, wrt=["w"], mode="reverse")
    error = info.value
    message = str(error)
    assert os.path.basename(error.filename) == os.path.basename(rh.__file__), message
    assert error.lineno == marker_line(tag), message
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert what in message and "mode='forward'" in message, message
    # forward mode still differentiates what it supports (mode='auto' falls back to it)
    if tag not in ("star", "kwargs", "recursive", "nested", "closure", "mutable"):
        compare(fn, ["w"], {"w": 0.7})


def test_a_rebound_helper_is_inlined_again(monkeypatch):
    # the inlined body is the helper's at transform time: rebinding the name rebuilds it
    args = PROGRAMS[0][2]
    reverse = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse")
    before = reverse(**args)
    monkeypatch.setattr(rh, "sigmoid", rh.steep_sigmoid)
    assert compare(rh.logistic, ["w", "b"], args) == "same"
    value, grads = reverse(**args)
    assert value == rh.logistic(**args) and value != before[0]
    forward = fmad.differentiate(rh.logistic, wrt=["w", "b"])(**args)[1]
    np.testing.assert_allclose(grads["w"], forward["w"], rtol=1e-10)
