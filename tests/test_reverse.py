"""Reverse mode (fmad.differentiate(..., mode="reverse")): straight-line code with one
scalar output. Values bit-identical, gradients equal to forward mode's and to central
differences, clear refusals for everything else, and mode="auto"."""

from __future__ import annotations

import inspect
import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fmad
from fmad import modes
from tests.fdcheck import check_gradients
from tests.reverse_check import compare

HERE = os.path.basename(__file__)


def line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def mlp(X, y, W1, b1, W2, b2):
    h = np.tanh(X @ W1 + b1)
    y_pred = h @ W2 + b2
    loss = np.mean((y_pred - y) ** 2)
    return loss


def mlp_args(h=5, n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(n, d)),
        "y": rng.normal(size=n),
        "W1": rng.normal(size=(d, h)),
        "b1": rng.normal(size=h),
        "W2": rng.normal(size=h),
        "b2": 0.3,
    }


WRT = ["W1", "b1", "W2", "b2"]


def test_mlp_matches_forward_and_finite_differences():
    assert compare(mlp, WRT, mlp_args()) == "same"
    check_gradients(fmad.differentiate(mlp, wrt=WRT, mode="reverse"), mlp_args())


def test_printed_code_reads_like_backprop():
    text = fmad.differentiate(mlp, wrt=WRT, mode="reverse").source
    assert "def mlp_rev(X, y, W1, b1, W2, b2):" in text
    assert "dloss_dy_pred = " in text and "dloss_dh = " in text
    assert text.count("# line ") >= 6  # the primal's lines, then the adjoints' again
    # the adjoints run last first: the loss's line before h's
    backward = text[text.index("dloss_dloss") :]
    loss_line, h_line = line_of(mlp, "loss = np.mean"), line_of(mlp, "h = np.tanh")
    assert backward.index(f"# line {loss_line}:") < backward.index(f"# line {h_line}:")


def reassigned(x, w):
    h = np.tanh(x * w)
    h = np.tanh(h * w)
    h = h * h + w
    return np.sum(h)


def unused(x, w, b):
    return np.sum(x * w)


def broadcasting(X, w, c, b):
    z = X * w + c  # w (d,), c (n, 1)
    z = z / (1.0 + b * b)
    return np.mean(np.maximum(z, 0.1) ** 3) + np.sum(np.where(X > 0, z, -z), axis=None)


def reductions(X, W):
    s = np.sum(X @ W, axis=0)
    m = np.mean(X @ W, axis=1, keepdims=True)
    t = (W.T @ X.T).reshape(-1)
    return np.sum(s * s) + np.sum(m) + np.sum(t[1:4] ** 2) + W[0, 1] * W[1, 1]


def extremes(X, W):
    Z = X @ W
    shifted = Z - np.max(Z, axis=1, keepdims=True)
    top = np.min(Z, axis=0) + Z.max() + np.amin(Z) + Z.min(axis=1)[0]
    return np.sum(shifted**2) + np.sum(top)


def fancy(x, w):
    picked = w[np.array([0, 2, 0])]
    return np.sum(picked * x) + np.dot(w, w) + w.sum() / w.mean()


def scalars(x, w, b):
    y = math.sin(w * x) + math.exp(b) - w**3 / b
    z = -y + float(w) * 2.0
    return z**2


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (reassigned, {"x": np.linspace(-1, 1, 5), "w": 0.7}),
        (reassigned, {"x": np.linspace(-1, 1, 5), "w": np.linspace(0.2, 0.9, 5)}),
        (unused, {"x": np.arange(3.0), "w": np.ones(3), "b": np.ones((2, 2))}),
        (
            broadcasting,
            {
                "X": np.linspace(-2, 2, 12).reshape(4, 3),
                "w": np.array([0.5, -1.0, 2.0]),
                "c": np.linspace(0, 1, 4).reshape(4, 1),
                "b": 0.3,
            },
        ),
        (reductions, {"X": np.linspace(-1, 1, 12).reshape(4, 3), "W": np.eye(3) + 0.1}),
        (fancy, {"x": np.array([1.0, 2.0, 3.0]), "w": np.array([0.5, 1.5, 2.0])}),
        (extremes, {"X": np.linspace(-1, 1, 12).reshape(4, 3), "W": np.eye(3) + 0.1}),
        (scalars, {"x": 0.5, "w": 1.2, "b": 0.7}),
    ],
    ids=[
        "reassigned",
        "reassigned-array",
        "unused",
        "broadcasting",
        "reductions",
        "fancy",
        "extremes",
        "scalars",
    ],
)
def test_straight_line_programs(fn, args):
    wrt = [n for n in args if n != "x" and n != "X"]
    assert compare(fn, wrt, args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args)


def test_unused_parameter_gets_zeros_of_its_shape():
    _, grads = fmad.differentiate(unused, mode="reverse")(np.arange(3.0), np.ones(3), 2.0)
    assert grads["b"] == 0.0 and type(grads["b"]) is float
    _, grads = fmad.differentiate(unused, mode="reverse")(np.arange(3.0), np.ones(3), np.ones(2))
    assert np.array_equal(grads["b"], np.zeros(2))


def sum_of(w):
    return np.sum(w)


def test_gradients_are_the_users_own_arrays():
    w = np.ones((2, 3))
    _, grads = fmad.differentiate(sum_of, mode="reverse")(w)
    g = grads["w"]
    assert g.flags.writeable and g.flags.owndata and g.shape == (2, 3)
    g[0, 0] = 5.0  # not a broadcast view
    assert np.array_equal(w, np.ones((2, 3)))


def branchy(x, w):
    if x > 0:
        return w * x
    return -w


def branches(x, w, b):
    if x > 0:
        y = w * x
        t = y + 1.0
    else:
        y = -w
        t = b * 2.0
    z = y * t
    if z > 1.0:
        z = z * b
    elif z < -1.0:
        if b > 1.0:
            z = np.tanh(z) * w
    return z + (w if x > 1 else b) + (x > 0 and w or b)


def array_branches(X, w, b):
    h = X @ w
    if np.sum(h) > 0:
        h = np.tanh(h) + b
    else:
        h = h * b
    return np.mean(h * h)


@pytest.mark.parametrize("x", [-1.5, -0.5, 0.5, 2.0])
@pytest.mark.parametrize("b", [0.4, 1.3, 3.0])
def test_branches_follow_the_branch_taken(x, b):
    args = {"x": x, "w": 0.7, "b": b}
    assert compare(branches, None, args) == "same"
    check_gradients(fmad.differentiate(branches, mode="reverse"), args)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_branches_with_arrays(sign):
    X = sign * np.linspace(0.1, 1.0, 12).reshape(4, 3)
    args = {"X": X, "w": np.array([0.5, 0.2, 0.1]), "b": 0.3}
    assert compare(array_branches, ["w", "b"], args) == "same"
    text = fmad.differentiate(array_branches, wrt=["w", "b"], mode="reverse").source
    assert "branch = True" in text and "if branch:" in text


def loop_over_w(xs, w):
    total = 0.0
    for v in w:
        total = total + v
    return total


def loop_break(xs, w):
    total = 0.0
    for x in xs:
        total = total + w * x
        if total > 1.0:
            break
    return total


def loop_if(xs, w):
    total = 0.0
    for x in xs:
        if x > 0:
            total = total + w * x
    return total


def loops(xs, w):
    total = 0.0
    for x in xs:
        total = total + w * x
    return total


def calls_helper(x, w):
    return helper(x * w)


def helper(z):
    return z * z


def augmented(x, w):
    y = w * x
    y += 1.0
    return y


def in_place(x, w):
    y = w * x
    y[0] = 0.0
    return np.sum(y)


def shuffles(x, w):
    y = w * x
    z = np.random.shuffle(x)
    return np.sum(y) + z


def test_a_helper_is_inlined():
    # a helper of the same module: its body inlined (tests/test_reverse_helpers.py)
    assert compare(calls_helper, ["w"], {"x": 1.5, "w": 0.25}) == "same"


def tied(w):
    return np.max(w) + np.min(w * w)


def test_ties_share_the_adjoint_as_in_forward_mode():
    w = np.array([1.0, -1.0, 1.0, 0.5])
    assert compare(tied, None, {"w": w}) == "same"
    _, grads = fmad.differentiate(tied, mode="reverse")(w)
    assert np.array_equal(grads["w"], [0.5, 0.0, 0.5, 1.0])


def twice(x):
    return 2.0 * x


def twice_jvp(primals, tangents):
    return 2.0 * tangents[0]


fmad.register(twice, jvp=twice_jvp)  # a forward rule of the user's: no transpose


def raises(x, w):
    if x < 0.0:
        raise ValueError("negative")
    return w * x


def no_transpose(x, w):
    return np.sum(twice(w * x))


def vector_output(x, w):
    return w * x


@pytest.mark.parametrize(
    ("fn", "text", "what"),
    [
        (in_place, "y[0] = 0.0", "item"),
        (no_transpose, "twice(w * x)", "no transpose rule"),
        (shuffles, "np.random.shuffle", "a call to"),
    ],
)
def test_refused_at_the_line_with_what_to_do(fn, text, what):
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(fn, wrt=["w"], mode="reverse")
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line_of(fn, text)}: "), message
    assert what in message and "mode='forward'" in message
    assert isinstance(info.value, fmad.UnsupportedError)


def test_array_output_is_refused_when_called():
    dfn = fmad.differentiate(vector_output, mode="reverse")
    assert dfn(np.ones(1), np.ones(1))[0].shape == (1,)  # one element counts as a scalar
    with pytest.raises(fmad.ReverseModeError, match="one real scalar output") as info:
        dfn(np.ones(3), np.ones(3))
    assert str(info.value).startswith(f"{__file__}:{line_of(vector_output, 'return w * x')}:")


def dot3(A, w):
    return np.sum(np.dot(A, w))


def einsum_broadcast(A, w):
    return np.sum(np.einsum("...i,...i->...", A, w))


def test_runtime_refusal_names_the_line():
    # np.dot of a 3-d array is transposed since issue 12's transposes (fmad/runtime_linear.py)
    assert compare(dot3, ["A"], {"A": np.ones((2, 3, 4)), "w": np.ones(4)}) == "same"
    dfn = fmad.differentiate(einsum_broadcast, wrt=["A"], mode="reverse")
    with pytest.raises(fmad.ReverseModeError, match="'...' axes broadcast") as info:
        dfn(np.ones((3, 4)), np.ones((1, 4)))
    assert str(info.value).startswith(f"{__file__}:{line_of(einsum_broadcast, 'np.einsum')}:")


def test_complex_and_container_arguments_are_refused():
    dfn = fmad.differentiate(sum_of, mode="reverse")
    for bad in (np.ones(2, dtype=complex), [1.0, 2.0], {"a": 1.0}, True):
        with pytest.raises(fmad.ReverseModeError, match="mode='forward'"):
            dfn(bad)


def test_unknown_mode():
    with pytest.raises(fmad.FmadError, match="unknown mode"):
        fmad.differentiate(sum_of, mode="backward")


def test_auto_picks_reverse_for_many_parameters_and_forward_otherwise():
    dfn = fmad.differentiate(mlp, wrt=WRT, mode="auto")
    assert dfn.mode == "auto" and dfn.__fmad_reverse__ is not None
    big = mlp_args(h=8)
    reverse = fmad.differentiate(mlp, wrt=WRT, mode="reverse")(**big)
    forward = fmad.differentiate(mlp, wrt=WRT)(**big)
    got = dfn(**big)
    assert all(np.array_equal(got[1][n], reverse[1][n]) for n in WRT)
    small = {"x": np.arange(3.0), "w": 0.5, "b": 1.0}
    assert size_below_threshold(small)
    assert dfn.__fmad__ is not None and forward[0] == got[0]
    udfn = fmad.differentiate(unused, mode="auto")
    value, grads = udfn(**small)
    assert value == fmad.differentiate(unused)(**small)[0]
    assert grads["w"] == 3.0 and grads["b"] == 0.0 and np.array_equal(grads["x"], [0.5] * 3)


def size_below_threshold(args) -> bool:
    return sum(np.size(v) for v in args.values()) <= modes.AUTO_THRESHOLD


def test_auto_falls_back_to_forward_for_array_outputs_and_refusals():
    dfn = fmad.differentiate(vector_output, mode="auto")
    x, w = np.arange(20.0), np.ones(20)
    value, grads = dfn(x, w)
    assert grads["w"].shape == (20, 20)  # the Jacobian, from forward mode
    assert fmad.differentiate(raises, mode="auto").mode == "forward"


def test_train_uses_auto():
    args = mlp_args(h=8)
    params = [fmad.Variable(n, args[n]) for n in WRT]
    data = {"X": args["X"], "y": args["y"]}
    result = fmad.train(mlp, params, data, lr=0.05, epochs=30)
    assert result.losses[-1] < result.losses[0]


def test_show_command_prints_the_reverse_code():
    out = subprocess.run(
        [sys.executable, "-m", "fmad", "show", "examples/linear_regression.py:train_loop"]
        + ["--mode", "reverse", "--wrt", "w,b"],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    ).stdout
    assert "def train_loop_rev(X, y, w, b):" in out
    assert "dloss_dy_pred = fmad_rev.unbroadcast(dloss_dy_pred_sub_y, y_pred)" in out
    assert "return (loss, dloss_dw, dloss_db)" in out


def through_complex(x, w):
    z = x + 1j * w
    return np.sum(np.abs(z))


def test_complex_intermediate_values_are_refused():
    dfn = fmad.differentiate(through_complex, wrt=["w"], mode="reverse")
    for w in (0.5, np.array([0.5, 2.0])):
        with pytest.raises(fmad.ReverseModeError, match="went through complex values"):
            dfn(np.array([1.0, 2.0]) if np.ndim(w) else 1.0, w)


def rnn(xs, w, b):
    acc = 0.0
    h = b
    for x in xs:
        t = w * x + h
        acc = acc + t * t
        h = np.tanh(t)
    return np.sum(acc + h)


def power_loop(n, w):
    s = w
    for _ in range(n):
        s = s * w + 1.0
    return s


def array_loop(X, W, steps):
    H = X
    for _ in range(steps):
        H = np.tanh(H @ W)
    return np.sum(H * H)


@pytest.mark.parametrize(
    ("fn", "args", "wrt"),
    [
        (rnn, {"xs": np.array([0.5, -1.0, 2.0]), "w": 0.7, "b": 0.3}, ["w", "b"]),
        (rnn, {"xs": [0.5, -1.0], "w": np.array([0.1, 0.2]), "b": np.array([0.3, 0.1])}, None),
        (power_loop, {"n": 5, "w": 0.9}, ["w"]),
        (power_loop, {"n": 0, "w": 0.9}, ["w"]),
        (
            array_loop,
            {"X": np.linspace(-1, 1, 6).reshape(2, 3), "W": np.eye(3) * 0.5, "steps": 3},
            ["W"],
        ),
    ],
    ids=["rnn", "rnn-arrays", "power", "power-no-iteration", "array-loop"],
)
def test_for_loops_with_a_tape(fn, args, wrt):
    wrt = wrt or ["w", "b"]
    assert compare(fn, wrt, args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args)


def long_loop(n, w):
    s = 0.0
    for _ in range(n):
        s = 0.5 * s + w * np.cos(s)
    return s


def test_the_tape_holds_only_what_the_adjoint_reads():
    dfn = fmad.differentiate(long_loop, wrt=["w"], mode="reverse")
    push = next(line.strip() for line in dfn.source.splitlines() if ".append(" in line)
    # per iteration: s at its start and cos(s), which the adjoints multiply by, and the two
    # terms of the sum (their shapes, for unbroadcast); never the loop counter, never w
    assert push == "tape.append((c0p5_mult_s, cos_s, s_1, w_mult_cos_s))", push
    n = 100_000
    tracemalloc.start()
    value, grads = dfn(n, 0.4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert value == long_loop(n, 0.4)
    forward = fmad.differentiate(long_loop, wrt=["w"])(n, 0.4)[1]["w"]
    np.testing.assert_allclose(grads["w"], forward, rtol=1e-9)
    # a tuple of four floats per iteration: about 180 bytes (measured peak / n: 176)
    assert peak / n < 250, peak / n


def test_show_command_on_a_function_made_in_reverse_mode(tmp_path):
    target = tmp_path / "target.py"
    target.write_text(
        "import fmad\n\n\n"
        '@fmad.differentiate(wrt=["w"], mode="reverse")\n'
        "def loss(x, w):\n"
        "    return (w * x - 1.0) ** 2\n"
    )
    root = os.path.dirname(os.path.dirname(__file__))
    env = {**os.environ, "PYTHONPATH": root}

    def show(*extra):
        command = [sys.executable, "-m", "fmad", "show", f"{target}:loss", *extra]
        return subprocess.run(command, capture_output=True, text=True, check=True, env=env)

    assert "def loss(x, w):" in show().stdout  # forward mode's code
    assert "def loss_rev(x, w):" in show("--mode", "reverse").stdout


def loop_in_branch(n, x, w):
    s = w
    if x > 0:
        for _ in range(n):
            s = s * w + x
    else:
        s = s * 2.0
    return s


@pytest.mark.parametrize("x", [-1.0, 0.5])
def test_a_loop_inside_a_branch(x):
    args = {"n": 4, "x": x, "w": 0.8}
    assert compare(loop_in_branch, ["w"], args) == "same"
    check_gradients(fmad.differentiate(loop_in_branch, wrt=["w"], mode="reverse"), args)
