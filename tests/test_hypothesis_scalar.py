"""Random scalar programs, differentiated by fmad and checked against finite differences.

Hypothesis builds expression trees of + - * / ** (small integer exponents), unary minus and
exp/log/sin/cos/tanh/sqrt over safe domains, renders them to Python source, writes the
source to a real file (fmad reads source) and imports it. Each program is differentiated
with respect to every parameter; the value must be the original's bit for bit and each
gradient must match central finite differences of the original.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fmad
from tests.fdcheck import RELATIVE_STEP, central_fd, fd_noise, same_value

# Values beyond this are skipped: finite differences lose their meaning long before overflow.
LARGEST_VALUE = 1e6
RTOL = 1e-6
ATOL = 1e-8

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    # Each transform compiles under its own code name, so one core bug would otherwise be
    # reported (and shrunk) once per generated program.
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)

CONSTANTS = ["0.5", "1.5", "2.0", "3.0", "0.25", "(-1.5)", "(-0.75)"]
MODULES = ["math", "np"]
# Each function's argument is kept in its safe domain by the rendering.
FUNCTIONS = ["exp", "log", "sqrt", "sin", "cos", "tanh"]


def render_call(module: str, function: str, argument: str) -> str:
    if function in ("log", "sqrt"):
        return f"{module}.{function}(1.0 + {argument} * {argument})"
    return f"{module}.{function}({argument})"


def expressions(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Fully parenthesised Python expressions over ``names`` and a few constants."""
    leaves = st.sampled_from(names) | st.sampled_from(CONSTANTS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        # Denominators and negative or fractional powers get a base of at least one.
        safe_division = st.tuples(inner, inner).map(lambda t: f"({t[0]} / (1.0 + {t[1]} * {t[1]}))")
        integer_power = st.tuples(inner, st.sampled_from(["0", "1", "2", "3"])).map(
            lambda t: f"({t[0]} ** {t[1]})"
        )
        safe_power = st.tuples(inner, st.sampled_from(["-1", "-2", "0.5"])).map(
            lambda t: f"((1.0 + {t[0]} * {t[0]}) ** {t[1]})"
        )
        negation = inner.map(lambda e: f"(-{e})")
        call = st.tuples(st.sampled_from(MODULES), st.sampled_from(FUNCTIONS), inner).map(
            lambda t: render_call(*t)
        )
        return st.one_of(binary, safe_division, integer_power, safe_power, negation, call)

    return st.recursive(leaves, extend, max_leaves=5)


def parameter_values(params: list[str]) -> st.SearchStrategy[dict[str, float]]:
    value = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, allow_infinity=False)
    return st.tuples(*[value for _ in params]).map(lambda xs: dict(zip(params, xs, strict=True)))


def render_function(params: list[str], body: list[str]) -> str:
    lines = [
        "import math",
        "",
        "import numpy as np",
        "",
        "",
        f"def program({', '.join(params)}):",
    ]
    return "\n".join(lines + [f"    {line}" for line in body]) + "\n"


@st.composite
def straight_line_programs(draw: st.DrawFn) -> tuple[str, dict[str, float]]:
    """Up to three assignments (to fresh temporaries or to parameters), then a return."""
    params = [f"p{i}" for i in range(draw(st.integers(1, 3)))]
    names = list(params)
    body = []
    for k in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from([*params, f"t{k}"]))
        body.append(f"{target} = {draw(expressions(tuple(names)))}")
        if target not in names:
            names.append(target)
    body.append(f"return {draw(expressions(tuple(names)))}")
    return render_function(params, body), draw(parameter_values(params))


@st.composite
def looped_programs(draw: st.DrawFn) -> tuple[str, dict[str, float]]:
    """An accumulator updated in a ``for i in range(n)`` loop, n in 1..4."""
    params = [f"p{i}" for i in range(draw(st.integers(1, 3)))]
    n = draw(st.integers(1, 4))
    body = [
        f"acc = {draw(expressions(tuple(params)))}",
        f"for i in range({n}):",
        f"    acc = acc + {draw(expressions((*params, 'acc', 'i')))}",
        f"return {draw(expressions((*params, 'acc')))}",
    ]
    return render_function(params, body), draw(parameter_values(params))


@pytest.fixture(scope="session")
def program_loader(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Callable]:
    """Writes source to a real .py file, imports it and returns its ``program`` function."""
    directory: Path = tmp_path_factory.mktemp("hypothesis_programs")
    loaded: dict[str, Callable] = {}

    def load(source: str) -> Callable:
        if source not in loaded:
            name = "fmad_generated_" + hashlib.sha256(source.encode()).hexdigest()[:16]
            path = directory / f"{name}.py"
            path.write_text(source)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            loaded[source] = module.program
        return loaded[source]

    return load


def finite_and_moderate(value: object) -> bool:
    array = np.asarray(value, dtype=float)
    return bool(np.all(np.isfinite(array)) and np.all(np.abs(array) <= LARGEST_VALUE))


_DIFFERENTIATED: dict[Callable, fmad.Differentiated] = {}


def differentiated(program: Callable) -> fmad.Differentiated:
    # One transform per program: hypothesis replays a failing example and expects the
    # error at the same place, and each transform compiles under a new code name.
    if program not in _DIFFERENTIATED:
        _DIFFERENTIATED[program] = fmad.differentiate(program)
    return _DIFFERENTIATED[program]


def check_program(program: Callable, values: dict[str, float]) -> None:
    # numpy warnings (overflow in np.exp) are silenced: such examples are skipped below.
    with np.errstate(all="ignore"):
        try:
            reference = program(**values)
        except (OverflowError, ZeroDivisionError, ValueError):
            assume(False)
        assume(finite_and_moderate(reference))

        dfn = differentiated(program)
        assert dfn.wrt == tuple(values)
        value, grads = dfn(**values)
        assert same_value(value, reference), f"value {value!r} != original {reference!r}"
        assert tuple(grads) == tuple(values)

        for name, x in values.items():
            fd = central_fd(program, values, name)
            # Finite differences are trusted only where two step sizes agree; elsewhere
            # (near-cancellation, steep curvature) the example says nothing about fmad.
            coarse = central_fd(program, values, name, h=10.0 * RELATIVE_STEP * max(1.0, abs(x)))
            noise = fd_noise(program, values, name)
            assume(finite_and_moderate(fd) and finite_and_moderate(coarse))
            assume(abs(float(fd) - float(coarse)) <= ATOL + RTOL * abs(float(fd)) + 10 * noise)
            grad = grads[name]
            assert np.shape(grad) == np.shape(value)
            if isinstance(value, float):
                assert isinstance(grad, float), f"d/d{name} is a {type(grad).__name__}"
            error = abs(float(grad) - float(fd))
            tolerance = ATOL + RTOL * abs(float(fd)) + noise
            assert error <= tolerance, (
                f"d/d{name} at {values}: fmad {grad!r}, finite differences {float(fd)!r}"
            )


@SETTINGS
@given(case=straight_line_programs())
def test_straight_line_programs(program_loader, case):
    source, values = case
    check_program(program_loader(source), values)


@SETTINGS
@given(case=looped_programs())
def test_looped_programs(program_loader, case):
    source, values = case
    check_program(program_loader(source), values)
