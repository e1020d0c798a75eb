"""Rules of statistics: ``np.var``, ``np.std`` (and the methods ``x.var()``, ``x.std()``),
``np.median``, ``np.percentile``, ``np.quantile`` and ``np.average``.

- ``var``: ``d var = 2 / (N - ddof) * sum((x - mean(x)) * dx)`` over the same axes;
  ``std``: ``d var / (2 std)``, and 0 where the standard deviation is 0 (all values equal:
  ``std`` is not differentiable there; 0 is the subgradient fmad takes, as for ``abs`` and
  ``np.linalg.norm`` at 0).
- ``median``, ``percentile``, ``quantile`` (method ``linear`` only; any other method is
  refused): the quantile interpolates two order statistics; at ties the derivative of an
  order statistic is shared evenly by the entries equal to it (as ``np.max`` shares it), so
  ``percentile(x, 100)`` has ``max``'s derivative. ``q`` is a constant (one that carries a
  derivative is refused).
- ``average``: with ``weights``, both the values and the weights are differentiated.
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_arrays as ra
from fmad.rules.base import RULES, alias, is_none, k_arg, method, tangent_of
from fmad.rules.options import (
    bind,
    floating_dtype,
    helper_rule,
    keyword_tangent,
    refuse_active,
    refuse_others,
    static,
)
from fmad.rules.reductions import REDUCTION_OUT, reduce_tangent

MOMENT_PARAMETERS = ("axis", "dtype", "out", "ddof", "keepdims")
REDUCTION_OUT.update({np.var: 3, np.std: 3, np.median: 2, np.percentile: 3, np.quantile: 3})


def _moment(name: str):
    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        given = bind(ctx, f"np.{name}", args, keywords, MOMENT_PARAMETERS)
        refuse_active(ctx, f"np.{name}", given, "ddof")
        if dx is None:
            return None
        floating_dtype(ctx, f"np.{name}", given)
        refuse_others(
            ctx,
            f"np.{name}",
            given,
            {"axis", "keepdims", "ddof", "dtype"},
            {"out": "assign the result instead of writing into an array with out="},
        )
        axis, keepdims = given.get("axis"), given.get("keepdims")
        ddof = given.get("ddof") or B.const(0)
        mean_kw = {"keepdims": B.const(True)}
        if axis is not None and not is_none(axis):
            mean_kw["axis"] = axis
        # the real formula; a complex x is refused when the line runs
        x = B.call(ctx.rt("real_values"), x, B.const(f"np.{name}()"))
        centred = B.binop(x, ast.Sub(), B.call(ctx.np_("mean"), x, **mean_kw))
        total = reduce_tangent(ctx, "sum", x, ctx.scale(centred, dx, full=True), axis, keepdims)
        count = B.parse_expr(
            "np.size(x) // max(np.size(z), 1) - ddof", np=ctx.np_(), x=x, z=z, ddof=ddof
        )
        if name == "var":
            return ctx.scale(B.binop(B.const(2.0), ast.Div(), count), total)
        # d std = d var / (2 std); 0 where std is 0 (the subgradient, as abs has at 0)
        coef = B.parse_expr(
            "np.where(z == 0, 0.0, 1.0 / (count * np.where(z == 0, 1.0, z)))",
            np=ctx.np_(),
            z=z,
            count=count,
        )
        return ctx.scale(coef, total)

    rule.__doc__ = f"d np.{name}(x): the centred values times dx, summed over the axes"
    return rule


RULES[np.var] = _moment("var")
RULES[np.std] = _moment("std")
alias(method("var"), to=np.var)  # x.var(axis, dtype, out, ddof): the same positions
alias(method("std"), to=np.std)


# -- order statistics ------------------------------------------------------------------------
QUANTILE_PARAMETERS = ("q", "axis", "out", "overwrite_input", "method", "keepdims")
MEDIAN_PARAMETERS = ("axis", "out", "overwrite_input", "keepdims")
QUANTILE_ADVICE = {
    "out": "assign the result instead of writing into an array with out=",
    "weights": "fmad models unweighted quantiles only",
    "interpolation": "use method='linear' (the default)",
}


def _quantile(name: str, scale: float | None):
    """``scale``: 100 for percentile, 1 for quantile, None for median (q = 0.5)."""

    def rule(ctx, z, args, tangents, keywords):
        x, dx = args[0], tangents[0]
        params = QUANTILE_PARAMETERS if scale is not None else MEDIAN_PARAMETERS
        given = bind(ctx, f"np.{name}", args, keywords, params)
        if scale is not None:
            refuse_active(ctx, f"np.{name}", given, "q")
        if dx is None:
            return None
        modelled = {"q", "axis", "keepdims", "overwrite_input", "method"}
        refuse_others(ctx, f"np.{name}", given, modelled, QUANTILE_ADVICE)
        overwrite = given.get("overwrite_input")
        if overwrite is not None and static(ctx, overwrite) not in (False, None):
            ctx.refuse(
                f"np.{name}() with overwrite_input= is not supported by fmad on a value "
                "that carries a derivative (it reorders the values fmad reads afterwards); "
                "drop overwrite_input="
            )
        how = given.get("method")
        if how is not None and static(ctx, how) != "linear":
            ctx.refuse(
                f"np.{name}() with method={ast.unparse(how)} is not supported by fmad; it "
                "models method='linear' (the default) only"
            )
        q = given.get("q") if scale is not None else B.const(0.5)
        helper = ctx.inject(ra.quantile_tangent, "quantile_tangent")
        return tangent_of(
            B.call(
                helper,
                dx.expr,
                x,
                q,
                given.get("axis") or ast.Constant(None),
                given.get("keepdims") or ast.Constant(False),
                k_arg(ctx),
                B.const(float(scale or 1.0)),
            )
        )

    rule.__doc__ = f"d np.{name}: the interpolated order statistics' tangents (ties share)"
    return rule


RULES[np.median] = _quantile("median", None)
RULES[np.percentile] = _quantile("percentile", 100.0)
RULES[np.quantile] = _quantile("quantile", 1.0)


def average_rule(ctx, z, args, tangents, keywords):
    """``np.average(a, axis, weights)``: the mean without weights; with them, ``sum(w * da +
    dw * (a - avg)) / sum(w)``."""
    a, da = args[0], tangents[0]
    given = bind(ctx, "np.average", args, keywords, ("axis", "weights", "returned"))
    returned = given.get("returned")
    if returned is not None and static(ctx, returned) is not False:
        ctx.refuse(
            "np.average() with returned= is not supported by fmad on a value that carries "
            "a derivative; compute the sum of the weights separately (np.sum(w))"
        )
    refuse_others(ctx, "np.average", given, {"axis", "weights", "keepdims", "returned"})
    weights = given.get("weights")
    axis, keepdims = given.get("axis"), given.get("keepdims")
    if weights is None or is_none(weights):
        return reduce_tangent(ctx, "mean", a, da, axis, keepdims)
    dw = tangents[2] if len(args) > 2 else keyword_tangent(ctx, weights)
    if da is None and dw is None:
        return None
    helper = ctx.inject(ra.average_tangent, "average_tangent")
    return tangent_of(
        B.call(
            helper,
            da.expr if da is not None else ast.Constant(None),
            dw.expr if dw is not None else ast.Constant(None),
            a,
            weights,
            axis or ast.Constant(None),
            keepdims or ast.Constant(False),
            k_arg(ctx),
        )
    )


average_rule.keyword_tangents = True  # reads the tangent of weights= itself


RULES[np.average] = average_rule
helper_rule(ra.quantile_tangent, (0,), fixed=(2,))
helper_rule(ra.average_tangent, (0, 1), fixed=(2, 3))
