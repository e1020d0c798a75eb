"""Programs with helper functions, for tests/test_helpers_soundness.py (issue 14).

Module-level helpers must live in a file fmad can read. Lines that a refusal must name carry
a ``# LINE-<tag>`` marker comment.
"""

from __future__ import annotations

import functools
import math

import numpy as np

import fmad

# ---------------------------------------------------------------- helpers calling helpers


def sq(x):
    return x * x


def mix(x, y):
    return sq(x) * y + sq(y)


def outer(x, y=2.0):
    return mix(x, y) + mix(y, 1.5)


def three_levels(w, b):
    return outer(w) + outer(b, y=w) + mix(1.0, b)


def patterns(w, b):
    # the same helper with every pattern of active arguments, and through other helpers
    return mix(w, 2.0) + mix(2.0, b) + mix(w, b) + mix(1.0, 3.0) + outer(b) + sq(w)


def scale(v, k):
    return np.tanh(v) * k


def reduce(v, k):
    return np.sum(scale(v, k)) + scale(1.0, k)


def shared_variant(w, b):
    # scale(w, 2.0) is made once and called from here and from reduce
    return np.sum(scale(w, 2.0)) + reduce(w, 2.0) + reduce(w, b)


def keywords_only(x, *, k=1.5, shift=0.25):
    return sq(x) * k + shift


def keyword_calls(w, b):
    return keywords_only(w, k=b) + keywords_only(b) + keywords_only(x=2.0, shift=w)


def pair(x, y):
    return x * y, x + y


def unpacked(w, b):
    p, q = pair(w, b)
    r, s = pair(2.0, q)
    return p * q + r - s


def branchy(x, n):
    if x > 0.0:
        return math.sin(x)
    acc = x
    for _ in range(n):
        acc = acc * 0.5 + sq(acc)
    return acc


def loops_and_branches(w, b):
    total = 0.0
    for i in range(3):
        total = total + branchy(w - i, 2) + branchy(b * i, i)
    return total


# ---------------------------------------------------------------- nested helpers


def nested_calls_module(w, b):
    def inner(z, k=2.0):
        return mix(z, k) + w * sq(b)

    return inner(w) + inner(b, k=w) + inner(1.0)


def r5(p1, p2):
    def inner5(q0=2.8):
        return p2

    v9 = inner5(p2)

    def inner10(q0, q1=0.24):
        return inner5(q0=p1)

    v11 = inner10(p1)
    v12 = inner5()
    return p1 + v9 + v11 + v12


def nested_in_nested(w, b):
    def level1(x):
        def level2(y):
            return sq(y) * w

        return level2(x) + level2(b) + b

    return level1(w) + level1(2.0) + level1(b)


def sibling_chain(w, b):
    def first(x):
        return x * w

    def second(x):
        return first(x) + first(b)

    def third(x):
        return second(x) * second(w)

    return third(b) + third(1.0)


def helper_with_nested(x, y):
    def twice(z):
        return 2.0 * z * y

    return twice(x) + twice(y)


def calls_helper_with_nested(w, b):
    return helper_with_nested(w, b) + helper_with_nested(b, 3.0) + helper_with_nested(1.0, w)


# ---------------------------------------------------------------- the crashes of the issue


def h0(a0, a1):
    return np.sum(a1)


def r3(y, w, b):
    v4, v5 = (y, w)  # noqa: F841 (the shape of r3 in the issue)
    return h0(b, np.tanh(v4))


def h1(a0, a1):
    return a0


def r4(w, b):
    return np.sin(h1(1.5, w))


def no_return(x):
    x * 2.0


def returns_none(w):
    s = no_return(w)
    return w if s is None else 0.0


# ---------------------------------------------------------------- decorators


def doubled(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return 2.0 * fn(x)

    return wrapper


def doubled_plain(fn):
    def wrapper(x):
        return 2.0 * fn(x)

    return wrapper


@doubled  # LINE-wrapped-helper
def sq_doubled(x):
    return x * x


@doubled_plain
def sq_doubled_plain(x):
    return x * x


@doubled
def cube_doubled(x):
    return x * x * x


def calls_registered_decorated(w):
    return cube_doubled(w) + 1.0


@functools.cache  # LINE-cached-helper
def cached(x):
    return x * 3.0


class Holder:
    def __init__(self) -> None:
        self.k = 2.0

    @staticmethod
    def triple(x):
        return 3.0 * x

    def scaled(self, x):
        return self.k * x


HOLDER = Holder()
SCALE_BY_TWO = functools.partial(keywords_only, k=2.0)


@fmad.differentiate  # LINE-differentiated-helper
def differentiated(x):
    return x * x


def calls_wrapped(w):
    return sq_doubled(w) + 1.0  # LINE-calls-wrapped


def calls_wrapper_without_wraps(w):
    return sq_doubled_plain(w) + 1.0


def calls_cached(w):
    return cached(w) + 1.0  # LINE-calls-cached


def calls_staticmethod(w):
    return Holder.triple(w) + 1.0


def calls_bound_method(w):
    return HOLDER.scaled(w) + 1.0  # LINE-bound-method


def calls_partial(w):
    return SCALE_BY_TWO(w) + 1.0  # LINE-partial


def calls_wrapped_inactive(w, c):
    return w * sq_doubled(c)


def calls_differentiated(w):
    value, grads = differentiated(w)  # LINE-calls-differentiated
    return value + grads["x"]


@doubled  # LINE-decorated-top
def decorated_top(w):
    return w * w


# ---------------------------------------------------------------- refused shapes


def ping(x, n):
    if n <= 0:
        return x
    return pong(x * 0.5, n - 1)  # LINE-ping


def pong(x, n):
    return ping(x + 1.0, n)  # LINE-pong


def mutual_recursion(w):
    return ping(w, 3)  # LINE-mutual


def star_args(*xs):
    return xs[0] * 2.0


def calls_star_args(w):
    return star_args(w, 1.0)  # LINE-star-args


def star_kwargs(x, **options):
    return x * options["k"]


def calls_star_kwargs(w):
    return star_kwargs(2.0, k=w)  # LINE-star-kwargs


def active_default(w):
    def inner(z=w * 2.0):
        return z * z

    return inner() + w  # LINE-active-default


def redefined(w, flag):
    def inner(z):
        return z * 2.0

    if flag:

        def inner(z):
            return z * 3.0

    return inner(w)  # LINE-redefined


def shadowed(w, b):
    # caller binds its own w; reads_w reads shadowed's w: passed in as w@outer
    def reads_w():
        return w * 2.0

    def caller(x):
        w = x * 3.0
        return reads_w() + w

    return caller(b) + caller(w)


def shadowed_parameter(w, b):
    x = w * 2.0

    def reads_x():
        return x

    def takes_x(x):
        return reads_x() + x * 10.0

    return takes_x(b)


def two_shadowed_bindings(w):
    # n binds x and reaches two other bindings of x: g's (from here) and m's (from k)
    x = w

    def g():
        return x

    def k():
        x = w * 3.0

        def m():
            return x

        def n(x):
            return g() + m() + x

        return n(1.0)

    return k()
