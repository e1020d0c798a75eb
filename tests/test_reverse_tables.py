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
from tests.reverse_projection import needs_projection, projected

OUTCOMES: dict[str, list[str]] = {}


@pytest.mark.parametrize(("fn", "wrt", "points"), test_programs.ROWS)
def test_program_rows(fn, wrt, points):
    for args in points:
        OUTCOMES.setdefault("programs", []).append(compare(fn, wrt, args))


# the program-table rows that call helpers of their module: inlined since issue 12 (the
# table gave 148 same, 70 refused; 144 and 74 before; 178 and 40 with the control flow
# below, 181 and 37 with the statement forms of tests/test_reverse_forms.py alone);
# uses_helper_branch_and_loop's helpers have an early return and a loop
HELPER_ROWS = [
    "uses_helper",
    "uses_helper_keywords",
    "uses_helper_of_helper",
    "uses_helper_twice",
    "uses_helper_branch_and_loop",
]
# control flow (fmad/reverse_jumps.py, fmad/reverse_loops.py): 'if' and loops inside loops,
# 'while', break/continue, early returns, a loop's 'else', elif chains; for_continue,
# nested_loops_data and while_counter also write 'x += ...' (fmad/reverse_forms.py)
FLOW_ROWS = [
    "for_break",
    "for_break_on_param",
    "early_return_in_loop",
    "nested_loops",
    "while_halving",
    "chained_comparison",
    "comparison_values",
    "several_returns",
    "for_else",
    "elif_on_param",
    "branch_on_data",
    "bool_ops",
    "for_continue",
    "nested_loops_data",
    "while_counter",
]


def test_program_rows_with_helpers():
    rows = [r.values for r in test_programs.ROWS if r.values[0].__name__ in HELPER_ROWS]
    assert len(rows) == len(HELPER_ROWS)
    for fn, wrt, points in rows:
        for args in points:
            assert compare(fn, wrt, args) == "same", fn.__name__


def test_program_rows_with_control_flow():
    rows = [r.values for r in test_programs.ROWS if r.values[0].__name__ in FLOW_ROWS]
    assert len(rows) == len(FLOW_ROWS)
    for fn, wrt, points in rows:
        for args in points:
            assert compare(fn, wrt, args) == "same", fn.__name__


@pytest.mark.parametrize(("fn", "make_args", "wrt"), test_arrays.MODELS, ids=test_arrays.MODEL_IDS)
def test_array_models(fn, make_args, wrt):
    # logistic regression calls a helper (sigmoid): inlined (fmad/reverse_inline.py)
    assert compare(fn, wrt, make_args()) == "same"


RULE_MODULES = (test_rules_fd, fd_elementwise, fd_linalg, fd_shapes, fd_statistics)
RULE_ROWS = [(module, rule) for module in RULE_MODULES for rule in module.ROWS]


def row_key(module, rule) -> str:
    return f"{module.__name__.rsplit('.', 1)[-1]}:{rule.name}"


# The rule rows reverse mode refuses (a case refused at decoration or at the call), exactly:
# a row that starts working must leave this list, one that stops working fails. The list
# only gets shorter (issue 12: every rule row gets a reverse-mode test row).
REFUSED_LIST = """
test_rules_fd_elementwise:np.angle-real_if_close
test_rules_fd_elementwise:np.real-imag-conj
"""
MAX_REFUSED = 2


REFUSED_RULE_ROWS = set(REFUSED_LIST.split())


@pytest.mark.parametrize(
    ("module", "rule"), RULE_ROWS, ids=[f"{i}-{r.name}" for i, (_, r) in enumerate(RULE_ROWS)]
)
def test_rule_rows(module, rule):
    """Each case in reverse mode: a row returning an array is differentiated through a scalar
    projection of it (tests/reverse_projection.py), so its rule runs in reverse mode too."""
    outcomes = set()
    for case in rule.cases:
        names = list(inspect.signature(case.fn).parameters)
        fn, args = case.fn, {n: case.args[n] for n in names if n in case.args}
        if needs_projection(fn(**args)):
            fn, args = projected(fn, args)
        outcomes.add(compare(fn, list(case.wrt), args))
    OUTCOMES.setdefault("rules", []).extend(outcomes)
    refused = bool(outcomes & {"refused", "refused at call"})
    key = row_key(module, rule)
    assert refused == (key in REFUSED_RULE_ROWS), (key, outcomes)


def test_refused_rule_rows_exist():
    keys = {row_key(module, rule) for module, rule in RULE_ROWS}
    assert REFUSED_RULE_ROWS <= keys, REFUSED_RULE_ROWS - keys
    assert len(REFUSED_RULE_ROWS) <= MAX_REFUSED
