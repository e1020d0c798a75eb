"""fmad/columns.py: ``X @ w`` with ``X`` of one column and ``w`` of one element runs as an
elementwise product in the code that runs, with the same bits, never in what is printed."""

import warnings

import numpy as np
import pytest

import fmad
from fmad import columns, runtime_arrays
from fmad.runtime_arrays import column_product
from tests.fdcheck import central_fd


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all((bits(a) == bits(b)) | (np.isnan(a) & np.isnan(b))))


@pytest.fixture
def few_rows(monkeypatch):
    monkeypatch.setattr(runtime_arrays, "COLUMN_ROWS", 1)


SPECIALS = [0.0, -0.0, 1.0, -1.0, 2.5, -3.75, 1e-310, -5e-324, 1e300, -1e-300]


@pytest.mark.parametrize("w", [*SPECIALS, 0.3, -7.0])
@pytest.mark.parametrize("layout", ["c", "f", "strided", "reversed"])
def test_same_bits_as_matmul(few_rows, w, layout):
    rng = np.random.default_rng(3)
    column = np.concatenate([np.array(SPECIALS), rng.normal(size=53)])
    wide = np.zeros((column.size, 3))
    wide[:, 1] = column
    x = {
        "c": column[:, None].copy(),
        "f": np.asfortranarray(column[:, None]),
        "strided": wide[:, 1:2],
        "reversed": wide[::-1, 1:2],
    }[layout]
    b = np.array([w])
    got = column_product(x, b)
    with np.errstate(all="ignore"):
        want = x @ b
    if got is None:  # a product, or their sum of squares, is not finite: x @ b runs
        with np.errstate(all="ignore"):
            assert not np.isfinite(want @ want)
    else:
        assert same_bits(got, want)


def test_signed_zero_follows_blas(few_rows):
    x = np.array([[-0.0], [0.0], [-1.0]])
    got = column_product(x, np.array([0.0]))
    assert same_bits(got, x @ np.array([0.0]))
    assert not np.signbit(got).any()  # BLAS sums from +0.0


@pytest.mark.parametrize(
    "x, b",
    [
        (np.ones((5000, 2)), np.ones(1)),  # not one column: a @ b raises numpy's error
        (np.ones((5000, 1), dtype=np.float32), np.ones(1, dtype=np.float32)),
        (np.ones((5000, 1)), np.ones(1, dtype=np.float32)),
        (np.ones((10, 1)), np.ones(1)),  # few rows: BLAS is fast enough
        (np.ones(1), np.ones(1)),
        (np.ones((2, 5000, 1)), np.ones(1)),
        ([[1.0]] * 5000, np.ones(1)),
        (np.full((5000, 1), 1e300), np.array([1e10])),  # overflows: numpy's warning
        (np.full((5000, 1), np.nan), np.ones(1)),
    ],
)
def test_declines(x, b):
    assert column_product(x, b) is None


def linear(X, y, w, b):
    return np.mean((X @ w + b - y) ** 2)


def rebound(X, y, w, b):
    w = w * 1.0
    return np.mean((X @ w + b - y) ** 2)


def data(n=6000):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 1))
    X[:5, 0] = [-0.0, 0.0, 1e-310, -2.0, 3.0]
    y = 2.0 * X[:, 0] + 0.5 + 0.1 * rng.normal(size=n)
    return X, y, np.array([0.7]), 0.25


def cells(fn):
    return [c.cell_contents for c in fn.__closure__ or ()]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_same_value_and_gradient_on_and_off(monkeypatch, mode):
    args = data()
    on = fmad.differentiate(linear, wrt=["w", "b"], mode=mode)
    v_on, g_on = on(*args)
    monkeypatch.setattr(columns, "ENABLED", False)
    off = fmad.differentiate(linear, wrt=["w", "b"], mode=mode)
    v_off, g_off = off(*args)
    assert v_on == v_off == linear(*args)
    assert same_bits(g_on["w"], g_off["w"]) and same_bits(g_on["b"], g_off["b"])
    X, y, w, b = args
    fd = central_fd(linear, {"X": X, "y": y, "w": w, "b": b}, "w")
    assert g_on["w"] == pytest.approx(fd, rel=1e-6)


def test_reverse_variant_uses_it_and_prints_without_it():
    args = data()
    g = fmad.differentiate(linear, wrt=["w", "b"], mode="reverse")
    g(*args)
    assert column_product in cells(g.__fmad_reverse__.variant(args, {}))
    assert "fmad_column" not in g.source_for(*args) and "fmad_column" not in g.source


def test_forward_uses_it_and_prints_without_it(monkeypatch):
    args = data()
    used = []
    real = runtime_arrays._column
    monkeypatch.setattr(runtime_arrays, "_column", lambda a, b: used.append(1) or real(a, b))
    f = fmad.differentiate(linear, wrt=["w", "b"])
    value, _ = f(*args)
    assert used and value == linear(*args)
    assert "fmad_column" not in f.source_for(*args)


def test_not_where_the_parameter_is_rebound(monkeypatch):
    args = data()
    used = []
    real = runtime_arrays._column
    monkeypatch.setattr(runtime_arrays, "_column", lambda a, b: used.append(1) or real(a, b))
    for mode in ("forward", "reverse"):
        value, _ = fmad.differentiate(rebound, wrt=["w", "b"], mode=mode)(*args)
        assert value == rebound(*args)
    assert not used


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_overflow_warns_at_the_users_line_as_matmul(mode):
    X, y, _, b = data()
    X = np.full_like(X, 1e300)
    f = fmad.differentiate(linear, wrt=["w", "b"], mode=mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f(X, y, np.array([1e10]), b)
    messages = [(str(w.message), w.filename) for w in caught]
    assert any("matmul" in text and file == __file__ for text, file in messages), messages


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_shape_error_unchanged(mode):
    X, y, _, b = data()
    f = fmad.differentiate(linear, wrt=["w", "b"], mode=mode)
    with pytest.raises(fmad.ShapeError, match="matmul"):
        f(np.ones((X.shape[0], 2)), y, np.array([1.0]), b)
