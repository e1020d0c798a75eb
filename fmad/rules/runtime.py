"""Rules of the ``fmad_rt`` helpers that generated code calls, so that fmad's own output can
be differentiated again (second derivatives).

Each helper is linear in its tangent arguments and uses its other arguments for their
shapes, or for a choice that is constant almost everywhere (which entries tie for a
maximum): its tangent is the same helper applied to the tangents. A helper that multiplies
a tangent by a value (``matmul_left(dx, x, y, k)`` is ``dx @ y``) is bilinear: one term per
factor, the other factor kept. The guards return nothing and ``scalar_seed`` a constant.
With respect to an array parameter (a second direction axis, which these helpers do not
know about), the helper is applied to each direction's slice of its tangents and the results
are stacked: ``runtime_arrays.per_direction``. Helpers of lists of tangents take scalar directions
only.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad import runtime as rt
from fmad import runtime_arrays as ra
from fmad import runtime_seed as rs
from fmad.rules.base import LIST_RULES, RULES, Rule, active_slots, defzero, static_value
from fmad.tangent import Tangent


def defhelper(func, slots: tuple[int, ...], *, joint: bool = False, full=(), container=False):
    """The rule of the helper ``func``, linear in each argument at ``slots``: one call of
    ``func`` per argument with a tangent, that argument replaced by its tangent (a product
    rule), or with ``joint`` one call with all of them replaced (``None``, read as zero,
    for those with none: ``func`` is a sum of linear maps of them). A tangent of an argument
    at ``full`` is made full first: the helper uses that argument as a value of its own
    shape (``dy`` may be ``1.0`` where ``y`` is an array). ``container``: the result is a
    list of tangents."""
    name = func.__name__

    def helper(ctx) -> ast.expr:
        # fmad_rt.name, or the helper injected by name where it lives in runtime_arrays
        return ctx.rt(name) if getattr(rt, name, None) is func else ctx.inject(func, name)

    def rule(ctx, z, args, tangents, keywords):
        if container or func in LIST_RULES:  # lists of tangents: one direction only
            active = active_slots(ctx, f"fmad_rt.{name}", slots, tangents)
        else:
            active = [i for i in slots if i < len(tangents) and tangents[i] is not None]
        if not active:
            return None

        def tangent_at(i: int) -> ast.expr:
            t = tangents[i]
            if t is None:
                return ast.Constant(None)
            if ctx.vectorized:  # every direction's slice must be the argument's shape
                return ctx.full(t, args[i])
            return ctx.full(t, args[i]) if i in full else t.expr

        # joint: every slot gets its tangent (None where it has none), never its value
        groups = [[i for i in slots if i < len(args)]] if joint else [[i] for i in active]
        calls = []
        for group in groups:
            new = [tangent_at(i) if i in group else a for i, a in enumerate(args)]
            if ctx.vectorized:
                # the helper knows one direction: apply it to each of ours (an array
                # parameter's second pass) and stack the results on a trailing axis
                k, which = B.const(ctx.direction.k), B.tuple_([B.const(i) for i in group])
                per = ctx.inject(ra.per_direction, "per_direction")
                calls.append(B.call(per, helper(ctx), k, which, *new, **keywords))
            else:
                calls.append(B.call(helper(ctx), *new, **keywords))
        expr = calls[0]
        for call in calls[1:]:
            expr = B.binop(expr, ast.Add(), call)
        return Tangent(expr, full=container, container=container)

    rule.__doc__ = f"d {name}: {name} of the tangents of its arguments {slots}"
    RULES[func] = rule
    return rule


def _prod_tangent_rule(linear: Rule) -> Rule:
    def rule(ctx, z, args, tangents, keywords):
        if len(tangents) > 1 and tangents[1] is not None:
            ctx.refuse(
                "fmad_rt.prod_tangent() in code fmad generated is linear in its tangent only; "
                "a second derivative of np.prod is not supported by fmad"
            )
        return linear(ctx, z, args, tangents, keywords)

    return rule


# linear in the tangent, the value only gives its shape (or which items tie for a maximum)
for _func in (
    rt.full,
    rt.gradient,
    rt.builtin_sum,
    rt.builtin_extreme,
    rt.extreme_tangent,
    rt.transpose_tangent,
    rt.squeeze_tangent,
    rt.expand_dims_tangent,
    rt.reshape_tangent,
    rt.stack_tangents,
    rt.array_tangent,
):
    defhelper(_func, (0,))
defhelper(rt.items_tangents, (0,), container=True)
defhelper(rt.join_tangent, (1,))
defhelper(rt.concat_tangent, (0, 2), joint=True)
RULES[rt.prod_tangent] = _prod_tangent_rule(defhelper(rt.prod_tangent, (0,)))
# the identity seed laid out next to a value: linear in that value
for _func in (rt.seed_matmul_left, rt.seed_matmul_right, rt.seed_dot):
    defhelper(_func, (0,), full=(0,))
# products of a tangent and a value: bilinear
defhelper(rt.matmul_left, (0, 2), full=(2,))
defhelper(rt.matmul_right, (0, 2), full=(0,))
defhelper(rt.inner_left, (0, 2), full=(2,))
defhelper(rt.inner_right, (0, 2), full=(0,))
defhelper(rt.outer_tangent, (0, 2), full=(2,))
defhelper(rt.sum_product, (0, 1), full=(0,))
defhelper(rt.mean_product, (0, 1), full=(0,))
# on the identity seed (a constant): linear in the coefficient
for _func in (rs.seed_sum, rs.seed_mean, rs.on_seed):
    defhelper(_func, (0,), full=(0,))
# their tangent arguments are lists of tangents (items of different shapes: 0.0 and arrays)
LIST_RULES.update(
    {
        rt.items_tangents,
        rt.builtin_sum,
        rt.builtin_extreme,
        rt.join_tangent,
        rt.stack_tangents,
        rt.array_tangent,
        rt.concat_tangent,
    }
)
# an integer, a constant, and guards that return nothing
defzero(rt.tangent_axis, rt.scalar_seed, rt.check_rebind, rt.check_distinct)


def _real_values_rule(ctx, z, args, tangents, keywords):
    """``fmad_rt.real_values(x, what)`` is ``x`` (checked to be real): its tangent is dx."""
    return tangents[0]


RULES[rt.real_values] = _real_values_rule


def _per_direction_rule(ctx, z, args, tangents, keywords):
    """``per_direction(fn, k, slots, *args)`` is linear in the arguments at ``slots`` (``fn``
    is, in them): with respect to a scalar, the same call on their tangents. A derivative
    through its other arguments (a third derivative of a product) is refused."""
    slots = static_value(ctx, args[2]) if len(args) > 2 else None
    active = [i for i, t in enumerate(tangents) if t is not None]
    if not active:
        return None
    inner = [i - 3 for i in active]
    if ctx.vectorized or slots is None or any(i < 0 or i not in slots for i in inner):
        ctx.refuse(
            "per_direction() in code fmad generated twice can be differentiated again with "
            "respect to a scalar, through its tangent arguments only (no third derivatives "
            "of products)"
        )
    new = [
        (tangents[i].expr if tangents[i] is not None else ast.Constant(None))
        if i >= 3 and i - 3 in slots
        else a
        for i, a in enumerate(args)
    ]
    return Tangent(B.call(ctx.inject(ra.per_direction, "per_direction"), *new, **keywords))


RULES[ra.per_direction] = _per_direction_rule
