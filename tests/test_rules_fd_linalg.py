"""Finite-difference rows of the contractions and np.linalg rules (fmad/rules/contractions.py,
fmad/rules/decompositions.py): each function of a matrix parameter, of a float scaling a
matrix and of a vector scaling its columns, on single matrices and stacks, with
well-conditioned random matrices (symmetric positive definite ones where the function
needs them), and the refusals and DerivativeErrors where there is no derivative."""

from __future__ import annotations

import importlib.util
import inspect
import os
import zlib

import numpy as np
import pytest

import fmad
from fmad import runtime_linalg as fmad_la
from fmad import runtime_user as fmad_user
from tests.test_rules_fd import FLOAT, Case, Rule, check_rule, draw

THIS_FILE = os.path.basename(__file__)


def mat(shape, kind: str, key: str) -> np.ndarray:
    """A random matrix (or stack) far from singular: 'gen' (n I + noise), 'spd'
    (symmetric positive definite), 'rect' (any shape, full rank)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    a = rng.uniform(-1.0, 1.0, shape)
    n = shape[-1]
    if kind == "gen":
        return a + 2.0 * n * np.eye(n) * rng.choice([-1.0, 1.0])
    if kind == "spd":
        return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    return a + 2.0 * np.eye(shape[-2], shape[-1])


def matrix_cases(fn, scaled, shapes, kind: str = "gen", pkind: str = "pos") -> list[Case]:
    """``fn(p)`` with p a matrix (or stack) and ``scaled(x, p)`` (``f(x * p)``) with p a
    float, a 0-d array and a vector scaling the columns."""
    name = fn.__name__
    cases = [Case(fn, {"p": mat(s, kind, f"{name}/{i}")}, ("p",)) for i, s in enumerate(shapes)]
    for i, s in enumerate(shapes[:2]):
        x = mat(s, kind, f"{scaled.__name__}/{i}/x")
        for ps in (FLOAT, (), (s[-1],)):
            p = draw(ps, pkind, f"{scaled.__name__}/{i}/{ps}")
            cases.append(Case(scaled, {"x": x, "p": p}, ("p",)))
    return cases


def pair_cases(fn, shapes) -> list[Case]:
    """``fn(p, q)``: both parameters, of the given shapes."""
    return [
        Case(
            fn,
            {
                "p": draw(ps, "real", f"{fn.__name__}/{i}/p"),
                "q": draw(qs, "real", f"{fn.__name__}/{i}/q"),
            },
            ("p", "q"),
        )
        for i, (ps, qs) in enumerate(shapes)
    ]


def data_cases(fn, shapes) -> list[Case]:
    """``fn(x, p)``: p alone is differentiated."""
    return [
        Case(
            fn,
            {
                "x": draw(xs, "real", f"{fn.__name__}/{i}/x"),
                "p": draw(ps, "real", f"{fn.__name__}/{i}/p"),
            },
            ("p",),
        )
        for i, (xs, ps) in enumerate(shapes)
    ]


# --- contractions -------------------------------------------------------------------------


def einsum_matmul(p, q):
    return np.einsum("ij,jk->ik", p, q)


def einsum_implicit(p, q):
    return np.einsum("ij,jk", p, q)


def einsum_trace(p):
    return np.einsum("ii", p)


def einsum_ellipsis(x, p):
    return np.einsum("...ij,...j->...i", x, p)


def einsum_three(x, p):
    return np.einsum("ij,j,k->ik", x, p, p, optimize=True)


def einsum_scalar(x, p):
    return np.einsum(",i->i", p, x)


def einsum_outer_sum(x, p):
    return np.einsum("i,j", x, p)


def tensordot_2(p, q):
    return np.tensordot(p, q)


def tensordot_1(p, q):
    return np.tensordot(p, q, 1)


def tensordot_pair(p, q):
    return np.tensordot(p, q, axes=([0], [-1]))


def tensordot_zero(p, q):
    return np.linalg.tensordot(p, q, axes=0)


def kron_pq(p, q):
    return np.kron(p, q)


def kron_xp(x, p):
    return np.kron(x, p)


def vdot_pq(p, q):
    return np.vdot(p, q)


def vdot_xp(x, p):
    return np.vdot(x, p)


def trace_p(p):
    return np.trace(p)


def trace_axes(p):
    return np.trace(p, 1, -1, -2)


def trace_method(x, p):
    return (x * p).trace()


def linalg_trace(p):
    return np.linalg.trace(p)


def matmul_stack(p, q):
    return p @ q


def dot_stack(p, q):
    return np.dot(p, q)


def dot_stack_xp(x, p):
    return np.dot(x * p, x)


def linalg_matmul(p, q):
    return np.linalg.matmul(p, q)


# --- decompositions ---------------------------------------------------------------------------


def inv_p(p):
    return np.linalg.inv(p)


def inv_c(x, p):
    return np.linalg.inv(x * p)


def solve_pq(p, q):
    return np.linalg.solve(p + 6.0 * np.eye(3), q)


def solve_c(x, p):
    return np.linalg.solve(x * p, x[0])


def solve_rhs(x, p):
    return np.linalg.solve(x, p * x[0])


def det_p(p):
    return np.linalg.det(p)


def det_c(x, p):
    return np.linalg.det(x * p)


def det_singular(p):
    return np.linalg.det(p * np.array([1.0, 1.0, 0.0]))


def slogdet_p(p):
    sign, logdet = np.linalg.slogdet(p)
    return sign * logdet


def slogdet_c(x, p):
    return np.linalg.slogdet(x * p)[1]


def matrix_power_p(p):
    return np.linalg.matrix_power(p, 3)


def matrix_power_c(x, p):
    return np.linalg.matrix_power(x * p, -2)


def matrix_power_0(p):
    return np.linalg.matrix_power(p, 0) + p


def cholesky_p(p):
    return np.linalg.cholesky(p)


def cholesky_c(x, p):
    return np.linalg.cholesky(x * p)


def cholesky_upper(p):
    return np.linalg.cholesky(p, upper=True)


def eigh_values(p):
    return np.linalg.eigh(p)[0]


def eigh_vectors(p):
    w, v = np.linalg.eigh(p)
    return v * v[0]  # the same whichever signs LAPACK picks


def eigh_c(x, p):
    w, v = np.linalg.eigh(x * p, UPLO="U")
    return w[-1] * v * v[-1]


def eigh_fields(p):
    result = np.linalg.eigh(p)
    logdet = np.linalg.slogdet(p)
    return result.eigenvalues * result.eigenvectors[0] ** 2 + logdet.sign * logdet.logabsdet


def eigvalsh_p(p):
    return np.linalg.eigvalsh(p)


def eigvalsh_c(x, p):
    return np.linalg.eigvalsh(x * p, "U")


def qr_p(p):
    q, r = np.linalg.qr(p)
    return q * r[..., :1, :1] + np.sum(r)


def qr_fields(p):
    result = np.linalg.qr(p)
    svd = np.linalg.svd(p)
    return result.Q * result.R[0, 0] + (svd.U * svd.S) @ svd.Vh


def qr_c(x, p):
    return np.linalg.qr(x * p, mode="r")


def svd_p(p):
    return np.linalg.svd(p, compute_uv=False)


def svd_full(p):
    u, s, vh = np.linalg.svd(p, full_matrices=False)
    weights = np.arange(1.0, s.shape[-1] + 1.0)
    return (u * weights[..., None, :]) @ vh + s[..., :1, None]  # the same whatever the signs


def svd_square(x, p):
    u, s, vh = np.linalg.svd(x * p)
    return (u * np.arange(1.0, s.shape[-1] + 1.0)) @ vh


def svd_c(x, p):
    return np.linalg.svdvals(x * p)


def pinv_p(p):
    return np.linalg.pinv(p)


def pinv_c(x, p):
    return np.linalg.pinv(x * p)


def lstsq_p(x, p):
    sol, res, rank, s = np.linalg.lstsq(p, x)
    return np.concatenate([np.ravel(sol), np.ravel(res), s])


def lstsq_q(p, q):
    return np.linalg.lstsq(p, q)[0]


def norm_ord(x, p):
    return np.array(
        [
            np.linalg.norm(x * p, 1),
            np.linalg.norm(x * p, np.inf),
            np.linalg.norm(x * p, -np.inf),
            np.linalg.norm(x * p, 3),
            np.linalg.norm(x * p, 0.5),
            np.linalg.norm(x * p, -1),
            np.linalg.norm(x * p, 0),
        ]
    )


def norm_axis(x, p):
    return np.linalg.norm(x * p, axis=-1) + np.linalg.norm(x * p, 1, 0, True).sum()


def norm_matrix(x, p):
    a = x * p
    return np.array(
        [
            np.linalg.norm(a, "fro"),
            np.linalg.norm(a, "nuc"),
            np.linalg.norm(a, 2),
            np.linalg.norm(a, -2),
            np.linalg.norm(a, 1),
            np.linalg.norm(a, -1),
            np.linalg.norm(a, np.inf),
            np.linalg.norm(a, -np.inf),
        ]
    )


def norm_stack(p):
    return np.linalg.norm(p, 2, axis=(-1, 0), keepdims=True)


def vector_norm_p(p):
    return np.linalg.vector_norm(p, ord=np.inf, axis=(0, 1)) + np.linalg.vector_norm(p)


def matrix_norm_p(p):
    return np.linalg.matrix_norm(p, ord="nuc", keepdims=True)


SQUARE = [(3, 3), (2, 2), (2, 3, 3)]
RECT = [(4, 3), (3, 4), (2, 4, 3)]

ROWS = [
    Rule(
        "np.einsum",
        [
            *pair_cases(einsum_matmul, [((2, 3), (3, 4)), ((1, 2), (2, 1))]),
            *pair_cases(einsum_implicit, [((2, 3), (3, 4))]),
            Case(einsum_trace, {"p": draw((3, 3), "real", "einsum_trace")}, ("p",)),
            *data_cases(einsum_ellipsis, [((2, 3), (3,)), ((4, 2, 3), (3,)), ((2, 3), (4, 3))]),
            *data_cases(einsum_three, [((2, 3), (3,))]),
            *data_cases(einsum_scalar, [((3,), FLOAT), ((3,), ())]),
            *data_cases(einsum_outer_sum, [((3,), (2,))]),
        ],
    ),
    Rule(
        "np.tensordot",
        [
            *pair_cases(tensordot_2, [((2, 3), (2, 3)), ((4, 2, 3), (2, 3, 2))]),
            *pair_cases(tensordot_1, [((2, 3), (3, 2)), ((3,), (3, 2))]),
            *pair_cases(tensordot_pair, [((2, 3), (4, 2))]),
            *pair_cases(tensordot_zero, [((2,), (3,)), ((), (2,))]),
        ],
    ),
    Rule(
        "np.kron",
        [
            *pair_cases(kron_pq, [((2,), (3,)), ((2, 2), (2, 3)), ((2,), (2, 2)), ((2, 2), (3,))]),
            *data_cases(kron_xp, [((2, 2), FLOAT), ((2,), (2, 3))]),
        ],
    ),
    Rule(
        "np.vdot",
        [
            *pair_cases(vdot_pq, [((3,), (3,)), ((2, 3), (3, 2))]),
            *data_cases(vdot_xp, [((2, 2), (4,))]),
        ],
    ),
    Rule(
        "np.trace",
        [
            Case(trace_p, {"p": draw((3, 3), "real", "trace/0")}, ("p",)),
            Case(trace_p, {"p": draw((2, 3, 4), "real", "trace/1")}, ("p",)),
            Case(trace_axes, {"p": draw((3, 2, 3), "real", "trace/2")}, ("p",)),
            *data_cases(trace_method, [((3, 3), FLOAT), ((2, 3), (3,)), ((3, 3), ())]),
            Case(linalg_trace, {"p": draw((2, 3, 3), "real", "trace/3")}, ("p",)),
        ],
    ),
    Rule(
        "matmul-stacks",
        [
            *pair_cases(
                matmul_stack,
                [
                    ((2, 2, 3), (3, 4)),
                    ((2, 1, 3, 2), (4, 2, 3)),
                    ((3,), (2, 3, 2)),
                    ((2, 3, 4), (4,)),
                ],
            ),
            *pair_cases(linalg_matmul, [((2, 2, 3), (2, 3, 2)), ((3,), (3,))]),
        ],
    ),
    Rule(
        "np.dot-stacks",
        [
            *pair_cases(dot_stack, [((2, 3), (4, 3, 2)), ((2, 2, 3), (3,)), ((3,), (2, 3, 2))]),
            *pair_cases(dot_stack, [((2, 2, 3), (4, 3, 2))]),
            *data_cases(dot_stack_xp, [((2, 3, 3), FLOAT), ((2, 3, 3), (3,))]),
        ],
    ),
    Rule("np.linalg.inv", matrix_cases(inv_p, inv_c, SQUARE)),
    Rule(
        "np.linalg.solve",
        [
            *matrix_cases(inv_p, solve_c, [(3, 3), (2, 3, 3)])[2:],
            Case(
                solve_pq,
                {"p": mat((3, 3), "gen", "solve/p"), "q": draw((3,), "real", "s/q")},
                ("p", "q"),
            ),
            Case(
                solve_pq,
                {"p": mat((2, 3, 3), "gen", "solve/p2"), "q": draw((3, 2), "real", "s/q2")},
                ("p", "q"),
            ),
            Case(
                solve_pq,
                {"p": mat((2, 3, 3), "gen", "solve/p3"), "q": draw((3,), "real", "s/q3")},
                ("p", "q"),
            ),
            Case(
                solve_rhs,
                {"x": mat((3, 3), "gen", "solve/x"), "p": draw((3, 1), "real", "s/p")},
                ("p",),
            ),
            Case(solve_rhs, {"x": mat((3, 3), "gen", "solve/x"), "p": 1.5}, ("p",)),
        ],
    ),
    Rule(
        "np.linalg.det",
        [
            *matrix_cases(det_p, det_c, SQUARE),
            Case(det_singular, {"p": mat((3, 3), "gen", "det/s")}, ("p",)),
        ],
    ),
    Rule("np.linalg.slogdet", matrix_cases(slogdet_p, slogdet_c, SQUARE)),
    Rule(
        "np.linalg.matrix_power",
        [
            *matrix_cases(matrix_power_p, matrix_power_c, SQUARE),
            Case(matrix_power_0, {"p": mat((2, 2), "gen", "mp0")}, ("p",)),
        ],
    ),
    Rule(
        "np.linalg.cholesky",
        [
            *matrix_cases(cholesky_p, cholesky_c, SQUARE, "spd"),
            Case(cholesky_upper, {"p": mat((3, 3), "spd", "chol/u")}, ("p",)),
        ],
    ),
    Rule(
        "np.linalg.eigh",
        [
            *matrix_cases(eigh_values, eigh_c, SQUARE, "spd"),
            *matrix_cases(eigh_vectors, eigh_c, SQUARE, "spd")[:3],
            *matrix_cases(eigh_fields, eigh_c, SQUARE[:2], "spd")[:2],
        ],
    ),
    Rule("np.linalg.eigvalsh", matrix_cases(eigvalsh_p, eigvalsh_c, SQUARE, "spd")),
    Rule(
        "np.linalg.qr",
        matrix_cases(qr_p, qr_c, SQUARE)
        + matrix_cases(qr_p, qr_c, RECT, "rect")
        + matrix_cases(qr_fields, qr_c, SQUARE[:2])[:2],
    ),
    Rule(
        "np.linalg.svd",
        matrix_cases(svd_p, svd_c, SQUARE)
        + matrix_cases(svd_p, svd_c, RECT, "rect")
        + matrix_cases(svd_full, svd_square, SQUARE)
        + [Case(svd_full, {"p": mat(s, "rect", f"svd_full/{s}")}, ("p",)) for s in RECT],
    ),
    Rule("np.linalg.svdvals", matrix_cases(svd_p, svd_c, RECT[:1], "rect")),
    Rule("np.linalg.pinv", matrix_cases(pinv_p, pinv_c, RECT, "rect")),
    Rule(
        "np.linalg.lstsq",
        [
            Case(
                lstsq_p, {"x": draw((4,), "real", "l/x"), "p": mat((4, 3), "rect", "l/p")}, ("p",)
            ),
            Case(
                lstsq_p,
                {"x": draw((4, 2), "real", "l/x2"), "p": mat((4, 3), "rect", "l/p2")},
                ("p",),
            ),
            Case(
                lstsq_p, {"x": draw((3,), "real", "l/x3"), "p": mat((3, 4), "rect", "l/p3")}, ("p",)
            ),
            Case(
                lstsq_q,
                {"p": mat((4, 2), "rect", "l/p4"), "q": draw((4,), "real", "l/q4")},
                ("p", "q"),
            ),
            Case(
                lstsq_q,
                {"p": mat((4, 2), "rect", "l/p5"), "q": draw((4, 3), "real", "l/q5")},
                ("p", "q"),
            ),
        ],
    ),
    Rule(
        "np.linalg.norm",
        [
            *data_cases(norm_ord, [((4,), FLOAT), ((4,), (4,)), ((4,), ())]),
            *data_cases(norm_axis, [((2, 3), FLOAT), ((2, 3), (3,)), ((2, 3), (2, 3))]),
            *data_cases(norm_matrix, [((3, 3), FLOAT), ((2, 3), (3,)), ((3, 2), (3, 2))]),
            Case(norm_stack, {"p": draw((3, 2, 4), "real", "norm/stack")}, ("p",)),
        ],
    ),
    Rule(
        "np.linalg.vector_norm",
        [
            Case(vector_norm_p, {"p": draw((2, 3, 2), "real", "vn")}, ("p",)),
            Case(vector_norm_p, {"p": draw((3, 2), "real", "vn2")}, ("p",)),
        ],
    ),
    Rule(
        "np.linalg.matrix_norm",
        [Case(matrix_norm_p, {"p": draw((2, 3, 2), "real", "mn")}, ("p",))],
    ),
]


# --- the fmad_la helpers, differentiated again (tangent arguments only) -----------------------
S = mat((3, 3), "spd", "helpers/S")
R = mat((4, 3), "rect", "helpers/R")


def la_tensordot(x, p):
    return fmad_la.tensordot_tangent(p * x, x, x, 1, None, True) + fmad_la.tensordot_tangent(
        p * x, x, x, ([0], [1]), None, False
    )


def la_kron(x, p):
    return fmad_la.kron_tangent(p * x, x, x[0], None, True)


def la_vdot(x, p):
    return fmad_la.vdot_tangent(p * x, x, None)


def la_inv(x, p):
    return fmad_la.inv_tangent(p * x, np.linalg.inv(x), None)


def la_solve(x, p):
    return fmad_la.solve_tangent(p * x, p * x[0], x, x[0], np.linalg.solve(x, x[0]), None)


def la_det(x, p):
    return fmad_la.det_tangent(p * x, x, None) + fmad_la.logdet_tangent(p * p * x, x, None)


def la_matrix_power(x, p):
    return fmad_la.matrix_power_tangent(p * x, x, 2, None)


def la_cholesky(x, p):
    return fmad_la.cholesky_tangent(p * x, np.linalg.cholesky(x), False, None)


def la_eigh(x, p):
    w, v = np.linalg.eigh(x)
    dw, dv = fmad_la.eigh_tangent(p * x, w, v, True, None, True)
    return dw + fmad_la.eigvalsh_tangent(p * x, x, False, None)


def la_qr(x, p):
    dq, dr = fmad_la.qr_tangent(p * x, x, np.linalg.qr(x), None, "reduced")
    return dq @ dr


def la_svd(x, p):
    return fmad_la.svdvals_tangent(p * x, x, None) + fmad_la.norm_tangent(
        p * x, x, 2, None, False, None
    )


def la_svd_vectors(x, p):
    du, ds, dvh = fmad_la.svd_tangent(p * x, np.linalg.svd(x, full_matrices=False), None)
    return du @ dvh + ds


def la_pinv(x, p):
    return fmad_la.pinv_tangent(p * x, x, np.linalg.pinv(x), None)


def la_lstsq(x, p):
    dx, dres, _, ds = fmad_la.lstsq_tangent(
        p * x, p * x[:, 0], x, x[:, 0], np.linalg.lstsq(x, x[:, 0]), None
    )
    return np.concatenate([dx, dres, ds])


def sum_jvp(primals, tangents):
    return np.sum(tangents[0])


def user_jvp_call(x, p):
    """fmad_user.jvp_call on values with no derivative (a rule that carries one through it is
    refused: tests/test_register_jvp.py)."""
    return p * fmad_user.jvp_call(sum_jvp, (x,), (x,), x, None)


def helper_case(fn, x) -> Case:
    return Case(fn, {"x": x, "p": 0.7}, ("p",))


HELPER_ROWS = [
    Rule(
        "fmad_la-helpers",
        [
            helper_case(la_tensordot, S),
            helper_case(la_kron, S),
            helper_case(la_vdot, S),
            helper_case(la_inv, S),
            helper_case(la_solve, S),
            helper_case(la_det, S),
            helper_case(la_matrix_power, S),
            helper_case(la_cholesky, S),
            helper_case(la_eigh, S),
            helper_case(la_qr, R),
            helper_case(la_svd, R),
            helper_case(la_pinv, R),
            helper_case(la_svd_vectors, R),
            helper_case(la_lstsq, R),
            helper_case(user_jvp_call, S),
        ],
    )
]

ROWS += HELPER_ROWS


@pytest.mark.parametrize("rule", ROWS, ids=[rule.name for rule in ROWS])
def test_rule_matches_finite_differences(rule: Rule) -> None:
    check_rule(rule)


# --- refusals (UnsupportedError at the line) and points with no derivative ---------------------


def line_of(fn, text: str) -> int:
    """The line of ``fn``'s source (in this file) that contains ``text``."""
    lines, first = inspect.getsourcelines(fn)
    found = [first + i for i, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def refuse_subscripts_variable(p, spec):
    return np.einsum(spec, p, p)


def refuse_subscripts_interleaved(p):
    return np.einsum(p, [0, 1], p, [1, 2])


def refuse_subscripts_count(p):
    return np.einsum("ij,jk->ik", p)


def refuse_einsum_out(p):
    return np.einsum("ij->i", p, dtype=float)


def refuse_einsum_optimize(p, how):
    return np.einsum("ij->i", p, optimize=how)


def refuse_svd_uv(p, uv):
    return np.linalg.svd(p, compute_uv=uv)[1]


def refuse_svd_hermitian(p):
    return np.linalg.svd(p, compute_uv=False, hermitian=True)


def refuse_qr_mode(p):
    return np.linalg.qr(p, mode="complete")[1]


def refuse_cholesky_upper(p, upper):
    return np.linalg.cholesky(p, upper=upper)


def refuse_eigh_uplo(p, uplo):
    return np.linalg.eigh(p, uplo)[0]


def refuse_pinv_hermitian(p):
    return np.linalg.pinv(p, hermitian=True)


def refuse_matrix_power_n(p):
    return np.linalg.matrix_power(p, p)


def refuse_norm_ord(p):
    return np.linalg.norm(p, p)


def refuse_trace_offset(p):
    return np.trace(p, p)


def refuse_tensordot_axes(p):
    return np.tensordot(p, p, axes=p)


def refuse_eigh_field(p):
    result, scale = helper_eigh_pair(p)
    return result.eigenvalues * scale


def helper_eigh(p):
    return np.linalg.eigh(p)


def helper_eigh_pair(p):
    return np.linalg.eigh(p), 2.0


def eigh_field_of_a_helper_result(p):
    result = helper_eigh(p)
    return result.eigenvalues


def test_field_of_a_decomposition_a_helper_returns() -> None:
    # the helper's result is known to be a tuple of tangents (fmad.calls), so its field
    # is read as in the function itself
    a = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]])
    value, grads = fmad.differentiate(eigh_field_of_a_helper_result)(a)
    direct, expected = fmad.differentiate(eigvals_directly)(a)
    assert np.array_equal(value, direct)
    np.testing.assert_array_equal(grads["p"], expected["p"])


def eigvals_directly(p):
    return np.linalg.eigh(p).eigenvalues


@pytest.mark.parametrize(
    ("fn", "text", "word"),
    [
        (refuse_subscripts_variable, "np.einsum(spec", "string constant"),
        (refuse_subscripts_interleaved, "np.einsum(p, [0", "string constant"),
        (refuse_subscripts_count, "np.einsum(", "one group per operand"),
        (refuse_einsum_out, "np.einsum(", "dtype="),
        (refuse_einsum_optimize, "np.einsum(", "optimize="),
        (refuse_svd_uv, "np.linalg.svd(", "compute_uv="),
        (refuse_svd_hermitian, "np.linalg.svd(", "hermitian="),
        (refuse_qr_mode, "np.linalg.qr(", "mode="),
        (refuse_cholesky_upper, "np.linalg.cholesky(", "upper="),
        (refuse_eigh_uplo, "np.linalg.eigh(", "uplo="),
        (refuse_pinv_hermitian, "np.linalg.pinv(", "hermitian="),
        (refuse_matrix_power_n, "np.linalg.matrix_power(", "matrix_power"),
        (refuse_norm_ord, "np.linalg.norm(", "ord="),
        (refuse_trace_offset, "np.trace(", "offset="),
        (refuse_tensordot_axes, "np.tensordot(", "axes="),
        (refuse_eigh_field, "result.eigenvalues", "index it instead"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_refused_at_the_line(fn, text, word) -> None:
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(fn, wrt=["p"])
    error, message = info.value, str(info.value)
    assert os.path.basename(error.filename) == THIS_FILE, message
    assert error.lineno == line_of(fn, text), message
    assert message.startswith(f"{error.filename}:{error.lineno}: "), message
    assert word in message.lower(), message
    assert ";" in message.split(": ", 1)[1], message


def eigh_vectors_of(p):
    return np.linalg.eigh(p)[1]  # LINE-eigh


def slogdet_of(p):
    return np.linalg.slogdet(p)[1]  # LINE-slogdet


def pinv_of(p):
    return np.linalg.pinv(p)  # LINE-pinv


def lstsq_of(p, b):
    return np.linalg.lstsq(p, b)[0]  # LINE-lstsq


def svd_of(p):
    return np.linalg.svd(p)[0]  # LINE-svd


def norm_half(p):
    return np.linalg.norm(p, 0.5)  # LINE-norm


def solve_of(p, b):
    return np.linalg.solve(p, b)  # LINE-solve


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


@pytest.mark.parametrize(
    ("fn", "args", "word"),
    [
        (eigh_vectors_of, (np.eye(3),), "eigenvalues are equal"),
        (eigh_vectors_of, (2.0 * np.eye(2)[None].repeat(2, 0),), "eigenvalues are equal"),
        (slogdet_of, (SINGULAR,), "singular"),
        (pinv_of, (SINGULAR,), "deficient rank"),
        (lstsq_of, (SINGULAR, np.ones(2)), "deficient rank"),
        (norm_half, (np.array([1.0, 0.0, 2.0]),), "entry is 0"),
        (svd_of, (np.ones((3, 2)),), "full_matrices=False"),
        (svd_of, (np.eye(2),), "singular values are equal"),
    ],
    ids=[
        "eigh-repeated",
        "eigh-stack",
        "slogdet",
        "pinv",
        "lstsq",
        "norm-half",
        "svd-full-matrices",
        "svd-repeated",
    ],
)
def test_no_derivative_is_a_derivative_error_at_the_line(fn, args, word) -> None:
    with pytest.raises(fmad.DerivativeError) as info:
        fmad.differentiate(fn, wrt=["p"])(*args)
    message = str(info.value)
    tag = fn.__name__.split("_")[0]
    assert f"{THIS_FILE}:{line_of(fn, f'LINE-{tag}')}: " in message, message
    assert word in message, message


def test_eigenvalues_at_a_repeated_eigenvalue_follow_lapacks_vectors() -> None:
    """Not differentiable as sorted functions; fmad gives diag(V^T dA V) (documented)."""
    value, grads = fmad.differentiate(eigvalsh_p, wrt=["p"])(np.eye(2))
    assert np.allclose(np.trace(grads["p"], axis1=1, axis2=2), 1.0)


def test_det_of_a_singular_matrix_has_the_adjugate_derivative() -> None:
    value, grads = fmad.differentiate(det_p, wrt=["p"])(SINGULAR)
    assert np.allclose(grads["p"], [[4.0, -2.0], [-2.0, 1.0]])


def test_solve_of_a_singular_matrix_raises_numpys_error() -> None:
    with pytest.raises(np.linalg.LinAlgError):
        fmad.differentiate(solve_of, wrt=["p", "b"])(SINGULAR, np.ones(2))


HEADER = (
    "import numpy as np\n\nfrom fmad import runtime as fmad_rt\n"
    "from fmad import runtime_linalg as fmad_la\n\n\n"
)


def einsum_square(x, p):
    return np.einsum("i,i->", x * p, x * p)


def printed(fn, tmp_path):
    """The printed code of fmad's derivative of ``fn``, as a module function of its own."""
    path = tmp_path / f"printed_{fn.__name__}.py"
    path.write_text(HEADER + fmad.differentiate(fn, wrt=["p"]).source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, fn.__name__)


def test_printed_einsum_code_is_differentiated_again(tmp_path) -> None:
    x = np.array([1.0, 2.0, 3.0])
    second = fmad.differentiate(printed(einsum_square, tmp_path), wrt=["p"])
    (value, first), grads = second(x, 0.5)
    assert np.isclose(first, 2 * 0.5 * 14.0) and np.isclose(grads["p"][1], 28.0)


def test_second_derivative_through_a_helper_is_refused(tmp_path) -> None:
    with pytest.raises(fmad.UnsupportedError, match="second derivatives of linear algebra"):
        fmad.differentiate(printed(inv_c, tmp_path), wrt=["p"])
