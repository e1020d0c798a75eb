"""``fmad.export`` and ``python -m fmad export``: a standalone module (issue 11, section 1).

Each exported module runs in a subprocess where ``import fmad`` fails (a directory first on
``sys.path`` holds an ``fmad.py`` that raises ImportError), on random inputs, and returns
exactly (bit for bit, ``==`` and the same types) what ``fmad.differentiate`` returns.
"""

from __future__ import annotations

import importlib
import math
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmad
from tests import export_module as em
from tests import export_rules
from tests import helpers_module as hm
from tests import passes_module as pm

ROOT = Path(__file__).resolve().parent.parent

RUNNER = textwrap.dedent(
    """
    import importlib.util, pickle, sys
    try:
        import fmad
    except ImportError:
        pass
    else:
        raise SystemExit("fmad is importable: the test would prove nothing")
    spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(sys.argv[2], "rb") as f:
        name, calls = pickle.load(f)
    results = [getattr(module, name)(*args, **kwargs) for args, kwargs in calls]
    assert "fmad" not in sys.modules or sys.modules["fmad"] is None
    with open(sys.argv[3], "wb") as f:
        pickle.dump(results, f)
    """
)


def run_without_fmad(tmp_path: Path, text: str, name: str, calls: list, extra_path=()) -> list:
    """Run the exported module ``text`` in a fresh Python where fmad cannot be imported."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "fmad.py").write_text('raise ImportError("fmad must not be imported")\n')
    module = tmp_path / f"{name}_exported.py"
    module.write_text(text)
    (tmp_path / "run.py").write_text(RUNNER)
    with open(tmp_path / "calls.pkl", "wb") as f:
        pickle.dump((name, calls), f)
    env_path = ":".join([str(blocker), *map(str, extra_path)])
    result = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "run.py"),
            str(module),
            str(tmp_path / "calls.pkl"),
            str(tmp_path / "out.pkl"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.pkl", "rb") as f:
        return pickle.load(f)


def assert_identical(got: Any, want: Any) -> None:
    """The same types and the same bits (NaN equals NaN)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_identical(got[key], want[key])
    elif isinstance(want, tuple | list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_identical(g, w)
    elif isinstance(want, np.ndarray | np.generic):
        assert got.dtype == want.dtype and np.shape(got) == np.shape(want)
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want


def check(tmp_path, fn, calls, *, wrt=None, shapes=None, extra_path=()) -> str:
    text = fmad.export(fn, wrt=wrt, shapes=shapes)
    assert not re.search(r"^\s*(import|from) fmad", text, re.MULTILINE)
    got = run_without_fmad(tmp_path, text, fn.__name__, calls, extra_path)
    d = fmad.differentiate(fn, wrt=wrt)
    for (args, kwargs), result in zip(calls, got, strict=True):
        assert_identical(result, d(*args, **kwargs))
    return text


RNG = np.random.default_rng(11)


# functions of this file: fmad reads their source here
def logsumexp_(x):
    return np.log(np.sum(np.exp(x)))


def logsumexp_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    p = np.exp(x - logsumexp_(x))
    return np.sum(p * dx)


fmad.register(logsumexp_, jvp=logsumexp_jvp)


def uses_jvp_rule(x, w):
    return logsumexp_(x * w) * w


def linalg_mix(A, w):
    total = np.linalg.det(A * w) + np.quantile(A * w, 0.3) + np.sum(np.linalg.inv(A * w))
    return total + np.sum(np.linalg.solve(A * w, A[0]))


def make_scaled(k):
    def scaled(x, w):
        return k * w * x

    return scaled


inner_d = fmad.differentiate(pm.train_loop, wrt=["w"])


def nested_outer(x, w):
    value, grads = inner_d(x, 1.0, w, 0.5)
    return value * grads["w"]


def lambda_registered(x):
    return x**3


fmad.register(lambda_registered, lambda x: 3.0 * x**2)


def uses_lambda_rule(x, w):
    return lambda_registered(w * x)


def reads_modules(x, w):
    return w * x * pm.SCALE


def reads_module_with_fmad(x, w):
    return w * x * len(hm.__name__)


def nested_inactive(x, w):
    value, grads = inner_d(x, 1.0, 2.0, 0.5)
    return value * w + grads["w"]


def numbers(n: int) -> list[float]:
    return [float(v) for v in RNG.normal(size=n)]


def test_seed_example_scalar(tmp_path):
    calls = [(tuple(numbers(4)), {}) for _ in range(5)]
    text = check(tmp_path, pm.train_loop, calls, wrt=["w", "b"])
    assert "def train_loop(X, y, w, b):" in text
    assert "wrt: w, b" in text and "sha256" in text and "python -m fmad export" in text


def test_array_example_inlines_runtime_helpers(tmp_path):
    calls = [
        ((RNG.normal(size=(n, 3)), RNG.normal(size=n), RNG.normal(size=3), float(RNG.normal())), {})
        for n in (1, 5, 40)
    ]
    shapes = {"X": (None, 3), "y": (None,), "w": (3,), "b": ()}
    text = check(tmp_path, pm.mse, calls, wrt=["w", "b"], shapes=shapes)
    assert "def mean_product(" in text and "fmad_rt" not in text
    assert "def full(" in text  # called by the inlined sum_product
    assert "shapes: X=Nx3,y=N,w=3,b=" in text


def test_loop_branch_helper(tmp_path):
    calls = [((*numbers(3), n), {}) for n in (0, 1, 4, 7)]
    text = check(tmp_path, pm.loop_branch_helper, calls, wrt=["w", "b"])
    assert "def scaled_helper_fwd(v, w, *, dw_dw):" in text


def test_bundled_variant(tmp_path):
    d = fmad.differentiate(em.bundled, wrt=["a", "b", "c"])
    shapes = {"X": (None,)}
    assert d.__fmad__.variant_for_shapes(shapes).spec.bundle
    calls = [((RNG.normal(size=n), *numbers(3)), {}) for n in (2, 9)]
    text = check(tmp_path, em.bundled, calls, wrt=["a", "b", "c"], shapes=shapes)
    assert "bundled on one axis" in text


def test_globals_and_plain_helpers_are_copied(tmp_path):
    calls = [((float(RNG.normal()), RNG.normal(size=3)), {}) for _ in range(3)]
    text = check(tmp_path, em.uses_globals, calls, wrt=["w"], shapes={"w": (3,)})
    assert "SCALE = 3.0" in text and "OFFSETS = np.array(" in text
    assert "def plain_helper(x):" in text and "ORDER = (1, 2)" in text


def test_defaults_and_keyword_only(tmp_path):
    calls = [((*numbers(2),), {}), ((*numbers(3),), {"shift": 1.5})]
    text = check(tmp_path, em.with_defaults, calls, wrt=["w"])
    assert "def with_defaults(x, w, scale=2.0, *, shift=0.5):" in text


def test_registered_derivatives(tmp_path):
    fmad.register(em.softplus, em.softplus_derivative)
    fmad.register(em.cube_root, export_rules.cube_root_derivative)
    calls = [((*numbers(2),), {}) for _ in range(3)]
    text = check(tmp_path, em.registered, calls, wrt=["w"])
    assert "def softplus_derivative(x):" in text  # in the source file: inlined
    text = check(tmp_path, em.registered_elsewhere, calls, wrt=["w"], extra_path=[ROOT])
    assert "from tests.export_rules import cube_root_derivative" in text


def test_registered_jvp_rule_and_linear_algebra(tmp_path):
    calls = [((RNG.normal(size=4), w), {}) for w in numbers(2)]
    text = check(tmp_path / "a", uses_jvp_rule, calls, wrt=["w"], shapes={"x": (4,)})
    assert "def jvp_call(" in text and "def logsumexp_jvp(" in text
    A = RNG.normal(size=(3, 3)) + 3 * np.eye(3)
    calls = [((A, w), {}) for w in (0.7, 1.3)]
    text = check(tmp_path / "b", linalg_mix, calls, wrt=["w"], shapes={"A": (3, 3)})
    assert (
        "def quantile_tangent(" in text
        and "class DerivativeError(FmadError, ArithmeticError)" in text
    )
    calls = [((A, RNG.normal(size=3) + 1.0), {})]
    check(tmp_path / "c", linalg_mix, calls, wrt=["w"], shapes={"A": (3, 3), "w": (3,)})


def test_closure_values_are_copied(tmp_path):
    scaled = make_scaled(2.5)
    calls = [((*numbers(2),), {})]
    text = check(tmp_path, scaled, calls, wrt=["w"])
    assert "k = 2.5" in text


def test_nested_differentiated_function(tmp_path):
    """A call of a differentiated function inside: its first-order code is a helper."""
    calls = [((*numbers(2),), {}) for _ in range(3)]
    text = check(tmp_path, nested_outer, calls, wrt=["w"])
    assert "def train_loop_fwd(" in text and "class FmadError(Exception)" in text
    check(tmp_path / "inactive", nested_inactive, calls, wrt=["w"])


def test_modules_read_by_the_code(tmp_path):
    calls = [((*numbers(2),), {})]
    text = check(tmp_path, reads_modules, calls, wrt=["w"], extra_path=[ROOT])
    assert "import tests.passes_module as pm" in text
    with pytest.raises(fmad.UnsupportedError, match="which imports fmad") as info:
        fmad.export(reads_module_with_fmad, wrt=["w"])
    assert info.value.lineno == reads_module_with_fmad.__code__.co_firstlineno + 1


def test_banner_version_is_fmads():
    export_module = importlib.import_module("fmad.export")  # fmad.export is the function
    assert export_module.VERSION == fmad.__version__
    assert f"exported by fmad {fmad.__version__}" in fmad.export(pm.train_loop)


def test_differentiated_function_keeps_its_wrt(tmp_path):
    d = fmad.differentiate(pm.train_loop, wrt=["b"])
    assert "wrt: b\n" in fmad.export(d)
    assert "wrt: w\n" in fmad.export(d, wrt=["w"])


def test_wrong_shape_is_refused_by_the_module(tmp_path):
    text = fmad.export(pm.mse, wrt=["w", "b"], shapes={"X": (None, 3), "w": (3,)})
    namespace: dict = {}
    exec(compile(text, "exported.py", "exec"), namespace)
    with pytest.raises(ValueError, match="w has shape \\(4,\\)"):
        namespace["mse"](np.ones((2, 4)), np.ones(2), np.ones(4), 0.0)


def test_refusals():
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.export(em.uses_object, wrt=["w"])
    error = info.value
    assert (
        error.filename == em.__file__ and error.lineno == em.uses_object.__code__.co_firstlineno + 1
    )
    assert "CONFIG" in str(error)
    with pytest.raises(fmad.FmadError, match="unknown lang"):
        fmad.export(pm.train_loop, lang="fortran")
    with pytest.raises(fmad.WrtError):
        fmad.export(pm.mse, shapes={"nope": (3,)})
    with pytest.raises(fmad.UnsupportedError, match="a lambda"):
        fmad.export(uses_lambda_rule, wrt=["w"])
    with pytest.raises(fmad.FmadError, match="shapes must be a dict"):
        fmad.export(pm.mse, shapes=[("w", (3,))])
    with pytest.raises(fmad.FmadError, match="bound method"):
        fmad.export(em.Config().scaled)
    with pytest.raises(fmad.FmadError, match="bound method"):
        fmad.export(fmad.differentiate(em.Config().scaled))


def test_cli_export_with_test(tmp_path):
    out = tmp_path / "mse_grad.py"
    result = fmad_export(
        f"{pm.__file__}:mse",
        "--wrt",
        "w,b",
        "--shapes",
        "X=Nx3,y=N,w=3,b=",
        "-o",
        str(out),
        "--with-test",
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "regenerate: python -m fmad export" in text and "--shapes X=Nx3,y=N,w=3,b=" in text
    test_file = tmp_path / "test_mse_grad.py"
    assert test_file.exists()
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "fmad.py").write_text('raise ImportError("fmad must not be imported")\n')
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def fmad_export(*args: str) -> subprocess.CompletedProcess:
    """``python -m fmad export ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "fmad", "export", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_cli_export_to_stdout_and_errors(tmp_path):
    result = fmad_export(f"{pm.__file__}:train_loop", "--wrt", "w,b")
    assert result.returncode == 0 and "def train_loop(X, y, w, b):" in result.stdout
    result = fmad_export(f"{pm.__file__}:train_loop", "--with-test")
    assert result.returncode == 2 and "--with-test needs -o" in result.stderr
    result = fmad_export(f"{em.__file__}:uses_object", "--wrt", "w")
    assert result.returncode == 2 and "export_module.py:" in result.stderr
    result = fmad_export(f"{pm.__file__}:train_loop", "--lang", "c")
    assert result.returncode == 0 and "double train_loop(double X" in result.stdout
    result = fmad_export(f"{pm.__file__}:train_loop", "--lang", "c", "-o", "x.c", "--with-test")
    assert result.returncode == 2 and "--with-test" in result.stderr
