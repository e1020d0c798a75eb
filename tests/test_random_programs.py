"""Random programs must get the original's value and correct gradients, or an FmadError.

One hypothesis test per generator kind of tests/randprog.py (helpers calling helpers,
lists and their mutation, loops whose carried tangent changes shape, numpy views and
in-place updates, array programs with reduction keywords and the bundled variant). Each
program is written to a real file and imported; the oracle (``randprog.check``) accepts an
``FmadError`` naming that file and a line, or the original's value bit for bit, its own
effect on the arguments, and gradients equal to central finite differences. Anything else,
including an internal exception (NameError, TypeError, ValueError...), fails.

About 2,000 programs run by default (deterministic); ``pytest --slow`` runs 20,000 with
shrinking. ``python -m tests.hunt KIND [N] [SEED]`` lists every failure class of a kind
and shrinks one program of each.
"""

from __future__ import annotations

from hypothesis import given, settings

from tests.randoracle import assert_keeps_contract
from tests.randprog import (
    Program,
    array_programs,
    helper_programs,
    list_programs,
    loop_programs,
    view_programs,
)

ACTIVE = settings.get_profile("randprog-active")
# Share of the profile's examples per kind (they sum to 5): the slowest kinds to transform
# (helpers, loops) run fewer programs. 2,000 programs in all by default, 20,000 with --slow.
WEIGHTS = {"helpers": 0.8, "lists": 1.3, "loops": 0.8, "views": 1.1, "arrays": 1.0}


def kind_settings(kind: str) -> settings:
    return settings(ACTIVE, max_examples=round(ACTIVE.max_examples * WEIGHTS[kind]))


@kind_settings("helpers")
@given(program=helper_programs())
def test_helpers(program: Program) -> None:
    assert_keeps_contract(program)


@kind_settings("lists")
@given(program=list_programs())
def test_lists(program: Program) -> None:
    assert_keeps_contract(program)


@kind_settings("loops")
@given(program=loop_programs())
def test_loops(program: Program) -> None:
    assert_keeps_contract(program)


@kind_settings("views")
@given(program=view_programs())
def test_views(program: Program) -> None:
    assert_keeps_contract(program)


@kind_settings("arrays")
@given(program=array_programs())
def test_arrays(program: Program) -> None:
    assert_keeps_contract(program)
