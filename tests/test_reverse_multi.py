"""Reverse mode of the functions that return several arrays (fmad/adjoints_linalg.py,
fmad/runtime_multi.py): np.linalg.slogdet, eigh, qr, svd and lstsq, unpacked, indexed, by
their named fields, with only some of their outputs read, on single matrices and stacks.
Each gradient equals forward mode's to rounding (tests/reverse_check.compare) and central
differences; where forward mode has no derivative (a singular matrix, repeated eigenvalues
or singular values, a deficient rank) reverse mode raises the same DerivativeError at the
user's line."""

from __future__ import annotations

import inspect
import os
import zlib

import numpy as np
import pytest

import fmad
from tests.fdcheck import check_gradients
from tests.reverse_check import compare

THIS_FILE = os.path.basename(__file__)


def mat(shape, kind: str = "gen", key: str = "") -> np.ndarray:
    """A random matrix (or stack) far from singular, with distinct eigen/singular values."""
    rng = np.random.default_rng(zlib.crc32(f"{shape}{kind}{key}".encode()))
    a = rng.uniform(-1.0, 1.0, shape)
    if kind == "spd":
        return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])
    return a + 2.0 * np.eye(shape[-2], shape[-1])


def weights(*shape):
    return np.random.default_rng(zlib.crc32(f"w{shape}".encode())).uniform(-1.0, 1.0, shape)


# -- slogdet ---------------------------------------------------------------------------------
def slogdet_unpacked(p):
    sign, logdet = np.linalg.slogdet(p)
    return np.sum(sign * logdet)


def slogdet_field(p):
    result = np.linalg.slogdet(p)
    return np.sum(result.logabsdet * 2.0) + result[1].sum()


def slogdet_sign_only(p):
    sign, _ = np.linalg.slogdet(p)
    return np.sum(sign * p)


def slogdet_twice(p, q):
    r = np.linalg.slogdet(p @ q)
    s = r
    return s[1] + np.linalg.slogdet(q)[1] * r.logabsdet


# -- eigh ------------------------------------------------------------------------------------
def eigh_both(p, c):
    w, v = np.linalg.eigh(p)
    return np.sum(w * c[0]) + np.sum(v * v * c)  # v * v: whatever signs LAPACK picks


def eigh_values_only(p, c):
    return np.sum(np.linalg.eigh(p)[0] * c[0])


def eigh_vectors_only(p, c):
    v = np.linalg.eigh(p).eigenvectors
    return np.sum((v @ np.diag(c[0]) @ v.T) * c)


def eigh_upper(p, c):
    w, v = np.linalg.eigh(p, UPLO="U")
    return np.sum(w**2) + np.sum(v[0] * v * c)


def eigh_stack(p, c):
    result = np.linalg.eigh(p)
    return np.sum(result.eigenvalues * c[..., 0]) + np.sum(result.eigenvectors**2 * c)


# -- qr --------------------------------------------------------------------------------------
def qr_both(p, c):
    q, r = np.linalg.qr(p)
    return np.sum(q * c[: q.shape[0], : q.shape[1]]) + np.sum(r**2)


def qr_q_only(p, c):
    return np.sum(np.linalg.qr(p)[0] * c[: p.shape[0], : min(p.shape)])


def qr_r_only(p, c):
    result = np.linalg.qr(p)
    return np.sum(result.R * c[: min(p.shape), : p.shape[1]])


def qr_mode_r(p, c):
    return np.sum(np.linalg.qr(p, mode="r") * c[: min(p.shape), : p.shape[1]])


def qr_stack(p, c):
    q, r = np.linalg.qr(p)
    return np.sum(q @ r * c) + np.sum(q[..., 0, :] * r[..., 0])


# -- svd -------------------------------------------------------------------------------------
def svd_all(p, c):
    u, s, vh = np.linalg.svd(p, full_matrices=False)
    k = s.shape[-1]
    return np.sum(((u * c[0, :k]) @ vh) * c) + np.sum(s * c[-1, :k])


def svd_u_only(p, c):
    u = np.linalg.svd(p, full_matrices=False)[0]
    return np.sum(u**2 * c[:, : u.shape[-1]])


def svd_vh_only(p, c):
    result = np.linalg.svd(p, full_matrices=False)
    return np.sum(result.Vh**2 * c[: result.Vh.shape[0]])


def svd_s_fields(p, c):
    result = np.linalg.svd(p, full_matrices=False)
    return np.sum(result.S * c[0, : result.S.shape[0]])


def svd_square(p, c):
    u, s, vh = np.linalg.svd(p)
    return np.sum(u[:, :1] * vh[:1] * c) + s[0]


def svd_stack(p, c):
    u, s, vh = np.linalg.svd(p, full_matrices=False)
    return np.sum((u * s[..., None, :]) @ vh * c) + np.sum(u[..., :1] * vh[..., :1, :] * c)


# -- lstsq -----------------------------------------------------------------------------------
def lstsq_all(p, b):
    x, res, rank, s = np.linalg.lstsq(p, b)
    return np.sum(x * x) + np.sum(res) + np.sum(s) * rank


def lstsq_solution(p, b):
    return np.sum(np.linalg.lstsq(p, b, rcond=None)[0] ** 3)


def lstsq_residuals(p, b):
    return np.sum(np.linalg.lstsq(p, b)[1])


def lstsq_singular_values(p, b):
    sol, _, _, s = np.linalg.lstsq(p, b)
    return np.sum(s**2)


# -- through a helper, in a loop -----------------------------------------------------------
def helper_eigh(p):
    return np.linalg.eigh(p)


def eigh_through_helper(p, c):
    r = helper_eigh(p)
    return np.sum(r.eigenvalues * c[0]) + np.sum(r[1] ** 2 * c)


def decompositions_in_loop(p, c):
    acc = 0.0
    for i in range(3):
        w, v = np.linalg.eigh(p + i * c)
        q, r = np.linalg.qr(p * (i + 1.0))
        acc = acc + np.sum(w * w) + np.sum(v**2 * c) + np.sum(r * c) * i
    return acc


CASES = [
    (slogdet_unpacked, {"p": mat((3, 3))}),
    (slogdet_unpacked, {"p": -mat((3, 3), key="neg")}),
    (slogdet_unpacked, {"p": mat((2, 3, 3))}),
    (slogdet_field, {"p": mat((2, 2))}),
    (slogdet_sign_only, {"p": mat((3, 3))}),
    (slogdet_twice, {"p": mat((3, 3)), "q": mat((3, 3), key="q")}),
    (eigh_both, {"p": mat((3, 3), "spd"), "c": weights(3, 3)}),
    (eigh_both, {"p": mat((4, 4)), "c": weights(4, 4)}),  # not symmetric: its lower triangle
    (eigh_values_only, {"p": mat((3, 3), "spd"), "c": weights(3, 3)}),
    (eigh_vectors_only, {"p": mat((3, 3), "spd"), "c": weights(3, 3)}),
    (eigh_upper, {"p": mat((3, 3)), "c": weights(3, 3)}),
    (eigh_stack, {"p": mat((2, 3, 3), "spd"), "c": weights(2, 3, 3)}),
    (eigh_through_helper, {"p": mat((3, 3), "spd"), "c": weights(3, 3)}),
    (decompositions_in_loop, {"p": mat((3, 3), "spd"), "c": weights(3, 3)}),
    (qr_both, {"p": mat((3, 3)), "c": weights(4, 4)}),
    (qr_both, {"p": mat((4, 3)), "c": weights(4, 4)}),
    (qr_both, {"p": mat((3, 5)), "c": weights(5, 5)}),
    (qr_q_only, {"p": mat((4, 2)), "c": weights(4, 4)}),
    (qr_q_only, {"p": mat((2, 4)), "c": weights(4, 4)}),
    (qr_r_only, {"p": mat((4, 3)), "c": weights(4, 4)}),
    (qr_r_only, {"p": mat((2, 3)), "c": weights(4, 4)}),
    (qr_mode_r, {"p": mat((4, 3)), "c": weights(4, 4)}),
    (qr_mode_r, {"p": mat((2, 4)), "c": weights(4, 4)}),
    (qr_stack, {"p": mat((2, 4, 3)), "c": weights(2, 4, 3)}),
    (svd_all, {"p": mat((4, 3)), "c": weights(4, 3)}),
    (svd_all, {"p": mat((3, 5)), "c": weights(3, 5)}),
    (svd_all, {"p": mat((3, 3)), "c": weights(3, 3)}),
    (svd_u_only, {"p": mat((4, 3)), "c": weights(4, 4)}),
    (svd_u_only, {"p": mat((2, 4)), "c": weights(2, 4)}),
    (svd_vh_only, {"p": mat((4, 2)), "c": weights(4, 2)}),
    (svd_vh_only, {"p": mat((2, 4)), "c": weights(4, 4)}),
    (svd_s_fields, {"p": mat((3, 4)), "c": weights(4, 4)}),
    (svd_square, {"p": mat((3, 3)), "c": weights(3, 3)}),
    (svd_stack, {"p": mat((2, 4, 3)), "c": weights(2, 4, 3)}),
    (lstsq_all, {"p": mat((5, 3)), "b": weights(5)}),
    (lstsq_all, {"p": mat((5, 3)), "b": weights(5, 2)}),
    (lstsq_all, {"p": mat((3, 3)), "b": weights(3, 2)}),
    (lstsq_all, {"p": mat((2, 4)), "b": weights(2)}),
    (lstsq_solution, {"p": mat((4, 2)), "b": weights(4, 3)}),
    (lstsq_solution, {"p": mat((2, 3)), "b": weights(2, 2)}),
    (lstsq_residuals, {"p": mat((5, 2)), "b": weights(5, 2)}),
    (lstsq_singular_values, {"p": mat((3, 4)), "b": weights(3)}),
]
IDS = [f"{fn.__name__}-{'x'.join(map(str, np.shape(args['p'])))}" for fn, args in CASES]


@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_against_forward_mode_and_central_differences(fn, args):
    wrt = [n for n in args if n != "c"]
    assert compare(fn, wrt, args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args, rtol=1e-5, atol=1e-7)


def test_the_printed_code_passes_a_list_adjoint():
    source = fmad.differentiate(eigh_both, wrt=["p"], mode="reverse").source
    assert "fmad_forms.item_adjoint(" in source
    assert "fmad_multi.eigh_adjoint(" in source


# -- where there is no derivative: forward mode's DerivativeError, at the line ---------------
def eigh_at(p):
    w, v = np.linalg.eigh(p)  # LINE-eigh
    return np.sum(w) + np.sum(v[0] ** 2)


def eigh_values_at(p):
    w, _ = np.linalg.eigh(p)  # LINE-eigh
    return np.sum(w)


def slogdet_at(p):
    return np.linalg.slogdet(p)[1]  # LINE-slogdet


def qr_at(p):
    q, r = np.linalg.qr(p)  # LINE-qr
    return np.sum(q) + np.sum(r)


def svd_at(p):
    u, s, vh = np.linalg.svd(p)  # LINE-svd
    return np.sum(u[:, 0]) * np.sum(vh[0])


def svd_reduced_at(p):
    u, s, vh = np.linalg.svd(p, full_matrices=False)  # LINE-svd
    return np.sum(u**2) + np.sum(s)


def lstsq_at(p, b):
    return np.sum(np.linalg.lstsq(p, b)[0])  # LINE-lstsq


def line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    found = [first + i for i, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


@pytest.mark.parametrize(
    ("fn", "args", "word"),
    [
        (eigh_at, (np.eye(3),), "eigenvalues are equal"),
        (eigh_values_at, (2.0 * np.eye(2)[None].repeat(2, 0),), "eigenvalues are equal"),
        (slogdet_at, (SINGULAR,), "singular"),
        (qr_at, (np.array([[1.0, 0.0], [2.0, 0.0]]),), "singular"),
        (qr_at, (np.array([[1.0, 0.0, 2.0], [2.0, 0.0, 1.0]]),), "singular"),
        (svd_at, (np.eye(2),), "singular values are equal"),
        (svd_at, (np.ones((3, 2)),), "full_matrices=False"),
        (svd_reduced_at, (np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),), "(or one is 0)"),
        (lstsq_at, (SINGULAR, np.ones(2)), "deficient rank"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_no_derivative_is_forward_modes_derivative_error(fn, args, word):
    tag = fn.__name__.split("_")[0]
    expected = f"{THIS_FILE}:{line_of(fn, f'LINE-{tag}')}: "
    wrt = list(inspect.signature(fn).parameters)[:1]
    for mode in ("forward", "reverse"):
        with pytest.raises(fmad.DerivativeError) as info:
            fmad.differentiate(fn, wrt=wrt, mode=mode)(*args)
        assert expected in str(info.value), (mode, str(info.value))
        assert word in str(info.value), (mode, str(info.value))


# -- refusals: options that are not constants ------------------------------------------------
def qr_mode_variable(p, mode):
    return np.sum(np.linalg.qr(p, mode=mode)[0])  # LINE-qr


def svd_uv_variable(p, uv):
    return np.sum(np.linalg.svd(p, compute_uv=uv)[1])  # LINE-svd


@pytest.mark.parametrize(("fn", "tag"), [(qr_mode_variable, "qr"), (svd_uv_variable, "svd")])
def test_an_option_that_is_not_a_constant_is_refused(fn, tag):
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(fn, wrt=["p"], mode="reverse")
    assert info.value.lineno == line_of(fn, f"LINE-{tag}")
    assert "constant" in str(info.value) and "mode='forward'" in str(info.value)


# -- the last rule rows: np.var, np.average, np.nan_to_num, np.cross, np.gradient ------------
def var_positional(p):
    return np.sum(np.var(p, 0, None, None, 1))


def average_weights_keyword(x, p):
    return np.sum(np.average(x, weights=p * p, axis=-1) ** 2)


def average_weights_positional(p, q):
    return np.sum(np.average(p * q, 0, q * q + 1.0))


def average_weights_along_axis(x, p):
    return np.sum(np.average(x * p[0], axis=0, weights=p * p, keepdims=True) * x[:1])


def nan_to_num_product(x, p):
    return np.sum(np.nan_to_num(x * p, posinf=4.0, neginf=-4.0) * np.array([0.5, -1.0, 2.0]))


def nan_to_num_log(p):
    return np.sum(np.nan_to_num(np.log(p), neginf=-5.0) * p)


def nan_to_num_in_loop(x, p):
    acc = 0.0
    for i in range(3):
        acc = acc + np.sum(np.nan_to_num(x * (p + i), nan=1.0, posinf=3.0, neginf=-3.0) * (i + 1.0))
    return acc


def cross_vectors(a, b):
    return np.sum(np.cross(a, b, axisa=0, axisb=-1, axisc=0) * np.arange(1.0, 7.0).reshape(3, 2))


def gradient_list(p):
    gx, gy = np.gradient(p * p, 2.0, np.array([0.0, 1.0, 3.0]))
    return np.sum(gx * gy)


def gradient_one_read(p):
    return np.sum(np.gradient(p)[1] ** 2)


def gradient_sum_of_list(p):
    return np.sum(np.gradient(p, axis=(0, 1))) + np.sum(np.gradient(p[0]) ** 2)


def angle_of_real(p):
    return np.sum(np.angle(p) * p) + np.sum(np.real_if_close(p) ** 2)


X = np.array([[1.0, np.inf, 2.0], [-np.inf, 0.5, np.nan]])
ROW_CASES = [
    (var_positional, {"p": weights(3, 4)}),
    (average_weights_keyword, {"x": weights(2, 3), "p": weights(2, 3) + 2.0}),
    (average_weights_keyword, {"x": weights(2, 3), "p": weights(3) + 2.0}),
    (average_weights_positional, {"p": weights(3, 2), "q": weights(3, 2)}),
    (average_weights_along_axis, {"x": weights(2, 3), "p": weights(2) + 2.0}),
    (nan_to_num_product, {"x": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), "p": weights(3)}),
    (cross_vectors, {"a": weights(3, 2), "b": weights(2, 3)}),
    (gradient_list, {"p": weights(4, 3)}),
    (gradient_one_read, {"p": weights(3, 4)}),
    (gradient_sum_of_list, {"p": weights(3, 4)}),
    (angle_of_real, {"p": weights(5)}),
]


@pytest.mark.parametrize(("fn", "args"), ROW_CASES, ids=[fn.__name__ for fn, _ in ROW_CASES])
def test_the_last_rule_rows(fn, args):
    wrt = [n for n in args if n != "x"]
    assert compare(fn, wrt, args) == "same"
    check_gradients(fmad.differentiate(fn, wrt=wrt, mode="reverse"), args, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (nan_to_num_product, {"x": X, "p": 0.7}),
        (nan_to_num_product, {"x": X, "p": weights(3)}),
        (nan_to_num_product, {"x": X, "p": np.array([0.5, 0.0, 2.0])}),
        (nan_to_num_log, {"p": np.array([0.0, 1.5, 0.0, 2.0])}),
        (nan_to_num_in_loop, {"x": X, "p": weights(3)}),
    ],
    ids=["scalar", "vector", "inf-times-0", "log-of-0", "loop"],
)
def test_nan_to_num_masks_what_it_replaced(fn, args):
    """Where np.nan_to_num replaced a nan or an infinity, the derivative is 0 (forward
    mode's): the line that made its argument does not multiply that 0 by an infinity."""
    wrt = [n for n in args if n != "x"]
    assert compare(fn, wrt, args) == "same"
    _, grads = fmad.differentiate(fn, wrt=wrt, mode="reverse")(**args)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def nan_to_num_deeper(x, p):
    return np.sum(np.nan_to_num(np.log(x * p)))  # LINE-deeper


def nan_to_num_twice_read(p):
    y = np.log(p)
    return np.sum(np.nan_to_num(y) + y)


def test_nan_to_num_of_a_line_whose_operands_are_not_finite_is_refused_at_the_call():
    args = {"x": np.array([np.inf, 1.0]), "p": np.array([1.0, 2.0])}
    assert compare(nan_to_num_deeper, ["p"], args) == "refused at call"
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(nan_to_num_deeper, wrt=["p"], mode="reverse")(**args)
    assert info.value.lineno == line_of(nan_to_num_deeper, "LINE-deeper")
    assert "not finite" in str(info.value)
    finite = {"x": np.array([3.0, 1.0]), "p": np.array([1.0, 2.0])}
    assert compare(nan_to_num_deeper, ["p"], finite) == "same"


def test_nan_to_num_of_a_value_read_elsewhere_is_not_masked():
    # y's infinite derivative reaches the output through '+ y': both modes say so (forward
    # mode's other entry is nan: its direction of p[1] meets 0 / 0 in y's tangent at p[0])
    p = np.array([0.0, 1.0])
    forward = fmad.differentiate(nan_to_num_twice_read)(p)[1]["p"]
    reverse = fmad.differentiate(nan_to_num_twice_read, mode="reverse")(p)[1]["p"]
    assert np.isposinf(forward[0]) and np.isposinf(reverse[0]) and reverse[1] == 2.0


def angle_of(p):
    return np.sum(np.angle(p + 1.0j))  # LINE-angle


def test_angle_of_a_complex_value_is_refused_when_called():
    with pytest.raises(fmad.ReverseModeError) as info:
        fmad.differentiate(angle_of, mode="reverse")(np.array([1.0, 2.0]))
    assert info.value.lineno == line_of(angle_of, "LINE-angle")
    assert "complex" in str(info.value)


def nan_to_num_of_maximum(p, q):
    return np.sum(np.nan_to_num(np.maximum(np.log(p), q), neginf=-7.0))


def nan_to_num_bound_in_branches(p):
    if p[0] > 0:
        y = np.log(p)
    else:
        y = np.sum(p) * np.ones(2)
    return np.sum(np.nan_to_num(y, neginf=-2.0))


def test_nan_to_num_after_other_lines():
    # log(0) is not finite and reaches np.nan_to_num through np.maximum: its adjoint would
    # divide 0 by 0 one line further up; refused when called
    p = np.array([0.0, 2.0])
    assert compare(nan_to_num_of_maximum, ["p"], {"p": p, "q": -np.inf}) == "refused at call"
    # finite values: nothing to mask, forward mode's gradient (q taken at p[0])
    finite = {"p": np.array([0.1, 2.0]), "q": -1.0}
    assert compare(nan_to_num_of_maximum, ["p", "q"], finite) == "same"
    # y bound in two branches: not masked (its line is not known); both modes agree
    assert compare(nan_to_num_bound_in_branches, ["p"], {"p": np.array([1.0, 2.0])}) == "same"
    assert compare(nan_to_num_bound_in_branches, ["p"], {"p": np.array([-1.0, 2.0])}) == "same"
