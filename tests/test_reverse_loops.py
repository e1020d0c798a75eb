"""Reverse mode's loops (issue 12): names first bound inside a loop and read after it (or
by a later iteration), dicts with a derivative in loops, the line of errors at a final
``if``, lists appended to in loops. Every case: the value bit for bit (==), the gradient
equal to forward mode's to rounding and to central differences; where the original raises
(a loop that ran no iteration leaves a name unbound), the same exception type at the
user's line; refusals are ReverseModeErrors at the user's line."""

from __future__ import annotations

import inspect
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings

import fmad
from tests import loop_hunt
from tests.fdcheck import check_gradients
from tests.reverse_check import compare


def line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def both(fn, wrt, args, rtol=1e-10):
    """Reverse mode equals the original's value and forward mode's gradients, and matches
    central differences."""
    assert compare(fn, wrt, args, rtol=rtol) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args)


def unbound(fn, wrt, args, text, name):
    """The original raises UnboundLocalError; reverse mode too, an FmadError at the line
    of ``text`` (the read) naming ``name``."""
    with pytest.raises(UnboundLocalError):
        fn(**args)
    dfn = fmad.differentiate(fn, wrt=wrt, mode="reverse")
    with pytest.raises(UnboundLocalError) as info:
        dfn(**args)
    assert isinstance(info.value, fmad.UnboundError)
    message = str(info.value)
    prefix = f"{__file__}:{line_of(fn, text)}: cannot access local variable '{name}'"
    assert message.startswith(prefix), message


# ------------------------------------------------- names first bound inside a loop
def last_term(x, w, n):
    s = 0.0
    for i in range(n):
        t = w * x[i]
        s = s + t
    return t + s


def last_term_while(x, w, n):
    i = 0
    while i < n:
        t = w * x[i]
        i = i + 1
    return t * w


def last_before_break(xs, w):
    for x in xs:
        t = np.sin(w * x)
        if t > 0.5:
            break
    return t * w


def bound_after_break(xs, w):
    for x in xs:
        if x > 2.0:
            break
        t = w * x
    y = t * t
    return y


def skipped_by_continue(xs, w):
    for x in xs:
        if x < 0.0:
            continue
        last = w * x
        last = last * w
    return last


def read_only_if_looped(x, w, n):
    for i in range(n):
        t = np.exp(w * x[i])
    if n > 0:
        return t * w
    return w


def inner_value_in_outer_body(x, w, counts):
    s = 0.0
    for k in counts:
        for j in range(k):
            t = w * x[j]
        s = s + t * t  # the previous outer iteration's t where the inner loop ran none
    return s


def target_after_loop(xs, w):
    s = 0.0
    for x in xs:
        s = s + w * x
    return s * x


def hidden_state(X, W, n):
    for i in range(n):
        h = np.tanh(W @ X[i])
    return np.sum(h * h)


def reads_previous(xs, w):
    acc = 0.0
    for x in xs:
        if x > 1.0:
            acc = acc + prev * w  # noqa: F821 (bound by the iteration before)
        prev = x * w  # noqa: F841 (read by the next iteration)
    return acc


def bound_in_a_branch_of_the_body(xs, w):
    s = 0.0
    for x in xs:
        if x > 0.0:
            t = w * x
        s = s + t * w  # t of the last iteration that bound it
    return s


def read_by_a_later_loop(xs, w):
    for x in xs:
        t = w * x
    s = 0.0
    for x in xs:
        s = s + t * x
    return s


def returned_from_the_loop(xs, w):
    for x in xs:
        t = w * x
        if t > 1.0:
            return t * t
    return -t


def helper_with_a_loop(xs, w):
    for x in xs:
        t = w * x
    return t


def calls_helper_with_a_loop(xs, w):
    return helper_with_a_loop(xs, w) * w


def nested_target_reads(xs, ys, w):
    s = 0.0
    for x in xs:
        for y in ys:
            u = w * x * y
        s = s + u * y
    return s


X3 = np.array([0.3, -1.2, 0.7])


@pytest.mark.parametrize(
    ("fn", "wrt", "args"),
    [
        (last_term, ["w"], {"x": X3, "w": 0.8, "n": 3}),
        (last_term, ["w", "x"], {"x": X3, "w": 0.8, "n": 2}),
        (last_term_while, ["w"], {"x": X3, "w": 1.3, "n": 3}),
        (last_before_break, ["w"], {"xs": [0.1, 0.2, 3.0, 0.4], "w": 0.9}),
        (last_before_break, ["w"], {"xs": [0.1, 0.2], "w": 0.9}),
        (bound_after_break, ["w"], {"xs": [0.5, 1.0, 3.0, 0.2], "w": 1.1}),
        (skipped_by_continue, ["w"], {"xs": [0.5, -1.0, 2.0, -3.0], "w": 0.7}),
        (read_only_if_looped, ["w"], {"x": X3, "w": 0.4, "n": 3}),
        (read_only_if_looped, ["w"], {"x": X3, "w": 0.4, "n": 0}),
        (inner_value_in_outer_body, ["w", "x"], {"x": X3, "w": 0.6, "counts": [2, 0, 3, 1]}),
        (target_after_loop, ["w"], {"xs": [0.5, 2.0, -1.5], "w": 0.7}),
        (hidden_state, ["W"], {"X": np.arange(6.0).reshape(3, 2) / 5, "W": np.eye(2), "n": 3}),
        (reads_previous, ["w"], {"xs": [0.5, 2.0, 3.0], "w": 0.5}),
        (bound_in_a_branch_of_the_body, ["w"], {"xs": [0.5, -2.0, 3.0, -1.0], "w": 0.5}),
        (read_by_a_later_loop, ["w"], {"xs": [0.5, -2.0, 3.0], "w": 0.5}),
        (returned_from_the_loop, ["w"], {"xs": [0.5, 0.2, 3.0, 4.0], "w": 0.5}),
        (returned_from_the_loop, ["w"], {"xs": [0.5, 0.2], "w": 0.5}),
        (calls_helper_with_a_loop, ["w"], {"xs": [0.5, 0.2], "w": 0.5}),
        (nested_target_reads, ["w"], {"xs": [0.5, 0.2], "ys": [1.0, 2.0], "w": 0.5}),
    ],
)
def test_a_name_first_bound_in_a_loop_read_after_it(fn, wrt, args):
    both(fn, wrt, args)


@pytest.mark.parametrize(
    ("fn", "args", "text", "name"),
    [
        (last_term, {"x": X3, "w": 0.8, "n": 0}, "return t + s", "t"),
        (last_term_while, {"x": X3, "w": 0.8, "n": 0}, "return t * w", "t"),
        (last_before_break, {"xs": [], "w": 0.8}, "return t * w", "t"),
        (bound_after_break, {"xs": [3.0, 1.0], "w": 0.8}, "y = t * t", "t"),
        (skipped_by_continue, {"xs": [-1.0, -2.0], "w": 0.8}, "return last", "last"),
        (inner_value_in_outer_body, {"x": X3, "w": 0.6, "counts": [0, 2]}, "s = s + t", "t"),
        (target_after_loop, {"xs": [], "w": 0.7}, "return s * x", "x"),
        (reads_previous, {"xs": [2.0, 3.0], "w": 0.5}, "acc = acc + prev", "prev"),
        (bound_in_a_branch_of_the_body, {"xs": [-1.0, 2.0], "w": 0.5}, "s = s + t", "t"),
        (read_by_a_later_loop, {"xs": [], "w": 0.5}, "return s", None),
        (returned_from_the_loop, {"xs": [], "w": 0.5}, "return -t", "t"),
        # an inlined helper's return: the line of the call
        (calls_helper_with_a_loop, {"xs": [], "w": 0.5}, "return helper_with", "t"),
    ],
)
def test_where_the_loop_left_it_unbound_the_same_error(fn, args, text, name):
    if name is None:  # the later loop ran no iteration either: no read, the value
        both(fn, ["w"], args)
        return
    unbound(fn, ["w"], args, text, name)


def test_the_checks_are_printed_once_per_block():
    text = fmad.differentiate(last_term, wrt=["w"], mode="reverse").source
    assert "fmad_forms.bound(t_1, 't', " in text, text
    assert text.count("fmad_forms.bound(") == 1, text
    text = fmad.differentiate(read_by_a_later_loop, wrt=["w"], mode="reverse").source
    assert text.count("fmad_forms.bound(") == 1, text  # in the later loop's body, once


def test_no_check_where_the_name_is_bound_before_the_loop():
    def bound_before(x, w, n):
        t = 0.0
        for i in range(n):
            t = w * x[i]
        return t

    text = fmad.differentiate(bound_before, wrt=["w"], mode="reverse").source
    assert "UNBOUND" not in text and "bound(" not in text, text


def long_last(n, w):
    s = 0.0
    for _ in range(n):
        t = 0.5 * s + w
        s = np.cos(t)
    return s + t


def test_the_tape_of_a_name_read_after_the_loop():
    # per iteration: t at the iteration's start (the zeros of its adjoint) and the values
    # the rules read: a tuple of small floats, as for a name bound before the loop
    n = 100_000
    dfn = fmad.differentiate(long_last, wrt=["w"], mode="reverse")
    tracemalloc.start()
    value, grads = dfn(n, 0.3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert value == long_last(n, 0.3)
    forward = fmad.differentiate(long_last, wrt=["w"])(n, 0.3)[1]["w"]
    np.testing.assert_allclose(grads["w"], forward, rtol=1e-9)
    assert peak / n < 250, peak / n


# ------------------------------------------- lists appended to in a loop, then read
def build_then_read(x, w):
    ys = []
    for i in range(len(x)):
        ys.append(w * x[i])
    s = 0.0
    for i in range(len(x)):
        s = s + ys[i] * ys[i]
    return s


def read_backwards_with_a_step(x, w):
    ys = []
    for xi in x:
        ys.append(np.sin(w * xi))
    s = 0.0
    for i in range(len(ys) - 1, -1, -2):
        s = s + ys[i] * ys[i - 1]
    return s


def test_a_list_built_then_read_item_by_item():
    x = np.linspace(-1.0, 1.0, 7)
    both(build_then_read, ["w"], {"x": x, "w": 0.7})
    both(build_then_read, ["w", "x"], {"x": x, "w": 0.7})
    both(read_backwards_with_a_step, ["w"], {"x": x, "w": 0.7})


def test_reading_items_adds_to_the_list_adjoint_in_place(monkeypatch):
    # O(n): each item read adds to the newest version of the list's adjoint (no copy of
    # the list per read); counted, not timed: the versions share one list
    from fmad import runtime_forms

    made = []
    original = runtime_forms.Acc.__init__

    def counting(self, data):
        made.append(data)
        original(self, data)

    monkeypatch.setattr(runtime_forms.Acc, "__init__", counting)
    dfn = fmad.differentiate(build_then_read, wrt=["w"], mode="reverse")
    for n in (10, 1000):
        made.clear()
        x = np.linspace(0.0, 1.0, n)
        value, grads = dfn(x, 0.3)
        assert value == build_then_read(x, 0.3)
        np.testing.assert_allclose(grads["w"], 2 * 0.3 * np.sum(x * x), rtol=1e-12)
        lists = {id(data): data for data in made}  # kept alive: ids stay distinct
        assert len(lists) == 1, (n, len(lists))  # the first item read copies the zeros
        assert len(made) == 2 * n + 1, (n, len(made))  # a new version per item read


def test_an_older_version_of_a_list_adjoint_stays_exact():
    from fmad.runtime_forms import ZERO, Acc, Item

    base = [ZERO, 1.0, np.array([1.0, 2.0])]
    v1 = Item(3, 0, 5.0) + base
    assert isinstance(v1, Acc)
    v2 = v1 + Item(3, 2, np.array([1.0, 1.0]))
    v3 = v2 + Item(3, 0, 1.0)
    branch = v1 + Item(3, 1, 10.0)  # adding to an older version: a branch
    assert base == [ZERO, 1.0, base[2]]  # never changed
    assert list(v1)[:2] == [5.0, 1.0] and list(v1[2]) == [1.0, 2.0]
    assert list(v3)[:2] == [6.0, 1.0] and list(v3[2]) == [2.0, 3.0]
    assert list(branch)[:2] == [5.0, 11.0] and list(branch[2]) == [1.0, 2.0]
    assert list(v2)[:2] == [5.0, 1.0] and list(v2[2]) == [2.0, 3.0]
    assert len(v2) == 3 and list(v1[0:2]) == [5.0, 1.0]
    total = v3 + v1  # two versions added item by item
    assert list(total)[:2] == [11.0, 2.0] and list(total[2]) == [3.0, 5.0]


# ------------------------------------------- a wrong output: the line of its return
def final_if_returns(x, w):
    if x > 0:
        return w * np.ones(3)
    else:
        return w * 2.0


def early_return_of_an_array(x, w):
    if x > 0:
        return w * np.ones(3)
    return w


def returns_in_a_loop(xs, w):
    for x in xs:
        if x > 1.0:
            return w * np.array(xs)
    return w * x


def returns_nothing(x, w):
    if x > 0:
        return
    return w * x


@pytest.mark.parametrize(
    ("fn", "args", "text"),
    [
        (final_if_returns, {"x": 1.0, "w": 2.0}, "return w * np.ones(3)"),
        (early_return_of_an_array, {"x": 1.0, "w": 2.0}, "return w * np.ones(3)"),
        (returns_in_a_loop, {"xs": [0.5, 2.0], "w": 2.0}, "return w * np.array(xs)"),
        (returns_nothing, {"x": 1.0, "w": 2.0}, "return\n"),
    ],
)
def test_a_wrong_output_is_reported_at_the_return_that_ran(fn, args, text):
    dfn = fmad.differentiate(fn, wrt=["w"], mode="reverse")
    with pytest.raises(fmad.ReverseModeError) as info:
        dfn(**args)
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line_of(fn, text)}: reverse mode needs one real"), (
        message
    )


def test_the_other_returns_still_work():
    both(final_if_returns, ["w"], {"x": -1.0, "w": 2.0})
    both(early_return_of_an_array, ["w"], {"x": -1.0, "w": 2.0})
    both(returns_in_a_loop, ["w"], {"xs": [0.5, 0.7], "w": 2.0})
    both(returns_nothing, ["w"], {"x": -1.0, "w": 2.0})


# ---------------------------------------------- found by the hunt (tests/loop_hunt.py)
def target_bound_before(xs, b, w):
    s = 0.0
    for c in b:
        x = c * w
        for x in xs:  # no iteration: x keeps c * w
            s = s + x * w
        s = s + x * w
    return s


def test_a_target_bound_before_the_loop_keeps_its_value_where_no_iteration_ran():
    b = np.array([0.2, -0.5, 0.7])
    for xs in (np.array([]), np.array([0.3, 0.9])):
        both(target_bound_before, ["w", "b"], {"xs": xs, "b": b, "w": 0.8})


def reads_an_undefined_global(xs, w):
    acc = 0.0
    for x in xs:
        acc = acc + w * x
    return acc + undefined_name * w  # noqa: F821


def reads_an_empty_list(xs, w):
    ys = []
    for x in xs:
        ys.append(w * x)
    return ys[-1] * w


def test_the_originals_errors_keep_their_type():
    # NameError and IndexError raised by a renamed primal line are the user's, not fmad's
    for fn, kind in ((reads_an_undefined_global, NameError), (reads_an_empty_list, IndexError)):
        dfn = fmad.differentiate(fn, wrt=["w"], mode="reverse")
        with pytest.raises(kind) as info:
            dfn(np.array([]), 0.5)
        assert not isinstance(info.value, fmad.InternalError), info.value


def array_of_an_empty_list(xs, w):
    ys = []
    for x in xs:
        ys.append(w * x)
    return np.sum(np.array(ys)) + w


def test_np_array_of_an_empty_list_in_both_modes():
    both(array_of_an_empty_list, ["w"], {"xs": np.array([]), "w": 0.5})
    both(array_of_an_empty_list, ["w"], {"xs": np.array([0.5, 1.0]), "w": 0.5})


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(source=loop_hunt.loop_programs(), args=loop_hunt.loop_arguments())
def test_generated_loop_programs(source, args):
    # the value bit for bit, gradients as forward mode's and central differences', the
    # original's exception where it raises, or a clear refusal (python -m tests.loop_hunt N)
    assert loop_hunt.judge(source, args) in ("same", "raised", "refused", "skipped")


def comprehensions(xs, w):
    zs = [x * w for x in xs]
    return sum(zs) + np.sum(np.array([z * z for z in zs if z > 0.1]))


def test_list_comprehensions_are_loops_that_append():
    both(comprehensions, ["w"], {"xs": np.array([0.5, -1.0, 2.0]), "w": 0.3})
    both(comprehensions, ["w"], {"xs": np.array([]), "w": 0.3})


# ---------------------------------------------- dicts with a derivative in a loop
def loop_over_keys(params, x):
    s = 0.0
    for k in params:
        s = s + np.sum(params[k] * x)
    return s


def loop_over_items(params, x):
    s = 0.0
    for _k, v in params.items():
        s = s + np.sum(v * x)
    return s


def loop_over_values(params, x):
    s = 0.0
    for v in params.values():
        s = s + np.sum(v * x)
    return s


def indexed_by_constant_keys(params, x):
    s = 0.0
    for _ in range(2):
        s = s + np.sum(params["a"] * x) * np.sum(params["b"])
    return s


@pytest.mark.parametrize(
    ("fn", "text"),
    [
        (loop_over_keys, "s = s + np.sum(params[k] * x)"),
        (loop_over_items, "for _k, v in params.items()"),
        (loop_over_values, "for v in params.values()"),
    ],
)
def test_a_loop_over_a_dict_with_a_derivative_is_refused_as_in_forward_mode(fn, text):
    # forward mode refuses these too (a dict with a derivative is read by constant keys)
    with pytest.raises(fmad.UnsupportedError):
        fmad.differentiate(fn, wrt=["params"])(P, np.array([0.3, 0.4]))
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(fn, wrt=["params"], mode="reverse")(P, np.array([0.3, 0.4]))
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line_of(fn, text)}: "), message
    assert "mode='forward'" in message


P = {"a": np.array([1.0, 2.0]), "b": np.array([0.5, -1.0])}


def test_a_dict_parameter_read_by_constant_keys_in_a_loop():
    value, grads = fmad.differentiate(indexed_by_constant_keys, wrt=["params"], mode="reverse")(
        P, np.array([0.3, 0.4])
    )
    fvalue, fgrads = fmad.differentiate(indexed_by_constant_keys, wrt=["params"])(
        P, np.array([0.3, 0.4])
    )
    assert value == fvalue == indexed_by_constant_keys(P, np.array([0.3, 0.4]))
    assert set(grads["params"]) == {"a", "b"}
    for key in P:
        np.testing.assert_allclose(grads["params"][key], fgrads["params"][key], rtol=1e-12)


def break_in_a_loop_over_a_parameter(b, w):
    acc = 0.0
    for c in b:
        x = c * 0.5  # before the break: runs in every iteration the original runs
        if x > 0.1:
            break
        acc = acc + w * c
    return acc * w + x * w


def test_a_break_ends_a_loop_over_a_value_with_a_derivative():
    # the loop made a loop over indices kept its break (it ran on: a silent wrong value)
    b = np.array([-0.7, 0.3, 0.7, -0.5])
    assert compare(break_in_a_loop_over_a_parameter, ["w", "b"], {"b": b, "w": 0.4}) == "same"
    both(break_in_a_loop_over_a_parameter, ["w", "b"], {"b": b, "w": 0.4})
    dfn = fmad.differentiate(break_in_a_loop_over_a_parameter, wrt=["w"], mode="reverse")
    check_gradients(dfn, {"b": list(b), "w": 0.4})
