"""The public function's quick paths and the transform's caches (issue 10, items 4 and 6):
numpy scalars and 0-d arrays as parameters, the spec found without the general loop, the
gradients shaped without numpy's dispatch, each the same objects as the general path gives;
a function's source read once per code object, so a redefined helper is seen; the variant
for numbers compiled when a call needs it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmad
from fmad import runtime
from fmad.errors import UnsupportedError
from fmad.source import SOURCES, read_function
from fmad.spec import Spec
from tests.fdcheck import check_gradients


def network(x1, x2, y, w11, w12, w21, w22, w31, w32, b1, b2, b3):
    h1 = 1.0 / (1.0 + np.exp(-(w11 * x1 + w12 * x2 + b1)))
    h2 = 1.0 / (1.0 + np.exp(-(w21 * x1 + w22 * x2 + b2)))
    out = 1.0 / (1.0 + np.exp(-(w31 * h1 + w32 * h2 + b3)))
    return -np.mean(y * np.log(out) + (1.0 - y) * np.log(1.0 - out))


def logistic(X, y, w, b):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


WEIGHTS = {
    "w11": 0.5,
    "w12": -0.4,
    "w21": 0.3,
    "w22": 0.8,
    "w31": 1.2,
    "w32": -0.7,
    "b1": 0.1,
    "b2": -0.2,
    "b3": 0.05,
}


def network_data() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {"x1": rng.normal(size=12), "x2": rng.normal(size=12), "y": rng.random(12) > 0.5}


def described(grads: dict[str, Any]) -> list[tuple]:
    """Each gradient's name, type, shape, dtype and bits."""
    return [
        (k, type(g), np.shape(g), np.asarray(g).dtype, np.asarray(g).tobytes())
        for k, g in grads.items()
    ]


def same_call(a: tuple, b: tuple) -> None:
    (va, ga), (vb, gb) = a, b
    assert type(va) is type(vb) and np.asarray(va).tobytes() == np.asarray(vb).tobytes()
    assert list(ga) == list(gb)
    assert described(ga) == described(gb)


# -- the spec of a call ----------------------------------------------------------------
@pytest.mark.parametrize("kind", [float, np.float64, np.float32, np.int64, int, bool])
def test_numbers_of_every_type_take_the_spec_of_numbers(kind: type) -> None:
    """Positional numbers (any scalar type, numpy's included) find the same spec as the
    general loop (arguments by keyword), the second time without it."""
    f = fmad.differentiate(network, wrt=list(WEIGHTS))
    tr = f.__fmad__
    data = network_data()
    weights = {k: kind(v) for k, v in WEIGHTS.items()}
    args = (*data.values(), *weights.values())
    by_keyword = tr._spec((), {**data, **weights})
    assert tr._spec(args, {}) is by_keyword  # the general loop made it; the quick path finds it
    assert tr._spec(args, {}) is by_keyword
    assert by_keyword.bundle and by_keyword.shapes == (None,) * 9
    same_call(f(*args), f(**data, **weights))


def test_array_data_passed_by_keyword_bundles_too() -> None:
    f = fmad.differentiate(network, wrt=list(WEIGHTS))
    tr = f.__fmad__
    data = network_data()
    positional = tr._spec((*data.values(), *WEIGHTS.values()), {})
    mixed = tr._spec((), {**data, **WEIGHTS})
    assert positional is mixed and mixed.bundle
    scalars = {k: float(v[0]) for k, v in data.items()}
    assert not tr._spec((*scalars.values(), *WEIGHTS.values()), {}).bundle


@pytest.mark.parametrize(
    "convert",
    [
        lambda v: v,
        np.float64,
        lambda v: np.array(v),  # 0-d arrays
    ],
    ids=["float", "np.float64", "0-d array"],
)
def test_network_gradients_for_every_kind_of_number(convert) -> None:
    """The same dict, the same types and bits, whatever the kind of number, and right."""
    f = fmad.differentiate(network, wrt=list(WEIGHTS))
    data = network_data()
    weights = {k: convert(v) for k, v in WEIGHTS.items()}
    value, grads = f(**data, **weights)
    assert value == network(**data, **weights)
    reference = fmad.differentiate(network, wrt=list(WEIGHTS))(**data, **WEIGHTS)
    same_call((value, grads), reference)
    assert all(type(g) is float for g in grads.values())  # one column per parameter
    check_gradients(f, {**data, **weights})


def test_logistic_regression_gradients_keep_their_shapes() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20, 3))
    y = (rng.random(20) > 0.5).astype(float)
    args = {"X": X, "y": y, "w": rng.normal(size=3), "b": 0.1}
    f = fmad.differentiate(logistic, wrt=["w", "b"])
    for b in (0.1, np.float64(0.1), np.array(0.1)):
        for w in (args["w"], list(args["w"])):
            value, grads = f(X, y, w, b)
            assert value == logistic(X, y, np.asarray(w), b)
            assert type(grads["w"]) is np.ndarray and grads["w"].shape == (3,)
            assert grads["w"].dtype == np.float64
            assert type(grads["b"]) is np.float64
    check_gradients(f, args)


def test_wrong_kinds_of_arguments_are_refused_as_before() -> None:
    f = fmad.differentiate(logistic, wrt=["w", "b"])
    X, y = np.ones((3, 2)), np.zeros(3)
    for bad, what in [
        ("0.1", "an object of type 'str'"),
        ({0.1}, "a set (its items have no order)"),
        (np.array(["a"]), "an array of dtype <U1"),
    ]:
        with pytest.raises(UnsupportedError) as info:
            f(X, y, np.ones(2), bad)
        assert f"test_call_paths.py:{logistic.__code__.co_firstlineno}: " in str(info.value)
        assert what in str(info.value)


# -- shaping the gradients -------------------------------------------------------------
def general_gradients(spec: Spec, value: Any, tangents: tuple) -> dict[str, Any]:
    """Spec.gradients without its quick path: what every call got before it."""
    if spec.bundle:
        (t,) = tangents
        t = np.broadcast_to(t, (len(spec.wrt),))
        return dict(zip(spec.wrt, t.tolist(), strict=True))
    return {
        name: runtime.gradient(t, value, shape)
        for name, t, shape in zip(spec.wrt, tangents, spec.shapes, strict=True)
    }


@pytest.mark.parametrize(
    ("spec", "value", "tangents"),
    [
        (Spec(("a", "b"), ((3,), None)), np.float64(2.0), (np.arange(3.0), np.float64(1.5))),
        (Spec(("a", "b"), ((3,), None)), 2.0, (np.arange(3.0), 1.5)),
        (Spec(("a",), ((2, 2),)), 2.0, (np.arange(4.0),)),
        (Spec(("a",), ((1,),)), 2.0, (np.arange(1.0),)),
        (Spec(("a", "b", "c"), (None,) * 3, True), 2.0, (np.arange(3.0),)),
        (Spec(("a", "b", "c"), (None,) * 3, True), np.float64(2.0), (np.arange(3.0),)),
        (Spec(("a", "b", "c"), (None,) * 3, True), 2.0, (0.0,)),  # a constant tangent
        (Spec(("a", "b"), ((3,), None)), 2.0, (0.0, 1.0)),  # a zero tangent
        (Spec(("a",), (None,)), 2.0, (np.array(1.0),)),  # a 0-d tangent
        (Spec(("a",), ((2,),)), np.array(2.0), (np.arange(2.0),)),  # a 0-d value
    ],
)
def test_quick_shaping_gives_the_objects_of_the_general_one(spec, value, tangents) -> None:
    quick = spec.gradients(value, tangents)
    assert described(quick) == described(general_gradients(spec, value, tangents))
    if spec.bundle:
        return
    for name, t in zip(spec.wrt, tangents, strict=True):
        if spec.shape_of(name) is None and np.ndim(t) == 0:
            assert quick[name] is t  # handed over as it is, as before


# -- the transform's caches ------------------------------------------------------------
def load(directory: Path, name: str, source: str):
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


HELPERS = """
import numpy as np

def helper(x):
    return x * x

def f(w):
    return helper(w) + 1.0
"""


def test_a_redefined_helper_is_read_again(tmp_path: Path) -> None:
    module = load(tmp_path, "cache_helpers_a", HELPERS)
    d = fmad.differentiate(module.f)
    assert d(3.0) == (10.0, {"w": 6.0})
    # the helper defined again, in another file: the next call transforms again and reads
    # the new helper's source
    other = load(tmp_path, "cache_helpers_b", HELPERS.replace("x * x", "x * x * x"))
    module.helper = other.helper
    assert d(3.0) == (28.0, {"w": 27.0})
    assert fmad.differentiate(module.f)(3.0) == (28.0, {"w": 27.0})


def test_a_changed_global_is_seen(tmp_path: Path) -> None:
    module = load(
        tmp_path, "cache_globals_a", "SCALE = 2.0\n\ndef f(w):\n    return SCALE * w * w\n"
    )
    d = fmad.differentiate(module.f)
    assert d(3.0) == (18.0, {"w": 12.0})
    module.SCALE = 3.0
    assert d(3.0) == (27.0, {"w": 18.0})
    assert fmad.differentiate(module.f)(3.0) == (27.0, {"w": 18.0})


def test_the_source_is_found_once_per_code_object(tmp_path: Path) -> None:
    module = load(tmp_path, "cache_source_a", "def f(w):\n    return w * w\n")
    first = read_function(module.f)
    assert module.f.__code__ in SOURCES
    again = read_function(module.f)
    assert again.tree is not first.tree  # a fresh tree each time: passes change theirs
    assert again.tree.lineno == first.tree.lineno == 1
    code = module.f.__code__
    del module.f, first, again
    sys.modules.pop("cache_source_a")
    del module
    import gc

    gc.collect()
    assert code in SOURCES  # still alive here
    del code
    gc.collect()
    assert len([c for c in SOURCES if c.co_filename.endswith("cache_source_a.py")]) == 0


def test_the_variant_for_numbers_is_compiled_when_a_call_needs_it() -> None:
    f = fmad.differentiate(network, wrt=list(WEIGHTS))
    default = f.__fmad__._default
    assert default.compiled is None  # the public function holds its own copy
    f(*network_data().values(), *WEIGHTS.values())  # arrays: the bundled variant
    assert default.compiled is None
    scalars = {k: float(v[0]) for k, v in network_data().items()}
    value, grads = f(*scalars.values(), *WEIGHTS.values())  # the public function's body
    assert default.compiled is None
    weights = [np.float64(v) for v in WEIGHTS.values()]  # numbers, not floats: call()
    assert f(*scalars.values(), *weights) == (value, grads)
    assert default.compiled is not None


def test_different_shapes_get_different_variants() -> None:
    f = fmad.differentiate(logistic, wrt=["w", "b"])
    tr = f.__fmad__
    X, y = np.ones((4, 2)), np.zeros(4)
    f(X, y, np.ones(2), 0.1)
    f(np.ones((4, 3)), y, np.ones(3), 0.1)
    shapes = sorted(spec.shapes for spec in tr._variants if spec.shapes[0] is not None)
    assert shapes == [((2,), None), ((3,), None)]


ARRAY_HELPERS = """
import numpy as np

def helper(x):
    return x * x

def f(X, w):
    return np.sum(helper(X @ w))
"""


def test_array_calls_find_their_variant_by_kinds(tmp_path: Path) -> None:
    """A positional call of arrays and numbers finds its variant by the arrays' shapes and
    dtypes and the numbers' types (``Transformed._fast``); anything else takes the general
    path, and a helper rebound after the transform is still seen."""
    module = load(tmp_path, "fast_kinds_a", ARRAY_HELPERS)
    d = fmad.differentiate(module.f, wrt=["w"])
    fast = d.__fmad__._fast
    X = np.arange(6.0).reshape(3, 2)
    for w in (np.array([1.0, -1.0]), np.array([0.5, 2.0])):
        value, grads = d(X, w)
        assert value == module.f(X, w)
        np.testing.assert_allclose(grads["w"], 2 * (X @ w) @ X)
    assert len(fast) == 1
    value, grads = d(X.astype(np.float32), np.array([1.0, -1.0]))  # another dtype
    assert len(fast) == 2
    X3 = np.ones((2, 3))
    value, grads = d(X3, np.ones(3))  # another shape: another variant
    np.testing.assert_allclose(grads["w"], 2 * (X3 @ np.ones(3)) @ X3)
    assert len(fast) == 3
    d(X.tolist(), np.array([1.0, -1.0]))  # a list: the general path, not remembered
    d(X, fmad.Variable("w", np.array([1.0, -1.0])))  # a Variable: not remembered
    d(X, w=np.array([1.0, -1.0]))  # by keyword: not remembered
    assert len(fast) == 3
    other = load(tmp_path, "fast_kinds_b", ARRAY_HELPERS.replace("x * x", "x * x * x"))
    module.helper = other.helper
    w = np.array([1.0, -1.0])
    value, grads = d(X, w)  # the remembered variant is stale: transformed again
    assert value == np.sum((X @ w) ** 3)
    np.testing.assert_allclose(grads["w"], 3 * (X @ w) ** 2 @ X)
