"""fmad.flatten: one operation per assignment, on names and constants, same meaning.

The invariant is checked by walking the flattened tree; the meaning by compiling the
flattened function and comparing its result, bit for bit, with the original's.
"""

from __future__ import annotations

import ast
import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fmad
from fmad.activity import statements
from fmad.build import bound_names
from fmad.errors import UnsupportedError
from fmad.flatten import Flattener, is_atom
from fmad.naming import Namer, names_in
from fmad.resolve import Scope
from fmad.source import read_function
from tests import arrays_module, programs_module
from tests import passes_module as pm
from tests.fdcheck import same_value

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ITERATION_HELPERS = {"range", "zip", "enumerate", "reversed"}


def flatten(fn) -> ast.FunctionDef:
    """The flattening pass set up as fmad.transform.prepare sets it up."""
    src = read_function(fn)
    scope = Scope(src.function, bound_names(src.tree))
    namer = Namer(names_in(src.tree) | set(src.function.__code__.co_freevars))
    return Flattener(src.filename, namer, scope).function(src.tree)


def compiled(fn, flat: ast.FunctionDef):
    """The flattened function, compiled in the original's globals."""
    namespace = dict(fn.__globals__)
    exec(compile(ast.unparse(flat), f"<flat {fn.__name__}>", "exec"), namespace)
    return namespace[flat.name]


def rooted_at_name(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def index_is_flat(index: ast.expr) -> bool:
    if isinstance(index, ast.Slice):
        return all(p is None or is_atom(p) for p in (index.lower, index.upper, index.step))
    if isinstance(index, ast.Tuple):
        return all(index_is_flat(e) for e in index.elts)
    return is_atom(index)


def problem_with(value: ast.expr) -> str | None:
    """Why ``value`` is not one operation on atoms, or None."""
    if is_atom(value):
        return None
    if isinstance(value, ast.BinOp):
        ok = is_atom(value.left) and is_atom(value.right)
    elif isinstance(value, ast.UnaryOp):
        ok = is_atom(value.operand)
    elif isinstance(value, ast.Call):
        ok = (
            rooted_at_name(value.func)
            and all(is_atom(a) for a in value.args)
            and all(is_atom(k.value) for k in value.keywords)
        )
    elif isinstance(value, ast.Subscript):
        ok = is_atom(value.value) and index_is_flat(value.slice)
    elif isinstance(value, ast.Attribute):
        ok = rooted_at_name(value)
    elif isinstance(value, ast.Compare):
        ok = is_atom(value.left) and all(is_atom(c) for c in value.comparators)
    elif isinstance(value, ast.List | ast.Tuple | ast.Set):
        ok = all(is_atom(e) for e in value.elts)
    elif isinstance(value, ast.Dict):
        ok = all(is_atom(n) for n in [*value.keys, *value.values])
    elif isinstance(value, ast.JoinedStr):
        ok = True
    else:
        ok = False
    return None if ok else ast.unparse(value)


def flatness_problems(flat: ast.FunctionDef) -> list[str]:
    problems = []
    for s in statements(flat.body):
        line = ast.unparse(s).splitlines()[0]
        if isinstance(s, ast.Assign):
            if len(s.targets) != 1:
                problems.append(f"chained assignment: {line}")
            if problem_with(s.value):
                problems.append(f"not flat: {line}")
            target = s.targets[0]
            if isinstance(target, ast.Name) and not is_atom(s.value):
                reads = {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}
                if target.id in reads:
                    problems.append(f"reads its own target: {line}")
        elif isinstance(s, ast.AugAssign | ast.AnnAssign):
            problems.append(f"augmented/annotated assignment left: {line}")
        elif isinstance(s, ast.Expr) and not isinstance(s.value, ast.Constant):
            if problem_with(s.value):
                problems.append(f"not flat: {line}")
        elif isinstance(s, ast.Return) and s.value is not None:
            elts = s.value.elts if isinstance(s.value, ast.Tuple) else [s.value]
            if not all(is_atom(e) for e in elts):
                problems.append(f"return of an expression: {line}")
        elif isinstance(s, ast.For):
            it = s.iter
            helper = (
                isinstance(it, ast.Call)
                and isinstance(it.func, ast.Name)
                and it.func.id in ITERATION_HELPERS
                and all(is_atom(a) for a in it.args)
            )
            if not (is_atom(it) or helper):
                problems.append(f"loop over an expression: {line}")
        # the tests of if / while / assert are left as written (flatten.py's docstring)
    return problems


def module_functions(module) -> list:
    return [
        f
        for f in vars(module).values()
        if inspect.isfunction(f) and f.__module__ == module.__name__ and f.__name__[0] != "_"
    ]


def flattenable(module) -> list:
    found = []
    for fn in module_functions(module):
        try:
            flatten(fn)
        except (UnsupportedError, fmad.SourceError):
            continue
        found.append(pytest.param(fn, id=f"{module.__name__.split('.')[-1]}.{fn.__name__}"))
    return found


ALL_FUNCTIONS = flattenable(pm) + flattenable(programs_module) + flattenable(arrays_module)


# ---------------------------------------------------------------- the invariant


def test_the_invariant_checker_rejects_unflattened_code() -> None:
    original = read_function(pm.nested_expression).tree
    assert flatness_problems(original)
    assert flatness_problems(read_function(pm.augmented).tree)
    assert flatness_problems(read_function(pm.chained).tree)


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
def test_every_operation_sits_alone_on_names_and_constants(fn) -> None:
    assert flatness_problems(flatten(fn)) == []


def test_deep_expression_becomes_one_line_per_operation() -> None:
    flat = flatten(pm.nested_expression)
    assigns = [s for s in flat.body if isinstance(s, ast.Assign)]
    # w*x, +b, **2, unary -, exp, abs, 1+, /, cos, +, tanh, * : twelve operations
    assert len(assigns) == 12
    assert ast.unparse(assigns[0]) == "w_mult_x = w * x"


# ---------------------------------------------------------------- assignments


def test_a_right_side_reading_its_own_target_goes_through_a_fresh_name() -> None:
    text = ast.unparse(flatten(pm.self_reference))
    assert "x_mult_w_add_x = x_mult_w + x\n    x = x_mult_w_add_x" in text
    assert "w_mult_w = w * w\n    w = w_mult_w" in text


def test_augmented_assignments_become_plain_ones() -> None:
    flat = flatten(pm.augmented)
    assert not [n for n in ast.walk(flat) if isinstance(n, ast.AugAssign)]
    text = ast.unparse(flat)
    assert "s_add_w_mult_x = s + w_mult_x\n    s = s_add_w_mult_x" in text
    assert "s_mult_w = s * w\n    s = s_mult_w" in text


def test_augmented_item_assignment_reads_the_old_item_first() -> None:
    flat = flatten(pm.augmented_item)
    assert not [n for n in ast.walk(flat) if isinstance(n, ast.AugAssign)]
    text = ast.unparse(flat)
    assert "ys_0 = ys[0]" in text and "ys[0] = ys_0_add_xs_0" in text


def test_chained_assignment_is_one_assignment_per_target() -> None:
    flat = flatten(pm.chained)
    lines = ast.unparse(flat).splitlines()
    assert "    a = w_mult_x" in lines and "    b = w_mult_x" in lines
    assert all(len(s.targets) == 1 for s in flat.body if isinstance(s, ast.Assign))


# ---------------------------------------------------------------- short circuits


def test_conditional_expression_becomes_an_if_statement() -> None:
    flat = flatten(pm.conditional_value)
    assert not [n for n in ast.walk(flat) if isinstance(n, ast.IfExp)]
    branch = next(s for s in flat.body if isinstance(s, ast.If))
    assert ast.unparse(branch.test) == "x != 0.0"
    # 1.0 / x would raise ZeroDivisionError if it were evaluated for x == 0
    assert compiled(pm.conditional_value, flat)(0.0, 1.5) == pm.conditional_value(0.0, 1.5)
    assert fmad.differentiate(pm.conditional_value, wrt=["w"])(0.0, 1.5) == (2.25, {"w": 3.0})


def test_and_or_keep_their_short_circuit() -> None:
    flat = flatten(pm.short_circuit)
    assert not [
        n
        for s in statements(flat.body)
        if isinstance(s, ast.Assign)
        for n in ast.walk(s.value)
        if isinstance(n, ast.BoolOp)
    ]
    run = compiled(pm.short_circuit, flat)
    # xs[0] raises IndexError on [] if the second operand is evaluated
    assert run([], 1.5) == pm.short_circuit([], 1.5) == 3.0
    for xs in ([2.0], [-1.0]):
        assert same_value(run(xs, 1.5), pm.short_circuit(xs, 1.5))
    value, grads = fmad.differentiate(pm.short_circuit, wrt=["w"])([], 1.5)
    assert (value, grads) == (3.0, {"w": 2.0})


def test_chained_comparison_keeps_its_short_circuit() -> None:
    # 0 < len([]) is False, so Python never evaluates xs[0] * 10.0
    assert pm.chained_guard([], 1.5) == 1.5
    assert compiled(pm.chained_guard, flatten(pm.chained_guard))([], 1.5) == 1.5
    assert fmad.differentiate(pm.chained_guard, wrt=["w"])([], 1.5) == (1.5, {"w": 1.0})


@pytest.mark.parametrize("w", [1.5, -1.5, 0.0])
def test_calls_run_once_each_in_the_original_order(w: float) -> None:
    run = compiled(pm.evaluation_order, flatten(pm.evaluation_order))
    pm.CALLS.clear()
    expected = pm.evaluation_order(w)
    original_calls = list(pm.CALLS)
    pm.CALLS.clear()
    assert same_value(run(w), expected)
    assert pm.CALLS == original_calls
    pm.CALLS.clear()


# ---------------------------------------------------------------- comprehensions


def test_comprehensions_become_loops_with_fresh_loop_variables() -> None:
    flat = flatten(pm.comprehension)
    assert not [n for n in ast.walk(flat) if isinstance(n, ast.ListComp | ast.GeneratorExp)]
    loop_targets = [
        n.id
        for s in statements(flat.body)
        if isinstance(s, ast.For)
        for n in ast.walk(s.target)
        if isinstance(n, ast.Name)
    ]
    assert len(loop_targets) == 3
    # the comprehensions' x, a and b are their own: fresh names in the loops
    assert not {"x", "a", "b"} & set(loop_targets)
    # the function's own x is bound once, before the comprehension, and never again
    stores_of_x = [
        s
        for s in statements(flat.body)
        if isinstance(s, ast.Assign)
        and "x" in {n.id for n in ast.walk(s.targets[0]) if isinstance(n, ast.Name)}
    ]
    assert [ast.unparse(s) for s in stores_of_x] == ["x = w * 3.0"]
    appends = [
        s
        for s in statements(flat.body)
        if isinstance(s, ast.Expr) and ast.unparse(s.value.func).endswith(".append")
    ]
    assert len(appends) == 2
    xs = [1.5, -2.0, 0.5]
    assert same_value(compiled(pm.comprehension, flat)(xs, 0.75), pm.comprehension(xs, 0.75))


# ---------------------------------------------------------------- same numbers

finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
nonzero = finite.filter(lambda v: abs(v) > 1e-3)
float_lists = st.lists(finite, max_size=4)

CASES = {
    "train_loop": (pm.train_loop, st.tuples(finite, finite, finite, finite)),
    "nested_expression": (pm.nested_expression, st.tuples(finite, finite, finite)),
    "self_reference": (pm.self_reference, st.tuples(finite, finite)),
    "augmented": (pm.augmented, st.tuples(finite, finite)),
    "augmented_item": (pm.augmented_item, st.tuples(st.lists(finite, min_size=2), finite)),
    "chained": (pm.chained, st.tuples(finite, finite)),
    "conditional_value": (pm.conditional_value, st.tuples(finite | st.just(0.0), finite)),
    "short_circuit": (pm.short_circuit, st.tuples(float_lists, finite)),
    "comprehension": (pm.comprehension, st.tuples(float_lists, finite)),
    "compare_values": (pm.compare_values, st.tuples(finite, finite)),
    "loop_carried": (pm.loop_carried, st.tuples(finite, finite, st.integers(0, 4))),
    "long_chain": (pm.long_chain, st.tuples(finite, finite, nonzero, finite)),
    "loop_branch_helper": (
        pm.loop_branch_helper,
        st.tuples(finite, finite, finite, st.integers(0, 5)),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_flattened_function_returns_the_original_value_bit_for_bit(name: str) -> None:
    fn, arguments = CASES[name]
    run = compiled(fn, flatten(fn))

    @SETTINGS
    @given(arguments)
    def check(args: tuple) -> None:
        assert same_value(run(*args), fn(*args)), args

    check()


def test_flattened_array_code_returns_the_original_value_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    X, y, w = rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=3)
    for fn, args in [
        (pm.mixed_model, (X, y, w, rng.normal(size=1))),
        (pm.subscripts_and_attributes, (X, w[:2])),
        (pm.mse, (X, y, w, 0.5)),
    ]:
        assert same_value(compiled(fn, flatten(fn))(*args), fn(*args))
    assert math.isfinite(pm.subscripts_and_attributes(X, w[:2]))
