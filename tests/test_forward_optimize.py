"""fmad.forward and fmad.optimize, judged by the code they generate.

Derivative statements are told apart from primal ones by what they bind: the primal code is
the flattened function (``.flat_source``) and binds only its names; every statement of
``.source`` that binds none of them (tangents ``dz_dw``, shared partials ``z_partial``) is
derivative code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import numpy as np
import pytest

import fmad
from fmad import build as B
from tests import passes_module as pm

MUTATORS = ("append", "extend", "insert")


class Code:
    """The generated top-level function of a differentiated function, with its parts."""

    def __init__(self, differentiated, source: str | None = None) -> None:
        self.name = differentiated.__wrapped__.__name__
        self.wrt = differentiated.wrt
        self.text = source if source is not None else differentiated.source
        module = ast.parse(self.text)
        self.tree = next(s for s in module.body if getattr(s, "name", "") == self.name)
        flat = ast.parse(differentiated.flat_source).body[0]
        self.primal_names = {n.id for n in ast.walk(flat) if isinstance(n, ast.Name)} | {
            a.arg for a in ast.walk(flat) if isinstance(a, ast.arg)
        }

    def blocks(self) -> Iterator[tuple[list[ast.stmt], ast.AST]]:
        """Every statement list, with the statement (or function) that owns it."""

        def walk(body, owner):
            yield body, owner
            for s in body:
                if isinstance(s, ast.If | ast.For | ast.While):
                    yield from walk(s.body, s)
                    yield from walk(s.orelse, s)

        yield from walk(self.tree.body, self.tree)

    def binds(self, s: ast.stmt) -> set[str]:
        if isinstance(s, ast.Assign):
            return {n for t in s.targets for n in B.stored_names(t)}
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            f = s.value.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr in MUTATORS
                and isinstance(f.value, ast.Name)
            ):
                return {f.value.id}
        return set()

    def is_derivative(self, s: ast.stmt) -> bool:
        bound = self.binds(s)
        return bool(bound) and not bound & self.primal_names

    def derivative_statements(self) -> list[ast.stmt]:
        return [s for body, _ in self.blocks() for s in body if self.is_derivative(s)]

    def returned_gradients(self) -> list[ast.expr]:
        returns = [s for body, _ in self.blocks() for s in body if isinstance(s, ast.Return)]
        return [v for r in returns for v in r.value.elts[1:]]  # (value, *tangents)

    def value_of(self, name: str) -> list[str]:
        return [
            ast.unparse(s.value)
            for s in self.derivative_statements()
            if isinstance(s, ast.Assign) and name in self.binds(s)
        ]

    def primal_of(self, tangent: str) -> str | None:
        """``z`` for a tangent named ``dz_dw`` (or ``dz_dw_1``) of a primal name ``z``."""
        for p in self.wrt:
            match = re.fullmatch(rf"d(\w+)_d{re.escape(p)}(?:_\d+)?", tangent)
            if match and match.group(1) in self.primal_names:
                return match.group(1)
        return None


def trivial_terms(node: ast.AST) -> list[str]:
    """Subexpressions that multiply by 0 or +-1, add or subtract 0, divide or raise by 1."""
    found = []
    for n in ast.walk(node):
        if not isinstance(n, ast.BinOp):
            continue
        left, right = B.constant_value(n.left), B.constant_value(n.right)
        trivial = (
            (isinstance(n.op, ast.Mult) and {left, right} & {0, 1, -1})
            or (isinstance(n.op, ast.Add) and 0 in (left, right))
            or (isinstance(n.op, ast.Sub) and 0 in (left, right))
            or (isinstance(n.op, ast.Div | ast.Pow) and right == 1)
        )
        if trivial:
            found.append(ast.unparse(n))
    return found


SCALAR_CASES = [
    (pm.train_loop, ["w", "b"]),
    (pm.several_zero_terms, None),
    (pm.loop_branch_helper, ["w", "b"]),
    (pm.augmented, None),
    (pm.self_reference, None),
    (pm.nested_expression, None),
    (pm.three_directions, None),
    (pm.unused_values, None),
    (pm.long_chain, None),
    (pm.comprehension, ["w"]),
    (pm.appended, ["w"]),
    (pm.short_circuit, ["w"]),
    (pm.conditional_value, None),
    (pm.negative_constants, None),
    (pm.loop_carried, ["x", "w"]),
    (pm.nested_free_variables, None),
]
VECTOR_CASES = [
    (pm.mixed_model, None, (np.ones((4, 3)), np.ones(4), np.ones(3), np.ones(1))),
    (pm.mse, ["w", "b"], (np.ones((4, 3)), np.ones(4), np.ones(3), 0.5)),
    (pm.matvec, ["w"], (np.ones((4, 3)), np.ones(3))),
]


def all_codes() -> list:
    params = [pytest.param(fn, wrt, None, id=fn.__name__) for fn, wrt in SCALAR_CASES]
    params += [
        pytest.param(fn, wrt, args, id=f"{fn.__name__}-vector") for fn, wrt, args in VECTOR_CASES
    ]
    return params


def code_for(fn, wrt, args) -> Code:
    differentiated = fmad.differentiate(fn, wrt=wrt)
    source = None if args is None else differentiated.source_for(*args)
    return Code(differentiated, source)


# ---------------------------------------------------------------- zero terms


@pytest.mark.parametrize(("fn", "wrt", "args"), all_codes())
def test_no_trivial_term_is_emitted(fn, wrt, args) -> None:
    code = code_for(fn, wrt, args)
    derivative = code.derivative_statements()
    assert derivative, "no derivative code found: the test would check nothing"
    for s in derivative:
        assert trivial_terms(s) == [], ast.unparse(s)
    for g in code.returned_gradients():
        assert trivial_terms(g) == [], ast.unparse(g)


def test_the_trivial_term_detector_finds_them() -> None:
    text = "a = x * 1.0 + 0.0 * y - 0.0 + z / 1 + (-1.0) * q"
    assert len(trivial_terms(ast.parse(text))) == 5


def known_zero_reads(code: Code) -> list[str]:
    """Derivative statements that read a tangent assigned the literal 0.0 exactly once."""
    assignments: dict[str, list[ast.stmt]] = {}
    for body, _ in code.blocks():
        for s in body:
            for name in code.binds(s):
                assignments.setdefault(name, []).append(s)
    zeros = {
        name
        for name, where in assignments.items()
        if len(where) == 1
        and where[0] in code.tree.body
        and code.is_derivative(where[0])
        and isinstance(where[0], ast.Assign)
        and B.constant_value(where[0].value) == 0
    }
    readers = [*code.derivative_statements(), *code.returned_gradients()]
    return [ast.unparse(r) for r in readers if B.read_names(r) & zeros]


@pytest.mark.parametrize(
    "fn",
    [
        pm.train_loop,
        pm.loop_branch_helper,
        pm.conditional_value,
        pm.several_zero_terms,
    ],
)
def test_a_tangent_known_to_be_zero_is_folded_not_read(fn) -> None:
    assert known_zero_reads(code_for(fn, None, None)) == []


# ---------------------------------------------------------------- unused tangents


def test_values_that_do_not_reach_the_return_get_no_tangent() -> None:
    code = code_for(pm.unused_values, None, None)
    tangents_of = {code.primal_of(n) for s in code.derivative_statements() for n in code.binds(s)}
    assert not {"unused", "exp_unused", "also_unused", "ignored"} & tangents_of
    assert {"y", "y_add_b"} <= tangents_of
    # the primal lines stay: the value is the original's, side effects and all
    assert "unused = w * 3.0" in code.text and "ignored = y * w" in code.text


@pytest.mark.parametrize(("fn", "wrt", "args"), all_codes())
def test_every_derivative_value_is_read(fn, wrt, args) -> None:
    code = code_for(fn, wrt, args)
    reads = set()
    for body, _ in code.blocks():
        for s in body:
            if isinstance(s, ast.If | ast.While):
                reads |= B.read_names(s.test)
            elif isinstance(s, ast.For):
                reads |= B.read_names(s.iter)
            elif isinstance(s, ast.Expr) and code.is_derivative(s):
                reads |= B.read_names(s.value) - code.binds(s)
            else:
                reads |= B.read_names(s)
    for s in code.derivative_statements():
        assert code.binds(s) & reads, f"dead derivative code: {ast.unparse(s)}"


# ---------------------------------------------------------------- the identity seed


@pytest.mark.parametrize(
    ("fn", "wrt", "args"), [pytest.param(*case, id=case[0].__name__) for case in VECTOR_CASES[1:]]
)
def test_vector_seed_is_folded_at_matmul(fn, wrt, args) -> None:
    source = fmad.differentiate(fn, wrt=wrt).source_for(*args)
    assert not re.search(r"\beye\b|\bidentity\b", source), source


def test_folded_seed_gives_the_jacobian_of_a_matrix_vector_product() -> None:
    X = np.arange(12.0).reshape(4, 3)
    value, grads = fmad.differentiate(pm.matvec, wrt=["w"])(X, np.ones(3))
    assert np.array_equal(value, X @ np.ones(3))
    assert np.array_equal(grads["w"], X)


# ---------------------------------------------------------------- shared partials


def test_a_partial_derivative_is_computed_once_for_every_direction() -> None:
    code = code_for(pm.train_loop, ["w", "b"], None)
    assert code.value_of("loss_partial") == ["2.0 * y_pred_sub_y"]
    for tangent in ("dloss_dw", "dloss_db"):
        (value,) = code.value_of(tangent)
        assert "loss_partial" in value and "y_pred_sub_y" not in value.replace(
            "dy_pred_sub_y", ""
        ), value


def test_a_call_partial_is_shared_by_three_directions() -> None:
    code = code_for(pm.three_directions, None, None)
    assert code.text.count("np.cos(") == 1
    (partial,) = [
        n for s in code.derivative_statements() for n in code.binds(s) if n.endswith("_partial")
    ]
    readers = [s for s in code.derivative_statements() if partial in B.read_names(s)]
    assert sorted(n for s in readers for n in code.binds(s)) == ["dz_da", "dz_db", "dz_dc"]


def copied_partials(code: Code) -> list[str]:
    """Shared partials (derivative values that are not tangents) that only copy a name."""
    return [
        ast.unparse(s)
        for s in code.derivative_statements()
        if isinstance(s, ast.Assign)
        and isinstance(s.value, ast.Name)
        and all(code.primal_of(n) is None for n in code.binds(s))
    ]


@pytest.mark.parametrize(("fn", "wrt", "args"), all_codes())
def test_a_shared_partial_is_never_a_plain_copy(fn, wrt, args) -> None:
    assert copied_partials(code_for(fn, wrt, args)) == []


def test_a_shared_partial_is_never_a_plain_copy_with_every_parameter() -> None:
    assert copied_partials(code_for(pm.train_loop, None, None)) == []


# ---------------------------------------------------------------- placement


def misplaced_tangents(code: Code) -> list[str]:
    """Tangent statements that do not follow (in the same block) the statement binding
    their value: the last primal statement before them, or the loop header."""
    problems = []
    for body, owner in code.blocks():
        last_primal: set[str] | None = None
        for s in body:
            if not code.is_derivative(s):
                last_primal = code.binds(s) if isinstance(s, ast.Assign | ast.Expr) else set()
                continue
            for name in code.binds(s):
                value = code.primal_of(name)
                if value is None:
                    continue  # a shared partial
                if last_primal is not None:
                    ok = value in last_primal
                elif isinstance(owner, ast.For) and body is owner.body:
                    ok = value in B.stored_names(owner.target)
                else:  # before any primal line of the function: a parameter's tangent
                    ok = owner is code.tree and value in {a.arg for a in owner.args.args}
                if not ok:
                    problems.append(ast.unparse(s))
    return problems


@pytest.mark.parametrize(("fn", "wrt", "args"), all_codes())
def test_each_tangent_follows_its_primal_statement(fn, wrt, args) -> None:
    assert misplaced_tangents(code_for(fn, wrt, args)) == []


def test_the_placement_checker_finds_a_tangent_moved_out_of_its_block() -> None:
    code = code_for(pm.loop_branch_helper, ["w", "b"], None)
    loop = next(s for s in code.tree.body if isinstance(s, ast.For))
    moved = loop.body[0].orelse.pop(1)  # dacc_mult_w_dw, out of the else branch
    code.tree.body.insert(-1, moved)
    assert misplaced_tangents(code)


def path_to(code: Code, tangent: str) -> list[str]:
    """The compound statements (and branch) enclosing the assignment to ``tangent``."""

    def search(body, path):
        for s in body:
            if isinstance(s, ast.Assign) and tangent in code.binds(s):
                return path
            if isinstance(s, ast.If | ast.For | ast.While):
                kind = type(s).__name__
                found = search(s.body, [*path, kind]) or search(s.orelse, [*path, kind + "-else"])
                if found:
                    return found
        return None

    return search(code.tree.body, [])


def test_tangents_sit_inside_the_loop_and_branch_of_their_primal() -> None:
    code = code_for(pm.loop_branch_helper, ["w", "b"], None)
    assert path_to(code, "dacc_mult_w_dw") == ["For", "If-else"]
    assert path_to(code, "dacc_mult_w_db") == ["For", "If-else"]
    assert path_to(code, "sin_b_partial") == ["For", "If-else"]
    assert path_to(code, "dacc_add_dw") == ["For", "If"]
    assert path_to(code, "dacc_db") == []  # the entry value, b's seed
    branches = code_for(pm.conditional_value, None, None)
    assert path_to(branches, "dy_dx") == ["If"]
