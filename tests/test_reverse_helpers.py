"""Reverse mode through helpers of the user's module (issue 12): each helper gets a forward
and an adjoint function (fmad/reverse_calls.py), printed once and called at each call site;
the per-shape variants that run inline them (fmad/reverse_inline.py).

Every program gives the original's exact value, forward mode's gradient to rtol 1e-10 and
central differences, both from the code with the helpers' functions (the printed code) and
from the inlined variants; every refusal is a ReverseModeError at the marked line of the file.
"""

from __future__ import annotations

import copy
import inspect
import os

import numpy as np
import pytest

import fmad
from fmad import composites
from tests import helpers_module as hm
from tests import reverse_helpers_module as rh
from tests import test_programs
from tests.fdcheck import check_gradients, same_value
from tests.reverse_check import compare

RNG = np.random.default_rng(12)
X = RNG.normal(size=(30, 3))
Y = (X[:, 0] > 0.0) * 1.0

PROGRAMS = [
    (rh.logistic, ["w", "b"], {"X": X, "y": Y, "w": np.array([0.1, -0.2, 0.3]), "b": 0.05}),
    (
        rh.mlp,
        ["W1", "b1", "W2", "b2"],
        {
            "X": X,
            "y": Y,
            "W1": RNG.normal(size=(3, 4)),
            "b1": RNG.normal(size=4),
            "W2": RNG.normal(size=4),
            "b2": 0.3,
        },
    ),
    (rh.calls_reassigns, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (rh.branch_and_loop, ["w", "b"], {"w": 0.7, "b": 0.4}),
    (rh.branch_and_loop, ["w", "b"], {"w": -1.5, "b": 0.2}),
    (rh.same_names, ["w", "b"], {"w": 0.7, "b": -0.4}),
    # tests/helpers_module.py: the programs whose helpers are straight-line code
    (hm.three_levels, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.patterns, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.shared_variant, ["w", "b"], {"w": np.array([0.3, -0.8, 1.1]), "b": 1.3}),
    (hm.keyword_calls, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.r4, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (hm.calls_staticmethod, ["w"], {"w": 0.7}),
    # once refused by the inlining, done by the helper's own functions: the helper's default
    # is its own object, the helper reads its own global
    (rh.calls_mutable_default, ["w"], {"w": 0.7}),
    (rh.shadows_np, ["w"], {"w": 0.7}),
    # the boundary of the function form (see fmad/reverse_calls.py)
    (rh.calls_clipped, ["w", "b"], {"w": 0.7, "b": -0.4}),
    (rh.calls_clipped, ["w", "b"], {"w": 3.0, "b": 1.0}),
    (rh.calls_clipped, ["w", "b"], {"w": -2.5, "b": 0.5}),
    (rh.calls_double, ["w"], {"X": X, "w": np.array([0.1, -0.2, 0.3])}),
    (rh.some_active, ["w", "c"], {"X": X, "w": np.array([0.1, -0.2, 0.3]), "c": 0.4}),
    (rh.same_argument_twice, ["w"], {"w": 0.3}),
    (rh.calls_pair, ["w"], {"w": 0.3}),
    (rh.in_loop, ["w"], {"w": 0.3, "xs": [0.1, 0.5, -0.2, 0.9]}),
    (rh.inactive_call, ["w"], {"X": X, "w": np.array([0.1, -0.2, 0.3])}),
    (rh.ignores_argument, ["w", "b"], {"w": np.array([0.1, 0.2]), "b": 0.3}),
    (rh.helper_in_branch, ["w"], {"w": 0.3}),
    (rh.helper_in_branch, ["w"], {"w": -0.3}),
    (rh.nested_early, ["w"], {"w": 0.3}),
    (rh.nested_early, ["w"], {"w": 1.5}),
    (rh.odd_signatures, ["w"], {"w": 0.7}),
    (rh.reassigned_argument, ["w"], {"w": 0.7}),
    (rh.carried_argument, ["w", "b"], {"w": 0.7, "b": -0.3}),
    (rh.returns_list, ["w"], {"w": 0.7}),
    (rh.passes_list, ["w", "b"], {"w": 0.7, "b": 0.2}),
]


def printed_form(fn, wrt):
    """The code ``.source`` prints (the helpers' functions), as a function returning
    ``(value, grads)``: the variants that usually run inline the helpers."""
    reverse = fmad.differentiate(fn, wrt=wrt, mode="reverse").__fmad_reverse__
    wrt = reverse.wrt

    def run(**args):
        value, *grads = reverse.compiled(**copy.deepcopy(args))
        return value, reverse.gradients(value, grads, [args[w] for w in wrt])

    run.__wrapped__ = fn  # what tests/fdcheck.py differentiates by differences
    run.wrt = list(wrt)
    return run, reverse


@pytest.mark.parametrize(("fn", "wrt", "args"), PROGRAMS, ids=lambda v: getattr(v, "__name__", ""))
def test_helpers_give_forwards_gradient_and_the_exact_value(fn, wrt, args):
    assert compare(fn, wrt, args, rtol=1e-10) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args)


def test_auto_mode_takes_reverse_for_a_helper():
    args = PROGRAMS[1][2]
    auto = fmad.differentiate(rh.mlp, wrt=PROGRAMS[1][1], mode="auto")
    reverse = fmad.differentiate(rh.mlp, wrt=PROGRAMS[1][1], mode="reverse")
    value, grads = auto(**args)
    rvalue, rgrads = reverse(**args)
    assert value == rvalue
    for name in grads:
        assert np.array_equal(grads[name], rgrads[name])


@pytest.mark.parametrize(("fn", "wrt", "args"), PROGRAMS, ids=lambda v: getattr(v, "__name__", ""))
def test_the_printed_code_gives_the_inlined_gradient_and_the_exact_value(fn, wrt, args):
    run, _ = printed_form(fn, wrt)
    value, grads = run(**args)
    assert same_value(value, fn(**copy.deepcopy(args)))
    inlined_value, inlined = fmad.differentiate(fn, wrt=wrt, mode="reverse")(**args)
    forward = fmad.differentiate(fn, wrt=wrt)(**args)[1]
    assert same_value(value, inlined_value)
    for name in wrt:
        assert np.shape(grads[name]) == np.shape(inlined[name])
        np.testing.assert_allclose(grads[name], inlined[name], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grads[name], forward[name], rtol=1e-10, atol=1e-13)
    check_gradients(run, args)


def test_one_adjoint_function_per_helper_quoting_its_lines():
    text = fmad.differentiate(rh.same_names, wrt=["w", "b"], mode="reverse").source
    # two call sites, one forward and one adjoint function
    assert text.count("def sigmoid_fwd(z):") == 1 and text.count("def sigmoid_bwd(") == 1
    assert text.count("= sigmoid_fwd(") == 2 and text.count("sigmoid_bwd(sigmoid_saved") == 2
    line = inspect.getsourcelines(rh.sigmoid)[1] + 1
    bwd = text[text.index("def sigmoid_bwd(") : text.index("def same_names_rev")]
    assert f"# line {line}: return 1.0 / (1.0 + np.exp(-z))" in bwd
    # the helper's statements are in its own functions only
    main = text[text.index("def same_names_rev") :]
    assert "np.exp" not in main and f"# line {line}:" not in main
    # printed before the function, by .source, show() and fmad.source
    assert text.index("def sigmoid_fwd") < text.index("def sigmoid_bwd") < text.index(main)
    reverse = fmad.differentiate(rh.same_names, wrt=["w", "b"], mode="reverse")
    assert reverse.__fmad_reverse__.show() == text


def test_the_functions_say_what_they_save_and_return(monkeypatch):
    # the chain as written (the cross-entropy's short form, fmad.composites, skips it)
    monkeypatch.setattr(composites, "ENABLED", False)
    text = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse").source
    assert "def sigmoid_fwd(z):" in text
    assert "return (div_1, (exp_neg_z, c1p0_add_exp_neg_z, div_1))" in text
    assert "def sigmoid_bwd(saved, dout_dsigmoid):" in text
    assert "    exp_neg_z, c1p0_add_exp_neg_z, div_1 = saved\n" in text
    assert "    return dout_dz\n" in text
    assert "p, sigmoid_saved = sigmoid_fwd(X_matmul_w_add_b)" in text
    assert "dout_dX_matmul_w_add_b = sigmoid_bwd(sigmoid_saved, dout_dp)" in text


def test_the_cross_entropy_of_a_sigmoid_helper_goes_straight_to_its_input():
    text = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse").source
    assert "dout_dX_matmul_w_add_b = -(dout_dy_mult_log_p_add_mult_1 * (p - y))" in text
    assert "sigmoid_bwd(sigmoid_saved" not in text
    args = {"X": np.random.default_rng(2).normal(size=(30, 3)), "w": np.array([0.1, -0.2, 0.3])}
    args.update(y=(args["X"][:, 0] > 0) * 1.0, b=0.05)
    run, _ = printed_form(rh.logistic, ["w", "b"])
    value, grads = run(**args)
    assert same_value(value, rh.logistic(**args))
    _, expected = check_gradients(fmad.differentiate(rh.logistic, wrt=["w", "b"]), args)
    for name in ("w", "b"):
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-12, atol=1e-15)


def helper_functions(fn, wrt):
    return [u.tree.name for u in printed_form(fn, wrt)[1].unit.helpers]


def test_the_boundary_of_the_function_form():
    # control flow in the helper: its flags and its loop's tape are saved values
    assert helper_functions(rh.calls_clipped, ["w", "b"]) == ["clipped_fwd", "clipped_bwd"]
    text = fmad.differentiate(rh.calls_clipped, wrt=["w", "b"], mode="reverse").source
    assert "tape" in text[text.index("def clipped_fwd") : text.index("def clipped_bwd")]
    # a helper calling a helper: each its own pair, the inner one first
    assert helper_functions(rh.calls_double, ["w"]) == [
        "sigmoid_fwd",
        "sigmoid_bwd",
        "double_sigmoid_fwd",
        "double_sigmoid_bwd",
    ]
    # some arguments active: one pair per pattern; the adjoint returns the active ones only
    text = fmad.differentiate(rh.some_active, wrt=["w", "c"], mode="reverse").source
    assert helper_functions(rh.some_active, ["w", "c"]) == [
        "scaled_fwd",
        "scaled_bwd",
        "scaled_fwd_1",
        "scaled_bwd_1",
    ]
    first = text[text.index("def scaled_bwd(") : text.index("def scaled_fwd_1")]
    second = text[text.index("def scaled_bwd_1(") : text.index("def some_active_rev")]
    assert "return dout_dx\n" in first and "return dout_dk\n" in second
    # both arguments active, the same name twice: a tuple of adjoints, added up
    text = fmad.differentiate(rh.same_argument_twice, wrt=["w"], mode="reverse").source
    assert "return (dout_da, dout_db)" in text
    # a result with no derivative: the forward function returns the value only
    text = fmad.differentiate(rh.inactive_call, wrt=["w"], mode="reverse").source
    names = ["sigmoid_value", "sigmoid_fwd", "sigmoid_bwd"]
    assert helper_functions(rh.inactive_call, ["w"]) == names
    assert "s = sigmoid_value(" in text and ", sigmoid_saved = sigmoid_fwd(" in text
    # a helper returning a tuple stays inlined (its result is a container of the caller)
    assert helper_functions(rh.calls_pair, ["w"]) == []
    # nested defs are inlined (they read the enclosing function's variables where called)
    assert helper_functions(rh.nested_early, ["w"]) == []
    # a list returned, or a list with a derivative passed: inlined
    assert helper_functions(rh.returns_list, ["w"]) == []
    assert helper_functions(rh.passes_list, ["w", "b"]) == []
    # a wrt list parameter passed on: the helper's adjoint of it is a list too
    assert helper_functions(rh.list_parameter, ["params"]) == [
        "product_of_items_fwd",
        "product_of_items_bwd",
    ]
    text = fmad.differentiate(rh.odd_signatures, wrt=["w"], mode="reverse").source
    assert "def kwonly_fwd(x, *, k=2.0):" in text and "def const_bwd(saved, dout_dconst):" in text


def test_an_error_in_a_helper_names_the_helpers_line():
    run, _ = printed_form(rh.calls_reciprocal, ["w"])
    for call in (
        lambda: run(w=0.0),
        lambda: fmad.differentiate(rh.calls_reciprocal, wrt=["w"], mode="reverse")(0.0),
    ):
        with pytest.raises(ZeroDivisionError) as info:
            call()
        last = info.traceback[-1]
        assert os.path.basename(str(last.path)) == os.path.basename(rh.__file__)
        assert last.lineno + 1 == marker_line("reciprocal")


def test_show_prints_each_helpers_functions_once(capsys):
    from fmad.cli import main

    main(["show", "examples/tiny_network.py:loss_matrix_params", "--mode", "reverse"])
    text = capsys.readouterr().out
    assert text.count("def sigmoid_fwd(z):") == 1 and text.count("def sigmoid_bwd(") == 1
    # two calls; the output's adjoint is the cross-entropy's short form (fmad.composites),
    # straight to the output layer's input: only the hidden layer's call takes sigmoid_bwd
    assert text.count("sigmoid_fwd(") == 3 and text.count("sigmoid_bwd(") == 2
    assert "# line 27: return 1 / (1 + np.exp(-z))" in text


def test_a_call_in_a_loop_keeps_its_saved_values_on_the_tape():
    text = fmad.differentiate(rh.in_loop, wrt=["w"], mode="reverse").source
    assert "tape.append((" in text and "sigmoid_saved" in text
    push = next(line for line in text.splitlines() if "tape.append(" in line)
    assert "sigmoid_saved" in push
    # one iteration's values each: the tape holds as many tuples as iterations
    run, _ = printed_form(rh.in_loop, ["w"])
    args = {"w": 0.3, "xs": list(np.linspace(-1.0, 1.0, 50))}
    value, grads = run(**args)
    assert value == rh.in_loop(**args)
    check_gradients(run, args)


def test_the_program_table_rows_with_helpers_in_the_printed_code():
    # the rows of tests/test_programs.py that call helpers, run by the printed code
    seen = 0
    for row in test_programs.ROWS:
        fn, wrt, points = row.values
        try:
            run, reverse = printed_form(fn, wrt)
        except fmad.ReverseModeError:
            continue
        if not reverse.unit.helpers:
            continue
        seen += 1
        for args in points:
            value, grads = run(**args)
            assert same_value(value, fn(**copy.deepcopy(args))), fn.__name__
            forward = fmad.differentiate(fn, wrt=wrt)(**args)[1]
            for name in forward:
                np.testing.assert_allclose(grads[name], forward[name], rtol=1e-10, atol=1e-13)
    assert seen >= 5


def marker_line(tag: str) -> int:
    lines = inspect.getsource(rh).splitlines()
    found = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, tag
    return found[0]


@pytest.mark.parametrize(
    ("fn", "tag", "what"),
    [
        (rh.calls_recursive, "recursive", "recursion"),
        (rh.calls_mutual, "mutual", "recursion"),
        (rh.calls_star, "star", "*args or **kwargs"),
        (rh.calls_kwargs, "kwargs", "*args or **kwargs"),
        (rh.calls_closure, "closure", "enclosing function"),
        (rh.calls_other_module, "other-module", "another module"),
        (rh.calls_unreadable, "unreadable", "helper 'unreadable'"),
    ],
)
def test_refused_at_the_line_with_what_to_do(fn, tag, what):
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(fn, wrt=["w"], mode="reverse")
    error = info.value
    message = str(error)
    assert os.path.basename(error.filename) == os.path.basename(rh.__file__), message
    assert error.lineno == marker_line(tag), message
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert what in message and "mode='forward'" in message, message
    # forward mode still differentiates what it supports (mode='auto' falls back to it)
    if tag not in ("star", "kwargs", "recursive", "mutual", "nested", "closure", "mutable"):
        compare(fn, ["w"], {"w": 0.7})


def test_a_rebound_helper_is_inlined_again(monkeypatch):
    # the inlined body is the helper's at transform time: rebinding the name rebuilds it
    args = PROGRAMS[0][2]
    reverse = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse")
    before = reverse(**args)
    monkeypatch.setattr(rh, "sigmoid", rh.steep_sigmoid)
    assert compare(rh.logistic, ["w", "b"], args) == "same"
    value, grads = reverse(**args)
    assert value == rh.logistic(**args) and value != before[0]
    forward = fmad.differentiate(rh.logistic, wrt=["w", "b"])(**args)[1]
    np.testing.assert_allclose(grads["w"], forward["w"], rtol=1e-10)


def test_a_rebound_inner_helper_is_seen_through_the_outer_one(monkeypatch):
    # double_sigmoid calls sigmoid: its functions are rebuilt when sigmoid is rebound
    args = {"X": X, "w": np.array([0.1, -0.2, 0.3])}
    reverse = fmad.differentiate(rh.calls_double, wrt=["w"], mode="reverse")
    before = reverse(**args)[0]
    monkeypatch.setattr(rh, "sigmoid", rh.steep_sigmoid)
    value, grads = reverse(**args)
    assert value == rh.calls_double(**args) and value != before
    run, _ = printed_form(rh.calls_double, ["w"])
    assert run(**args)[0] == value
    forward = fmad.differentiate(rh.calls_double, wrt=["w"])(**args)[1]
    np.testing.assert_allclose(grads["w"], forward["w"], rtol=1e-10)
    np.testing.assert_allclose(run(**args)[1]["w"], forward["w"], rtol=1e-10)


def test_a_list_parameter_passed_to_a_helper():
    args = {"params": [np.array([1.0, 2.0]), np.array([3.0, 0.5])]}
    forward = fmad.differentiate(rh.list_parameter, wrt=["params"])(**args)[1]["params"]
    run, _ = printed_form(rh.list_parameter, ["params"])
    reverse = fmad.differentiate(rh.list_parameter, wrt=["params"], mode="reverse")
    for value, grads in (run(**args), reverse(**args)):
        assert same_value(value, rh.list_parameter(**copy.deepcopy(args)))
        assert isinstance(grads["params"], list) and len(grads["params"]) == 2
        for got, want in zip(grads["params"], forward, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    # central differences, item by item
    h = 1e-6
    for i in range(2):
        for j in range(2):
            up, down = copy.deepcopy(args), copy.deepcopy(args)
            up["params"][i][j] += h
            down["params"][i][j] -= h
            fd = (rh.list_parameter(**up) - rh.list_parameter(**down)) / (2 * h)
            assert abs(run(**args)[1]["params"][i][j] - fd) < 1e-6


def test_calls_beyond_the_variants_run_the_printed_code():
    # after 16 variants (fmad/reverse_shapes.py LIMIT) a call runs the generic code: the
    # helpers' forward and adjoint functions
    reverse = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse")
    forward = fmad.differentiate(rh.logistic, wrt=["w", "b"])
    for n in range(1, 21):
        args = {"X": X[:n], "y": Y[:n], "w": np.array([0.1, -0.2, 0.3]), "b": 0.05}
        value, grads = reverse(**args)
        assert same_value(value, rh.logistic(**args))
        expected = forward(**args)[1]
        for name in ("w", "b"):
            np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-14)
    assert len(reverse.__fmad_reverse__.variants) == 16


def test_large_arrays_computed_in_place_keep_the_saved_values():
    # fmad/inplace.py reuses the buffers of private arrays: a value a helper's forward
    # function returns (and saves) is never one
    rng = np.random.default_rng(5)
    big = rng.normal(size=(100_000, 3))
    args = {"X": big, "y": (big[:, 0] > 0.0) * 1.0, "w": np.array([0.1, -0.2, 0.3]), "b": 0.05}
    run, _ = printed_form(rh.logistic, ["w", "b"])
    value, grads = run(**args)
    inlined_value, inlined = fmad.differentiate(rh.logistic, wrt=["w", "b"], mode="reverse")(**args)
    assert same_value(value, inlined_value) and same_value(value, rh.logistic(**args))
    for name in ("w", "b"):
        assert np.array_equal(grads[name], inlined[name])
