"""The public function's guard tests only what it must (fmad/compile.py, fmad/lazy.py,
fmad/floats.py): the ``wrt`` arguments' types, and the result's type unless the code surely
makes a float. Every kind of argument, in a ``wrt`` or a data position, still gets what the
general path (:meth:`fmad.api.Transformed.call`, which picks its variant from the
arguments) gives: the same value and gradients, bit for bit and of the same types, or the
same exception; a kind fmad cannot differentiate with respect to is refused at the ``def``.
"""

from __future__ import annotations

import ast
import fractions
import inspect
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fmad
from fmad import floats
from fmad.variable import Variable
from tests.fdcheck import check_gradients


def linear(X, y, w, b):  # lean: arithmetic of its own names
    return ((w * X + b) - y) ** 2


def graph(a, b, c, f):  # bundled (four parameters), no data: the result surely a float
    return (a * b + c) * f


def calls(X, w, b):  # full dispatcher from the start (a numpy call)
    return np.tanh(w * X) + b


def bundled(X, w1, w2, w3):  # bundled, with data
    return (w1 * X + w2) * w3


def branchy(x, w):  # a float on one branch only
    if x > 0:
        return w * 2.0
    return 3


KINDS = {
    "float": lambda: 0.75,
    "int": lambda: 3,
    "bool": lambda: True,
    "float64": lambda: np.float64(0.75),
    "float32": lambda: np.float32(0.75),
    "0-d": lambda: np.array(0.75),
    "ndarray": lambda: np.array([0.5, -1.5, 2.0]),
    "list": lambda: [0.5, 2.0],
    "Variable": lambda: Variable("v", 0.75),
    "Variable of an array": lambda: Variable("v", np.array([0.5, 2.0])),
    "Fraction": lambda: fractions.Fraction(3, 4),
    "str": lambda: "abc",
    "object": lambda: object(),
    "set": lambda: {1.0},
    "None": lambda: None,
}

CASES = [
    (linear, ["w", "b"], (3.0, 7.0, 0.5, 0.25)),
    (graph, ["a", "b", "c", "f"], (2.0, -3.0, 10.0, -2.0)),
    (calls, ["w", "b"], (0.3, 0.5, 0.25)),
    (bundled, ["w1", "w2", "w3"], (1.5, 0.5, 0.25, -1.0)),
    (branchy, ["w"], (1.0, 0.5)),
]


def outcome(call, args):
    """``("ok", value, grads)`` or ``("raised", exception type, message)``."""
    try:
        value, grads = call(*args)
    except Exception as exc:  # the same exception on both paths
        return ("raised", type(exc), str(exc))
    return ("ok", value, grads)


def assert_same(got, want) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "raised":
        assert got[1:] == want[1:]
        return
    _, value, grads = got
    _, expected_value, expected = want
    assert type(value) is type(expected_value)
    assert np.array_equal(np.asarray(value), np.asarray(expected_value), equal_nan=True)
    assert grads.keys() == expected.keys()
    for name in grads:
        assert type(grads[name]) is type(expected[name]), name
        assert np.array_equal(np.asarray(grads[name]), np.asarray(expected[name]))


def general(fn, wrt):
    """A fresh transform's general path: it picks the variant from the arguments."""
    return fmad.differentiate(fn, wrt=wrt).__fmad__.call


@pytest.mark.parametrize(("fn", "wrt", "args"), CASES, ids=lambda c: getattr(c, "__name__", ""))
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("warm", [False, True], ids=["first call", "after a float call"])
def test_every_kind_in_every_position_gets_the_general_paths_answer(
    fn, wrt, args, kind, warm
) -> None:
    f = fmad.differentiate(fn, wrt=wrt)
    if warm:
        f(*args)  # the dispatcher (lean or full) is compiled and is the public code now
    for position in range(len(args)):
        call_args = list(args)
        call_args[position] = KINDS[kind]()
        got = outcome(f, call_args)
        assert_same(got, outcome(general(fn, wrt), call_args))
        assert_same(outcome(f, args), outcome(general(fn, wrt), args))  # and back


@pytest.mark.parametrize("kind", ["str", "object", "set", "None", "list of str"])
def test_a_wrt_argument_fmad_cannot_take_is_refused_at_the_def(kind) -> None:
    f = fmad.differentiate(linear, wrt=["w", "b"])
    f(3.0, 7.0, 0.5, 0.25)
    bad = ["a", "b"] if kind == "list of str" else KINDS[kind]()
    with pytest.raises(fmad.UnsupportedError) as info:
        f(3.0, 7.0, bad, 0.25)
    line = inspect.getsourcelines(linear)[1]
    assert str(info.value).startswith(f"{__file__}:{line}:")
    assert "'w'" in str(info.value)


def test_array_data_after_numbers_upgrade_to_the_full_dispatcher_once() -> None:
    f = fmad.differentiate(linear, wrt=["w", "b"])
    state = f.__fmad_lazy__
    f(3.0, 7.0, 0.5, 0.25)
    assert (state.built, state.builds) == ("lean", 1)
    X = np.linspace(-1.0, 1.0, 7)
    for _ in range(3):
        assert_same(
            outcome(f, (X, 7.0, 0.5, 0.25)),
            outcome(general(linear, ["w", "b"]), (X, 7.0, 0.5, 0.25)),
        )
    assert (state.built, state.builds) == ("full", 2)
    check_gradients(f, {"X": X, "y": 7.0, "w": 0.5, "b": 0.25})


def test_number_data_that_is_not_a_plain_float_stays_exact() -> None:
    """np.float64 data make an np.float64 value: shaped as the general path shapes it."""
    f = fmad.differentiate(linear, wrt=["w", "b"])
    f(3.0, 7.0, 0.5, 0.25)
    for X in (np.float64(3.0), np.float32(3.0), np.array(3.0), 3, True):
        args = (X, 7.0, 0.5, 0.25)
        assert_same(outcome(f, args), outcome(general(linear, ["w", "b"]), args))
        assert f(*args)[0] == linear(*args)


def test_the_results_type_test_goes_only_where_the_result_is_surely_a_float() -> None:
    def dispatcher_of(fn, wrt, args):
        f = fmad.differentiate(fn, wrt=wrt)
        f(*args)
        return f.__code__.co_names, f.__code__.co_freevars, f

    # a result test reads fmad_type after the body: count the calls of type in the code
    def type_calls(f) -> int:
        import dis

        return sum(
            1
            for i in dis.get_instructions(f)
            if i.opname == "LOAD_DEREF" and i.argval == "fmad_type"
        )

    _, _, g = dispatcher_of(graph, ["a", "b", "c", "f"], (2.0, -3.0, 10.0, -2.0))
    assert type_calls(g) == 4  # the four parameters, not the result
    _, _, lin = dispatcher_of(linear, ["w", "b"], (3.0, 7.0, 0.5, 0.25))
    assert type_calls(lin) == 3  # w, b and the result (it depends on the data)


def float_kinds(source: str, floats_: set[str]) -> list[bool]:
    """For each return of ``source``'s function, in order: surely a float?"""
    tree = ast.parse(textwrap.dedent(source)).body[0]
    sure = floats.float_returns(tree, floats_)
    returns = sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.Return)), key=lambda n: n.lineno
    )
    return [id(node) in sure for node in returns]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(w, b):\n    return w * b + 1", [True]),
        ("def f(w, b):\n    return w ** 2, w", [True]),
        ("def f(w, b):\n    return w ** 2.0", [True]),
        ("def f(w, b):\n    return w ** 0.5", [False]),  # complex for a negative w
        ("def f(w, b):\n    return w ** b", [False]),
        ("def f(w, b):\n    return 2 ** 3", [False]),
        ("def f(w, b):\n    return 1 / 2", [True]),  # true division of ints
        ("def f(w, b):\n    return -w // 3 % 2", [True]),
        ("def f(w, X):\n    return w * X", [False]),  # X is data: any type
        ("def f(w, b):\n    return w @ b", [False]),
        ("def f(w, b):\n    return w < b", [False]),
        ("def f(w, b):\n    return ~w", [False]),
        ("def f(w, b):\n    return g * w", [False]),  # a global
        ("def f(w, b):\n    a, c = w, b\n    return a", [False]),
        ("def f(w, b):\n    w = b > 0\n    return w", [False]),
        ("def f(w, b):\n    if w:\n        c = w\n    else:\n        c = 1\n    return c", [False]),
        ("def f(w, b):\n    if w:\n        c = w\n    else:\n        c = b\n    return c", [True]),
        ("def f(w, b):\n    if w:\n        return w\n    return 1", [True, False]),
        ("def f(w, b):\n    for i in b:\n        pass\n    return w", [False]),
        ("def f(w, b):\n    (c := 2)\n    return w", [False]),
        ("def f(w, b):\n    c = w\n    c = (c := 2)\n    return c", [False]),
    ],
)
def test_float_returns(source, expected) -> None:
    assert float_kinds(source, {"w", "b"}) == expected


# random arithmetic of two float parameters, a data parameter and constants
LEAVES = st.sampled_from(["w", "b", "X", "2", "0.5", "3.0", "True", "-1", "0"])
OPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])


def expressions(depth: int = 3) -> st.SearchStrategy[str]:
    return st.recursive(
        LEAVES,
        lambda inner: st.one_of(
            st.tuples(inner, OPS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"(-{e})"),
        ),
        max_leaves=6,
    )


@settings(max_examples=300, deadline=None)
@given(
    expr=expressions(),
    w=st.floats(-3, 3),
    b=st.floats(-3, 3),
    X=st.sampled_from([2, 0.5, np.float64(1.5), np.array([1.0, -2.0]), True]),
)
def test_a_return_said_to_be_a_float_is_one(expr, w, b, X) -> None:
    source = f"def f(w, b, X):\n    return {expr}\n"
    (sure,) = float_kinds(source, {"w", "b"})
    if not sure:
        return
    namespace: dict = {}
    exec(source, namespace)
    try:
        value = namespace["f"](w, b, X)
    except (ZeroDivisionError, OverflowError):
        return
    assert type(value) is float, (expr, w, b, X, value)
