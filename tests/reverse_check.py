"""Reverse mode against forward mode: the helper the reverse-mode tests share.

``compare(fn, wrt, args)`` differentiates ``fn`` both ways. Where reverse mode refuses (at
decoration or when called), the refusal must be a ReverseModeError at a line of the user's
file that says what to do (``mode='forward'``): never a silent wrong answer. Where it
answers, the value is the original's bit for bit and every gradient equals forward mode's to
rounding, in the same shape.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

import fmad
from tests.fdcheck import same_value


def check_refusal(error: fmad.ReverseModeError, fn) -> None:
    text = str(error)
    filename = os.path.basename(fn.__code__.co_filename)
    assert re.match(rf".*{re.escape(filename)}:\d+: ", text), text
    assert "mode='forward'" in text, text
    assert error.lineno is not None


def compare(fn, wrt, args: dict[str, Any], rtol: float = 1e-10) -> str:
    """``"refused"``, ``"refused at call"``, ``"same"`` (see the module docstring), or
    ``"forward refused"`` (forward mode refuses this function)."""
    try:
        reverse = fmad.differentiate(fn, wrt=wrt, mode="reverse")
    except fmad.ReverseModeError as error:
        check_refusal(error, fn)
        return "refused"
    try:
        forward = fmad.differentiate(fn, wrt=wrt)
        fvalue, fgrads = forward(**args)
    except fmad.UnsupportedError:
        return "forward refused"  # nothing to compare with: the caller checks otherwise
    try:
        rvalue, rgrads = reverse(**args)
    except fmad.ReverseModeError as error:
        check_refusal(error, fn)
        return "refused at call"
    assert same_value(rvalue, fvalue), (rvalue, fvalue)
    assert list(rgrads) == list(fgrads)
    for name, expected in fgrads.items():
        got = rgrads[name]
        assert np.shape(got) == np.shape(expected), (name, np.shape(got), np.shape(expected))
        if np.ndim(expected) > 0:
            assert isinstance(got, np.ndarray), (name, type(got))
        scale = float(np.max(np.abs(expected), initial=1.0)) if np.size(expected) else 1.0
        finite = np.isfinite(expected)
        np.testing.assert_allclose(
            np.where(finite, got, 0.0),
            np.where(finite, expected, 0.0),
            rtol=rtol,
            atol=rtol * scale,
            err_msg=f"d/d{name}",
        )
        assert np.array_equal(np.isfinite(got), finite), name
    return "same"
