"""Refusal messages say what works (issue 14, item 19): fmad.register only where it can."""

import numpy as np
import pytest

import fmad
from tests import errors_module as em


def refusal(fn, wrt):
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=wrt)
    return str(info.value)


def test_function_valued_argument_says_to_call_by_name():
    # a function passed for the parameter is followed (tests/test_specialize.py); anything
    # else called with a derivative is refused when the function is transformed for it
    d = fmad.differentiate(em.calls_argument, wrt=["w"])
    assert d(0.5) == (em.calls_argument(0.5), {"w": 2.0 * (1 - np.tanh(0.5) ** 2)})
    with pytest.raises(fmad.UnsupportedError) as info:
        d(0.5, None)
    message = str(info.value)
    assert message.startswith(em.__file__ + ":42:")
    assert "register" not in message
    assert "through a variable" in message and "np.tanh(x)" in message


@pytest.mark.parametrize(
    ("fn", "wrt", "line", "label"),
    [(em.calls_eigvals, ["b"], 47, "np.linalg.eigvals"), (em.calls_fft, ["w"], 52, "np.fft.fft")],
)
def test_non_elementwise_numpy_function_is_not_sent_to_register(fn, wrt, line, label):
    message = refusal(fn, wrt)
    assert message.startswith(f"{em.__file__}:{line}:")
    assert f"'{label}' is not elementwise" in message
    assert "compute it outside the differentiated function" in message
