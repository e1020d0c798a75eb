"""Small scalar functions that the language-coverage tests differentiate.

They live in a real file so fmad can read their source. By convention ``w``, ``b``, ``a``
and ``c`` are the float parameters being differentiated; ``x``, ``xs``, ``ys``, ``n``,
``pairs`` and ``cfg`` are data. Lines that a test must locate carry a ``# LINE-<tag>``
marker comment.
"""

import math

import numpy as np

SCALE = 3.0
OFFSET = 0.5
WEIGHTS = (0.5, -1.0, 2.0)


# ---------------------------------------------------------------- branches


def branch_on_param(w):
    if w > 0.0:
        y = w * w
    else:
        y = -(w * w * w)
    return y


def elif_on_param(w):
    if w < -1.0:
        y = -w
    elif w < 1.0:
        y = w * w
    else:
        y = 2.0 * w - 1.0 + math.log(w)
    return y


def branch_on_data(x, w, b):
    if x > 1.0:
        y = w * x + b
    elif x > 0.0:
        y = w * w * x - b
    else:
        y = math.sin(w) * b
    return y


def bool_ops(x, w, b):
    if w > 0.0 and x < 2.0:
        y = w * b
    elif w < -1.0 or b > 3.0:
        y = w + b * b
    else:
        y = w - b
    if not x > 1.0:
        y = y * w
    return y


def chained_comparison(w):
    if 0.0 < w < 1.0:
        return w**3
    return 2.0 * w


def comparison_values(x, w):
    at_least = w >= x
    equal = w == x
    if at_least and not equal:
        return w * x
    return w - x


def conditional_expression(x, w):
    y = w * w if w > x else -w
    z = (w if x > 0.0 else 2.0) * y
    return z


def or_value(c, w):
    # `or` yields one of its operands: the derivative follows the one it yields.
    s = c or w
    return s * w


def and_value(c, w):
    s = c and w
    return s * w + w


# ---------------------------------------------------------------- loops


def while_halving(w):
    v = w
    while v > 1.0:
        v = v * 0.5
    return v * w


def while_counter(n, w):
    i = 0
    acc = 0.0
    while i < n:
        acc = acc + w**i
        i += 1
    return acc


def for_range(n, w, b):
    acc = b
    for i in range(n):
        acc = acc + w * i
    return acc


def for_range_start_step(w):
    acc = 0.0
    for i in range(1, 7, 2):
        acc += w**i / i
    return acc


def for_sequence(xs, w, b):
    loss = 0.0
    for x in xs:
        loss = loss + (w * x + b) ** 2
    return loss


def for_tuple_literal(w):
    acc = 0.0
    for k in (1.0, 2.0, 3.0):
        acc = acc + k * w**k
    return acc


def for_zip(xs, ys, w, b):
    loss = 0.0
    for x, y in zip(xs, ys, strict=True):
        loss += (w * x + b - y) ** 2
    return loss / len(xs)


def for_enumerate(xs, w):
    acc = 0.0
    for i, x in enumerate(xs):
        acc = acc + w**i * x
    return acc


def for_tuple_target(pairs, w):
    acc = 0.0
    for p, q in pairs:
        acc += p * w + q * w * w
    return acc


def for_break(xs, w):
    acc = 0.0
    for x in xs:
        if x > 2.0:
            break
        acc = acc + w * x
    return acc * w


def for_break_on_param(w):
    v = 1.0
    for _ in range(10):
        v = v * w
        if v > 5.0:
            break
    return v


def for_continue(xs, w):
    acc = 0.0
    for x in xs:
        if x < 0.0:
            continue
        acc += math.sin(w * x)
    return acc


def for_else(xs, w):
    acc = w
    for x in xs:
        if x < 0.0:
            break
        acc = acc * x
    else:
        acc = acc * w
    return acc


def early_return_in_loop(xs, w):
    for x in xs:
        if w * x > 3.0:
            return w * x
    return -w


def several_returns(w, b):
    if w > 2.0:
        return w * b
    if b < 0.0:
        return w - b
    if w < 0.0:
        return w * w
    return b / w


def nested_loops(w, b):
    acc = 0.0
    for i in range(3):
        for j in range(2):
            acc = acc + w**i * b**j
    return acc


def nested_loops_data(xs, ys, w):
    acc = 0.0
    for x in xs:
        for y in ys:
            if x == y:
                continue
            acc += w * x * y
    return acc


def reassign_from_itself(w):
    v = 1.0
    for _ in range(5):
        v = v * 0.5 + w
    return v


def reassign_straight(w, b):
    v = w * b
    v = v * v + w
    v = math.exp(v * 0.1) - v
    return v


def reassign_parameter(w, b):
    w = w * 2.0
    b = b + w
    return w * b


# ---------------------------------------------------------------- assignments and statements


def augmented_assignment(w, b):
    y = w
    y += b
    y -= 0.5 * w
    y *= b
    y /= w + 2.0
    y **= 2
    return y


def augmented_power_active(w, b):
    y = 1.5 + w * w
    y **= b
    return y


def tuple_swap(w, b):
    p, q = w, b
    for _ in range(3):
        p, q = q, p * q
    return p + q


def tuple_unpack(w, b):
    pair = (w * 2.0, b - w)
    p, q = pair
    return p * q


def chained_assignment(w):
    p = q = w * 2.0
    return p * q + p


def pass_and_docstring(w):
    """A docstring is not code."""
    pass
    if w > 0.0:
        pass
    return w * w


def with_assert(w):
    assert w > 0.0, "w must be positive"
    return math.log(w)


def prints(w):
    y = w * 3.0
    print("y is", y)
    return y * w


# ---------------------------------------------------------------- subscripts and containers


def subscript_data(xs, w):
    return w * xs[0] + w * w * xs[-1] + xs[1]


def subscript_loop_index(xs, w):
    acc = 0.0
    for i in range(len(xs)):
        acc = acc + xs[i] * w**i
    return acc


def slice_data(xs, w):
    acc = 0.0
    for x in xs[1:3]:
        acc += w * x
    return acc


def list_of_active(w, b):
    vals = [w, w * b, 3.0]
    acc = 0.0
    for v in vals:
        acc = acc + v * v
    return acc + vals[1]


def tuple_of_active(w, b):
    t = (w, b, w * b)
    return t[0] * t[2] - t[1]


def list_indexed_in_loop(w, b):
    coeffs = [w, b, w * b]
    acc = 0.0
    for i in range(3):
        acc += coeffs[i] * (i + 1)
    return acc


def list_built_by_append(xs, w):
    vals = []
    for x in xs:
        vals.append(w * x)
    acc = 0.0
    for v in vals:
        acc = acc + v * v
    return acc + sum(vals)


def sum_generator(xs, w):
    return sum(w * x for x in xs)  # LINE-genexp


def sum_list_comprehension(xs, w):
    return sum([w * x * x for x in xs])  # LINE-listcomp


# ---------------------------------------------------------------- math.* and np.* functions
# Each takes a multiple of w so that a rule that forgets the inner tangent is caught.


def math_exp(w):
    return math.exp(0.5 * w)


def np_exp(w):
    return np.exp(0.5 * w)


def math_log(w):
    return math.log(0.5 * w)


def np_log(w):
    return np.log(0.5 * w)


def math_log1p(w):
    return math.log1p(0.5 * w)


def np_log1p(w):
    return np.log1p(0.5 * w)


def math_expm1(w):
    return math.expm1(0.5 * w)


def np_expm1(w):
    return np.expm1(0.5 * w)


def math_log2(w):
    return math.log2(0.5 * w)


def np_log2(w):
    return np.log2(0.5 * w)


def math_log10(w):
    return math.log10(0.5 * w)


def np_log10(w):
    return np.log10(0.5 * w)


def math_sqrt(w):
    return math.sqrt(0.5 * w)


def np_sqrt(w):
    return np.sqrt(0.5 * w)


def math_sin(w):
    return math.sin(0.5 * w)


def np_sin(w):
    return np.sin(0.5 * w)


def math_cos(w):
    return math.cos(0.5 * w)


def np_cos(w):
    return np.cos(0.5 * w)


def math_tan(w):
    return math.tan(0.5 * w)


def np_tan(w):
    return np.tan(0.5 * w)


def math_asin(w):
    return math.asin(0.5 * w)


def np_arcsin(w):
    return np.arcsin(0.5 * w)


def math_acos(w):
    return math.acos(0.5 * w)


def np_arccos(w):
    return np.arccos(0.5 * w)


def math_atan(w):
    return math.atan(0.5 * w)


def np_arctan(w):
    return np.arctan(0.5 * w)


def math_sinh(w):
    return math.sinh(0.5 * w)


def np_sinh(w):
    return np.sinh(0.5 * w)


def math_cosh(w):
    return math.cosh(0.5 * w)


def np_cosh(w):
    return np.cosh(0.5 * w)


def math_tanh(w):
    return math.tanh(0.5 * w)


def np_tanh(w):
    return np.tanh(0.5 * w)


def math_fabs(w):
    return math.fabs(0.5 * w)


def np_fabs(w):
    return np.fabs(0.5 * w)


def np_abs(w):
    return np.abs(0.5 * w)


def math_pow(w, b):
    return math.pow(w, b)


def np_power_const_exponent(w):
    return np.power(0.5 * w, 3)


def np_power_const_base(w):
    return np.power(2.0, 0.5 * w)


def np_power_both(w, b):
    return np.power(w, b)


def np_maximum(w, b):
    return np.maximum(2.0 * w, b * b)


def np_minimum(w, b):
    return np.minimum(2.0 * w, b * b)


def np_clip(w):
    return np.clip(2.0 * w, -1.0, 1.0) * w


def np_where(w):
    return np.where(w > 0.0, w * w, -3.0 * w)


def np_sign(w):
    return np.sign(w) * 3.0 + np.sign(w) * w


def np_floor(w):
    return np.floor(2.0 * w) + w


def np_ceil(w):
    return np.ceil(2.0 * w) * w


def math_floor_ceil(w):
    return math.floor(2.0 * w) + math.ceil(2.0 * w)


def builtin_round(w):
    return round(2.0 * w) + round(w, 1)


# ---------------------------------------------------------------- builtins


def builtin_abs(w):
    return abs(1.5 * w)


def builtin_min(w, b):
    return min(2.0 * w, b, 1.5)


def builtin_max(w, b):
    return max(w, b * b)


def builtin_max_data(xs, w):
    return max(xs) * w + min(xs) * w * w


def builtin_sum_data(xs, w):
    return sum(xs) * w


def builtin_sum_active(w, b):
    return sum([w, b * w, 2.0])


def builtin_len(xs, w):
    return len(xs) * w * w


def builtin_float(x, w):
    return float(w) * w + float(x)


def builtin_int(x, w):
    return int(x) * w + int(w)


def builtin_pow(w):
    return pow(0.5 * w, 3)


def active_exponent(a, b):
    return a**b


def active_exponent_constant_base(b):
    return 2.0**b


# ---------------------------------------------------------------- helpers and nested defs


def helper_affine(a, b, scale=2.0):
    return a * scale + b


def helper_nested(a, b):
    return helper_affine(a, b) * math.sin(a)


def helper_with_branch(a):
    if a > 0.0:
        return a * a
    return -a


def helper_with_loop(a, n):
    acc = 0.0
    for i in range(n):
        acc = acc + a ** (i + 1)
    return acc


def uses_helper(x, w, b):
    return helper_affine(w, b) * x


def uses_helper_keywords(x, w, b):
    return helper_affine(b=w, a=b, scale=x) + helper_affine(w, x)


def uses_helper_of_helper(w, b):
    return helper_nested(w * b, b)


def uses_helper_branch_and_loop(w):
    return helper_with_branch(w) + helper_with_loop(w, 3)


def uses_helper_twice(w, b):
    return helper_affine(w, b) * helper_affine(b, w, scale=w)


def nested_def_arguments_only(w, b):
    def inner(z, k=2.0):
        return z * z * k

    return inner(w) + inner(b, k=w)


def nested_def(w, b):
    def inner(z, k=2.0):
        return z * z * k + b

    return inner(w) + inner(b, k=w)


# ---------------------------------------------------------------- globals, closures, attributes


def scaled_by_global(w):
    return SCALE * w * w + OFFSET


def active_from_global(w):
    s = SCALE * w
    return s * s


def loop_over_global_tuple(w):
    acc = 0.0
    for k in WEIGHTS:
        acc += k * w
    return acc


def make_closure(k):
    def closure_fn(w):
        return k * w * w

    def set_k(value):
        nonlocal k
        k = value

    return closure_fn, set_k


def intermediate_local(a, b):
    e = a * b
    c = math.sin(a)
    d = e + c
    loss = d * d + 3.0 * d + a
    return loss


def attribute_of_data(cfg, w):
    return cfg.scale * w + cfg.offset


def attribute_of_module(w):
    return math.pi * w + np.e


def attribute_of_active(w):
    y = w * 3.0
    return y.real * w


# ---------------------------------------------------------------- kinks


def kink_abs(w):
    return abs(w)


def kink_math_fabs(w):
    return math.fabs(w)


def kink_np_abs(w):
    return np.abs(w)


def kink_np_maximum(w, b):
    return np.maximum(2.0 * w, b + 1.0)


def kink_np_minimum(w, b):
    return np.minimum(2.0 * w, b + 1.0)
