"""Reverse mode's statement forms and containers (fmad/reverse_forms.py,
fmad/reverse_containers.py): augmented assignments, unpacking, names an elif chain binds,
conditional expressions, lists and tuples of values with a derivative, loops over them.
Each: the value bit-identical, gradients equal to forward mode's and to central
differences, or a clear refusal at the user's line."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fmad
from tests import programs_module as pm
from tests import reverse_helpers_module as rh
from tests import test_programs
from tests.fdcheck import check_gradients
from tests.reverse_check import compare


def line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def both(fn, wrt, args, rtol=1e-6):
    """Reverse mode equals forward mode (and the value the original's) and central
    differences."""
    assert compare(fn, wrt, args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args, rtol=rtol)


# the program-table rows reverse mode refused before this module (all their points)
ROWS = [
    "elif_on_param",
    "branch_on_data",
    "bool_ops",
    "conditional_expression",
    "for_range_start_step",
    "for_zip",
    "for_tuple_target",
    "augmented_assignment",
    "augmented_power_active",
    "tuple_swap",
    "tuple_unpack",
    "slice_data",
    "list_of_active",
    "tuple_of_active",
    "list_indexed_in_loop",
    "builtin_sum_active",
    "loop_over_global_tuple",
    "attribute_of_active",
    "list_built_by_append",
    "nested_def",
    "nested_def_arguments_only",
]


@pytest.mark.parametrize("name", ROWS)
def test_program_rows(name):
    rows = [r.values for r in test_programs.ROWS if r.values[0].__name__ == name]
    assert rows, name
    for fn, wrt, points in rows:
        for args in points:
            both(fn, wrt, args)


def test_elif_chain_points_in_every_branch():
    for w in (-2.0, -0.5, 0.5, 2.0):
        both(pm.elif_on_param, ["w"], {"w": w})
    for x in (1.5, 0.5, -0.5):
        both(pm.branch_on_data, ["w", "b"], {"x": x, "w": 1.2, "b": 0.3})
    for x, w, b in [(0.5, 1.2, 0.3), (3.0, -2.0, 0.3), (0.5, -0.5, 4.0), (2.0, -0.5, 1.0)]:
        both(pm.bool_ops, ["w", "b"], {"x": x, "w": w, "b": b})


def one_branch_then_read(x, w):
    if x > 0.0:
        t = w * w
    return t


def test_a_name_bound_in_one_branch_is_read_where_it_was_bound():
    # the branch that did not bind it: Python's UnboundLocalError (tests/test_reverse_loops.py)
    both(one_branch_then_read, ["w"], {"x": 1.0, "w": 1.5})
    dfn = fmad.differentiate(one_branch_then_read, wrt=["w"], mode="reverse")
    with pytest.raises(UnboundLocalError) as info:
        dfn(-1.0, 1.5)
    assert isinstance(info.value, fmad.FmadError)
    line = line_of(one_branch_then_read, "return t")
    assert str(info.value).startswith(f"{__file__}:{line}: cannot access local variable 't'")


# -- augmented assignments -------------------------------------------------------------------
def aug_fresh_array(x, w):
    a = w * x
    a += w
    a *= a
    a -= 1.0
    a /= x
    return np.sum(a)


def aug_number_parameter(x, w):
    x += w
    x *= w
    return np.sum(x)


def aug_alias(x, w):
    a = w * x
    b = a
    a += w
    return np.sum(a * b)


def aug_array_parameter(x, w):
    x += w
    return np.sum(x * w)


def aug_in_loop(xs, w):
    acc = np.zeros(2)
    for x in xs:
        acc += w * x
    return np.sum(acc * acc)


def test_augmented_assignment_on_fresh_values():
    x, w = np.array([1.0, 2.0]), np.array([0.5, -0.7])
    both(aug_fresh_array, ["w"], {"x": x, "w": w})
    both(aug_number_parameter, ["x", "w"], {"x": 1.5, "w": w})
    both(aug_in_loop, ["w"], {"xs": [0.5, 1.0, -2.0], "w": w})


def test_augmented_assignment_on_a_shared_array_is_refused_as_in_forward_mode():
    x, w = np.array([1.0, 2.0]), np.array([0.5, -0.7])
    for mode in ("forward", "reverse"):  # an alias: refused when transformed
        with pytest.raises(fmad.UnsupportedError, match="another name") as info:
            fmad.differentiate(aug_alias, wrt=["w"], mode=mode)(x=x, w=w)
        assert info.value.lineno == line_of(aug_alias, "a += w")
    # the caller's array: refused when called (a number passes: Python rebinds it too)
    dfn = fmad.differentiate(aug_array_parameter, wrt=["w"], mode="reverse")
    before = x.copy()
    with pytest.raises(fmad.UnsupportedError, match="the caller passed as 'x'") as info:
        dfn(x=x, w=w)
    assert info.value.lineno == line_of(aug_array_parameter, "x += w")
    assert np.array_equal(x, before)
    both(aug_array_parameter, ["w"], {"x": 1.5, "w": w})


def aug_list(w, b):
    vals = [w]
    vals += [b]
    return vals[0] * vals[1]


def test_augmented_assignment_on_a_list_of_values_is_refused():
    with pytest.raises(fmad.ReverseModeError, match="list or tuple 'vals'") as info:
        fmad.differentiate(aug_list, mode="reverse")
    assert info.value.lineno == line_of(aug_list, "vals += [b]")
    assert "mode='forward'" in str(info.value)


# -- unpacking -------------------------------------------------------------------------------
def swap(w, b):
    p, q = w, b
    p, q = q, p
    q, p = p * q, q - p
    return p * q * q


def unpack_array(w):
    a, b = w
    return np.sum(a * b) + np.sum(a)


def unpack_rows(W, x):
    total = 0.0
    for a, b in W:
        total = total + a * x + b * b
    return total


def unpack_too_many(w):
    pair = (w, w, w)
    p, q = pair
    return p * q


def unpack_dict(w):
    d = {"a": w, "b": w}
    p, q = d
    return w * w


def test_unpacking():
    both(swap, ["w", "b"], {"w": 0.7, "b": -1.3})
    both(unpack_array, ["w"], {"w": np.array([[1.0, 2.0], [0.5, -1.0]])})
    both(unpack_rows, ["W", "x"], {"W": np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.1]]), "x": 0.3})


def test_unpacking_errors_are_pythons_or_refusals():
    dfn = fmad.differentiate(unpack_too_many, mode="reverse")
    with pytest.raises(ValueError, match="too many values to unpack"):
        unpack_too_many(1.0)
    with pytest.raises(ValueError, match="too many values to unpack") as info:
        dfn(1.0)
    assert str(info.value).startswith(f"{__file__}:{line_of(unpack_too_many, 'p, q = pair')}:")
    with pytest.raises(fmad.ReverseModeError, match="unpacking a dict") as info:
        fmad.differentiate(unpack_dict, mode="reverse")(1.0)
    assert info.value.lineno == line_of(unpack_dict, "p, q = d")


# -- lists and tuples of values with a derivative --------------------------------------------
def list_of_arrays(w, b):
    vals = [w, b, w * b]  # (forward mode fails on an item that does not depend on w: noted)
    total = 0.0
    for v in vals:
        total = total + np.sum(v * v)
    return total + np.sum(vals[-1]) + np.sum(sum(vals[1:3]))


def ragged(w):
    parts = (w, w[0] * 2.0, w[1:])
    return np.sum(sum(parts[:2])) + np.sum(parts[2] ** 2)


def stacked(w, b):
    rows = [w * b, w + b, w]
    return np.sum(np.array(rows) ** 2) + np.sum(np.asarray([b, b * b]))


def loop_over_matrix(W, x):
    total = 0.0
    for row in W:
        total = total + np.sum(row * x) ** 2
    return total


def list_in_branch(x, w):
    if x > 0.0:
        vals = [w, w * w]
    else:
        vals = [w * 3.0, w]
    return vals[0] * vals[1]


def sum_with_start(w, b):
    return np.sum(sum([w, w * w], b * 2.0))


def test_containers():
    w, b = np.array([0.5, -1.5, 2.0]), np.array([1.0, 0.25, -0.5])
    both(list_of_arrays, ["w", "b"], {"w": w, "b": b})
    both(ragged, ["w"], {"w": w})
    both(stacked, ["w", "b"], {"w": w, "b": b})
    both(stacked, ["w", "b"], {"w": 0.5, "b": 1.5})
    both(loop_over_matrix, ["W", "x"], {"W": np.arange(6.0).reshape(3, 2) / 4, "x": b[:2]})
    for x in (1.0, -1.0):
        both(list_in_branch, ["w"], {"x": x, "w": 0.7})
    both(sum_with_start, ["w", "b"], {"w": 0.3, "b": w})


def container_plus(w):
    t = (w, w * w)
    u = t + (w,)
    return u[0] * u[2]


def container_np_sum(w):
    vals = [w, w * w]
    return np.sum(vals)


def test_other_operations_on_containers_are_refused():
    for fn, text in [(container_plus, "u = t + (w,)"), (container_np_sum, "np.sum(vals)")]:
        with pytest.raises(fmad.ReverseModeError, match="list or tuple") as info:
            fmad.differentiate(fn, mode="reverse")
        assert info.value.lineno == line_of(fn, text)
        assert "mode='forward'" in str(info.value)


def real_part(w):
    y = w * 3.0
    return np.sum(y.real * w) + np.sum(y.imag)


def complex_real_part(w):
    y = w * 1j
    return np.sum((y * y).real)


def test_real_and_imag_parts():
    both(real_part, ["w"], {"w": np.array([0.5, 2.0])})
    both(real_part, ["w"], {"w": 0.5})
    with pytest.raises(fmad.ReverseModeError, match="complex") as info:
        fmad.differentiate(complex_real_part, mode="reverse")(np.array([0.5, 2.0]))
    assert info.value.lineno in (
        line_of(complex_real_part, "y * y"),
        fmad.differentiate(complex_real_part, mode="reverse").__fmad_reverse__.def_line,
    )


# -- nested functions ------------------------------------------------------------------------
def late_binding(w, b):
    s = 1.0

    def f(z):
        return z * s + b

    s = w * 2.0  # a closure reads the variable when it is called
    return f(w) * f(b)


def nested_calls_nested(w, x):
    def square(z):
        return z * z

    def poly(z, k=3.0):
        acc = 0.0
        for i in range(2):
            acc = acc + square(z) * k + i
        if x > 0.0:
            acc = acc * z
        return acc

    return np.sum(poly(w) + poly(w * x, k=0.5))


def nested_passed(w):
    def f(z):
        return z * z

    g = f
    return g(w)


def nested_recursive(w):
    def f(z):
        return f(z) if z > 1.0 else z

    return f(w)


def nested_default(w):
    k = 2.0

    def f(z, scale=k):
        return z * scale

    return f(w)


def nested_in_branch(w):
    if w > 0.0:

        def f(z):
            return z * z

        w = f(w)
    return w


def test_nested_functions_are_inlined():
    both(pm.nested_def, ["w", "b"], {"w": 0.7, "b": -1.2})
    both(pm.nested_def_arguments_only, ["w", "b"], {"w": 0.7, "b": -1.2})
    both(late_binding, ["w", "b"], {"w": 0.7, "b": -1.2})
    both(rh.nested_helper, ["w"], {"w": 0.7})  # refused before (tests/test_reverse_helpers.py)
    for x in (0.5, -0.5):
        both(nested_calls_nested, ["w"], {"w": np.array([0.3, -1.1]), "x": x})


@pytest.mark.parametrize(
    ("fn", "text", "what"),
    [
        (nested_passed, "g = f", "used otherwise than called"),
        (nested_recursive, "return f(z) if", "recursion"),
        (nested_default, "def f(z, scale=k)", "not a constant"),
        (nested_in_branch, "def f(z)", "nested .def"),
    ],
)
def test_nested_functions_refused(fn, text, what):
    with pytest.raises(fmad.ReverseModeError, match=what) as info:
        fmad.differentiate(fn, mode="reverse")
    assert info.value.lineno == line_of(fn, text)
    assert "mode='forward'" in str(info.value)


# -- lists built by appending ----------------------------------------------------------------
def append_arrays(xs, w):
    rows = []
    for x in xs:
        rows.append(np.tanh(w * x))
    rows.append(w)
    stacked = np.array(rows)
    return np.sum(stacked**2) + np.sum(rows[0] * rows[-1])


def append_in_branch(x, w, b):
    vals = [b]
    if x > 0.0:
        vals.append(w * b)
    vals.append(w * w)
    total = 0.0
    for v in vals:
        total = total + v * v
    return total


def append_then_read_early(w, b):
    vals = []
    vals.append(w)
    s = sum(vals)
    vals.append(b)
    return s * vals[1]


def append_in_loop_read(xs, w):
    vals = [w]
    for x in xs:
        vals.append(vals[-1] * x)
    return sum(vals)


def append_to_parameter(vals, w):
    vals.append(w)
    return sum(vals)


def append_rebound(w, b):
    vals = [w]
    vals = [b, w]
    vals.append(w)
    return sum(vals)


def test_lists_built_by_appending():
    w = np.array([0.3, -0.8])
    both(append_arrays, ["w"], {"xs": [0.5, -1.0, 2.0], "w": w})
    both(append_arrays, ["w"], {"xs": [], "w": w})  # no iteration
    both(pm.list_built_by_append, ["w"], {"xs": [], "w": 0.7})  # an empty list
    for x in (1.0, -1.0):
        both(append_in_branch, ["w", "b"], {"x": x, "w": 0.7, "b": -1.3})


@pytest.mark.parametrize(
    ("fn", "text", "what", "error"),
    [
        (append_then_read_early, "s = sum(vals)", "before its last append", fmad.ReverseModeError),
        (
            append_in_loop_read,
            "vals.append(vals[-1] * x)",
            "before its last",
            fmad.ReverseModeError,
        ),
        (
            append_rebound,
            "vals.append(w)",
            "not a list built by a display",
            fmad.ReverseModeError,
        ),
        (append_to_parameter, "vals.append(w)", "never changes its inputs", fmad.UnsupportedError),
    ],
)
def test_appends_refused(fn, text, what, error):
    with pytest.raises(error, match=what) as info:
        fmad.differentiate(fn, wrt=["w"], mode="reverse")
    assert info.value.lineno == line_of(fn, text)


# -- lists, tuples and dicts of parameters ---------------------------------------------------
def tree_close(got, want) -> None:
    """The same structure (types, lengths, keys in order), leaves equal to rounding."""
    assert type(got) is type(want) or (np.ndim(want) == 0 and np.ndim(got) == 0), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            tree_close(got[key], want[key])
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            tree_close(g, w)
    else:
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def leaves(tree):
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in leaves(v)]
    if isinstance(tree, list | tuple):
        return [leaf for v in tree for leaf in leaves(v)]
    return [tree]


def tree_fd(fn, args, name, h=1e-6):
    """Central differences of ``fn`` for each leaf element of the parameter ``name``."""
    import copy

    out = []
    for i, leaf in enumerate(leaves(args[name])):
        grad = np.zeros(np.shape(leaf))
        for index in np.ndindex(np.shape(leaf)) if np.ndim(leaf) else [()]:
            values = []
            for step in (h, -h):
                moved = copy.deepcopy(args)
                target = leaves(moved[name])[i]
                if np.ndim(target):
                    target[index] += step
                else:  # a number in a list or dict: rebuild it
                    moved[name] = replace_leaf(moved[name], i, target + step)
                values.append(fn(**moved))
            grad[index] = (values[0] - values[1]) / (2 * h)
        out.append(grad)
    return out


def replace_leaf(tree, i, value):
    count = [0]

    def walk(t):
        if isinstance(t, dict):
            return {k: walk(v) for k, v in t.items()}
        if isinstance(t, list | tuple):
            return type(t)(walk(v) for v in t)
        count[0] += 1
        return value if count[0] - 1 == i else t

    return walk(tree)


def both_trees(fn, wrt, args):
    value, fgrads = fmad.differentiate(fn, wrt=wrt)(**args)
    rvalue, rgrads = fmad.differentiate(fn, wrt=wrt, mode="reverse")(**args)
    assert rvalue == value == fn(**args)
    for name in wrt:
        tree_close(rgrads[name], fgrads[name])
        for got, want in zip(leaves(rgrads[name]), tree_fd(fn, args, name), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def unpacks_list(params, x):
    W, b = params
    return np.sum(np.tanh(x @ W + b) ** 2)


def reads_dict(p, x):
    h = np.tanh(x @ p["W1"] + p["b1"])
    return np.sum((h @ p["layers"][0] + p["layers"][1]) ** 2) + p["scale"] * p["scale"]


def loops_over_list(params, x):
    total = 0.0
    for w in params:
        total = total + np.sum(w * x)
    return total + params[0][1] * params[1][0]


def ignores_some(params, w):
    return np.sum(params[0] * w)


def stacks_list(params, x):
    return np.sum((np.array(params) @ x) ** 2)


def test_lists_tuples_and_dicts_of_parameters():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    W, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    both_trees(unpacks_list, ["params"], {"params": [W, b], "x": x})
    both_trees(unpacks_list, ["params"], {"params": (W, 0.5), "x": x})
    p = {
        "W1": W,
        "b1": b,
        "layers": [rng.normal(size=(2, 1)), rng.normal(size=1)],
        "scale": 1.5,
    }
    both_trees(reads_dict, ["p"], {"p": p, "x": x})
    both_trees(loops_over_list, ["params"], {"params": [b.copy(), b * 2.0], "x": b})
    both_trees(ignores_some, ["params", "w"], {"params": [b.copy(), {"k": W}], "w": b})
    both_trees(stacks_list, ["params"], {"params": [b.copy(), b * 2.0, b + 1.0], "x": b})
    for mode in ("reverse", "auto"):  # nothing the caller passed is changed
        before = [W.copy(), b.copy()]
        params = [W, b]
        fmad.differentiate(unpacks_list, wrt=["params"], mode=mode)(params, x)
        assert params[0] is W
        assert all(np.array_equal(a, c) for a, c in zip(params, before, strict=True))


def loops_over_dict(p):
    total = 0.0
    for key in p:  # the keys: 0 and 1 below, not p[0] and p[1]
        total = total + key * 2.0
    return total + p[0]


def sums_list(params):
    return np.sum(np.sum(params))


def test_other_uses_of_a_list_parameter_are_refused_when_called():
    dfn = fmad.differentiate(sums_list, mode="reverse")
    with pytest.raises(fmad.ReverseModeError, match="only reading its items") as info:
        dfn([np.ones(2), np.ones(2)])
    assert info.value.lineno == line_of(sums_list, "def sums_list")
    assert "mode='forward'" in str(info.value)


def test_a_loop_over_a_dict_parameter_is_refused_when_called():
    # its loop gives the keys: reverse mode's loop by index would not
    dfn = fmad.differentiate(loops_over_dict, mode="reverse")
    with pytest.raises(fmad.ReverseModeError, match="a loop over a dict") as info:
        dfn({0: 1.0, 1: 2.0})
    assert info.value.lineno == line_of(loops_over_dict, "for key in p")


# -- enumerate and zip over values with a derivative -----------------------------------------
def enumerates(W, x):
    rows = []
    for row in W:
        rows.append(np.sum(row * x))
    total = 0.0
    for k, v in enumerate(rows):
        total = total + v * v * k
    for i, row in enumerate(W):
        total = total + np.sum(row) * i
    return total


def enumerates_from_one(W, x):  # forward mode refuses enumerate(..., start=1)
    total = 0.0
    for k, row in enumerate(W, start=1):
        total = total + np.sum(row * x) * k
    return total


def zips(w, ys):
    parts = [w * 2.0, w * w, w]
    total = 0.0
    for p, y in zip(parts, ys, strict=False):
        total = total + p * y
    return total


def zips_strict(w, ys):
    parts = [w, w * w]
    total = 0.0
    for p, y in zip(parts, ys, strict=True):
        total = total + p * y
    return total


def test_enumerate_and_zip():
    W = np.arange(6.0).reshape(3, 2) / 5
    both(enumerates, ["W", "x"], {"W": W, "x": np.array([1.0, -2.0])})
    dfn = fmad.differentiate(enumerates_from_one, mode="reverse")
    check_gradients(dfn, {"W": W, "x": np.array([1.0, -2.0])})
    both(zips, ["w"], {"w": 0.7, "ys": [1.0, 2.0]})  # zip stops at the shorter
    both(zips, ["w"], {"w": 0.7, "ys": [1.0, 2.0, 3.0, 4.0]})
    both(zips_strict, ["w"], {"w": 0.7, "ys": [1.0, 2.0]})
    dfn = fmad.differentiate(zips_strict, wrt=["w"], mode="reverse")
    with pytest.raises(ValueError, match="zip\\(\\) argument 2 is longer than argument 1"):
        zips_strict(0.7, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="zip\\(\\) argument 2 is longer than argument 1") as info:
        dfn(0.7, [1.0, 2.0, 3.0])
    assert str(info.value).startswith(f"{__file__}:{line_of(zips_strict, 'zip(parts, ys')}:")
