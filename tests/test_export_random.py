"""Random programs (tests/randprog.py) exported: the module returns what fmad returns.

For each program fmad differentiates without an error, the exported module (for the
shapes of the program's arguments) must give the same value and gradients bit for bit, or
``fmad.export`` must refuse with an ``FmadError``; nothing else (an internal exception, a
module that fails to run, another number) is accepted. It runs in this process: the
subprocess check without fmad is tests/test_export.py's.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from hypothesis import given, settings

import fmad
from tests.randoracle import load
from tests.randprog import (
    Program,
    array_programs,
    helper_programs,
    list_programs,
    loop_programs,
    view_programs,
)
from tests.test_export import assert_identical

EXPORT = settings(settings.get_profile("randprog-active"), max_examples=40)


def shapes_of(args: dict[str, Any], wrt: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """The shapes fmad's own choice of variant sees: wrt arguments, and array data."""
    shapes = {}
    for name, value in args.items():
        if name in wrt and type(value) not in (float, int) and np.shape(value):
            shapes[name] = np.shape(value)
        elif name not in wrt and type(value) is np.ndarray:
            shapes[name] = value.shape
    return shapes


def assert_exports(program: Program) -> None:
    fn, _ = load(program.source)
    try:
        want = fmad.differentiate(fn, wrt=list(program.wrt))(**program.arguments())
    except Exception:  # refused, or the program itself raises: the oracle's business
        return
    try:
        text = fmad.export(
            fn, wrt=list(program.wrt), shapes=shapes_of(dict(program.args), program.wrt)
        )
    except fmad.FmadError:
        return
    namespace: dict[str, Any] = {}
    exec(compile(text, "<exported>", "exec"), namespace)
    got = namespace[fn.__name__](**copy.deepcopy(program.arguments()))
    assert_identical(got, want)


@EXPORT
@given(program=helper_programs())
def test_helpers(program: Program) -> None:
    assert_exports(program)


@EXPORT
@given(program=list_programs())
def test_lists(program: Program) -> None:
    assert_exports(program)


@EXPORT
@given(program=loop_programs())
def test_loops(program: Program) -> None:
    assert_exports(program)


@EXPORT
@given(program=view_programs())
def test_views(program: Program) -> None:
    assert_exports(program)


@EXPORT
@given(program=array_programs())
def test_arrays(program: Program) -> None:
    assert_exports(program)
