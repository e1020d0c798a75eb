"""fmad.printer: source text of generated trees, with ``ast.unparse`` or astor.

Whatever the printer, the printed code must mean what the compiled code means: it is
executed here and must give the same numbers, bit for bit.
"""

from __future__ import annotations

import ast
import copy
import sys

import numpy as np
import pytest

import fmad
from fmad.printer import to_source
from tests import passes_module as pm
from tests.fdcheck import same_value

# (function, wrt, arguments): scalar arguments, so the scalar variant that show() prints runs
CASES = [
    (pm.train_loop, ["w", "b"], (3.0, 7.0, 0.5, 0.25)),
    (pm.negative_constants, None, (1.7,)),
    (pm.loop_branch_helper, ["w", "b"], (0.3, 0.7, 0.2, 5)),
    (pm.nested_expression, None, (0.4, -0.3, 1.1)),
    (pm.power, None, (1.5, 2.5)),
    (pm.nested_free_variables, None, (1.5, 0.5)),
    (pm.mixed_model, ["b"], (np.eye(3), np.ones(3), np.full(3, 0.5), 0.25)),
]
IDS = [case[0].__name__ for case in CASES]


def generated_tree(differentiated) -> ast.FunctionDef:
    return differentiated.__fmad__._default.unit.tree


def assert_same_numbers(printed, differentiated, args: tuple) -> None:
    # the printed code returns one flat tuple: the value, then a tangent per wrt name
    value, *tangents = printed(*copy.deepcopy(args))
    grads = dict(zip(differentiated.wrt, tangents, strict=True))
    expected_value, expected_grads = differentiated(*copy.deepcopy(args))
    assert same_value(value, expected_value)
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        assert np.array_equal(np.asarray(grads[name]), np.asarray(expected_grads[name])), name


def test_ast_printer_is_ast_unparse_with_a_final_newline() -> None:
    tree = generated_tree(fmad.differentiate(pm.train_loop, wrt=["w", "b"]))
    text = to_source(tree)
    assert text == to_source(tree, "ast") == ast.unparse(tree) + "\n"
    assert ast.dump(ast.parse(text).body[0]) == ast.dump(ast.parse(ast.unparse(tree)).body[0])


def test_ast_printer_accepts_trees_without_locations() -> None:
    tree = ast.Module(
        body=[ast.Assign(targets=[ast.Name(id="x", ctx=ast.Store())], value=ast.Constant(1.0))],
        type_ignores=[],
    )
    assert to_source(tree) == "x = 1.0\n"


def test_unknown_printer_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown printer 'black'.*ast, astor"):
        to_source(ast.parse("x = 1"), "black")


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES, ids=IDS)
def test_ast_printed_code_gives_the_same_numbers(fn, wrt, args) -> None:
    differentiated = fmad.differentiate(fn, wrt=wrt)
    assert differentiated.show(printer="ast") == differentiated.source
    printed = pm.printed_function(differentiated, differentiated.show(printer="ast"))
    assert_same_numbers(printed, differentiated, args)


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES, ids=IDS)
def test_astor_printed_code_gives_the_same_numbers(fn, wrt, args) -> None:
    astor = pytest.importorskip("astor")
    differentiated = fmad.differentiate(fn, wrt=wrt)
    text = differentiated.show(printer="astor")
    assert generated_tree(differentiated).name in text
    assert to_source(generated_tree(differentiated), "astor") == astor.to_source(
        generated_tree(differentiated)
    )
    printed = pm.printed_function(differentiated, text)
    assert_same_numbers(printed, differentiated, args)


def test_astor_printed_flat_code_gives_the_original_value() -> None:
    pytest.importorskip("astor")
    differentiated = fmad.differentiate(pm.nested_expression)
    namespace = dict(pm.__dict__)
    exec(differentiated.show(stage="flat", printer="astor"), namespace)
    args = (0.4, -0.3, 1.1)
    assert same_value(namespace["nested_expression"](*args), pm.nested_expression(*args))


def test_missing_astor_warns_and_falls_back_to_ast_unparse(monkeypatch) -> None:
    # None in sys.modules makes "import astor" raise ImportError, as if not installed
    monkeypatch.setitem(sys.modules, "astor", None)
    differentiated = fmad.differentiate(pm.train_loop, wrt=["w", "b"])
    tree = generated_tree(differentiated)
    with pytest.warns(UserWarning, match="astor is not installed") as caught:
        text = to_source(tree, "astor")
    assert len(caught) == 1
    assert text == ast.unparse(tree) + "\n"
    with pytest.warns(UserWarning, match="astor"):
        assert differentiated.show(printer="astor") == differentiated.source
