"""Parameters in containers (pytrees): dicts, lists and tuples of arrays, nested.

The gradient has the parameter's structure, each leaf the leaf's shape (scalar loss) or
``shape(value) + shape(leaf)``; values are bit-identical to the original's; gradients agree
with central differences; what fmad does not model on a container is an FmadError at the
user's line; nothing passed in is mutated.
"""

from __future__ import annotations

import copy
import inspect
import os

import numpy as np
import pytest

import fmad
from fmad import pytree
from tests.fdcheck import check_gradients

THIS_FILE = os.path.basename(__file__)
RNG = np.random.default_rng(13)


def marker_line(tag: str) -> int:
    lines = inspect.getsource(inspect.getmodule(marker_line)).splitlines()
    found = [n for n, line in enumerate(lines, start=1) if line.rstrip().endswith(f"# LINE-{tag}")]
    assert len(found) == 1, tag
    return found[0]


# -- finite differences over the leaves of a tree ----------------------------------------------
def paths(tree, prefix=()):
    """The path of each leaf (keys and indices), in any order."""
    if isinstance(tree, dict):
        return [p for k in tree for p in paths(tree[k], (*prefix, k))]
    if isinstance(tree, list | tuple):
        return [p for i, v in enumerate(tree) for p in paths(v, (*prefix, i))]
    return [prefix]


def get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def replaced(tree, path, leaf):
    if not path:
        return leaf
    head, *rest = path
    if isinstance(tree, dict):
        return {**tree, head: replaced(tree[head], rest, leaf)}
    items = list(tree)
    items[head] = replaced(items[head], rest, leaf)
    return type(tree)(items)


def check(fn, args: dict, name: str, h: float = 1e-6, tol: float = 1e-6):
    """Value bit-identical, inputs untouched, gradient structure, central differences."""
    before = copy.deepcopy(args)
    value, grads = fmad.differentiate(fn, wrt=[name])(**args)
    expected = fn(**copy.deepcopy(args))
    assert np.array_equal(value, expected) and np.shape(value) == np.shape(expected)
    for k in args:  # nothing passed in is mutated
        assert repr(args[k]) == repr(before[k])
    tree, grad = args[name], grads[name]
    assert sorted(map(str, paths(grad))) == sorted(map(str, paths(tree)))
    for path in paths(tree):
        leaf = np.asarray(get(tree, path), dtype=float)
        g = np.asarray(get(grad, path))
        vshape = np.shape(value) if np.size(value) != 1 else ()
        assert g.shape == vshape + leaf.shape, (path, g.shape)
        if isinstance(get(grad, path), float):
            assert np.ndim(get(tree, path)) == 0
        num = np.zeros(vshape + leaf.shape)
        for idx in np.ndindex(leaf.shape):
            plus, minus = leaf.copy(), leaf.copy()
            plus[idx] += h
            minus[idx] -= h
            as_leaf = (lambda a: a) if leaf.shape else float
            up = fn(**{**args, name: replaced(tree, path, as_leaf(plus))})
            down = fn(**{**args, name: replaced(tree, path, as_leaf(minus))})
            d = (np.asarray(up, dtype=float) - np.asarray(down, dtype=float)) / (2 * h)
            num[(..., *idx)] = np.reshape(d, vshape)
        np.testing.assert_allclose(g, num, rtol=tol, atol=tol, err_msg=str(path))
    return value, grads


# -- the functions -----------------------------------------------------------------------------
def mlp_dict(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - y) ** 2)


def mlp_layers(layers, X, y):
    h = X
    for W, b in layers:
        h = np.tanh(h @ W + b)
    return np.mean((h[:, 0] - y) ** 2) + len(layers)


def first_layer(layers, X):
    W, b = layers[0]
    h = np.tanh(X @ W + b)
    last = layers[-1]
    return np.sum(h @ last[0] + last[1])


def predict(params, x):
    for W, b in params:
        x = np.tanh(x @ W + b)
    return x


def through_helper(layers, X):
    return np.sum(predict(layers, X) ** 2)


def zipped(layers, X, scales):
    h = X
    for (W, b), s in zip(layers, scales, strict=True):
        h = np.sin(h @ W + b) * s
    return np.sum(h)


def enumerated(layers, X):
    total = 0.0
    for i, (W, b) in enumerate(layers):
        total = total + (i + 1) * np.sum(W**2) + np.sum(b)
    return total


def micrograd(p, x):
    wb = p["w"] + [p["b"]]
    xs = list(x) + [1.0]
    return sum(wi * xi for wi, xi in zip(wb, xs, strict=True))


def sliced(p, X):
    s = 0.0
    for W, b in p[:-1]:
        s = s + np.sum(W) * np.sum(b * X[0, 0])
    return s + np.sum(p[len(p) - 1][0])


def nested(p, x):
    inner = p["layers"]
    a = inner[0]["w"] * x
    return np.sum(a**2) + p["scale"] * np.sum(inner[1]["w"]) + p["pair"][0] * p["pair"][1]


def vector_valued(p, x):
    return np.tanh(p["w"] * x + p["b"])


def indexed(layers, X):
    total = 0.0
    for i in range(len(layers)):
        W = layers[i][0]
        total = total + np.sum(np.cos(W * X[0, i]))
    return total


def numbers_in_a_tuple(t, x):
    a, b = t
    return np.sum(a * x) + b**2


def parts(p):
    return p["W"], p["b"]


def helper_returns_parts(params, x):
    W, b = parts(params)
    return np.sum(np.tanh(W @ x + b))


def closure_reads_dict(params, x):
    def inner(y):
        return np.sum(params["W"] @ y) + params["b"][0]

    return inner(x) * 2.0


def list_in_dict(p, x):
    return np.sum(p["w"]) * x + np.dot(p["w"], p["w"])


def starred_layers(layers, X):
    *hidden, last = layers
    h = X
    for W, b in hidden:
        h = np.tanh(h @ W + b)
    W, b = last
    return np.sum(h @ W + b)


X = RNG.normal(size=(6, 3))
Y = RNG.normal(size=6)
LAYERS = [(RNG.normal(size=(3, 4)), RNG.normal(size=4)), (RNG.normal(size=(4, 2)), np.ones(2))]
PARAMS = {"W1": RNG.normal(size=(3, 4)), "b1": np.zeros(4), "W2": RNG.normal(size=4), "b2": 0.5}

CASES = [
    (mlp_dict, {"params": PARAMS, "X": X, "y": Y}, "params"),
    (mlp_layers, {"layers": LAYERS, "X": X, "y": Y}, "layers"),
    (first_layer, {"layers": LAYERS, "X": X}, "layers"),
    (through_helper, {"layers": LAYERS, "X": X}, "layers"),
    (zipped, {"layers": LAYERS, "X": X, "scales": [2.0, 0.5]}, "layers"),
    (enumerated, {"layers": LAYERS, "X": X}, "layers"),
    (micrograd, {"p": {"w": [1.0, 2.0, 3.0], "b": 0.5}, "x": [0.1, 0.2, 0.3]}, "p"),
    (sliced, {"p": [*LAYERS, (np.ones((2, 2)), np.ones(2))], "X": X}, "p"),
    (
        nested,
        {
            "p": {
                "layers": [{"w": np.arange(3.0)}, {"w": np.ones((2, 2))}],
                "scale": 1.5,
                "pair": (2.0, np.array([1.0, -1.0])),
            },
            "x": np.array([0.5, 1.0, 2.0]),
        },
        "p",
    ),
    (vector_valued, {"p": {"w": np.array([0.3, -0.2]), "b": 0.1}, "x": np.array([1.0, 2.0])}, "p"),
    (indexed, {"layers": LAYERS, "X": X}, "layers"),
    (numbers_in_a_tuple, {"t": (np.array([1.0, 2.0]), 3.0), "x": np.array([0.5, 0.25])}, "t"),
    (helper_returns_parts, {"params": {"W": X[:2], "b": Y[:2]}, "x": X[3]}, "params"),
    (closure_reads_dict, {"params": {"W": X[:2], "b": Y[:2]}, "x": X[3]}, "params"),
    (list_in_dict, {"p": {"w": [1.0, 2.0]}, "x": 3.0}, "p"),
    (
        starred_layers,
        {"layers": [*LAYERS, (RNG.normal(size=(2, 1)), np.ones(1))], "X": X},
        "layers",
    ),
]


@pytest.mark.parametrize(("fn", "args", "name"), CASES, ids=[c[0].__name__ for c in CASES])
def test_gradients_have_the_structure_and_match_differences(fn, args, name):
    check(fn, args, name)


def test_gradient_structure_and_types():
    _, grads = fmad.differentiate(mlp_dict, wrt=["params"])(PARAMS, X, Y)
    g = grads["params"]
    assert type(g) is dict and set(g) == set(PARAMS)
    assert type(g["b2"]) is float
    _, grads = fmad.differentiate(mlp_layers, wrt=["layers"])(LAYERS, X, Y)
    assert type(grads["layers"]) is list
    assert all(type(layer) is tuple and len(layer) == 2 for layer in grads["layers"])


def test_several_wrt_with_a_container_and_a_number():
    def f(params, c, X):
        return np.sum(np.tanh(X @ params["W"]) * c) + params["b"] * c

    args = {"params": {"W": RNG.normal(size=(3, 2)), "b": 0.3}, "c": 1.5, "X": X}
    value, grads = fmad.differentiate(f, wrt=["params", "c"])(**args)
    check(f, args, "params")
    h = 1e-6
    up = f(**{**args, "c": 1.5 + h})
    down = f(**{**args, "c": 1.5 - h})
    assert abs(grads["c"] - (up - down) / (2 * h)) < 1e-6


def test_variants_are_keyed_by_structure():
    f = fmad.differentiate(mlp_layers, wrt=["layers"])
    one = [(RNG.normal(size=(3, 1)), np.zeros(1))]
    _, g1 = f(one, X, Y)
    _, g2 = f(LAYERS, X, Y)
    assert len(g1["layers"]) == 1 and len(g2["layers"]) == 2
    assert "tree_seed" in f.source_for(LAYERS, X, Y)


def test_a_list_of_numbers_stays_an_array_parameter():
    def f(w, x):
        return np.dot(w, x)

    _, grads = fmad.differentiate(f, wrt=["w"])([1.0, 2.0], np.array([3.0, 4.0]))
    assert isinstance(grads["w"], np.ndarray) and grads["w"].tolist() == [3.0, 4.0]


def test_a_ragged_list_of_numbers_is_a_tree():
    def f(w):
        return w[0][0] * w[1][1] + w[1][0]

    _, grads = fmad.differentiate(f)([[2.0], [3.0, 5.0]])
    assert grads["w"] == [[5.0], [1.0, 2.0]]


# -- refusals ------------------------------------------------------------------------------------
def refused(fn, args, tag, words, error=fmad.UnsupportedError):
    with pytest.raises(error) as info:
        fmad.differentiate(fn, wrt=[next(iter(args))])(**args)
    message = str(info.value)
    line = marker_line(tag)
    assert info.value.lineno == line, message
    assert os.path.basename(info.value.filename) == THIS_FILE
    assert message.startswith(f"{info.value.filename}:{line}: "), message
    assert any(w in message for w in words), message


def iterates_dict(params):
    total = 0.0
    for key in params:  # LINE-iter-dict
        total = total + params[key]
    return total


def dict_items(params):
    total = 0.0
    for _key, value in params.items():  # LINE-items
        total = total + value
    return total


def dict_variable_key(params, key):
    return params[key] * 2.0  # LINE-key


def unpacks_dict(params):
    a, b = params  # LINE-unpack-dict
    return a


def numpy_of_dict(params):
    return np.sum(params)  # LINE-np-dict


def returns_container(params):
    return params["w"] * 2.0, params  # LINE-return


def dict_in_list(params):
    both = [params, params]  # LINE-display
    return both[0]["w"]


def mixed(p, flag):
    part = p[0]
    if flag:
        part = p[1]
    return np.sum(part)  # LINE-mixed


def set_item(params):
    params["w"] = params["w"] * 2.0  # LINE-setitem
    return params["w"]


def test_refusals_at_the_line():
    d = {"w": 1.0, "b": 2.0}
    refused(iterates_dict, {"params": d}, "iter-dict", ["iterating"])
    refused(dict_items, {"params": d}, "items", ["dict", "method"])
    refused(dict_variable_key, {"params": d, "key": "w"}, "key", ["not a constant"])
    refused(unpacks_dict, {"params": d}, "unpack-dict", ["unpacking"])
    refused(numpy_of_dict, {"params": d}, "np-dict", ["dict"])
    refused(returns_container, {"params": d}, "return", ["container"])
    refused(dict_in_list, {"params": d}, "display", ["dict"])
    refused(mixed, {"p": [np.ones(2), [1.0, 2.0]], "flag": False}, "mixed", ["different kinds"])
    refused(set_item, {"params": d}, "setitem", ["item assignment"])


def plain(params):
    return params["w"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"w": {1.0, 2.0}}, "set"),
        ({"w": object()}, "object"),
        ({"w": "text"}, "str"),
        ({"w": np.array(["a"])}, "dtype"),
        ({(1, 2): 1.0, "w": 2.0}, "key"),
        ({"w": []}, "empty"),
        ({"w": None}, "NoneType"),
    ],
)
def test_unsupported_leaves_name_the_parameter(value, words):
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(plain)(value)
    message = str(info.value)
    assert "'params'" in message and words in message, message
    assert message.startswith(f"{info.value.filename}:{info.value.lineno}: ")


def test_a_set_argument_is_refused():
    def f(w):
        return sum(w)

    with pytest.raises(fmad.UnsupportedError, match="'w'.*set"):
        fmad.differentiate(f)({1.0, 2.0})


# -- the pieces --------------------------------------------------------------------------------
def test_structure_seed_and_gradient_round_trip():
    value = {"b": [np.zeros(2), 1.0], "a": np.zeros((2, 3))}
    node = pytree.structure(value)
    assert pytree.size(node) == 9
    assert [leaf.shape for leaf in pytree.leaves(node)] == [(2, 3), (2,), ()]
    seed = pytree.seed(value, 9)
    assert seed["a"].shape == (2, 3, 9) and seed["b"][1].shape == (9,)
    flat = np.concatenate([seed["a"].reshape(-1, 9), seed["b"][0], seed["b"][1][None]])
    assert np.array_equal(flat, np.eye(9))
    g = pytree.gradient(node, np.arange(9.0), 0.0)
    assert g["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and g["b"][1] == 8.0


# -- training --------------------------------------------------------------------------------
def test_train_steps_every_leaf_of_a_container_variable():
    def loss(params, X, y):
        return np.mean((X @ params["w"] + params["b"] - y) ** 2)

    Xd = RNG.normal(size=(20, 2))
    yd = Xd @ np.array([1.0, -2.0]) + 0.5
    start = {"w": np.zeros(2), "b": 0.0}
    variable = fmad.Variable("params", start)
    result = fmad.train(loss, [variable], {"X": Xd, "y": yd}, lr=0.1, epochs=300)
    assert result.losses[-1] < 1e-6 < result.losses[0]
    assert start == {"w": start["w"], "b": 0.0} and not start["w"].any()  # not changed
    assert set(variable.value) == {"w", "b"}
    np.testing.assert_allclose(variable.value["w"], [1.0, -2.0], atol=1e-3)
    assert abs(variable.value["b"] - 0.5) < 1e-3
    # the same steps by hand
    f = fmad.differentiate(loss, wrt=["params"])
    p = start
    for _ in range(3):
        _, g = f(p, Xd, yd)
        p = {k: p[k] - 0.1 * g["params"][k] for k in p}
    again = fmad.Variable("params", start)
    fmad.train(loss, [again], {"X": Xd, "y": yd}, lr=0.1, epochs=3)
    assert np.array_equal(again.value["w"], p["w"]) and again.value["b"] == p["b"]


def test_train_a_list_of_layers_and_a_number_together():
    def loss(layers, c, X, y):
        h = X
        for W, b in layers:
            h = np.tanh(h @ W + b)
        return np.mean((h[:, 0] * c - y) ** 2)

    layers = [(RNG.normal(size=(3, 4)) * 0.5, np.zeros(4)), (RNG.normal(size=(4, 1)), np.zeros(1))]
    v, c = fmad.Variable("layers", layers), fmad.Variable("c", 1.0)
    result = fmad.train(loss, [v, c], {"X": X, "y": np.tanh(Y)}, lr=0.05, epochs=200)
    assert result.losses[-1] < result.losses[0]
    assert type(v.value) is list and type(v.value[0]) is tuple
    assert v.value[0][0].shape == (3, 4) and isinstance(c.value, float)


def test_train_reports_a_non_finite_leaf():
    def loss(params):
        return np.sum(np.sqrt(params["w"]))

    with pytest.raises(fmad.TrainingError, match="'params' is not finite"):
        fmad.train(loss, [fmad.Variable("params", {"w": np.array([0.0, 1.0])})], lr=0.1, epochs=2)


def test_second_derivatives_refuse_containers():
    with pytest.raises(fmad.UnsupportedError, match="'p' is a container"):
        fmad.hessian(list_in_dict, wrt=["p"])({"w": [1.0, 2.0]}, 3.0)


def test_objective_packs_and_unpacks_containers():
    def loss(p, X, y):
        return np.mean((X @ p["w"] + p["b"][0] - y) ** 2)

    Xd = RNG.normal(size=(10, 2))
    yd = RNG.normal(size=10)
    obj = fmad.Objective(loss, ["p"], {"X": Xd, "y": yd})
    p0 = {"w": np.array([0.5, -1.0]), "b": [0.25]}
    x0 = obj.pack({"p": p0})
    assert x0.tolist() == [0.25, 0.5, -1.0]  # dict keys sorted: b, then w
    back = obj.unpack(x0)["p"]
    assert back["b"] == [0.25] and back["w"].tolist() == [0.5, -1.0]
    value, g = obj(x0)
    _, grads = fmad.differentiate(loss, wrt=["p"])(p0, Xd, yd)
    assert value == loss(p0, Xd, yd)
    assert g.tolist() == [grads["p"]["b"][0], *grads["p"]["w"].tolist()]

    def residuals(p, X, y):
        return X @ p["w"] + p["b"][0] - y

    res = fmad.Objective(residuals, ["p"], {"X": Xd, "y": yd})
    x0 = res.pack({"p": p0})
    jac = res.jac(x0)
    assert jac.shape == (10, 3)
    np.testing.assert_allclose(jac, np.column_stack([np.ones(10), Xd]))
    with pytest.raises(fmad.WrtError, match="'p'"):
        res.pack({"p": {"w": {1.0}}})


def test_jvp_refuses_containers():
    with pytest.raises(fmad.WrtError, match="'layers' is a container"):
        fmad.jvp(mlp_layers, wrt=["layers"])((LAYERS, X, Y), {"layers": LAYERS})


# -- starred assignment targets (any list, not only parameters in containers) -------------------
def starred_list(w, x):
    ys = [w, w * 2.0, w * x]
    first, *rest, last = ys
    return first * sum(rest) + last


def starred_array(w):
    first, *rest = w
    return np.sum(np.array(rest) * first) + np.dot(rest, rest)


def starred_append(w):
    first, *rest = [w, 2.0]
    rest.append(w)  # LINE-star-append
    return first * sum(rest)


def test_starred_targets():
    assert fmad.differentiate(starred_list)(1.5, 3.0) == (9.0, {"w": 9.0, "x": 1.5})
    for w in ([1.0, 2.0, 3.0], np.array([1.0, 2.0, 3.0])):
        value, grads = fmad.differentiate(starred_array)(w)
        assert value == starred_array(w) and grads["w"].tolist() == [5.0, 5.0, 7.0]
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(starred_append)
    assert info.value.lineno == marker_line("star-append")


def returns_a_list(p):
    return [p["w"] * 2.0, p["b"]]


def test_a_list_value_gets_one_gradient_per_item():
    value, grads = fmad.differentiate(returns_a_list)({"w": np.ones(2), "b": 1.0})
    assert value[0].tolist() == [2.0, 2.0] and value[1] == 1.0
    first, second = grads["p"]
    assert first["w"].tolist() == [[2.0, 0.0], [0.0, 2.0]] and first["b"].tolist() == [0.0, 0.0]
    assert second["w"].tolist() == [0.0, 0.0] and second["b"] == 1.0


def make_list(w):
    return [w, w * 2]


def numpy_of_a_helper_list(w):
    ws = make_list(w)
    return np.sum(ws)


def get_ws(p):
    return p["ws"]


def numpy_of_a_helper_part(p):
    ws = get_ws(p)
    return np.sum(ws)


def test_numpy_functions_stack_a_list_a_helper_returns():
    # before: the list of tangents reached np.sum's rule unstacked (an InternalError)
    assert fmad.differentiate(numpy_of_a_helper_list)(1.5) == (4.5, {"w": 3.0})
    value, grads = fmad.differentiate(numpy_of_a_helper_list)(np.ones(2))
    assert value == 6.0 and grads["w"].tolist() == [3.0, 3.0]
    check(numpy_of_a_helper_part, {"p": {"ws": [np.ones(2), np.zeros(2)]}}, "p")


def item_without_derivative(w, b):
    vals = [w, b]
    return np.sum(vals[1]) + np.sum(vals[0] * vals[0])


def item_without_derivative_scalar(w, b):
    pair = (w, b)
    return pair[1] * 3.0


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (item_without_derivative, {"w": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}),
        (item_without_derivative, {"w": np.array([1.0, 2.0]), "b": 0.5}),
        (item_without_derivative, {"w": 1.5, "b": np.array([3.0, 4.0, 5.0])}),
        (item_without_derivative_scalar, {"w": np.array([1.0, 2.0]), "b": 2.0}),
        (item_without_derivative_scalar, {"w": 2.0, "b": np.array([1.0, 2.0])}),
    ],
)
def test_an_item_of_a_list_with_no_derivative_for_one_parameter(fn, args):
    # the list's tangent holds 0.0 for the item with no derivative; reading that item
    # once gave an InternalError ('float' object has no attribute 'reshape')
    check_gradients(fmad.differentiate(fn, wrt=["w", "b"]), args)
