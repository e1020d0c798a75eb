"""Exceptions and warnings raised while generated code runs: the user's own operation keeps
its exception type; fmad's own lines failing is an InternalError at the user's line; numpy's
warnings and tracebacks name the user's file and line (fmad.trace)."""

import math
import traceback
import warnings

import numpy as np
import pytest

import fmad
from fmad import build as B
from fmad import rules
from fmad.forward import Tangent
from tests import errors_module as em

FILE = "errors_module.py"


@pytest.mark.parametrize("w", [0.0, np.zeros(2)], ids=["scalar", "array"])
def test_users_zero_division_keeps_its_type(w):
    dfn = fmad.differentiate(em.reciprocal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(w, float):
            with pytest.raises(ZeroDivisionError) as info:
                dfn(w)
            assert not isinstance(info.value, fmad.FmadError)
            frames = traceback.extract_tb(info.value.__traceback__)
            assert (frames[-1].filename.endswith(FILE), frames[-1].lineno) == (True, 8)
        else:  # numpy divides to inf, with the original's value
            value, grads = dfn(w)
            assert np.array_equal(value, em.reciprocal(w))


def test_numpy_warning_names_the_users_file_and_line():
    dfn = fmad.differentiate(em.log_of)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, _ = dfn(np.array([-1.0, 2.0]))
    assert math.isnan(value)
    assert caught, "numpy warns about log of a negative number"
    for w in caught:
        assert w.filename.endswith(FILE), w.filename
        assert w.lineno in (13, 14), w.lineno  # the log line, or its derivative's
    assert any(w.lineno == 14 for w in caught)


def test_users_shape_error_is_a_value_error_at_the_users_line():
    dfn = fmad.differentiate(em.matmul_mismatch, wrt=["w"])
    with pytest.raises(ValueError) as info:
        dfn(np.ones((3, 2)), np.ones(4))
    assert isinstance(info.value, fmad.ShapeError)
    assert f"{FILE}:24:" in str(info.value)
    assert "X (3, 2)" in str(info.value) and "w (4,)" in str(info.value)


@pytest.fixture
def broken_tanh_rule(monkeypatch):
    """Simulate a bug in fmad: the tanh rule emits a name that does not exist."""

    def broken(ctx, z, args, tangents, keywords):
        return Tangent(B.name("fmad_no_such_name"), full=True)

    monkeypatch.setitem(rules.RULES, np.tanh, broken)


@pytest.mark.parametrize("w", [0.5, np.array([0.5, 1.0])], ids=["fast-path", "array"])
def test_fmads_own_failure_is_an_internal_error_at_the_users_line(broken_tanh_rule, w):
    dfn = fmad.differentiate(em.with_tanh)
    with pytest.raises(fmad.InternalError) as info:
        dfn(w)
    message = str(info.value)
    assert f"{FILE}:19:" in message
    assert "bug in fmad" in message and "NameError" in message
    assert isinstance(info.value.__cause__, NameError)


def test_registered_derivative_that_fails_keeps_its_type():
    fmad.register(em.special, em.special_derivative)
    try:
        dfn = fmad.differentiate(em.uses_special)
        with pytest.raises(LookupError, match="the user's derivative failed") as info:
            dfn(0.5)
        assert not isinstance(info.value, fmad.FmadError)
    finally:
        del rules.RULES[em.special]


def test_wrong_number_of_arguments_is_the_usual_type_error():
    dfn = fmad.differentiate(em.reciprocal)
    with pytest.raises(TypeError):
        dfn(1.0, 2.0)
    with pytest.raises(TypeError):
        dfn(np.ones(2), 2.0)


@pytest.mark.parametrize(
    ("fn", "w", "line"), [(em.calls_helper, 0.0, 57), (em.calls_nested, 1.0, 68)]
)
def test_users_error_inside_a_transformed_helper_keeps_its_type(fn, w, line):
    with pytest.raises(ZeroDivisionError) as original:
        fn(w)
    with pytest.raises(ZeroDivisionError) as info:
        fmad.differentiate(fn)(w)
    assert not isinstance(info.value, fmad.FmadError)
    assert str(info.value) == str(original.value)
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename.endswith(FILE), last.lineno) == (True, line)
