"""Rules read the tangents of positional arguments: a keyword argument that carries a
derivative, or a call a rule cannot take apart, is refused with the line, never a crash or
a dropped derivative."""

from __future__ import annotations

import numpy as np
import pytest

import fmad

HERE = __file__


def dot_by_keyword(p):
    return np.mean(np.dot(np.ones((2, 2)), b=p * np.ones(2)))


def norm_by_keyword(p):
    return np.linalg.norm(x=np.ones(2) * p)


def concatenate_by_keyword(p):
    return np.concatenate(arrays=[np.ones(2) * p])[0]


def weights_by_keyword(p):
    return np.average(np.arange(3.0), weights=np.array([1.0, 2.0, 3.0]) * p + 1.0)


@pytest.mark.parametrize("fn", [dot_by_keyword, norm_by_keyword, concatenate_by_keyword])
def test_a_call_a_rule_cannot_take_apart_is_refused_at_its_line(fn) -> None:
    with pytest.raises(fmad.UnsupportedError, match="by position") as info:
        fmad.differentiate(fn)
    line = fn.__code__.co_firstlineno + 1
    assert str(info.value).startswith(f"{HERE}:{line}:")


def test_a_rule_that_reads_a_keyword_tangent_keeps_it() -> None:
    value, grads = fmad.differentiate(weights_by_keyword)(0.5)
    h = 1e-6
    expected = (weights_by_keyword(0.5 + h) - weights_by_keyword(0.5 - h)) / (2 * h)
    assert value == weights_by_keyword(0.5)
    assert abs(grads["p"] - expected) < 1e-7
