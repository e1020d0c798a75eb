"""Every row of the rule table has a finite-difference test row, and every helper that
generated code calls (``fmad_rt``) has a rule, so fmad's output can be differentiated again.

A row exercises the keys its functions use: read from their source the way fmad reads it
(operators, ``x[i]``, ``x.T``, ``x.sum()``, and the objects called), plus those of the
module's own functions they call.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pathlib
import textwrap
import types
from typing import Any

import pytest

from fmad import rules
from fmad import runtime as fmad_rt
from tests import test_rules_fd as fd
from tests.test_rules_fd import ROWS
from tests.test_rules_runtime_fd import RUNTIME_ROWS

_MISSING = object()


def _resolve(node: ast.expr, namespace: dict) -> Any:
    """The global object a dotted name stands for (``np.linalg.norm``), else _MISSING."""
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return getattr(builtins, node.id, _MISSING)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        return _MISSING if base is _MISSING else getattr(base, node.attr, _MISSING)
    return _MISSING


def keys_exercised(fn: types.FunctionType, seen: set | None = None) -> set:
    """The keys of the rule table that ``fn`` (and the functions of its module it calls) use."""
    seen = set() if seen is None else seen
    if fn in seen:
        return set()
    seen.add(fn)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    namespace = fn.__globals__
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    keys: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp | ast.UnaryOp | ast.AugAssign):
            keys.add(type(node.op))
        elif isinstance(node, ast.Subscript):
            keys.add(ast.Subscript)
        elif isinstance(node, ast.Attribute) and _resolve(node.value, namespace) is _MISSING:
            kind = rules.method if id(node) in callees else rules.attribute
            keys.add(kind(node.attr))
        elif isinstance(node, ast.Call):
            obj = _resolve(node.func, namespace)
            if isinstance(obj, types.FunctionType) and obj.__module__ == fn.__module__:
                keys |= keys_exercised(obj, seen)
            elif obj is not _MISSING and rules.hashable(obj):
                keys.add(obj)
    return keys


def all_rows() -> list:
    """The rows of tests/test_rules_fd.py, of the runtime helpers, and of every other
    ``tests/test_rules_fd_<family>.py`` module (each defines ``ROWS``)."""
    rows = [*ROWS, *RUNTIME_ROWS]
    for path in sorted(pathlib.Path(__file__).parent.glob("test_rules_fd_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        rows += getattr(module, "ROWS", [])
    return rows


def exercised() -> set:
    return {key for row in all_rows() for case in row.cases for key in keys_exercised(case.fn)}


def table_keys() -> list:
    """The rows fmad defines (not those a user registered with fmad.register)."""
    return [key for key, rule in rules.RULES.items() if rule.__name__ != "user_rule"]


def test_every_rule_has_a_finite_difference_row() -> None:
    covered = exercised()
    missing = [key for key in table_keys() if key not in covered]
    assert not missing, f"rules with no row in tests/test_rules_fd*.py: {missing}"


def test_the_scan_sees_operators_methods_attributes_and_calls() -> None:
    assert keys_exercised(fd.mul_xp) == {ast.Mult}
    assert rules.method("sum") in keys_exercised(fd.method_sum_c)
    assert rules.attribute("T") in keys_exercised(fd.method_T_p)
    assert fd.np.exp in keys_exercised(fd.exp_p)


RUNTIME_FUNCTIONS = [
    f
    for name, f in vars(fmad_rt).items()
    if isinstance(f, types.FunctionType) and f.__module__ == fmad_rt.__name__
    if not name.startswith("_")
]


@pytest.mark.parametrize("func", RUNTIME_FUNCTIONS, ids=[f.__name__ for f in RUNTIME_FUNCTIONS])
def test_every_runtime_helper_has_a_rule(func) -> None:
    assert rules.rule_for(func) is not None or rules.has_zero_derivative(func)
