"""The hypothesis program generators of forward mode, in reverse mode: every generated
program gives forward mode's value bit for bit and its gradient to rounding, or a clear
refusal (tests/reverse_check.py). Straight-line programs must not be refused."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings

import fmad
from tests import test_hypothesis_arrays as arrays
from tests.reverse_check import compare
from tests.test_hypothesis_scalar import (  # noqa: F401 (program_loader: a fixture)
    finite_and_moderate,
    looped_programs,
    program_loader,
    straight_line_programs,
)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)


def compared(program, values) -> str:
    with np.errstate(all="ignore"):
        try:
            reference = program(**values)
        except (OverflowError, ZeroDivisionError, ValueError):
            assume(False)
        assume(finite_and_moderate(reference))
        return compare(program, None, values, rtol=1e-8)


@SETTINGS
@given(case=straight_line_programs())
def test_straight_line_scalar_programs(program_loader, case):  # noqa: F811
    source, values = case
    assert compared(program_loader(source), values) == "same"


@SETTINGS
@given(case=looped_programs())
def test_looped_scalar_programs(program_loader, case):  # noqa: F811
    source, values = case
    assert compared(program_loader(source), values) == "same"  # a loop with a tape


@SETTINGS
@given(program=arrays.programs())
def test_array_programs(program, tmp_path_factory):
    fn = arrays.load(program.source, tmp_path_factory.mktemp("reverse_programs"))
    args = arguments = arrays.arguments(program)
    with np.errstate(all="ignore"):
        assume(finite_and_moderate(fn(**arguments)))
        outcome = compare(fn, list(program.wrt), args, rtol=1e-8)
    if outcome == "forward refused":  # reverse mode against central differences instead
        reverse = fmad.differentiate(fn, wrt=list(program.wrt), mode="reverse")
        if np.size(fn(**args)) == 1:
            _, grads = reverse(**args)
            for name in program.wrt:
                expected = arrays.numeric_jacobian(fn, args, name)
                assert arrays.gradient_mismatch(grads[name], expected) is None
        return
    # straight-line code: only an output that is not a scalar is refused (when called)
    assert outcome == ("same" if np.size(fn(**args)) == 1 else "refused at call")
