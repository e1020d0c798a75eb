"""Functions for tests/test_reverse_transposes.py: each transpose of fmad/adjoints_elementwise.py
and fmad/adjoints_arrays.py with broadcasting, axes and keepdims, and at its kinks."""

from __future__ import annotations

import math

import numpy as np
import scipy.special as special


def builtin_abs(w):
    return abs(w) * 3.0


def abs_forms(x, w):
    return np.sum(np.abs(x * w) + np.fabs(x - w))


def clip_bounds(x, lo, hi):
    return np.sum(np.clip(x, lo, hi) * np.arange(1.0, 5.0))


def clip_keywords(x, w):
    return np.sum(x.clip(min=w, max=1.0) ** 2)


def builtin_extremes(a, b, c):
    return max(a, b) * 2.0 + min(a, b, c) + max([a, b * 1.0, c])


def builtin_sum(a, b, xs):
    return sum([a, b * b, 1.5]) + np.sum(sum(xs * a, 2.0 * b))


def ufunc_forms(x, y):
    u = np.add(x, y) * np.subtract(y, x)
    v = np.multiply(u, x) + np.divide(y, x) + np.float_power(y, 2.0)
    return np.sum(v * np.logaddexp(x, y) + np.hypot(x, y) + np.arctan2(y, x))


def remainders(x, y):
    return np.sum((x % y) * 2.0 + np.mod(y, x) + np.fmod(x * 3.0, y))


def log_base(x, b):
    return math.log(x, b) + math.log(x * 2.0)


def specials(x):
    return np.sum(special.expit(x) * special.erf(x) + special.gammaln(x + 2.0) + np.sinc(x))


def joins(a, b):
    c = np.concatenate([a, b * 2.0], axis=0)
    s = np.stack((a, b), axis=-1)
    return np.sum(c * c) + np.sum(np.vstack([a, b]) ** 3) + np.sum(s[..., 0] * s[..., 1])


def rearranged(x):
    y = np.pad(np.flip(x, axis=0), 1, constant_values=5.0) * 2.0
    z = np.tile(np.roll(x, 1, axis=-1), (2, 1)) + np.repeat(x, 2, axis=0)
    return np.sum(y**2) + np.sum(np.sin(z)) + np.sum(np.triu(x) * np.diag(np.diag(x)))


def moments(x, ddof):
    v = np.var(x, axis=0, ddof=ddof, keepdims=True)
    return np.sum(v * np.std(x, axis=-1)[:, None]) + x.std()


def cumulative(x):
    return np.sum(np.cumsum(x, axis=1) ** 2) + np.sum(np.cumprod(x, axis=0))


def order_statistics(x):
    return np.median(x) + np.sum(np.percentile(x, [25.0, 90.0], axis=0)) + np.quantile(x, 1.0)


def contractions(a, b):
    t = np.tensordot(a, b, axes=([1], [0]))
    e = np.einsum("ij,jk->ik", a, b)
    return np.sum(t * e) + np.sum(np.outer(a[0], b[:, 1]) ** 2) + np.inner(a[1], b[:, 0])


def linalg(a, b):
    s = np.linalg.solve(a, b)
    return np.sum(s**2) + np.linalg.det(a) + np.sum(np.linalg.inv(a)) + np.trace(a @ a)


def norms(x):
    return np.linalg.norm(x) + np.sum(np.linalg.norm(x, axis=0)) + np.linalg.norm(x, ord=1)


def orderings(x):
    s = np.sort(x, axis=0) * np.arange(1.0, 4.0)[:, None]
    p = np.partition(x.ravel(), 2) * np.arange(1.0, 1.0 + x.size)
    return np.sum(s**2) + np.sum(np.sort(x, axis=None) * p)


def differences(x):
    d = np.diff(x, n=2, axis=0, prepend=1.5, append=np.full((1, 3), 2.0))
    return np.sum(d**2) + np.sum(np.ediff1d(x, to_begin=3.0) ** 2) + np.sum(np.diff(x) ** 3)


def products(x):
    return np.prod(x) + np.sum(np.prod(x, axis=1, keepdims=True) * 2.0) + x.prod(0)[1]


def softmaxes(x):
    s = special.softmax(x, axis=1) * np.arange(1.0, 1.0 + x.size).reshape(x.shape)
    return np.sum(s) + np.sum(special.log_softmax(x) ** 2) + special.logsumexp(x, axis=0)[0]


def averages(x, w):
    return np.average(x) + np.sum(np.average(x, axis=0, weights=w) ** 2)


def decompositions(a):
    s = a @ a.T + np.eye(3)
    values = np.linalg.eigvalsh(s) * np.array([1.0, 2.0, 3.0])
    return np.sum(values) + np.sum(np.linalg.cholesky(s) ** 2) + np.sum(np.linalg.pinv(a) ** 2)


def array_api_norms(x):
    return np.linalg.vector_norm(x, ord=3) + np.linalg.matrix_norm(x) + np.linalg.norm(x, "nuc")


def conversions(x, p):
    a = np.cumsum(x * p, axis=-1, dtype=np.float64) + np.exp(p, where=True)
    b = (x * p).astype(float) + (x * p).astype(int) * p + np.conj(x * p)
    return np.sum(a * b) + np.float64(np.sum(x * p)) + np.asarray(p[:1], dtype=float).item()


def dtype_from_argument(x, kind):
    return np.sum(np.cumsum(x * 2.0, dtype=kind))


def products_more(a, b, p):
    k = np.kron(a, b) * np.arange(1.0, 1.0 + a.size * b.size).reshape(4, 9)
    c = np.cross(a * 2.0, b)
    return np.sum(k) + np.vdot(a, b) + np.sum(c**2) + np.sum(np.polyval(p, a) ** 2)


def special_orders(x, a):
    return np.sum(special.polygamma(1, x + 1.0) + special.betainc(2.0, 3.0, a)) + np.sum(
        special.multigammaln(x + 3.0, 2) * np.ldexp(x, 2)
    )


def linear_maps(x, s):
    t = np.trapezoid(x * s, x=np.array([0.0, 0.3, 1.0]), axis=0) + np.trapezoid(x, dx=0.5)
    g = np.gradient(x * s, axis=1) + np.gradient(x[0] * 2.0, edge_order=2)
    p = np.pad(x, 2, mode="reflect", reflect_type="odd")
    d = np.sum(np.dot(s, x)) + np.dot(np.ones((2, 3, 3)) * s, x[0])
    return np.sum(t**2) + np.sum(g**2) + np.sum(p**3) + np.sum(d**2) + x[0].dot(x[1])


def einsum_forms(a, b, w):
    e = np.einsum("...ij,...jk", a, b) + np.einsum("...i,i->...", b, w)[..., None]
    return (
        np.sum(e**2) + np.sum(np.einsum("i...,i", a, w[:2]) ** 2) + np.einsum("ij,ij", a[0], a[1])
    )
