"""Reverse mode's control flow (issue 12): branches and loops inside loops, ``while`` loops,
``break``, ``continue``, loop ``else`` and ``return`` before the end (fmad/reverse_jumps.py,
fmad/reverse_loops.py, fmad/reverse_branches.py). Every case: the value bit for bit, the
gradient equal to forward mode's to rounding and to central differences; edge cases (no
iteration, a break or a return on the first one, nested loops with bounds read from data);
what the tape keeps per iteration; generated programs (hypothesis)."""

from __future__ import annotations

import inspect
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fmad
from tests import reverse_helpers_module as rh
from tests.fdcheck import check_gradients
from tests.reverse_check import compare
from tests.test_hypothesis_scalar import (  # noqa: F401 (program_loader: a fixture)
    finite_and_moderate,
    program_loader,
)


def line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def first_branch_returns(x, w):
    if x > 0:
        return w * x
    return -w


def returns_a_constant(x, w):
    if x > 0:
        return 2.0
    return w * w


def both_branches_return(x, w):
    if x > 0:
        return w * x
    else:
        return np.sin(w)


def bound_in_both_then_reassigned(x, w):
    # y is first bound in both branches (one name), then reassigned: two values
    if x > 0:
        y = w * x
    else:
        y = w
    y = y * w
    return y * y


def break_loop(xs, w):
    total = 0.0
    for x in xs:
        total = total + w * x
        if total > 1.0:
            break
    return total


def if_in_loop(xs, w):
    total = 0.0
    for x in xs:
        if x > 0:
            total = total + w * x
        else:
            total = total * w
    return total


def continue_and_break(xs, w, b):
    acc = b
    for x in xs:
        if x < 0.0:
            continue
        if x > 5.0:
            break
        acc = acc * w + x
    return acc


def while_true_break(n, w):
    i = 0
    s = w
    while True:
        if i >= n:
            break
        s = np.sin(s) * w
        i = i + 1
    return s


def while_halving(w, b):
    v = w * b
    while v > 1.0:
        v = v * 0.5
    return v * w


def while_else(n, w):
    i = 0
    s = w
    while i < n:
        s = s * w
        if s > 100.0:
            break
        i = i + 1
    else:
        s = s + 1.0
    return s


def for_else_return(xs, w):
    acc = w
    for x in xs:
        if x < 0.0:
            break
        acc = acc * x
    else:
        return acc * w
    return acc + w


def nested_data_bounds(xs, w):
    # the inner loop's length is the outer index: 0, 1, 2, ... iterations
    acc = w
    for i in range(len(xs)):
        for j in range(i):
            acc = acc + w * xs[i] * xs[j] * acc
    return acc


def nested_inner_break(xs, ys, w):
    acc = 0.0
    for x in xs:
        for y in ys:
            if y > x:
                break
            acc = acc + np.tanh(w * x * y)
    return acc


def return_from_inner_loop(xs, ys, w):
    acc = w
    for x in xs:
        for y in ys:
            acc = acc * w + x * y
            if acc > 10.0:
                return acc * x
    return acc


def while_in_for(xs, w):
    acc = 0.0
    for x in xs:
        v = x * w
        while v > 1.0:
            v = v * 0.5
        acc = acc + v * w
    return acc


def array_loop_branches(X, W, steps):
    H = X
    for k in range(steps):
        if k % 2 == 0:
            H = np.tanh(H @ W)
        else:
            H = H * 0.5 + H @ W
        if np.max(H) > 50.0:
            break
    return np.sum(H * H)


def helper_early(a):
    if a > 1.0:
        return a * a
    for k in range(3):
        if a < -k:
            return a - k
    return a * 3.0


def helper_in_loop(xs, w):
    acc = 0.0
    for x in xs:
        acc = acc + helper_early(w * x)
    return acc


def early_return_in_loop(xs, w):
    for x in xs:
        if w * x > 3.0:
            return w * x
    return -w


CASES = [
    (first_branch_returns, {"x": 1.0, "w": 0.7}, ["w"]),
    (first_branch_returns, {"x": -1.0, "w": 0.7}, ["w"]),
    (returns_a_constant, {"x": 1.0, "w": 0.7}, ["w"]),
    (returns_a_constant, {"x": -1.0, "w": 0.7}, ["w"]),
    (both_branches_return, {"x": 1.0, "w": 0.7}, ["w"]),
    (both_branches_return, {"x": -1.0, "w": 0.7}, ["w"]),
    (bound_in_both_then_reassigned, {"x": 1.0, "w": 0.7}, ["w"]),
    (bound_in_both_then_reassigned, {"x": -1.0, "w": 0.7}, ["w"]),
    (break_loop, {"xs": [0.5, 1.0, 2.0, 3.0], "w": 0.6}, ["w"]),
    (break_loop, {"xs": [5.0, 1.0], "w": 0.6}, ["w"]),  # a break on the first iteration
    (break_loop, {"xs": [], "w": 0.6}, ["w"]),  # no iteration
    (if_in_loop, {"xs": [0.5, -1.0, 2.0, -0.5], "w": 0.8}, ["w"]),
    (continue_and_break, {"xs": [1.0, -1.0, 2.0, 6.0, 3.0], "w": 0.9, "b": 0.3}, ["w", "b"]),
    (continue_and_break, {"xs": [-1.0, -2.0], "w": 0.9, "b": 0.3}, ["w", "b"]),
    (continue_and_break, {"xs": [7.0, 1.0], "w": 0.9, "b": 0.3}, ["w", "b"]),
    (while_true_break, {"n": 4, "w": 0.8}, ["w"]),
    (while_true_break, {"n": 0, "w": 0.8}, ["w"]),
    (while_halving, {"w": 3.0, "b": 2.5}, ["w", "b"]),
    (while_halving, {"w": 0.3, "b": 0.5}, ["w", "b"]),  # no iteration
    (while_else, {"n": 3, "w": 1.5}, ["w"]),
    (while_else, {"n": 9, "w": 1.9}, ["w"]),  # breaks
    (while_else, {"n": 0, "w": 1.9}, ["w"]),
    (for_else_return, {"xs": [1.0, 2.0], "w": 0.8}, ["w"]),
    (for_else_return, {"xs": [1.0, -1.0, 2.0], "w": 0.8}, ["w"]),
    (for_else_return, {"xs": [], "w": 0.8}, ["w"]),
    (nested_data_bounds, {"xs": [0.5, -1.0, 0.7, 0.3], "w": 0.4}, ["w"]),
    (nested_data_bounds, {"xs": [0.5], "w": 0.4}, ["w"]),
    (nested_inner_break, {"xs": [1.0, 2.0, 0.5], "ys": [0.3, 1.5, 0.2], "w": 0.7}, ["w"]),
    (nested_inner_break, {"xs": [1.0], "ys": [], "w": 0.7}, ["w"]),
    (return_from_inner_loop, {"xs": [1.0, 2.0], "ys": [1.5, 2.0], "w": 1.5}, ["w"]),
    (return_from_inner_loop, {"xs": [1.0, 2.0], "ys": [0.5, 0.2], "w": 0.5}, ["w"]),
    (return_from_inner_loop, {"xs": [20.0], "ys": [1.0], "w": 0.5}, ["w"]),  # first one
    (while_in_for, {"xs": [0.5, 3.0, 9.0], "w": 0.9}, ["w"]),
    (
        array_loop_branches,
        {"X": np.linspace(-1, 1, 6).reshape(2, 3), "W": np.eye(3) * 0.9 + 0.1, "steps": 5},
        ["W"],
    ),
    (
        array_loop_branches,
        {"X": np.linspace(1, 4, 6).reshape(2, 3), "W": np.full((3, 3), 3.0), "steps": 5},
        ["W"],
    ),
    (helper_in_loop, {"xs": [0.5, 3.0, -2.0, -0.2], "w": 0.9}, ["w"]),
    (early_return_in_loop, {"xs": [5.0, 1.0], "w": 1.0}, ["w"]),  # returns at once
    (early_return_in_loop, {"xs": [1.0, 2.0], "w": 1.0}, ["w"]),
    (rh.calls_early, {"w": 0.5}, ["w"]),
    (rh.calls_early, {"w": -0.5}, ["w"]),
    (rh.branch_in_loop, {"w": 0.3}, ["w"]),
    (rh.branch_in_loop, {"w": 2.5}, ["w"]),
]


@pytest.mark.parametrize(("fn", "args", "wrt"), CASES, ids=[c[0].__name__ for c in CASES])
def test_control_flow_matches_forward_mode_and_differences(fn, args, wrt):
    assert compare(fn, wrt, args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args)


def test_a_break_stops_the_loop_where_the_original_stops():
    # the loop reads an iterator: a break must leave the same items unread
    def run(fn):
        items = iter([0.5, 0.7, 2.0, 3.0, 4.0])
        fn(items, 0.6)
        return list(items)

    rest = run(break_loop)
    assert rest == [3.0, 4.0]
    assert run(fmad.differentiate(break_loop, wrt=["w"], mode="reverse")) == rest


def test_printed_code_has_flags_and_guards():
    text = fmad.differentiate(continue_and_break, wrt=["w"], mode="reverse").source
    assert "broke = False" in text and "skip = False" in text
    assert "if broke_1:\n            break" in text
    # each jump's flag guards the statements after the 'if' that may have set it
    assert "if not skip_2:" in text and "if not broke_3:" in text
    assert "continue" not in text.replace("# line", "").split("def ")[1].split("for x in")[1]


def loop_over_parameter(w):
    total = 0.0
    for v in w:
        if v > 0.0:
            break
        total = total + v
    return total


def raises_in_loop(xs, w):
    total = 0.0
    for x in xs:
        if x < 0.0:
            raise ValueError("negative")
        total = total + w * x
    return total


def returns_two(x, w):
    if x > 0:
        return w, x
    return w * x


def test_loop_over_a_parameter_with_a_break():
    # refused until the statement forms (tests/test_reverse_forms.py) made loops over an
    # array with a derivative work; with a break on it, it matches forward mode
    for w in ([-1.0, -2.0, 3.0, -4.0], [-1.0, -2.0], [2.0]):
        assert compare(loop_over_parameter, ["w"], {"w": np.array(w)}) == "same"


@pytest.mark.parametrize(
    ("fn", "text", "what"),
    [
        (raises_in_loop, "raise ValueError", "'raise'"),
        (returns_two, "return w, x", "several values"),
    ],
)
def test_what_stays_refused(fn, text, what):
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(fn, wrt=["w"], mode="reverse")
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line_of(fn, text)}: "), message
    assert what in message and "mode='forward'" in message


# ------------------------------------------------------------------------ the tape


def pushes(fn, wrt) -> list[str]:
    text = fmad.differentiate(fn, wrt=wrt, mode="reverse").source
    return [line.strip() for line in text.splitlines() if ".append(" in line]


def peak_per_iteration(fn, args, n) -> float:
    dfn = fmad.differentiate(fn, wrt=["w"], mode="reverse")
    tracemalloc.start()
    value, grads = dfn(**args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert value == fn(**args)
    forward = fmad.differentiate(fn, wrt=["w"])(**args)[1]["w"]
    np.testing.assert_allclose(grads["w"], forward, rtol=1e-9)
    return peak / n


def long_while(n, w):
    i = 0
    s = 0.0
    while i < n:
        s = 0.5 * s + w * np.cos(s)
        i = i + 1
    return s


def long_branchy(n, w):
    s = 0.0
    for i in range(n):
        if i % 3 == 0:
            continue
        s = 0.5 * s + w * np.cos(s)
    return s


def long_nested(n, w):
    s = 0.0
    for _ in range(n // 100):
        for _k in range(100):
            s = 0.5 * s + w * np.cos(s)
    return s


def long_return(n, w):
    s = 0.0
    for _ in range(n):
        s = 0.5 * s + w * np.cos(s)
        if s > 1e9:
            return s * w
    return s


N = 100_000


def test_the_tape_of_a_while_loop_is_the_for_loops():
    # per iteration: s at its start and cos(s) (the rules multiply by them) and the two
    # terms of the sum (their shapes); never the counter i, never w
    assert pushes(long_while, ["w"]) == ["tape.append((c0p5_mult_s, cos_s, s_1, w_mult_cos_s))"]
    # a tuple of four floats: measured 176 bytes per iteration, as the for loop's
    assert peak_per_iteration(long_while, {"n": N, "w": 0.4}, N) < 250


def test_a_branch_inside_a_loop_adds_its_flag():
    # the guard's flag (True/False: shared objects) and the values of the branch, None
    # where it did not run; the continue's own flag is not kept
    (push,) = pushes(long_branchy, ["w"])
    assert push == "tape.append((branch_1, c0p5_mult_s, cos_s, s_1, w_mult_cos_s))", push
    assert peak_per_iteration(long_branchy, {"n": N, "w": 0.4}, N) < 250


def test_a_nested_loop_keeps_its_tape_list_on_the_outer_tape():
    outer, inner = sorted(pushes(long_nested, ["w"]), key=len)
    assert outer == "tape_1.append((tape,))", outer  # the inner loop's list, nothing else
    assert inner == "tape.append((c0p5_mult_s, cos_s, s_2, w_mult_cos_s))", inner
    # one list per outer iteration on top of the inner tuples: still about 180 bytes
    assert peak_per_iteration(long_nested, {"n": N, "w": 0.4}, N) < 250


def test_a_return_inside_a_loop_adds_its_flag_and_result():
    # the branch's flag, 'result' at the start of the iteration (None: the zeros of the
    # adjoint of a value not returned yet) and s_2, which the return's adjoint multiplies by
    (push,) = pushes(long_return, ["w"])
    assert push == (
        "tape.append((branch, c0p5_mult_s, cos_s, result_1, s_1, s_2, w_mult_cos_s))"
    ), push
    # three pointers more than the plain loop: measured 200 bytes per iteration
    assert peak_per_iteration(long_return, {"n": N, "w": 0.4}, N) < 270


# --------------------------------------------------------------- generated programs

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)
EXPRESSIONS = [
    "acc * {p} + {x}",
    "np.sin(acc) * {p}",
    "np.tanh(acc + {p} * {x})",
    "acc * 0.5 + {p} * {x} * {x}",
    "{p} - acc * {x}",
]
CONDITIONS = ["{x} > {c}", "{x} < {c}", "{S}(acc) > {c}", "{S}(acc * {p}) < {c}"]


@st.composite
def flow_programs(draw) -> tuple[str, dict]:
    """A loop (``for`` over data, over ``range``, or a counted ``while``), up to two deep,
    whose body mixes updates of an accumulator, ``if``/``else``, ``break``, ``continue`` and
    ``return``; a ``for`` may have an ``else``. ``p0`` (so the accumulator) is a number or
    an array of three (then the tests and the output reduce it with ``np.sum``)."""
    params = ["p0", "p1"]
    arrays = draw(st.booleans())
    S = "np.sum" if arrays else ""
    counter = iter(range(100))

    def pick(options):
        return draw(st.sampled_from(options))

    def update(x, indent):
        e = pick(EXPRESSIONS).format(p=pick(params), x=x)
        return [f"{indent}acc = {e}"]

    def cond(x):
        c = pick(["0.0", "0.5", "1.5"])
        return pick(CONDITIONS).format(x=x, p=pick(params), c=c, S=S)

    def body(x, indent, depth, in_loop):
        lines = []
        for _ in range(draw(st.integers(1, 3))):
            kind = pick(["update", "update", "if", "jump", "loop"] if in_loop else ["update"])
            if kind == "update":
                lines += update(x, indent)
            elif kind == "if":
                lines.append(f"{indent}if {cond(x)}:")
                lines += body(x, indent + "    ", depth, in_loop)
                if draw(st.booleans()):
                    lines.append(f"{indent}else:")
                    lines += body(x, indent + "    ", depth, in_loop)
            elif kind == "jump":
                jump = pick(["break", "continue", f"return {S}(acc * {pick(params)})"])
                lines += [f"{indent}if {cond(x)}:", f"{indent}    {jump}"]
            elif depth < 2:
                lines += loop(indent, depth + 1)
            else:
                lines += update(x, indent)
        return lines

    def loop(indent, depth):
        k = next(counter)
        kind = pick(["data", "range", "while"])
        if kind == "while":
            i, x = f"i{k}", f"i{k}"
            n = pick(["0", "1", "3", "len(xs)"])
            head = [f"{indent}{i} = 0", f"{indent}while {i} < {n}:"]
            first = [f"{indent}    {i} = {i} + 1"]  # first: a continue cannot skip it
        else:
            x = f"x{k}"
            source = "xs" if kind == "data" else pick(["range(3)", "range(0)", "range(len(xs))"])
            head, first = [f"{indent}for {x} in {source}:"], []
        lines = head + first + body(x, indent + "    ", depth, True)
        if kind != "while" and draw(st.booleans()):
            lines += [f"{indent}else:", *update(pick(params), indent + "    ")]
        return lines

    source_lines = ["import numpy as np", "", "", "def program(xs, p0, p1):", "    acc = p0"]
    source_lines += loop("    ", 1)
    if draw(st.booleans()):
        source_lines += [f"    if {S}(acc) > p1:", f"        return {S}(acc * acc)"]
    source_lines.append(f"    return {S}(acc) + p1")
    small = st.floats(-1.5, 1.5, allow_nan=False).map(lambda v: round(v, 2))
    values = {
        "xs": draw(st.lists(small, max_size=4)),
        "p0": np.array([draw(small) for _ in range(3)]) if arrays else draw(small),
        "p1": draw(small),
    }
    return "\n".join(source_lines) + "\n", values


@SETTINGS
@given(case=flow_programs())
def test_generated_control_flow_programs(program_loader, case):  # noqa: F811
    source, values = case
    program = program_loader(source)
    with np.errstate(all="ignore"):
        reference = program(**values)
        assume(finite_and_moderate(reference) and math.isfinite(float(reference)))
        assert compare(program, ["p0", "p1"], values, rtol=1e-8) == "same", source


def reads_the_previous_iteration(xs, w):
    acc = 0.0
    for x in xs:
        if x > 1.0:
            acc = acc + prev * w  # noqa: F821 (bound by the iteration before)
        prev = x * w  # noqa: F841 (read by the next iteration)
    return acc


def test_a_value_of_an_earlier_iteration_is_read():
    # tests/test_reverse_loops.py has the rest: the value carried, UnboundLocalError
    fn = reads_the_previous_iteration
    assert fn([0.5, 2.0], 0.5) == 0.125  # the original reads the first iteration's prev
    assert compare(fn, ["w"], {"xs": [0.5, 2.0, 3.0], "w": 0.5}) == "same"


def helper_with_flag_names(a):
    # its own 'result' and 'returned' must not be confused with the flags of its returns
    result = a * 2.0
    if result > 1.0:
        return result * a
    returned = a - 1.0
    return returned


def calls_helper_with_flag_names(w):
    return helper_with_flag_names(w) + helper_with_flag_names(w * 3.0)


@pytest.mark.parametrize("w", [0.2, 0.7, 2.0])
def test_a_helper_whose_names_are_the_flags_names(w):
    fn = calls_helper_with_flag_names
    assert compare(fn, ["w"], {"w": w}) == "same"
    check_gradients(fmad.differentiate(fn, wrt=["w"], mode="reverse"), {"w": w})


def test_the_flattened_code_keeps_its_jumps():
    dfn = fmad.differentiate(continue_and_break, wrt=["w"], mode="reverse")
    assert "continue" in dfn.flat_source and "break" in dfn.flat_source
    assert "broke" not in dfn.flat_source  # the rewrite works on a copy
