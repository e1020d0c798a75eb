"""Rules of the ``fmad_rt`` helpers that generated code calls, so that fmad's own output can
be differentiated again (second derivatives).

Each helper is linear in its tangent arguments and uses its other arguments for their
shapes, or for a choice that is constant almost everywhere (which entries tie for a
maximum): its tangent is the same helper applied to the tangents. A helper that multiplies
a tangent by a value (``matmul_left(dx, x, y, k)`` is ``dx @ y``) is bilinear: one term per
factor, the other factor kept. The guards return nothing and ``scalar_seed`` a constant.
A direction of the second transform must be a scalar: an array parameter's tangents would
need a second direction axis these helpers do not know about.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad import runtime as rt
from fmad.rules.base import LIST_RULES, RULES, Rule, active_slots, defzero
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

    def rule(ctx, z, args, tangents, keywords):
        active = active_slots(ctx, f"fmad_rt.{name}", slots, tangents)
        if not active:
            return None

        def tangent_at(i: int) -> ast.expr:
            t = tangents[i]
            if t is None:
                return ast.Constant(None)
            return ctx.full(t, args[i]) if i in full else t.expr

        # joint: every slot gets its tangent (None where it has none), never its value
        groups = [[i for i in slots if i < len(args)]] if joint else [[i] for i in active]
        calls = []
        for group in groups:
            new = [tangent_at(i) if i in group else a for i, a in enumerate(args)]
            calls.append(B.call(ctx.rt(name), *new, **keywords))
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
