"""fmad.naming: generated names are readable, deterministic and never collide.

A name fmad hands out must differ from every name the function binds or reads (parameters,
locals, the globals it reads, builtins), or the generated code would read the wrong value.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import importlib.util
import inspect
import keyword
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fmad
from fmad.build import bound_names
from fmad.naming import MAX_NAME_LENGTH, Namer, describe, names_in
from fmad.transform import prepare
from tests import passes_module as pm
from tests.fdcheck import same_value

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def assigned_names(source: str) -> list[str]:
    """Names bound by the generated code, in order: assignment targets, defs, parameters."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.append(node.id)
        elif isinstance(node, ast.FunctionDef):
            found.append(node.name)
        elif isinstance(node, ast.arg):
            found.append(node.arg)
    return found


def flat_names(fn) -> list[str]:
    """The names the flattening pass bound, in order of appearance."""
    src, _, _, flat = prepare(fn)
    user = bound_names(src.tree) | {src.tree.name}
    return [n for n in assigned_names(ast.unparse(flat)) if n not in user]


# ---------------------------------------------------------------- readable names


def test_operations_are_named_after_their_operands() -> None:
    assert flat_names(pm.linear) == ["w_mult_X", "w_mult_X_add_b"]
    text = fmad.differentiate(pm.linear, wrt=["w", "b"]).flat_source
    assert "w_mult_X = w * X" in text
    assert "w_mult_X_add_b = w_mult_X + b" in text


def test_tangents_are_named_d_value_d_parameter() -> None:
    names = set(assigned_names(fmad.differentiate(pm.train_loop, wrt=["w", "b"]).source))
    assert {"dloss_dw", "dloss_db"} <= names
    assert "dy_pred_dw" not in names  # a copy of X: the code reads X
    # a tangent never gets a name built any other way
    parameters = {"X", "y", "w", "b"}
    for name in names - parameters:
        if name.startswith("d") and name not in flat_names(pm.train_loop):
            assert name.endswith(("_dw", "_db")) or name.endswith("_partial"), name


def test_calls_subscripts_constants_and_unary_operators_have_readable_names() -> None:
    names = flat_names(pm.nested_expression)
    for expected in ("w_mult_x", "abs_x", "cos_w", "tanh_b", "c1p0_add_abs_x"):
        assert expected in names, names
    assert describe(ast.Constant(-2.5)) == "neg2p5"
    assert describe(ast.UnaryOp(op=ast.USub(), operand=ast.Constant(2.0))) == "neg2p0"
    assert "X_T" in flat_names(pm.transposed)


def test_long_chains_fall_back_to_short_numbered_names() -> None:
    # "alpha_mult_beta_add_gamma" is longer than MAX_NAME_LENGTH
    assert flat_names(pm.long_chain) == [
        "alpha_mult_beta",
        "add_1",
        "add_1_mult_delta",
        "alpha_div_gamma",
        "sub_1",
    ]
    namer = Namer()
    long = ast.Name(id="a" * MAX_NAME_LENGTH)
    assert namer.for_binop(ast.Add(), long, ast.Name(id="b")) == "add_1"
    assert namer.for_binop(ast.Add(), long, ast.Name(id="b")) == "add_2"
    assert namer.for_unaryop(ast.USub(), long) == "neg_1"
    assert namer.for_call(ast.Name(id="exp"), [long]) == "exp_1"


def test_long_names_inside_an_assignment_are_named_after_its_target() -> None:
    # the same chain assigned to a name: its parts are named after the target
    assert flat_names(pm.long_chain_assigned) == [
        "alpha_mult_beta",
        "result_add",
        "result_add_mult_delta",
        "alpha_div_gamma",
    ]
    namer = Namer({"acc"})
    namer.stem = "acc"
    long = ast.Name(id="a" * MAX_NAME_LENGTH)
    assert namer.for_binop(ast.Add(), long, ast.Name(id="b")) == "acc_add"
    assert namer.for_binop(ast.Add(), long, ast.Name(id="b")) == "acc_add_1"
    namer.stem = "s" * MAX_NAME_LENGTH  # too long itself: the numbered name
    assert namer.for_unaryop(ast.USub(), long) == "neg_1"


def test_every_generated_name_is_a_short_identifier() -> None:
    for fn in (pm.long_chain, pm.nested_expression, pm.mixed_model, pm.comprehension):
        tree = prepare(fn)[0].tree
        user = bound_names(tree) | {tree.name}
        source = fmad.differentiate(fn).source
        for name in set(assigned_names(source)) - user:
            assert name.isidentifier() and not keyword.iskeyword(name), name
            # a tangent may add "d" and "_d<param>" to a value's name
            assert len(name) <= MAX_NAME_LENGTH + 2 + 2 + len("_partial") + 4, name


def test_fresh_sanitises_hints() -> None:
    namer = Namer()
    assert namer.fresh("2x") == "c2x"
    assert namer.fresh("a-b.c") == "a_b_c"
    assert namer.fresh("") == "t"


# ---------------------------------------------------------------- never a used name


def test_builtins_and_keywords_are_never_handed_out() -> None:
    namer = Namer()
    assert namer.fresh("list") == "list_1"
    assert namer.fresh("sum") == "sum_1"
    assert namer.fresh("lambda") == "lambda_1"
    # a list literal is named after "list", and must not shadow the builtin
    names = flat_names(pm.list_literal)
    assert "list" not in names
    assert not set(assigned_names(fmad.differentiate(pm.list_literal).source)) & set(dir(builtins))


def test_a_name_the_function_uses_is_skipped() -> None:
    namer = Namer({"w_mult_X", "w_mult_X_1", "dloss_dw"})
    assert namer.for_binop(ast.Mult(), ast.Name(id="w"), ast.Name(id="X")) == "w_mult_X_2"
    assert namer.tangent("loss", "w") == "dloss_dw_1"
    assert namer.copy().fresh("w_mult_X") == "w_mult_X_3"


HINT_POOL = ["w_mult_X", "add_1", "x", "dloss_dw", "loss_partial", "list", "i", "t", "pow"]
RESERVED_POOL = [
    *HINT_POOL,
    *(f"{h}_{n}" for h in HINT_POOL for n in (1, 2, 3)),
    "add_1_1",
    "add_4",
]


@SETTINGS
@given(
    reserved=st.sets(st.sampled_from(RESERVED_POOL), max_size=20),
    hints=st.lists(st.sampled_from(HINT_POOL), min_size=1, max_size=12),
)
def test_fresh_names_avoid_every_reserved_name(reserved: set[str], hints: list[str]) -> None:
    namer = Namer(reserved)
    handed_out = [namer.fresh(h) for h in hints] + [namer.tangent(h, "w") for h in hints]
    assert len(set(handed_out)) == len(handed_out)
    for name in handed_out:
        assert name.isidentifier()
        assert name not in reserved
        assert not keyword.iskeyword(name) and not hasattr(builtins, name), name


# Names fmad generates for the program below (plus modules it may inject), so a random
# choice of them as the function's own names forces collisions.
PROGRAM_NAMES = [
    "w_mult_X",
    "y_pred_sub_y",
    "loss_partial",
    "dloss_dw",
    "dloss_db",
    "dy_pred_dw",
    "dw_mult_X_dw",
    "add_1",
    "add_2",
    "abs_b",
    "abs_b_partial",
    "c1p5_pow_w",
    "y_1",
    "np",
    "np_1",
    "fmad_rt",
    "math",
    "unused",
    "t",
]


def render_program(roles: dict[str, str]) -> str:
    """A function using each name in ``roles`` as a parameter, a local or a global it reads."""
    globals_ = [f"{n} = 0.125" for n, r in roles.items() if r == "global"]
    params = "".join(f", {n}=0.5" for n, r in roles.items() if r == "param")
    locals_ = [f"    {n} = 0.25" for n, r in roles.items() if r == "local"]
    extra = " + ".join(["0.0", *roles])
    lines = [
        *globals_,
        "",
        "",
        f"def program(X, y, w, b{params}):",
        *locals_,
        "    y_pred = w * X + b",
        "    loss = (y_pred - y) ** 2 + 1.5 ** w + abs(b)",
        f"    extra = {extra}",
        "    return loss + extra * w",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def load_program(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("naming_programs")

    def load(source: str):
        name = "fmad_naming_" + hashlib.sha256(source.encode()).hexdigest()[:16]
        path = Path(directory, f"{name}.py")
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module.program

    return load


@SETTINGS
@given(
    roles=st.dictionaries(
        st.sampled_from(PROGRAM_NAMES), st.sampled_from(["param", "local", "global"]), max_size=8
    ),
    point=st.tuples(*[st.floats(-2.0, 2.0) for _ in range(4)]),
)
def test_generated_code_never_rebinds_a_name_the_function_uses(
    load_program, roles: dict[str, str], point: tuple[float, float, float, float]
) -> None:
    program = load_program(render_program(roles))
    X, y, w, b = point
    differentiated = fmad.differentiate(program, wrt=["w", "b"])
    tree = ast.parse(textwrap.dedent(inspect.getsource(program))).body[0]
    used = names_in(tree)

    new = set(assigned_names(differentiated.source)) - bound_names(tree) - {tree.name}
    assert not new & used, f"generated code rebinds {sorted(new & used)}"
    assert not new & set(dir(builtins))
    assert not set(differentiated.__fmad__._default.unit.injected) & used

    value, grads = differentiated(X, y, w, b)
    assert same_value(value, program(X, y, w, b))
    extra = sum(0.25 if r == "local" else 0.5 if r == "param" else 0.125 for r in roles.values())
    residual = 2.0 * (w * X + b - y)
    assert math.isclose(
        grads["w"], residual * X + 1.5**w * math.log(1.5) + extra, rel_tol=1e-12, abs_tol=1e-12
    )
    assert math.isclose(grads["b"], residual + np.sign(b), rel_tol=1e-12, abs_tol=1e-12)


# ---------------------------------------------------------------- deterministic


@pytest.mark.parametrize(
    "fn",
    [
        pm.train_loop,
        pm.loop_branch_helper,
        pm.comprehension,
        pm.nested_free_variables,
        pm.mixed_model,
    ],
)
def test_the_same_function_transformed_twice_gives_identical_text(fn) -> None:
    first, second = fmad.differentiate(fn), fmad.differentiate(fn)
    assert first is not second
    assert first.source == second.source
    assert first.flat_source == second.flat_source


def test_vector_variants_are_named_identically_twice() -> None:
    args = (np.ones((4, 3)), np.ones(4), np.ones(3), np.ones(1))
    first = fmad.differentiate(pm.mixed_model).source_for(*args)
    assert fmad.differentiate(pm.mixed_model).source_for(*args) == first


def test_namers_with_the_same_reserved_names_agree() -> None:
    def run() -> list[str]:
        namer = Namer({"add_1", "x"})
        return [namer.fresh(h) for h in ("add", "add_1", "x", "x", "dloss_dw")]

    assert run() == run() == ["add", "add_1_1", "x_1", "x_2", "dloss_dw"]
