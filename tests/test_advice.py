"""Refusal messages say what works (issue 14, item 19): fmad.register only where it can."""

import pytest

import fmad
from tests import errors_module as em


def refusal(fn, wrt):
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=wrt)
    return str(info.value)


def test_function_valued_argument_says_to_call_by_name():
    message = refusal(em.calls_argument, ["w"])
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
