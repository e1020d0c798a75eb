"""Work shared between the variants of one function (fmad/reuse.py, the memo of
fmad/composites.py): a function read and flattened once gives each variant exactly the code a
fresh read gives it; nothing stale is handed out (a rebound global, a closure); refusals are
raised at decoration, every time; a composite's short form found once is given again only
where the activity it asked about is the same."""

from __future__ import annotations

import ast
import sys

import numpy as np
import pytest

import fmad
from fmad import composites, reuse
from tests.fdcheck import check_gradients


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def network(x1, x2, y, w11, w12, w21, w22, w31, w32, b1, b2, b3):
    h1 = 1.0 / (1.0 + np.exp(-(w11 * x1 + w12 * x2 + b1)))
    h2 = 1.0 / (1.0 + np.exp(-(w21 * x1 + w22 * x2 + b2)))
    out = 1.0 / (1.0 + np.exp(-(w31 * h1 + w32 * h2 + b3)))
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


def scaled(u, v):
    return u * np.sin(v) + u * u


def with_helpers(x, w, b):
    a = scaled(w, x)  # active first argument
    c = scaled(x, b)  # active second argument: another variant of the same helper
    return sigmoid(a * c) + np.sum(x) * w


def with_nested(x, w, b):
    def inner(t):
        return np.tanh(t * w) + b

    return inner(x) * inner(b)


def calls_parameter(f, x, w):
    return f(w * x) + w


def bce(x, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(w * x + b)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def refused(x, w):
    w.sort()  # an in-place change of a value that carries a derivative
    return w * x


X = np.linspace(-1.0, 1.5, 6)
CASES = [
    (network, None, {"shapes": {"x1": (6,), "x2": (6,), "y": (6,)}}),
    (with_helpers, ["w", "b"], {"shapes": {"x": (6,)}}),
    (with_helpers, ["x", "w", "b"], {}),
    (with_nested, ["w", "b"], {"shapes": {"x": (6,)}}),
    (with_nested, ["x", "w"], {"shapes": {"x": (6,)}}),
]


def printed(fn, wrt, shapes, mode="forward"):
    f = fmad.differentiate(fn, wrt=wrt, mode=mode)
    texts = [f.source, f.flat_source, f.show("forward", free=True)]
    if shapes is not None:
        texts += [f.show(shapes=shapes), f.show(shapes=shapes, free=True)]
    return texts


@pytest.mark.parametrize("fn, wrt, options", CASES)
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_shared_read_prints_the_code_of_a_fresh_one(monkeypatch, fn, wrt, options, mode):
    shapes = options.get("shapes")
    if mode == "reverse" and fn is with_nested:
        shapes = None
    shared = [printed(fn, wrt, shapes, mode) for _ in range(2)]  # the second from the memo
    assert shared[0] == shared[1]
    monkeypatch.setattr(reuse, "ENABLED", False)
    assert printed(fn, wrt, shapes, mode) == shared[0]


def test_each_variant_gets_its_own_copy() -> None:
    from fmad.transform import prepare

    first = prepare(with_helpers)
    second = prepare(with_helpers)
    assert first[3] is not second[3]
    flat_nodes = {id(n) for n in ast.walk(second[3])}
    assert not flat_nodes & {id(n) for n in ast.walk(first[3]) if n._fields or n._attributes}
    assert not flat_nodes & {id(n) for n in ast.walk(second[0].tree) if n._fields or n._attributes}
    assert first[1] is not second[1] and first[2] is not second[2]
    first[3].body.clear()  # a pass changing its tree in place
    first[1].local_names.add("changed")
    first[2].reserve("changed")
    third = prepare(with_helpers)
    assert third[3].body and "changed" not in third[1].local_names
    assert not third[2].is_taken("changed")
    assert [type(s) for s in third[3].body] == [type(s) for s in second[3].body]


def test_values_and_gradients_with_a_shared_read() -> None:
    rng = np.random.default_rng(3)
    args = dict(
        x1=rng.normal(size=6),
        x2=rng.normal(size=6),
        y=(rng.random(6) > 0.5).astype(float),
        **dict(zip("w11 w12 w21 w22 w31 w32 b1 b2 b3".split(), rng.normal(size=9), strict=True)),
    )
    f = fmad.differentiate(network, wrt=list(args)[3:])
    for _ in range(2):  # the bundled variant (array data), then the numbers one
        check_gradients(f, args)
        check_gradients(f, {k: float(v[0]) if k in "x1x2y" else v for k, v in args.items()})


def test_a_pinned_function_gets_its_own_variant() -> None:
    f = fmad.differentiate(calls_parameter, wrt=["w"])
    assert f(np.sin, 0.5, 2.0)[1]["w"] == pytest.approx(np.cos(1.0) * 0.5 + 1.0)
    assert f(np.exp, 0.5, 2.0)[1]["w"] == pytest.approx(np.exp(1.0) * 0.5 + 1.0)
    assert f(np.sin, 0.5, 2.0)[1]["w"] == pytest.approx(np.cos(1.0) * 0.5 + 1.0)


# a differentiated function called inside another one: fmad.nesting looks it up when it
# flattens the outer function, so the memo must see it rebound
def inner_a(x, y):
    return x * y


def inner_b(x, y):
    return x * y * y


d_inner = fmad.differentiate(inner_a, wrt=["y"])


def outer(x):
    v, g = d_inner(x, 2.0)
    return x * g["y"]


def test_a_rebound_global_read_when_flattening_is_read_again(monkeypatch) -> None:
    assert fmad.differentiate(outer)(3.0) == (9.0, {"x": 6.0})
    monkeypatch.setattr(sys.modules[__name__], "d_inner", fmad.differentiate(inner_b, wrt=["y"]))
    # g["y"] = 2xy = 4x at y = 2: outer is 4x**2, its derivative 8x (was 2x**2 and 4x)
    assert fmad.differentiate(outer)(3.0) == (36.0, {"x": 24.0})


def make_closure(k):
    def f(x, w):
        return k * w * x

    def rebind(value):
        nonlocal k
        k = value

    return f, rebind


def test_a_closure_is_read_again(monkeypatch) -> None:
    f, rebind = make_closure(2.0)
    assert fmad.differentiate(f, wrt=["w"])(3.0, 1.0) == (6.0, {"w": 6.0})
    rebind(5.0)
    assert fmad.differentiate(f, wrt=["w"])(3.0, 1.0) == (15.0, {"w": 15.0})


def test_refusals_are_raised_at_decoration_every_time() -> None:
    for _ in range(3):
        with pytest.raises(fmad.FmadError) as info:
            fmad.differentiate(refused, wrt=["w"])
        assert info.value.lineno == refused.__code__.co_firstlineno + 1
        assert str(info.value).startswith(f"{__file__}:{info.value.lineno}:")


def test_a_fence_refusal_is_raised_every_time() -> None:
    def fenced(x, w):
        try:
            return w * x
        except ValueError:
            return 0.0

    for _ in range(2):
        with pytest.raises(fmad.FmadError) as info:
            fmad.differentiate(fenced)
        assert info.value.lineno == fenced.__code__.co_firstlineno + 1


# -- the composites' memo -------------------------------------------------------------------
def unmemoized(monkeypatch) -> None:
    monkeypatch.setattr(
        composites.Composites, "partial", lambda self, v, inactive: self.find_partial(v, inactive)
    )


@pytest.mark.parametrize("wrt", [["w", "b"], ["y", "w", "b"], ["w", "y"], None])
def test_the_short_form_found_once_per_direction_is_the_same(monkeypatch, wrt) -> None:
    shapes = {"x": (5,), "y": (5,)}
    memo = printed(bce, wrt, shapes)
    unmemoized(monkeypatch)
    assert printed(bce, wrt, shapes) == memo


def test_the_short_form_is_not_given_to_a_direction_where_the_label_is_active() -> None:
    # direction y: y carries a derivative, no short form; direction w: the short form
    f = fmad.differentiate(bce, wrt=["w", "y"])
    assert "y - p" in f.source or "p - y" in f.source
    rng = np.random.default_rng(1)
    args = {"x": rng.normal(size=5), "y": rng.random(5), "w": 0.7, "b": -0.2}
    check_gradients(f, args)
    check_gradients(fmad.differentiate(bce, wrt=["y", "w"]), args)
