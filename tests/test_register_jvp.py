"""``fmad.register(f, jvp=rule)``: a user's forward rule for any function (issue 13, item
4), checked against finite differences with float and array parameters, for a matrix
function, a log-determinant and a reduction with a keyword; and the messages that send
users to the right form."""

from __future__ import annotations

import numpy as np
import pytest

import fmad
from tests import errors_module as em
from tests.test_rules_fd import FLOAT, Case, draw, problems_with


# --- functions fmad is given a rule for (their source would work too: the rule wins) ----
def mat_sqrt(a):
    """The square root of the symmetric part of a positive definite matrix."""
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(w)) @ v.T


def mat_sqrt_jvp(primals, tangents):
    """X dX + dX X = dA, solved in the eigenbasis of A."""
    (a,), (da,) = primals, tangents
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    s = np.sqrt(w)
    m = v.T @ ((da + da.T) / 2.0) @ v
    return v @ (m / (s[:, None] + s[None, :])) @ v.T


def logdet(a):
    return np.linalg.slogdet(a)[1]


def logdet_jvp(primals, tangents):
    return np.trace(np.linalg.solve(primals[0], tangents[0]))


def logsumexp(x, axis=None):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def logsumexp_jvp(primals, tangents, axis=None):
    (x,), (dx,) = primals, tangents
    weights = np.exp(x - np.max(x, axis=axis, keepdims=True))
    weights = weights / np.sum(weights, axis=axis, keepdims=True)
    return np.sum(weights * dx, axis=axis)


def scaled_norm(x, c):
    """A function of two arguments: the tangent sums both."""
    return c * np.sqrt(np.sum(x * x))


def scaled_norm_jvp(primals, tangents):
    (x, c), (dx, dc) = primals, tangents
    n = np.sqrt(np.sum(x * x))
    return dc * n + c * np.sum(x * dx) / n


fmad.register(mat_sqrt, jvp=mat_sqrt_jvp)
fmad.register(logdet, jvp=logdet_jvp)
fmad.register(logsumexp, jvp=logsumexp_jvp)
fmad.register(scaled_norm, jvp=scaled_norm_jvp)


# --- the functions differentiated -------------------------------------------------------------
def sqrt_of_p(p):
    return mat_sqrt(p)


def sqrt_of_scaled(x, p):
    return mat_sqrt(x * p) * 2.0


def logdet_of_scaled(x, p):
    return logdet(x * p + np.eye(3))


def lse_all(x, p):
    return logsumexp(x * p)


def lse_axis(x, p):
    return logsumexp(x * p, axis=0)


def norm_of_both(p, q):
    return scaled_norm(p * 2.0, q)


def spd(n: int, key: int) -> np.ndarray:
    a = np.random.default_rng(key).uniform(-1.0, 1.0, (n, n))
    return a @ a.T + n * np.eye(n)


def scaled_cases(fn, x) -> list[Case]:
    return [
        Case(fn, {"x": x, "p": draw(ps, "pos", f"{fn.__name__}/{ps}")}, ("p",))
        for ps in (FLOAT, (), (x.shape[-1],), x.shape)
    ]


CASES = [
    Case(sqrt_of_p, {"p": spd(3, 1)}, ("p",)),
    *scaled_cases(sqrt_of_scaled, spd(3, 2)),
    *scaled_cases(logdet_of_scaled, spd(3, 3)),
    *scaled_cases(lse_all, draw((2, 3), "real", "lse")),
    *scaled_cases(lse_axis, draw((2, 3), "real", "lse-axis")),
    Case(norm_of_both, {"p": draw((3,), "real", "nb/p"), "q": 1.5}, ("p", "q")),
    Case(
        norm_of_both, {"p": draw((2, 2), "real", "nb/p2"), "q": draw((2,), "pos", "q")}, ("p", "q")
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.describe() for c in CASES])
def test_registered_jvp_matches_finite_differences(case: Case) -> None:
    assert problems_with(case) == []


def test_the_rule_is_called_once_per_direction_of_an_array_parameter() -> None:
    calls = []

    def counted(x):
        return np.sum(x**3)

    def counted_jvp(primals, tangents):
        calls.append(np.shape(tangents[0]))
        return np.sum(3.0 * primals[0] ** 2 * tangents[0])

    fmad.register(counted, jvp=counted_jvp)

    def f(p):
        return counted(p)

    value, grads = fmad.differentiate(f, wrt=["p"])(np.array([1.0, 2.0]))
    assert calls == [(2,), (2,)]
    assert np.allclose(grads["p"], [3.0, 12.0])


def lse_active_axis(x, p):
    return logsumexp(x, axis=p)


def test_a_keyword_carrying_a_derivative_is_refused() -> None:
    with pytest.raises(fmad.UnsupportedError, match="positional arguments"):
        fmad.differentiate(lse_active_axis, wrt=["p"])


@pytest.mark.parametrize(
    "args", [(mat_sqrt,), (mat_sqrt, mat_sqrt_jvp, mat_sqrt_jvp), ("f", mat_sqrt_jvp)]
)
def test_register_takes_one_form(args) -> None:
    derivative = args[1] if len(args) > 1 else None
    jvp = args[2] if len(args) > 2 else None
    with pytest.raises(TypeError, match="jvp=rule"):
        fmad.register(args[0], derivative, jvp=jvp)


def test_the_elementwise_form_still_works_positionally_and_by_keyword() -> None:
    def cube(x):
        return x * x * x

    fmad.register(cube, derivative=lambda x: 3.0 * x * x)

    def f(p):
        return cube(p)

    assert fmad.differentiate(f, wrt=["p"])(2.0)[1]["p"] == 12.0


def test_messages_suggest_the_jvp_form() -> None:
    for fn, wrt in ((em.calls_eigvals, ["b"]), (em.calls_fft, ["w"])):
        with pytest.raises(fmad.UnsupportedError) as info:
            fmad.differentiate(fn, wrt=wrt)
        assert "jvp=lambda primals, tangents" in str(info.value)


def test_generated_code_through_a_jvp_rule_is_not_differentiated_again(tmp_path) -> None:
    path = tmp_path / "printed_lse_all.py"
    header = "import numpy as np\n\nfrom fmad import runtime_user as fmad_user\n\n\n"
    path.write_text(header + fmad.differentiate(lse_all, wrt=["p"]).source)
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    namespace["lse_all_jvp"] = logsumexp_jvp
    namespace["logsumexp"] = logsumexp
    with pytest.raises(fmad.UnsupportedError, match="registered with jvp="):
        fmad.differentiate(namespace["lse_all"], wrt=["p"])
