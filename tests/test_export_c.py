"""The C export (fmad.export(fn, lang="c")): each export compiled with the system C
compiler (cc -std=c99 -Wall -Wextra -pedantic -Werror -O2), loaded with ctypes and compared
with fmad on the program table's points and on random points near them: the value and the
gradient bit for bit (==) where the code calls libm functions through math.*, to 1e-14
relative where it calls numpy's (numpy's own implementations differ from libm in the last
bit); where Python raises, the C returns NaN."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest

import fmad
from examples.linear_regression import train_loop
from examples.linear_regression_numpy import mse as mse_numpy
from examples.logistic_regression import cross_entropy
from examples.loop_and_abs import mean_absolute_error
from examples.tiny_network import SCALAR_NAMES, loss_scalar_params
from fmad.cli import main
from tests import export_c_module as ecm
from tests import programs_module as pm
from tests.c_harness import NO_COMPILER, Compiled, compiler
from tests.test_programs import ROWS

needs_cc = pytest.mark.skipif(compiler() is None, reason=NO_COMPILER)

# rows of the program table outside the C subset: lists, slices, nested functions, objects
REFUSED = {
    "for_tuple_target", "slice_data", "list_of_active", "list_indexed_in_loop",
    "list_built_by_append", "np_clip", "builtin_round", "builtin_max_data",
    "builtin_sum_active", "nested_def_arguments_only", "nested_def", "attribute_of_data",
    "attribute_of_active",
}  # fmt: skip
WHOLE_ARRAY = {"builtin_sum_data"}
NUMPY_CALL = re.compile(r"\bnp\.(?!sign|maximum|minimum|where|abs|fabs|sqrt|asarray)\w+\(")


def shape_of(value):
    if isinstance(value, list | tuple | np.ndarray):
        return (None,) * np.ndim(value)
    return ()


def nearby(point, rng):
    """The point with each float moved a little (ints and arrays kept)."""
    return {
        k: v * (1.0 + 0.2 * rng.standard_normal()) if type(v) is float else v
        for k, v in point.items()
    }


def agree(c_result, fmad_result, exact):
    (cv, cg), (v, g) = c_result, fmad_result
    assert list(cg) == list(g)
    pairs = [(cv, v)] + [(cg[k], g[k]) for k in cg]
    for got, want in pairs:
        want = float(want)
        if math.isnan(want):
            assert math.isnan(got)
        elif exact:
            assert got == want, (got, want)
        else:
            assert got == pytest.approx(want, rel=1e-14, abs=1e-300)


def check(fn, wrt, points, tmp_path, shapes=None, randoms=5, exact=None):
    first = points[0]
    shapes = shapes or {k: shape_of(v) for k, v in first.items() if shape_of(v)}
    files = fmad.export(fn, lang="c", wrt=wrt, shapes=shapes)
    compiled = Compiled(files, tmp_path)
    differentiated = fmad.differentiate(fn, wrt=wrt)
    if exact is None:
        exact = not NUMPY_CALL.search(differentiated.source)
    order = list(inspect.signature(fn).parameters)
    rng = np.random.default_rng(0)
    trials = list(points) + [nearby(p, rng) for p in points for _ in range(randoms)]
    for point in trials:
        args = [point[k] for k in order if k in point]
        c_result = compiled(*args)
        try:
            expected = differentiated(**point)
        except (ArithmeticError, ValueError):  # Python raises: the C returns NaN
            assert math.isnan(c_result[0]), point
            assert all(math.isnan(t) for t in c_result[1].values())
            continue
        agree(c_result, expected, exact)
    return files


@needs_cc
@pytest.mark.parametrize(("fn", "wrt", "points"), [r for r in ROWS if r.id not in REFUSED])
def test_program_table(fn, wrt, points, tmp_path):
    # sum(xs) of a data array is a loop of the C subset's whole-array code: in order, as
    # Python's sum (3.12 compensates: then within 1e-14)
    check(fn, wrt, points, tmp_path, exact=False if fn.__name__ in WHOLE_ARRAY else None)


@pytest.mark.parametrize(("fn", "wrt", "points"), [r for r in ROWS if r.id in REFUSED])
def test_program_table_refusals(fn, wrt, points):
    shapes = {k: shape_of(v) for k, v in points[0].items() if shape_of(v)}
    with pytest.raises(fmad.ExportError) as info:
        fmad.export(fn, lang="c", wrt=wrt, shapes=shapes)
    assert re.match(r".*programs_module\.py:\d+: the C export does not support", str(info.value))


@needs_cc
def test_seed_example(tmp_path):
    points = [
        {"X": -45.1, "y": 54.9, "w": 0.5, "b": 0.3},
        {"X": 2.0, "y": -1.0, "w": 3.0, "b": 1.0},
    ]
    files = check(train_loop, ["w", "b"], points, tmp_path, randoms=20)
    header = files["train_loop.h"]
    assert (
        "double train_loop(double X, double y, double w, double b, train_loop_grad *grad);"
        in header
    )
    assert "typedef struct {\n    double w;" in header
    assert "#pragma STDC FP_CONTRACT OFF" in files["train_loop.c"]
    assert "malloc" not in files["train_loop.c"]


def file_scope(source):
    """The lines of a C file outside functions and comments that are not preprocessor
    lines, prototypes or function heads: a global variable would be one."""
    allowed = ("#", "/*", " *", " */", "{", "}", "double ")
    allowed += ("static double ", "static long ", "static size_t ")
    return [
        line
        for line in source.splitlines()
        if line
        and not line[0].isspace()
        and not line.startswith(allowed)
        and not line.endswith(":")  # the fm_fail label
    ]


def test_no_globals_in_any_export():
    for fn, shapes in [
        (ecm.rows_loop, {"X": (None, 2), "y": (None,)}),
        (ecm.integer_ops, {"xs": (None,)}),
        (ecm.matmul, {"X": (None, 3), "y": (None,), "w": (3,)}),
    ]:
        wrt = [p for p in inspect.signature(fn).parameters if p not in shapes or p == "w"]
        wrt = [p for p in wrt if p not in ("n",)]
        files = fmad.export(fn, lang="c", wrt=wrt, shapes=shapes)
        (source,) = [t for k, t in files.items() if k.endswith(".c")]
        assert file_scope(source) == []
        assert re.findall(r"^static \w+ \w+\(.*\)$", source, re.M)  # functions only


@needs_cc
def test_loop_over_arrays(tmp_path):
    rng = np.random.default_rng(1)
    xs = rng.normal(size=50)
    ts = 2.0 * xs + 1.0 + rng.normal(size=50)
    points = [
        {"xs": xs, "ts": ts, "w": 0.3, "b": -0.2},
        {"xs": xs[:3], "ts": ts[:3], "w": 2.0, "b": 1.0},
    ]
    files = check(mean_absolute_error, ["w", "b"], points, tmp_path)
    assert (
        "const double *xs, size_t xs_len, const double *ts, size_t ts_len"
        in files["mean_absolute_error.h"]
    )
    compiled = Compiled(files, tmp_path)
    value, _ = compiled(xs, ts[:-1], 0.3, -0.2)  # zip(strict=True) raises in Python
    assert math.isnan(value)


@needs_cc
def test_two_dimensional_array_helper_branch_while(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    y = rng.normal(size=40)
    points = [
        {"X": X, "y": y, "w0": 0.4, "w1": -1.1, "b": 0.2},
        {"X": 10 * X, "y": y, "w0": 3.0, "w1": 2.0, "b": 5.0},
    ]
    # with array data fmad runs its bundled code, which scales by 1 / len(X) where the code
    # for numbers (the C's) divides: equal to rounding, the value exact
    files = check(
        ecm.rows_loop,
        ["w0", "w1", "b"],
        points,
        tmp_path,
        shapes={"X": (None, 2), "y": (None,)},
        exact=False,
    )
    text = files["rows_loop.c"]
    assert "static double affine_fwd(" in text
    assert "const double *X, size_t X_rows, size_t X_cols" in files["rows_loop.h"]


@needs_cc
def test_python_integer_semantics(tmp_path):
    xs = np.array([1.5, -2.0, 0.25, 4.0])
    points = [{"xs": xs, "n": 7, "w": 0.7}, {"xs": xs, "n": 3, "w": -2.3}]
    files = check(ecm.integer_ops, ["w"], points, tmp_path, shapes={"xs": (None,)})
    assert "long n" in files["integer_ops.h"]


@needs_cc
def test_where_python_raises_the_c_returns_nan(tmp_path):
    files = fmad.export(ecm.domain_error, lang="c")
    compiled = Compiled(files, tmp_path)
    value, grad = compiled(-1.0)
    assert math.isnan(value) and math.isnan(grad["w"])
    assert compiled(2.0) == fmad.differentiate(ecm.domain_error)(2.0)


def line_of(tag):
    lines = inspect.getsource(ecm).splitlines()
    return next(i for i, text in enumerate(lines, 1) if f"LINE-{tag}" in text)


@pytest.mark.parametrize(
    ("fn", "tag", "what"),
    [
        (ecm.nested, "nested", "nested function"),
        (ecm.prints, "print", "print(w)"),
        (ecm.list_sum, "list", "[w, b_mult_w]"),
    ],
)
def test_refusals_name_file_and_line(fn, tag, what):
    with pytest.raises(fmad.ExportError) as info:
        fmad.export(fn, lang="c")
    message = str(info.value)
    assert f"export_c_module.py:{line_of(tag)}: the C export does not support" in message, message
    assert what in message


def check_arrays(fn, wrt, shapes, points, tmp_path):
    """An export of whole-array code: to 1e-12 relative (numpy sums pairwise, the C in
    order); an array parameter's gradient fills the caller's buffer."""
    files = fmad.export(fn, lang="c", wrt=wrt, shapes=shapes)
    compiled = Compiled(files, tmp_path)
    differentiated = fmad.differentiate(fn, wrt=wrt)
    order = list(inspect.signature(fn).parameters)
    for point in points:
        value, grads = compiled(*[point[k] for k in order])
        expected, expected_grads = differentiated(**point)
        assert value == pytest.approx(float(expected), rel=1e-12)
        for name in wrt:
            got, want = np.asarray(grads[name]), np.asarray(expected_grads[name])
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    return files, compiled


@needs_cc
def test_matmul_with_a_two_dimensional_array(tmp_path):
    rng = np.random.default_rng(3)
    shapes = {"X": (None, 3), "y": (None,), "w": (3,)}
    points = [
        {"X": rng.normal(size=(n, 3)), "y": rng.normal(size=n), "w": rng.normal(size=3), "b": 0.3}
        for n in (1, 7, 200)
    ]
    files, compiled = check_arrays(ecm.matmul, ["w", "b"], shapes, points, tmp_path)
    header = files["matmul.h"]
    assert "double *w; /* d matmul / d w: 3 doubles the caller allocates */" in header
    assert "const double *w, size_t w_len, double b, matmul_grad *grad);" in header
    p = points[1]
    value, grads = compiled(p["X"], p["y"], p["w"][:2], p["b"])  # w of another shape
    assert math.isnan(value) and np.isnan(grads["w"]).all()
    value, _ = compiled(p["X"][:, :2], p["y"], p["w"], p["b"])  # X with 2 columns
    assert math.isnan(value)
    value, _ = compiled(p["X"], p["y"][:3], p["w"], p["b"])  # y of another length
    assert math.isnan(value)


@needs_cc
def test_logistic_loss_with_dot(tmp_path):
    rng = np.random.default_rng(4)
    shapes = {"X": (None, 4), "labels": (None,), "w": (4,)}
    X = rng.normal(size=(100, 4))
    labels = np.sign(rng.normal(size=100))
    points = [{"X": X, "labels": labels, "w": rng.normal(size=4), "b": b} for b in (0.0, 1.5)]
    check_arrays(ecm.logistic, ["w", "b"], shapes, points, tmp_path)


@needs_cc
def test_whole_array_code_with_number_parameters(tmp_path):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=30), rng.normal(size=30)
    points = [{"x": x, "y": y, "w": 0.7, "b": -0.1}, {"x": x[:1], "y": y[:1], "w": -2.0, "b": 1.0}]
    shapes = {"x": (None,), "y": (None,)}
    check_arrays(ecm.scalar_params_whole_arrays, ["w", "b"], shapes, points, tmp_path)


def test_array_parameters_outside_the_subset_are_refused():
    with pytest.raises(fmad.ExportError) as info:
        fmad.export(ecm.array_branch, lang="c", wrt=["w"], shapes={"X": (None, 2), "w": (2,)})
    assert f"export_c_module.py:{line_of('array-branch')}:" in str(info.value)
    with pytest.raises(fmad.ExportError, match="2-D 'W'|with respect to"):
        fmad.export(ecm.matmul, lang="c", wrt=["w"], shapes={"X": (None, 3), "w": (3, 2)})


def test_unknown_language():
    with pytest.raises(fmad.FmadError, match="unknown lang"):
        fmad.export(ecm.domain_error, lang="rust")


@needs_cc
def test_command_line_writes_header_and_source(tmp_path):
    target = "examples/loop_and_abs.py:mean_absolute_error"
    status = main(
        ["export", target, "--lang", "c", "--shapes", "xs=N,ts=N", "-o", str(tmp_path / "mae.c")]
    )
    assert status == 0
    header, source = (tmp_path / "mae.h").read_text(), (tmp_path / "mae.c").read_text()
    assert '#include "mae.h"' in source and "mean_absolute_error_grad" in header
    assert (
        "regenerate: python -m fmad export examples/loop_and_abs.py:mean_absolute_error" in source
    )
    files = {
        "mean_absolute_error.h": header,
        "mean_absolute_error.c": source.replace("mae.h", "mean_absolute_error.h"),
    }
    compiled = Compiled(files, tmp_path)
    xs, ts = np.array([1.0, 2.0, 4.0]), np.array([2.5, 3.0, 9.5])
    assert compiled(xs, ts, 0.5, 1.0) == mean_absolute_error(xs, ts, 0.5, 1.0)


@needs_cc
def test_a_name_read_unbound_gives_nan(tmp_path):
    xs = np.array([1.0, 2.0, 3.0])
    points = [{"xs": xs, "n": 2, "w": 0.5}, {"xs": xs, "n": 3, "w": -0.5}]
    files = check(ecm.maybe_unbound, ["w"], points, tmp_path, shapes={"xs": (None,)})
    assert "UnboundLocalError" in files["maybe_unbound.c"]
    compiled = Compiled(files, tmp_path)
    value, grad = compiled(xs, 0, 0.5)  # Python: UnboundLocalError
    assert math.isnan(value) and math.isnan(grad["w"])
    with pytest.raises(UnboundLocalError):
        fmad.differentiate(ecm.maybe_unbound, wrt=["w"])(xs, 0, 0.5)


@needs_cc
def test_numpy_examples(tmp_path):
    rng = np.random.default_rng(6)
    X, y = rng.uniform(0, 2, size=80), rng.normal(size=80)
    points = [{"X": X, "y": y, "w": 0.5, "b": -0.3}]
    check_arrays(mse_numpy, ["w", "b"], {"X": (None,), "y": (None,)}, points, tmp_path)
    X2 = rng.normal(size=(60, 2))
    t = (rng.uniform(size=60) > 0.5).astype(float)
    points = [{"X": X2, "t": t, "w": rng.normal(size=2), "b": 0.1}]
    shapes = {"X": (None, 2), "t": (None,), "w": (2,)}
    check_arrays(cross_entropy, ["w", "b"], shapes, points, tmp_path)


@needs_cc
def test_tiny_network_with_an_inlined_helper(tmp_path):
    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(size=40), rng.normal(size=40)
    t = (x1 * x2 > 0).astype(float)
    params = dict(zip(SCALAR_NAMES, rng.normal(size=len(SCALAR_NAMES)), strict=True))
    points = [{"x1": x1, "x2": x2, "t": t, **{k: float(v) for k, v in params.items()}}]
    shapes = {"x1": (None,), "x2": (None,), "t": (None,)}
    check_arrays(loss_scalar_params, SCALAR_NAMES, shapes, points, tmp_path)


def test_an_array_where_a_number_is_needed_is_refused():
    with pytest.raises(fmad.ExportError, match=r"programs_module\.py:\d+: .*where a number is"):
        fmad.export(pm.bool_ops, lang="c", wrt=["w", "b"], shapes={"x": (None,)})
    with pytest.raises(fmad.WrtError):  # a wrt array's size fixes the code
        fmad.export(ecm.matmul, lang="c", wrt=["w"], shapes={"X": (None, 3), "w": (None,)})
    # X @ w with a number w raises in numpy: refused, not summed
    with pytest.raises(fmad.ExportError, match="X @ w"):
        fmad.export(ecm.matmul, lang="c", wrt=["w", "b"], shapes={"X": (None,), "y": (None,)})
