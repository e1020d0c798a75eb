"""Small functions the per-pass tests (naming, flatten, activity, forward/optimize, golden,
printer, pitfalls) transform.

They live in a real file so fmad can read their source. ``w`` and ``b`` are the parameters
being differentiated unless a test says otherwise; ``x``, ``xs``, ``X``, ``y`` and ``n`` are
data. Golden files depend on the exact text of ``train_loop``, ``loop_branch_helper``,
``scaled_helper`` and ``mse``: regenerate them (``FMAD_UPDATE_GOLDEN=1``) after editing those.
"""

import math

import numpy as np

SCALE = 3.0


def activation(w):
    """A module-level helper; tests rebind it to check the next call sees the new one."""
    return w * 2.0


def cube(w):
    return w * w * w


# np.sin until a test rebinds it: a function with a derivative rule, read as a global
ELEMENTWISE = np.sin


# ---------------------------------------------------------------- golden


def train_loop(X, y, w, b):
    y_pred = w * X + b
    loss = (y_pred - y) ** 2
    return loss


def scaled_helper(v, w):
    return v * w + 1.0


def loop_branch_helper(x, w, b, n):
    acc = b
    for i in range(n):
        if i % 2 == 0:
            acc = acc + scaled_helper(x, w)
        else:
            acc = acc * w - math.sin(b)
    return acc


def mse(X, y, w, b):
    return np.mean((X @ w + b - y) ** 2)


# ---------------------------------------------------------------- naming


def linear(X, w, b):
    return w * X + b


def long_chain(alpha, beta, gamma, delta):
    return (alpha * beta + gamma) * delta - alpha / gamma


def long_chain_assigned(alpha, beta, gamma, delta):
    result = (alpha * beta + gamma) * delta - alpha / gamma
    return result


def list_literal(x, w):
    pair = [w, x]
    return pair[0] * pair[1]


# ---------------------------------------------------------------- flatten


def nested_expression(x, w, b):
    z = np.exp(-((w * x + b) ** 2)) / (1.0 + abs(x)) + math.cos(w)
    return z * np.tanh(b)


def self_reference(x, w):
    x = x * w + x
    w = w * w
    return x + w


def augmented(x, w):
    s = 0.0
    s += w * x
    s *= w
    s -= x / 2.0
    s /= 1.0 + w * w
    return s


def augmented_item(xs, w):
    ys = [0.0, 0.0]
    ys[0] += xs[0]
    ys[1] -= xs[1] * 2.0
    return (ys[0] + ys[1]) * w


def chained(x, w):
    a = b = w * x
    return a * b


def conditional_value(x, w):
    y = 1.0 / x if x != 0.0 else w
    return y * w


def short_circuit(xs, w):
    # xs[0] raises IndexError on an empty list if the second operand is evaluated
    empty = len(xs) == 0 or xs[0] > 0.0
    first_positive = len(xs) > 0 and xs[0] > 0.0
    if empty:
        y = w * 2.0
    else:
        y = w
    if first_positive:
        y = y * w
    return y


def comprehension(xs, w):
    x = w * 3.0
    squares = [x * w for x in xs if x > 0.0]
    pairs = sum(a * b * w for a in xs for b in xs)
    return x + sum(squares) + pairs


def subscripts_and_attributes(X, w):
    rows = X.shape[0]
    first = X[0, 1:] * w
    last = X.T[1:, -1] @ first
    return last / rows + math.pi


def chained_guard(xs, w):
    # 0 < len(xs) is False for an empty list: Python never evaluates xs[0]
    ok = 0 < len(xs) < xs[0] * 10.0
    if ok:
        return w * 2.0
    return w


CALLS = []


def tick(v):
    """Records each call, to check that flattening keeps the order and number of calls."""
    CALLS.append(v)
    return v


def evaluation_order(w):
    a = b = tick(w) * tick(2.0)
    c = tick(a) + tick(b) if tick(w) > 0.0 else tick(-w)
    return [tick(x) for x in (a, c)] and tick(c) or tick(0.5)


def compare_values(x, w):
    bigger = w > x
    return w * bigger + x * (w <= x)


# ---------------------------------------------------------------- activity


def data_only(x, w):
    scaled = x * 2.0
    shifted = scaled + 1.0
    y = w * shifted
    return y


def loop_carried(x, w, n):
    acc = 0.0
    prev = 0.0
    for _ in range(n):
        prev = acc
        acc = prev * x + w
    return acc + prev


def zero_derivative_calls(xs, w):
    floored = np.floor(w)
    count = len(xs)
    positive = w > 0.0
    index = int(w)
    y = w * count + floored + positive + index
    return y


def appended(xs, w):
    active = []
    passive = []
    for x in xs:
        active.append(x * w)
        passive.append(x * 2.0)
    total = sum(active)
    other = sum(passive)
    return total + other


def methods(x, w):
    v = x * w
    total = v.sum()
    where = v.argmax()
    size = v.shape
    return total + where + size[0]


def nested_free_variables(x, w):
    scale = w * 2.0
    offset = x + 1.0

    def inner(v):
        return v * scale

    def passive(v):
        return v + offset

    y = inner(x)
    z = passive(x)
    return y + z


# ---------------------------------------------------------------- forward / optimize


def several_zero_terms(x, w, b):
    a = w * 1.0 + 0.0 * b
    c = a * x + b - 0.0
    d = c * w / 1.0
    e = d**1 + x * 0.0
    return e + np.sin(c) * b


def unused_values(x, w, b):
    unused = w * 3.0
    also_unused = np.exp(unused) + b  # noqa: F841 (a value that never reaches the return)
    y = w * x + b
    for _ in range(2):
        ignored = y * w  # noqa: F841
        y = y + b
    return y


def matvec(X, w):
    return X @ w


def three_directions(a, b, c):
    z = np.sin(a * b * c)
    return z * a


# ---------------------------------------------------------------- pitfalls


def negative_constants(w):
    return (-2.0) ** 2 * w + w**-1.5


def power(a, b):
    return a**b


def transposed(X, w):
    return np.sum(X.T * w)


def real_part(x, w):
    z = x * w
    return z.real * 2.0


def matrix_transpose(W, x):
    return np.sum(W.T @ x)


def reads_scale(w):
    return SCALE * w


def calls_activation(w):
    return activation(w)


def calls_elementwise(w):
    return ELEMENTWISE(w)


def in_place_add(x, w):
    x += w
    return np.sum(x * w)


def in_place_list(xs, w):
    xs += [w]
    return sum(xs)


def list_concatenation(xs, w):
    ys = xs + [w]
    return ys[0] + 2.0 * ys[-1]


def appends_to_input(xs, w):
    total = 0.0
    for x in xs:
        total = total + x * w
    return total


def mean_loss(X, y, w, b):
    return np.mean((w * X + b - y) ** 2)


def mixed_model(X, y, w, b):
    z = np.tanh(X @ w + b)
    r = z - y
    return np.sum(r * r) / len(y) + 0.5 * np.sum(w * w)


# ---------------------------------------------------------------- test helpers


def printed_function(differentiated, text):
    """Run ``text``, source printed for ``differentiated``'s scalar variant, as a user who
    copies it would: in the original function's globals, plus the objects fmad handed the
    compiled code (``fmad_rt``...). Returns the top-level generated function."""
    from fmad.transform import Unit

    transformed = differentiated.__fmad__
    namespace = dict(transformed.original.__globals__)
    for unit in transformed._default.units:
        namespace.update({k: v for k, v in unit.injected.items() if not isinstance(v, Unit)})
    exec(compile(text, "<printed by fmad>", "exec"), namespace)
    return namespace[transformed.original.__name__]
