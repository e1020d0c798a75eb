"""Every row of the program and rule tables in reverse mode: the forward gradient to
rounding and the exact value, or a clear refusal (tests/reverse_check.py)."""

from __future__ import annotations

import inspect

import pytest

from tests import test_arrays, test_programs, test_rules_fd
from tests import test_rules_fd_elementwise as fd_elementwise
from tests import test_rules_fd_linalg as fd_linalg
from tests import test_rules_fd_shapes as fd_shapes
from tests import test_rules_fd_statistics as fd_statistics
from tests.reverse_check import compare

OUTCOMES: dict[str, list[str]] = {}


@pytest.mark.parametrize(("fn", "wrt", "points"), test_programs.ROWS)
def test_program_rows(fn, wrt, points):
    for args in points:
        OUTCOMES.setdefault("programs", []).append(compare(fn, wrt, args))


# the program-table rows that call helpers of their module: inlined since issue 12 (the
# table gives 181 same, 37 refused since the statement forms, containers and nested defs of
# tests/test_reverse_forms.py; 148 and 70 before them, 144 and 74 before the helpers);
# uses_helper_branch_and_loop stays refused (an 'if' inside a 'for' loop)
HELPER_ROWS = ["uses_helper", "uses_helper_keywords", "uses_helper_of_helper", "uses_helper_twice"]


def test_program_rows_with_helpers():
    rows = [r.values for r in test_programs.ROWS if r.values[0].__name__ in HELPER_ROWS]
    assert len(rows) == len(HELPER_ROWS)
    for fn, wrt, points in rows:
        for args in points:
            assert compare(fn, wrt, args) == "same", fn.__name__


@pytest.mark.parametrize(("fn", "make_args", "wrt"), test_arrays.MODELS, ids=test_arrays.MODEL_IDS)
def test_array_models(fn, make_args, wrt):
    # logistic regression calls a helper (sigmoid): inlined (fmad/reverse_inline.py)
    assert compare(fn, wrt, make_args()) == "same"


RULE_ROWS = [
    rule
    for module in (test_rules_fd, fd_elementwise, fd_linalg, fd_shapes, fd_statistics)
    for rule in module.ROWS
]


@pytest.mark.parametrize("rule", RULE_ROWS, ids=[f"{i}-{r.name}" for i, r in enumerate(RULE_ROWS)])
def test_rule_rows(rule):
    for case in rule.cases:
        names = list(inspect.signature(case.fn).parameters)
        args = {n: case.args[n] for n in names if n in case.args}
        OUTCOMES.setdefault("rules", []).append(compare(case.fn, list(case.wrt), args))
