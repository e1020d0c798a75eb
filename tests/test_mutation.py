"""Mutation and aliasing (issue 14): what fmad models exactly, and what it refuses.

Each program either gives the original's value bit for bit and a gradient equal to central
finite differences, or an ``UnsupportedError`` whose message starts with this file and the
line of the construct (marked ``# LINE-<tag>``), at decoration time when the construct can be
seen there, at call time otherwise. See docs/how-it-works.md, "What fmad models, and what it
refuses".
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import logging
import os

import numpy as np
import pytest

import fmad
from tests.fdcheck import central_fd

THIS_FILE = os.path.basename(__file__)
LOG = logging.getLogger("fmad-tests")
HISTORY: list = []
RNG = np.random.default_rng(0)


def line_of(tag: str) -> int:
    lines = inspect.getsource(inspect.getmodule(line_of)).splitlines()
    found = [n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, tag
    return found[0]


def check_message(error: fmad.UnsupportedError, tag: str, words: list[str]) -> str:
    message = str(error)
    assert os.path.basename(error.filename) == THIS_FILE, message
    assert error.lineno == line_of(tag), message
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert any(w in message for w in words), message
    assert ";" in message, message  # what to do instead
    return message


def refused_at_decoration(fn, wrt, tag: str, words: list[str]) -> str:
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=wrt)
    return check_message(info.value, tag, words)


def refused_at_call(fn, wrt, args, tag: str, words: list[str]) -> str:
    d = fmad.differentiate(fn, wrt=wrt)
    with pytest.raises(fmad.UnsupportedError) as info:
        d(*copy.deepcopy(args))
    return check_message(info.value, tag, words)


def same(a, b) -> bool:
    return type(a) is type(b) and np.array_equal(a, b) and np.shape(a) == np.shape(b)


def exact(fn, wrt, args, tol=1e-6):
    """Value bit for bit, gradients against central differences, inputs left alone."""
    before = copy.deepcopy(args)
    value, grads = fmad.differentiate(fn, wrt=wrt)(*args)
    assert all(same(a, b) or a == b for a, b in zip(args, before, strict=True))
    original = fn(*copy.deepcopy(args))
    assert same(value, original), (value, original)
    names = list(inspect.signature(fn).parameters)
    named = dict(zip(names, copy.deepcopy(args), strict=True))
    for w in wrt:
        fd = central_fd(fn, named, w)
        assert np.allclose(grads[w], fd, rtol=tol, atol=tol), (w, grads[w], fd)
    return value, grads


# ------------------------------------------------------------------- modelled exactly
def append_in_loop(w, xs):
    out = []
    for x in xs:
        out.append(w * x)
    out.extend([w, 2.0])
    out.insert(1, w * w)
    return sum(out)


def comprehension_then_append(w, xs):
    ys = [w * x for x in xs]
    ys.append(w)
    return ys[0] + ys[-1] * 2.0


def append_then_alias(w, x):
    s = [w * x]
    s.append(w)
    t = s  # an alias made after the last change is harmless
    return t[0] + 3.0 * t[1]


def nested_lists(w, xs):
    rows = []
    for x in xs:
        row = [w * x]
        row.append(w)
        rows.append(row)
    return rows[0][0] + rows[1][1]


def scalar_accumulator(w, xs):
    acc = 0.0
    for x in xs:
        acc += w * x
        acc *= 0.5
    return acc


def scalar_alias(w):
    h = w * 1.0
    g = h
    h += 1.0  # a float: Python rebinds, as fmad's rewrite does
    return g + h


def first_item_accumulator(w, xs):
    acc = xs[0]
    for x in xs[1:]:
        acc += w * x
    return acc


def inactive_changes(w, x):
    data = [3.0, 1.0, 2.0]
    data.sort()
    data.reverse()
    buf = np.zeros(3)
    buf.fill(2.0)
    buf[0] = x
    np.exp(buf, out=buf)
    return w * data[0] + np.sum(buf * w)


def effect_free_calls(w, x):
    y = w * x
    print_nothing(y)
    LOG.debug("y is %s", y)
    np.sum(y)
    return y


def print_nothing(v):
    return None


def push_returning(lst, v):
    return lst + [v]


def returns_new_list(w, x):
    stack = [1.0]
    stack = push_returning(stack, w * x)
    stack = push_returning(stack, w * w)
    return sum(stack)


def fresh_copy_then_update(w):
    h = w * 1.0
    g = h
    h = h.copy()
    h += 1.0
    return np.sum(g) + np.sum(h)


def input_array_update(x, w):
    x += w  # LINE-input-update
    return np.sum(x * w)


@pytest.mark.parametrize(
    ("fn", "wrt", "args"),
    [
        (append_in_loop, ["w"], (1.5, [1.0, 2.0, -0.5])),
        (comprehension_then_append, ["w"], (1.5, [1.0, 2.0])),
        (append_then_alias, ["w", "x"], (1.5, 2.0)),
        (nested_lists, ["w"], (1.5, [1.0, 2.0])),
        (scalar_accumulator, ["w"], (1.5, [1.0, 2.0, 3.0])),
        (scalar_alias, ["w"], (1.5,)),
        (first_item_accumulator, ["w"], (1.5, [1.0, 2.0, 3.0])),
        (inactive_changes, ["w"], (1.5, 0.25)),
        (effect_free_calls, ["w"], (1.5, 2.0)),
        (returns_new_list, ["w", "x"], (1.5, 2.0)),
        (fresh_copy_then_update, ["w"], (np.array([1.0, 2.0]),)),
        (input_array_update, ["x", "w"], (1.25, 0.5)),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_modelled_exactly(fn, wrt, args) -> None:
    exact(fn, wrt, args)


# ------------------------------------------------------- item 1, 18: callees with effects
def add_to(lst, v):
    lst.append(v)  # LINE-add-to-body


def mutating_helper(w, x):
    items = []
    add_to(items, w * x)  # LINE-add-to
    add_to(items, w * w)
    return sum(items)


def add_and_count(lst, v):
    lst.append(v)  # LINE-add-count
    return len(lst)


def mutating_helper_assigned(w, x):
    items = [0.0]
    n = add_and_count(items, w * x)
    return sum(items) * n


def unknown_effect(w):
    xs = [w, 2.0 * w, 3.0]
    RNG.shuffle(xs)  # LINE-shuffle
    return xs[0]


def global_list(w):
    HISTORY.append(w)  # LINE-global
    return sum(HISTORY)


def test_helper_that_changes_its_argument_is_refused() -> None:
    message = refused_at_decoration(mutating_helper, ["w"], "add-to", ["add_to"])
    assert f"{THIS_FILE}:{line_of('add-to-body')}" in message  # where the change is
    assert "return the new value" in message


def test_transformed_helper_that_changes_its_argument_is_refused() -> None:
    refused_at_decoration(mutating_helper_assigned, ["w"], "add-count", ["lst.append"])


def test_discarded_call_to_unknown_function_is_refused() -> None:
    refused_at_decoration(unknown_effect, ["w"], "shuffle", ["RNG.shuffle"])


def test_append_to_a_global_list_is_refused() -> None:
    refused_at_decoration(global_list, ["w"], "global", ["HISTORY"])


# ------------------------------------------------------ item 2: in-place methods
def list_reverse(w, x):
    s = [w, x]
    s.reverse()  # LINE-reverse
    return s[0] * 2 + s[1]


def list_sort(w, x):
    s = [w, x]
    s.sort()  # LINE-sort
    return s[0] * 2 + s[1]


def list_pop(w, x):
    s = [w, x]
    s.pop()  # LINE-pop
    return sum(s)


def list_pop_value(w, x):
    s = [w, x]
    v = s.pop()  # LINE-pop-value
    return sum(s) + v


def list_remove(w, x):
    s = [w, x]
    s.remove(x)  # LINE-remove
    return sum(s)


def list_clear(w, x):
    s = [w, x]
    s.clear()  # LINE-clear
    s.append(x)
    return sum(s)


def insert_on_alias(w, x):
    s = [w * x]
    t = s
    t.insert(0, w)  # LINE-insert-alias
    return sum(s)


def extend_on_alias(w, x):
    s = [w * x]
    t = s
    t.extend([w])  # LINE-extend-alias
    return sum(s)


def array_fill(w):
    a = w * 2.0
    a.fill(1.0)  # LINE-fill
    return np.sum(a)


def array_sort(state, b):
    s = state * 1.0
    s.sort()  # LINE-array-sort
    return np.sum(s * s)


def array_resize(w):
    a = w * 2.0
    a.resize((4,), refcheck=False)  # LINE-resize
    return np.sum(a)


def array_itemset_put(w):
    a = w * 2.0
    a.put([0], 5.0)  # LINE-put
    return np.sum(a)


def array_item_assignment(w):
    a = w * 2.0
    a[0] = 5.0  # LINE-item
    return np.sum(a)


def list_append_to_parameter(xs, w):
    xs.append(w)  # LINE-param-append
    return sum(xs)


def list_insert_to_parameter(p0, p1, xs):
    xs.insert(0, p1)  # LINE-param-insert
    return sum(xs)


@pytest.mark.parametrize(
    ("fn", "wrt", "tag", "word"),
    [
        (list_reverse, ["w"], "reverse", "s.reverse()"),
        (list_sort, ["w"], "sort", "s.sort()"),
        (list_pop, ["w"], "pop", "s.pop()"),
        (list_pop_value, ["w"], "pop-value", "s.pop()"),
        (list_remove, ["w"], "remove", "s.remove(x)"),
        (list_clear, ["w"], "clear", "s.clear()"),
        (insert_on_alias, ["w"], "insert-alias", "'s' refers to it too"),
        (extend_on_alias, ["w"], "extend-alias", "'s' refers to it too"),
        (array_fill, ["w"], "fill", "a.fill(1.0)"),
        (array_sort, ["state"], "array-sort", "s.sort()"),
        (array_resize, ["w"], "resize", "a.resize"),
        (array_itemset_put, ["w"], "put", "a.put"),
        (array_item_assignment, ["w"], "item", "item assignment"),
        (list_append_to_parameter, ["w"], "param-append", "was passed in"),
        (list_insert_to_parameter, ["p1"], "param-insert", "was passed in"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_in_place_methods_are_refused(fn, wrt, tag, word) -> None:
    refused_at_decoration(fn, wrt, tag, [word])


# --------------------------------------------------------------------- item 3: aliasing
def alias_append(w, x):
    s = [w * x]
    t = s
    t.append(w)  # LINE-alias
    return sum(s)


def stored_then_appended(w, x):
    s = [w * x]
    box = [s]
    s.append(w)  # LINE-stored
    return sum(box[0])


def alias_list_augmented(w, x):
    s = [w * x]
    t = s
    t += [w]  # LINE-alias-iadd
    return sum(s)


def test_alias_then_append_is_refused() -> None:
    refused_at_decoration(alias_append, ["w"], "alias", ["'s' refers to it too"])


def test_list_stored_in_a_container_then_appended_is_refused() -> None:
    refused_at_decoration(stored_then_appended, ["w"], "stored", ["stored in a container"])


def test_list_augmented_through_an_alias_is_refused() -> None:
    refused_at_decoration(alias_list_augmented, ["w"], "alias-iadd", ["t = t + [w]"])


# ------------------------------------------------------------- item 4: reduction keywords
def mean_where(r, mask):
    return np.mean(r**2, where=mask)


def sum_where_axis(r, mask):
    return np.sum(r * r, axis=0, where=mask)


def method_sum_where(r, mask):
    return (r * 3.0).sum(where=mask)


def sum_initial(r, mask):
    return np.sum(r * r, initial=2.0)


def sum_positional_keepdims(r, mask):
    return np.sum(r * r, 0, None, None, True)


def mean_float_dtype(r, mask):
    return np.mean(r * r, axis=0, dtype=np.float64) + np.sum(r, dtype="f8")


def test_float32_dtype_has_the_float64_derivative() -> None:
    def f32(r):
        return np.sum(r * r, dtype=np.float32)

    r = np.array([0.5, 1.5])
    value, grads = fmad.differentiate(f32)(r)
    assert same(value, f32(r))
    assert np.array_equal(grads["r"], 2.0 * r)


@pytest.mark.parametrize(
    "fn",
    [
        mean_where,
        sum_where_axis,
        method_sum_where,
        sum_initial,
        sum_positional_keepdims,
        mean_float_dtype,
    ],
)
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_reduction_keywords_modelled(fn, shape) -> None:
    r = np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape)
    mask = (np.arange(r.size).reshape(shape) % 2) == 0
    exact(fn, ["r"], (r, mask))


def test_where_with_a_scalar_parameter() -> None:
    def f(w, x, mask):
        return np.mean((w * x) ** 2, where=mask)

    x = np.array([1.0, 2.0, 3.0])
    exact(f, ["w"], (0.5, x, np.array([True, False, True])))


def max_initial(r):
    return np.max(r * 2.0, initial=10.0)  # LINE-max-initial


def prod_where(r):
    return np.prod(r * 2.0, where=r > 0)  # LINE-prod-where


def sum_dtype(r):
    return np.sum(r * 2.0, dtype=int)  # LINE-sum-dtype


def sum_out(r):
    buf = np.zeros(())
    np.sum(r * 2.0, out=buf)  # LINE-sum-out
    return buf


def sum_initial_active(r, c):
    return np.sum(r * 2.0, initial=c)  # LINE-initial-active


@pytest.mark.parametrize(
    ("fn", "tag", "word"),
    [
        (max_initial, "max-initial", "initial="),
        (prod_where, "prod-where", "where="),
        (sum_dtype, "sum-dtype", "dtype="),
        (sum_out, "sum-out", "out="),
        (sum_initial_active, "initial-active", "initial="),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_reduction_keywords_refused(fn, tag, word) -> None:
    refused_at_decoration(fn, None, tag, [word])


# ----------------------------------------------------- items 5, 10: in-place updates
def view_update(state, w):
    pos = state[0:1]
    pos += 3.0 * w  # LINE-view
    return np.sum(state * w)


def view_of_copy(state, b):
    s = state * 1.0
    pos = s[0:2]
    pos += 0.5 * b  # LINE-view-copy
    return np.sum(s * s)


def alias_update(w):
    h = w * 1.0
    g = h
    h += 1.0  # LINE-alias-update
    return np.sum(g)


def parameter_alias_update(w, b):
    y = w
    y += b  # LINE-param-alias
    return y * w


def test_update_through_a_view_is_refused_at_call() -> None:
    args = (np.zeros(3), 0.5)
    message = refused_at_call(view_update, ["w"], args, "view", ["pos += 3.0 * w"])
    assert "array" in message


def test_update_through_a_view_of_a_local_is_refused_at_call() -> None:
    args = (np.array([0.037, 0.037, 0.037]), 0.037)
    refused_at_call(view_of_copy, ["state"], args, "view-copy", ["pos += 0.5 * b"])


def test_update_of_an_aliased_array_is_refused_at_call() -> None:
    refused_at_call(alias_update, ["w"], (np.array([1.0, 2.0]),), "alias-update", ["h += 1.0"])


@pytest.mark.parametrize("wrt", [["w"], ["x", "w"]])
def test_update_of_an_input_array_is_refused_at_call(wrt) -> None:
    """Python's ``x += w`` changes the caller's array; fmad never changes its inputs, and its
    rewrite ``x = x + w`` would not: refused when ``x`` turns out to be an array."""
    x = np.array([1.0, 2.0])
    message = refused_at_call(input_array_update, wrt, (x, 0.5), "input-update", ["x += w"])
    assert "passed as 'x'" in message and "x = x + w" in message
    assert np.array_equal(x, [1.0, 2.0])


def test_update_of_an_aliased_value_is_exact_for_numbers() -> None:
    exact(parameter_alias_update, ["w", "b"], (1.5, 0.5))
    exact(alias_update, ["w"], (1.5,))
    args = (np.array([1.0, 2.0]), 0.5)
    refused_at_call(parameter_alias_update, ["w", "b"], args, "param-alias", ["y += b"])


# ------------------------------------------------------------------ item 6: ufunc out=
def exp_positional_out(Z):
    Z = Z * 1.0
    np.exp(Z, Z)  # LINE-exp-out
    return np.sum(Z)


def exp_keyword_out(Z):
    Z = Z * 1.0
    np.exp(Z, out=Z)  # LINE-exp-kw
    return np.sum(Z)


def add_out(a, b):
    a = a * 1.0
    np.add(a, b, out=a)  # LINE-add-out
    return np.sum(a)


def exp_out_assigned(Z):
    Z = Z * 1.0
    E = np.exp(Z, Z)  # LINE-exp-assigned
    return np.sum(E)


@pytest.mark.parametrize(
    ("fn", "tag"),
    [
        (exp_positional_out, "exp-out"),
        (exp_keyword_out, "exp-kw"),
        (add_out, "add-out"),
        (exp_out_assigned, "exp-assigned"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_out_arguments_are_refused(fn, tag) -> None:
    message = refused_at_decoration(fn, None, tag, ["out="])
    assert "np.exp(Z)" in message or "np.add(a, b)" in message


# ---------------------------------------------- nested helpers and generated code
def nested_appends(w, xs):
    out = [w]

    def grow(v):
        out.append(v * w)  # LINE-nested
        return v

    y = grow(xs[0])
    return sum(out) + y


def test_nested_helper_changing_an_enclosing_list_is_refused() -> None:
    refused_at_decoration(nested_appends, ["w"], "nested", ["out.append"])


def test_the_rewrite_of_a_safe_update_has_no_check() -> None:
    assert "check_rebind" not in fmad.differentiate(scalar_accumulator, wrt=["w"]).source
    assert "check_rebind" in fmad.differentiate(input_array_update, wrt=["w"]).source
    assert "check_rebind" in fmad.differentiate(alias_update, wrt=["w"]).source


def test_generated_code_with_a_check_can_be_differentiated_again(tmp_path) -> None:
    d = fmad.differentiate(scalar_alias, wrt=["w"])
    assert "check_rebind" in d.flat_source
    assert d(1.5) == (scalar_alias(1.5), {"w": 2.0})
    path = tmp_path / "flat_again.py"
    path.write_text("from fmad import runtime as fmad_rt\n\n\n" + d.flat_source)
    spec = importlib.util.spec_from_file_location("flat_again", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert fmad.differentiate(module.scalar_alias, wrt=["w"])(1.5) == d(1.5)


def method_out(state):
    s = state * 1.0
    s.clip(-1.0, 0.5, out=s)  # LINE-clip-out
    return np.sum(s * s)


def method_positional_out(state):
    s = state * 1.0
    t = s * 2.0
    s.sum(0, None, t)  # LINE-sum-method-out
    return np.sum(t)


def test_out_arguments_of_methods_are_refused() -> None:
    message = refused_at_decoration(method_out, None, "clip-out", ["out="])
    assert "s = s.clip(-1.0, 0.5)" in message
    refused_at_decoration(method_positional_out, None, "sum-method-out", ["out="])


def second_name_of_inactive_list(p0, p1):
    L1 = []
    for i in range(3):
        L1.append(i**2)
    T3 = L1
    T3.append(p1 + p1)  # LINE-second-name
    return np.sum(T3)


def test_append_through_a_second_name_is_refused() -> None:
    refused_at_decoration(second_name_of_inactive_list, ["p1"], "second-name", ["'L1'"])


def dunder_in_place(w):
    a = w * 2.0
    a.__iadd__(w)  # LINE-dunder
    return np.sum(a)


def test_in_place_operator_method_is_refused() -> None:
    refused_at_decoration(dunder_in_place, None, "dunder", ["a.__iadd__(w)"])


def append_in_dropped_comprehension(w, xs):
    out = []
    [out.append(w * x) for x in xs]  # LINE-dropped
    return sum(out)


def pop_in_test(w):
    s = [w, 2.0 * w]
    while s.pop() > 10.0:  # LINE-test-pop
        pass
    return sum(s)


def test_calls_in_a_dropped_expression_are_refused() -> None:
    refused_at_decoration(append_in_dropped_comprehension, ["w"], "dropped", ["for loop"])


def test_in_place_change_in_a_test_is_refused() -> None:
    refused_at_decoration(pop_in_test, ["w"], "test-pop", ["s.pop()"])


def pure_helper_in_test(w):
    if is_big(w):
        return w * 2.0
    return w


def is_big(v):
    return v * v > 4.0


def test_pure_helper_in_a_test_is_fine() -> None:
    exact(pure_helper_in_test, ["w"], (1.5,))
    exact(pure_helper_in_test, ["w"], (2.5,))


class Recorder:
    def __init__(self):
        self.seen = []

    def record(self, v):
        self.seen.append(v)


RECORDER = Recorder()


def record_through(r, v):
    r.record(v)  # LINE-record


def hidden_effect(w):
    record_through(RECORDER, w * 2.0)  # LINE-hidden
    return w


def test_helper_calling_an_unknown_method_for_its_effect_is_refused() -> None:
    message = refused_at_decoration(hidden_effect, ["w"], "hidden", ["record_through"])
    assert f"{THIS_FILE}:{line_of('record')}" in message


def update_while_iterating(w, X):
    A = X * w
    total = 0.0
    for row in A:
        A += 1.0  # LINE-iterating
        total = total + np.sum(row)
    return total


def append_while_iterating(w):
    out = [w]
    for v in out:
        if len(out) < 3:
            out.append(v * w)  # LINE-append-iterating
    return sum(out)


def test_update_of_an_array_a_loop_iterates_is_refused_at_call() -> None:
    args = (0.5, np.ones((2, 2)))
    refused_at_call(update_while_iterating, ["w"], args, "iterating", ["A += 1.0"])


def test_append_to_the_list_a_loop_iterates_is_refused() -> None:
    refused_at_decoration(append_while_iterating, ["w"], "append-iterating", ["for loop"])


def sorts_its_data(w, data):
    data.sort()  # LINE-sorts-data
    return w * data[0]


def test_inactive_change_of_an_argument_is_faithful() -> None:
    data = [3.0, 1.0, 2.0]
    value, grads = fmad.differentiate(sorts_its_data, wrt=["w"])(1.5, data)
    assert (value, grads) == (1.5, {"w": 1.0})
    assert data == [1.0, 2.0, 3.0]  # as the original does


def test_argument_changed_in_place_passed_twice_is_refused_at_call() -> None:
    refused_at_decoration(sorts_its_data, ["w", "data"], "sorts-data", ["data.sort()"])

    def both(w, data):
        data.fill(0.0)  # LINE-fill-twice
        return np.sum(w * 2.0)

    shared = np.ones(3)
    d = fmad.differentiate(both, wrt=["w"])
    with pytest.raises(fmad.UnsupportedError) as info:
        d(shared, shared)
    check_message(info.value, "fill-twice", ["passed the same object"])
    assert d(np.ones(3), np.ones(3))[0] == both(np.ones(3), np.ones(3))


# ------------------------------------ an inactive array changed after a derivative read it
def inactive_changed_after_use(w):
    a = np.ones(3)
    b = w * a
    a[0] = 5.0  # LINE-changed-after
    return np.sum(b)


def inactive_changed_through_an_alias(w):
    a = np.ones(3)
    c = a
    b = c * w
    a[1] = 3.0  # LINE-changed-alias
    return np.sum(b)


def inactive_view_changed_after_use(w):
    a = np.ones(4)
    b = w * a
    v = a[1:3]
    v[0] = 7.0  # LINE-changed-view
    return np.sum(b)


def input_changed_after_use(w, a):
    b = w * a
    a[0] = 5.0  # LINE-changed-input
    return np.sum(b)


def buffer_reused_in_a_loop(w, xs):
    a = np.zeros(2)
    acc = 0.0
    for x in xs:
        a[0] = x  # LINE-changed-loop
        acc = acc + np.sum(w * a)
    return acc


def inactive_changed_before_use(w):
    a = np.ones(3)
    a[0] = 5.0
    b = w * a
    return np.sum(b)


def fresh_buffer_each_iteration(w, xs):
    acc = 0.0
    for x in xs:
        a = np.zeros(2)
        a[0] = x
        acc = acc + np.sum(w * a)
    return acc


def copy_changed_after_use(w):
    a = np.ones(3)
    b = w * a
    a = a.copy()
    a[0] = 5.0
    return np.sum(b) + np.sum(a)


@pytest.mark.parametrize(
    ("fn", "tag"),
    [
        (inactive_changed_after_use, "changed-after"),
        (inactive_changed_through_an_alias, "changed-alias"),
        (inactive_view_changed_after_use, "changed-view"),
        (input_changed_after_use, "changed-input"),
        (buffer_reused_in_a_loop, "changed-loop"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_inactive_array_changed_after_a_derivative_read_it_is_refused(fn, tag) -> None:
    # the derivative code may read the array after the change (db_dw = a): a silent
    # wrong derivative unless refused
    message = refused_at_decoration(fn, ["w"], tag, ["after line"])
    assert ".copy()" in message


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (inactive_changed_before_use, (1.5,)),
        (fresh_buffer_each_iteration, (1.5, [0.5, -2.0, 3.0])),
        (copy_changed_after_use, (1.5,)),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_inactive_array_changed_before_its_use_is_exact(fn, args) -> None:
    value, grads = fmad.differentiate(fn, wrt=["w"])(*args)
    assert value == fn(*args)
    names = list(inspect.signature(fn).parameters)
    fd = central_fd(fn, dict(zip(names, args, strict=True)), "w")
    assert grads["w"] == pytest.approx(fd, rel=1e-6, abs=1e-8)
