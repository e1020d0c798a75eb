"""Hypothesis writes small array programs; fmad's gradients must match finite differences.

A program mixes parameters and data of random shapes (each dimension 1 to 4, up to 2-D)
that broadcast against each other, through elementwise arithmetic, smooth functions kept
in a safe range, reductions with and without ``axis``, and ``@`` where the shapes allow.
Each program is written to a real file and imported, so fmad reads it like user code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fmad
from tests.arrays_module import gradient_mismatch, numeric_jacobian

Shape = tuple[int, ...]

UNARY = [
    "np.exp(np.tanh({a}))",
    "np.tanh({a})",
    "np.sin({a})",
    "{a} * {a}",
    "np.log(1.0 + {a} * {a})",
]
BINARY = ["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / (1.0 + {b} * {b})"]


@dataclass(frozen=True)
class Program:
    source: str
    inputs: dict[str, Shape | None]  # None: a Python float
    wrt: tuple[str, ...]
    seed: int


def broadcast(a: Shape, b: Shape) -> Shape | None:
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def matmul_shape(a: Shape, b: Shape) -> Shape | None:
    if not a or not b:
        return None
    inner = b[0] if len(b) == 1 else b[-2]
    return a[:-1] + b[1:] if a[-1] == inner else None


@st.composite
def programs(draw: st.DrawFn) -> Program:
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    shapes: list[Shape] = [(), (m,), (n,), (n, m), (m, n), (n, 1), (1, m)]
    inputs: dict[str, Shape | None] = {}
    for prefix, count in (("p", draw(st.integers(1, 2))), ("d", draw(st.integers(1, 2)))):
        for i in range(count):
            shape = draw(st.sampled_from(shapes))
            as_float = shape == () and draw(st.booleans())
            inputs[f"{prefix}{i}"] = None if as_float else shape
    known: dict[str, Shape] = {name: shape or () for name, shape in inputs.items()}
    lines = []
    for i in range(draw(st.integers(1, 6))):
        # Newest values first, so shrinking keeps programs chained.
        names = list(reversed(known))
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "matmul"]))
        pairs = [
            (a, b, shape)
            for a in names
            for b in names
            if (shape := (matmul_shape if kind == "matmul" else broadcast)(known[a], known[b]))
            is not None
        ]
        if kind in ("binary", "matmul") and pairs:
            a, b, shape = draw(st.sampled_from(pairs))
            template = "{a} @ {b}" if kind == "matmul" else draw(st.sampled_from(BINARY))
            expression = template.format(a=a, b=b)
        elif kind == "reduce":
            a = draw(st.sampled_from(names))
            axes = [None, 0, -1] if known[a] else [None]
            axis = draw(st.sampled_from(axes))
            function = draw(st.sampled_from(["sum", "mean"]))
            if axis is None:
                expression, shape = f"np.{function}({a})", ()
            else:
                expression = f"np.{function}({a}, axis={axis})"
                shape = tuple(np.delete(np.array(known[a], dtype=int), axis).tolist())
        else:
            a = draw(st.sampled_from(names))
            expression, shape = draw(st.sampled_from(UNARY)).format(a=a), known[a]
        known[f"t{i}"] = shape
        lines.append(f"    t{i} = {expression}")
    result = f"t{len(lines) - 1}"
    ending = draw(st.sampled_from(["{r}", "np.sum({r})", "np.mean({r})"])).format(r=result)
    header = ["import numpy as np", "", "", f"def program({', '.join(inputs)}):"]
    source = "\n".join([*header, *lines, f"    return {ending}"])
    wrt = tuple(name for name in inputs if name.startswith("p"))
    return Program(source + "\n", inputs, wrt, draw(st.integers(0, 2**16)))


_loaded: dict[str, Callable[..., Any]] = {}


def load(source: str, directory: Path) -> Callable[..., Any]:
    """Import ``source`` from a real file and return its ``program`` function."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    if digest not in _loaded:
        path = directory / f"generated_{digest}.py"
        path.write_text(source)
        module_name = f"fmad_test_generated_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        _loaded[digest] = module.program
    return _loaded[digest]


def arguments(program: Program) -> dict[str, Any]:
    rng = np.random.default_rng(program.seed)
    return {
        name: float(rng.uniform(-1.0, 1.0)) if shape is None else rng.uniform(-1.0, 1.0, shape)
        for name, shape in program.inputs.items()
    }


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated_programs")


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(program=programs())
def test_generated_array_program_matches_finite_differences(
    program: Program, program_dir: Path
) -> None:
    note(program.source)
    fn = load(program.source, program_dir)
    args = arguments(program)
    note(f"arguments: { {k: np.shape(v) for k, v in args.items()} }")

    value, grads = fmad.differentiate(fn, wrt=list(program.wrt))(**args)

    expected = fn(**args)
    assert np.shape(value) == np.shape(expected)
    assert np.array_equal(value, expected)
    assert list(grads) == list(program.wrt)
    for name in program.wrt:
        mismatch = gradient_mismatch(grads[name], numeric_jacobian(fn, args, name))
        assert mismatch is None, f"d/d{name}: {mismatch}"
