"""Programs calling helpers, for tests/test_reverse_helpers.py (reverse mode inlines them).

Lines that a refusal must name carry a ``# LINE-<tag>`` marker comment.
"""

from __future__ import annotations

import numpy as np

from tests.helpers_module import sq as imported_sq


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic(X, y, w, b):
    p = sigmoid(X @ w + b)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def layer(x, W, b):
    return np.tanh(x @ W + b)


def mlp(X, y, W1, b1, W2, b2):
    h = layer(X, W1, b1)
    return np.mean((h @ W2 + b2 - y) ** 2)


def reassigns(x, k=3.0):
    x = x * k
    x = np.sin(x) + x
    return x


def calls_reassigns(w, b):
    u = reassigns(w)
    v = reassigns(b, k=w)
    return u * v + reassigns(2.0, b)


def with_branch(x):
    if x > 0.0:  # LINE-helper-if
        y = x * x
    else:
        y = -x
    return y * 2.0


def branch_and_loop(w, b):
    total = with_branch(w)
    for i in range(3):
        total = total + sigmoid(total * b + i)
    return total


def branch_in_loop(w):
    total = w
    for i in range(3):
        total = total + with_branch(total - i)
    return total


def same_names(w, b):
    # the helper's local names (z, p) are also the caller's
    z = w * 2.0
    p = sigmoid(z) + sigmoid(b)
    return p * z


# ---------------------------------------------------------------- refused


def recursive(x):
    return recursive(x * 0.5)  # LINE-recursive


def calls_recursive(w):
    return recursive(w) + 1.0


def early(x):
    if x > 0.0:
        return x  # LINE-early
    return -x


def calls_early(w):
    return early(w) * 2.0


def with_star(*xs):
    return xs[0]


def calls_star(w):
    return with_star(w) + 1.0  # LINE-star


def with_kwargs(x, **options):
    return x * 2.0


def calls_kwargs(w):
    return with_kwargs(w, k=1.0) + 1.0  # LINE-kwargs


def mutable_default(x, scale=[2.0]):  # noqa: B006 (a mutable default, refused)
    return x * scale[0]


def calls_mutable_default(w):
    return mutable_default(w) + 1.0  # LINE-mutable


def make_scaled(k):
    def scaled(x):
        return x * k

    return scaled


SCALED = make_scaled(2.0)


def calls_closure(w):
    return SCALED(w) + 1.0  # LINE-closure


def calls_other_module(w):
    return imported_sq(w) + 1.0  # LINE-other-module


def reads_np(x):
    return np.sin(x)


def shadows_np(w):
    np = w * 2.0  # noqa: F811 (the caller binds the helper's global)
    return reads_np(w) + np  # LINE-shadows


def nested_helper(w):
    def inner(z):  # LINE-nested
        return z * w

    return inner(w) + 1.0


def steep_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-2.0 * z))


UNREADABLE = {}
exec("def unreadable(x):\n    return x * 2.0\n", globals(), UNREADABLE)  # no source file
unreadable = UNREADABLE["unreadable"]


def calls_unreadable(w):
    return unreadable(w) + 1.0  # LINE-unreadable


# ------------------------------------------- the boundary of the function form (issue 12)


def clipped(x):
    # a branch, a loop and early returns inside the helper
    if x > 2.0:
        return 2.0 + 0.0 * x
    total = x
    for k in range(3):
        total = total * 0.5 + np.sin(total)
        if total < -k:
            return total - k
    return total


def calls_clipped(w, b):
    return clipped(w * b) + clipped(w) * b


def double_sigmoid(z):
    # a helper that calls a helper
    return sigmoid(z) * sigmoid(2.0 * z)


def calls_double(X, w):
    return np.sum(double_sigmoid(X @ w))


def scaled(x, k):
    return np.tanh(x * k) + x


def some_active(X, w, c):
    # scaled's x active and k data, then x data and k active: two adjoint functions
    return np.sum(scaled(X @ w, 2.0)) + np.sum(scaled(X[:, 0], w[0])) + np.sum(scaled(X, c))


def both(a, b):
    return a * b + np.sin(a)


def same_argument_twice(w):
    return both(w, w) + both(w * 2.0, 3.0)


def pair(x):
    return np.sin(x), np.cos(x)


def calls_pair(w):
    s, c = pair(w)  # a tuple result: inlined
    return s * c + w


def in_loop(w, xs):
    acc = 0.0
    for x in xs:
        acc = acc + sigmoid(acc * w + x)
    return acc


def inactive_call(X, w):
    # sigmoid of data only: its forward function, returning the value alone
    s = sigmoid(X[:, 0])
    return np.sum(sigmoid(X @ w) * s)


def constant_result(x, y):
    return 3.0 + 0.0 * y


def ignores_argument(w, b):
    return np.sum(both(w, 2.0)) + constant_result(w, b) * 0.0 + b


def helper_in_branch(w):
    if w > 0.0:
        v = sigmoid(w)
    else:
        v = sigmoid(-w) * 2.0
    return v * w


def nested_early(w):
    def inner(z):
        if z > 1.0:
            return z * z
        return np.sin(z)

    return inner(w) + inner(w * 0.5)


def ident(x):
    return x


def const(x):
    return 2.0


def kwonly(x, *, k=2.0):
    return x * k


def odd_signatures(w):
    # a parameter returned as it is, a constant result, a keyword-only parameter
    return ident(w) * const(w) + kwonly(w, k=w) + kwonly(w)


def product_of_items(ps):
    return ps[0] * ps[1]


def list_parameter(params):
    # a wrt list of arrays passed on to a helper
    return np.sum(product_of_items(params)) + np.sum(params[0])


def make_list(x):
    out = [x, 2.0 * x]
    return out


def returns_list(w):
    a = make_list(w)  # a list: inlined
    return a[0] * a[1]


def total(v):
    return v[0] + v[1]


def passes_list(w, b):
    xs = [w, b]
    return total(xs) * w  # a list with a derivative as the argument: inlined


def reciprocal(x):
    return 1.0 / x  # LINE-reciprocal


def calls_reciprocal(w):
    return reciprocal(w) + 1.0


def square(x):
    return x * x


def reassigned_argument(w):
    # the argument is a name the renaming changes (w, then w_1...)
    w = square(w)
    w = square(w) + w
    return w


def carried_argument(w, b):
    # a loop-carried name passed to the helper, and rebound by its result
    x = w
    for k in range(3):
        x = square(x) * 0.5 + b * k
    return x


def ping(x):
    if x > 10.0:
        return x
    return pong(x * 2.0)


def pong(x):
    return ping(x + 1.0)  # LINE-mutual


def calls_mutual(w):
    return ping(w) * 2.0
