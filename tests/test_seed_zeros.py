"""An array parameter's elements stay apart in forward mode where one of them is singular.

Forward mode carries an array parameter's ``k`` directions together, starting from the
identity seed. ``c[..., None] * eye`` or ``c @ eye`` would turn one element's infinite
partial (``sqrt`` or ``log`` at 0) into ``inf * 0 = nan`` in every *other* element's
direction, where the derivative is plain: ``np.sum(np.sqrt(p))`` at ``p = [0, 1, 4]`` gave
``[inf, nan, nan]``. The seed's zeros are structural, so they stay zero
(``runtime_seed.seed_sum``, ``on_seed``): the answer is ``[inf, 0.5, 0.25]``, as reverse
mode gives.
"""

from __future__ import annotations

import numpy as np
import pytest

import fmad
from fmad import runtime_seed as rs

Q = np.array([1.0, 2.0, 3.0])
X = np.arange(12.0).reshape(3, 4) / 10.0


def sum_sqrt(p):
    return np.sum(np.sqrt(p))


def mean_sqrt(p):
    return np.mean(np.sqrt(p))


def cumsum_sqrt(p):
    return np.sum(np.cumsum(np.sqrt(p)))


def sqrt_times_data(p):
    return np.sum(np.sqrt(p) * Q)


def clip_log(p):
    return np.sum(np.clip(np.log(p), -5, 5))


def index_sqrt(p):
    return p[1] + np.sqrt(p[0])


def dot_sqrt(p):
    return np.dot(np.sqrt(p), Q)


def matmul_sqrt(p):
    return np.sqrt(p) @ Q


def outer_sqrt(p):
    return np.sum(np.outer(np.sqrt(p), Q))


def exp_sqrt(p):
    return np.sum(np.exp(np.sqrt(p)))


def scaled_sum(p):
    return np.sum(np.sqrt(p)) * 2.0


def square_of_sqrt(p):
    return np.sum(np.sqrt(p) ** 2)


def broadcast_rows(p):
    return np.sum(np.sqrt(p)[:, None] * X)


def column_param(p):
    # p of shape (3, 1), broadcast along X's columns
    return np.mean(np.sqrt(p) + X)


CASES = [
    sum_sqrt,
    mean_sqrt,
    cumsum_sqrt,
    sqrt_times_data,
    clip_log,
    index_sqrt,
    dot_sqrt,
    matmul_sqrt,
    outer_sqrt,
    exp_sqrt,
    scaled_sum,
    square_of_sqrt,
    broadcast_rows,
]


def central(fn, p: np.ndarray, j: int, h: float = 1e-6) -> float:
    up, down = p.copy(), p.copy()
    up.flat[j] += h
    down.flat[j] -= h
    return (fn(up) - fn(down)) / (2 * h)


@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_a_singular_element_does_not_spread(fn):
    p = np.array([0.0, 1.0, 4.0])
    with np.errstate(all="ignore"):
        value, grads = fmad.differentiate(fn, wrt=["p"], mode="forward")(p)
        _, reverse = fmad.differentiate(fn, wrt=["p"], mode="reverse")(p)
        expected = fn(p)
    assert value == expected and type(value) is type(expected)
    g = grads["p"]
    # the elements away from 0 have a plain derivative: finite, central differences agree,
    # and so does reverse mode (which keeps elements apart by construction)
    for j in (1, 2):
        assert np.isfinite(g[j]), (fn.__name__, g)
        assert g[j] == pytest.approx(central(fn, p, j), rel=1e-6, abs=1e-8)
        assert g[j] == pytest.approx(reverse["p"][j], rel=1e-12, abs=1e-15)


def test_a_parameter_broadcast_along_a_column():
    p = np.array([[0.0], [1.0], [4.0]])
    with np.errstate(all="ignore"):
        _, grads = fmad.differentiate(column_param, wrt=["p"], mode="forward")(p)
    g = grads["p"]
    assert g.shape == (3, 1) and np.isinf(g[0, 0])
    for j in (1, 2):
        assert g[j, 0] == pytest.approx(central(column_param, p, j), rel=1e-6)


def test_finite_points_are_unchanged():
    """Away from singular points the gradients are the same numbers as before (c @ eye)."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.5, 2.0, size=3)
    for fn in (sum_sqrt, mean_sqrt, exp_sqrt, sqrt_times_data, cumsum_sqrt, index_sqrt):
        _, grads = fmad.differentiate(fn, wrt=["p"], mode="forward")(p)
        _, reverse = fmad.differentiate(fn, wrt=["p"], mode="reverse")(p)
        np.testing.assert_allclose(grads["p"], reverse["p"], rtol=1e-14)


def test_the_variant_uses_the_seed_helpers():
    p = np.array([0.0, 1.0, 4.0])
    src = fmad.differentiate(sum_sqrt, wrt=["p"]).source_for(p)
    assert "seed_sum(" in src and "np.eye(3)" in src
    src = fmad.differentiate(index_sqrt, wrt=["p"]).source_for(p)
    assert "on_seed(" in src


# -- the helpers themselves --------------------------------------------------------------------
def seed(shape: tuple[int, ...]) -> np.ndarray:
    k = int(np.prod(shape))
    return np.eye(k).reshape((*shape, k))


@pytest.mark.parametrize(
    ("c_shape", "p_shape", "x_shape"),
    [
        ((3,), (3,), (3,)),
        ((2, 3), (2, 3), (2, 3)),
        ((4, 3), (3,), (4, 3)),
        ((), (3,), (3,)),
        ((3, 4), (3, 1), (3, 4)),
        ((1,), (3,), (3,)),
        ((5, 2, 3), (2, 3), (5, 2, 3)),
    ],
)
def test_seed_sum_matches_the_product_with_the_seed(c_shape, p_shape, x_shape):
    rng = np.random.default_rng(0)
    c = rng.normal(size=c_shape)
    t = seed(p_shape)
    x = np.zeros(x_shape)
    k = t.shape[-1]
    dense = np.sum(np.reshape(np.broadcast_to(c[..., None] * t, (*x_shape, k)), (-1, k)), axis=0)
    np.testing.assert_allclose(rs.seed_sum(c, t, x, k), dense, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        rs.seed_mean(c, t, x, k), dense / max(np.size(x), 1), rtol=1e-14, atol=1e-15
    )


def test_seed_sum_is_a_new_array_in_the_products_dtype():
    c = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = seed((3,))
    out = rs.seed_sum(c, t, c, 3)
    assert out.dtype == (c @ t).dtype
    assert not np.shares_memory(out, c)
    out[0] = 99.0
    assert c[0] == 1.0


def test_on_seed_keeps_the_seed_zeros():
    c = np.array([np.inf, 0.5, np.nan])
    out = rs.on_seed(c, seed((3,)))
    expected = np.diag(c)
    assert np.array_equal(out, expected, equal_nan=True)
    # finite coefficients: the plain product, bit for bit
    c = np.array([1.5, -0.5, 2.0])
    assert np.array_equal(rs.on_seed(c, seed((3,))), c[:, None] * seed((3,)))


def test_the_gradient_does_not_alias_the_callers_data():
    def weighted(p, q):
        return np.sum(p * q)

    q = np.array([1.0, 2.0, 3.0])
    _, grads = fmad.differentiate(weighted, wrt=["p"], mode="forward")(np.ones(3), q)
    np.testing.assert_array_equal(grads["p"], q)
    grads["p"][0] = 42.0
    assert q[0] == 1.0


def power(p):
    return np.sum(np.sqrt(p) * p**2)


def test_second_derivatives_through_the_seed_helpers():
    """fmad's output, seed_sum included, is differentiated again: p ** 2.5 has the
    Hessian diag(3.75 * sqrt(p))."""
    p = np.array([0.5, 1.0, 2.0])
    value, grads, hess = fmad.hessian(power, wrt="p")(p)
    assert value == power(p)
    np.testing.assert_allclose(grads["p"], 2.5 * p**1.5, rtol=1e-13)
    np.testing.assert_allclose(hess["p"]["p"], np.diag(3.75 * np.sqrt(p)), rtol=1e-13)


@pytest.mark.parametrize("fn", [sum_sqrt, index_sqrt, cumsum_sqrt], ids=lambda f: f.__name__)
def test_the_exported_module_keeps_the_elements_apart(fn):
    """The exported Python module carries the seed helpers and gives the same numbers."""
    text = fmad.export(fn, wrt=["p"], shapes={"p": (3,)})
    namespace: dict = {}
    exec(compile(text, f"<export {fn.__name__}>", "exec"), namespace)
    p = np.array([0.0, 1.0, 4.0])
    with np.errstate(all="ignore"):
        value, grads = namespace[fn.__name__](p)
        expected_value, expected = fmad.differentiate(fn, wrt=["p"], mode="forward")(p)
    assert value == expected_value
    np.testing.assert_array_equal(grads["p"], expected["p"])
    assert np.isfinite(grads["p"][1:]).all()
