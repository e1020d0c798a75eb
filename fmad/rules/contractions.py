"""Rules of contractions: ``np.einsum``, ``np.tensordot``, ``np.kron``, ``np.vdot`` and
``np.trace`` (and ``x.trace()``), plus the rule every ``fmad_la`` helper gets.

Each is linear in each operand, so its tangent is the sum over the operands that carry a
derivative of the same contraction with that operand replaced by its tangent (made full
first). For an array parameter the tangent's trailing direction axis is one more free
index: ``np.einsum`` gets one more letter (``'ij,jk->ik'`` becomes ``'ijZ,jk->ikZ'``), the
others a helper of :mod:`fmad.runtime_linalg` that puts the axis last.
"""

from __future__ import annotations

import ast
import string

import numpy as np

from fmad import build as B
from fmad import runtime_linalg as la
from fmad.rules.base import HELPER_ROWS, RULES, argument, defrule, k_arg, keeps_derivative, method
from fmad.rules.base import static_value as static
from fmad.tangent import Tangent

EINSUM_OPTIMIZE = (False, True, "greedy", "optimal")


def helper(ctx, name: str, *args: ast.expr) -> Tangent:
    """A call of the ``fmad_la`` helper ``name``; its result is full."""
    return Tangent(B.call(B.attr(ctx.inject(la, "fmad_la"), name), *args), full=True)


def helper_rule(func, slots: tuple[int, ...], container: bool = False) -> None:
    """The rule of the helper ``func``, jointly linear in the tangents at ``slots`` (``None``
    there reads as zero) when its other arguments are constants: fmad's output can be
    differentiated again with respect to a scalar that only its tangents depend on.
    The helpers are not linear in the values, so a second derivative through them (the
    value carrying a derivative too) is refused."""
    name = func.__name__
    HELPER_ROWS[func] = (slots, None)

    def rule(ctx, z, args, tangents, keywords):
        if all(t is None for t in tangents):
            return None
        if ctx.vectorized or any(t is not None for i, t in enumerate(tangents) if i not in slots):
            ctx.refuse(
                f"fmad_la.{name}() in code fmad generated can be differentiated again only "
                "with respect to a scalar its matrix does not depend on; fmad does not "
                "model second derivatives of linear algebra"
            )
        new = list(args)
        for i in slots:
            t = tangents[i] if i < len(tangents) else None
            new[i] = ast.Constant(None) if t is None else ctx.full(t, args[i])
        return Tangent(
            B.call(B.attr(ctx.inject(la, "fmad_la"), name), *new), full=True, container=container
        )

    rule.__doc__ = f"d {name}: {name} of the tangents of its arguments {slots}"
    RULES[func] = rule


def _no_keywords(ctx, label: str, keywords, allowed: tuple[str, ...] = ()) -> None:
    for key in keywords:
        if key not in allowed:
            ctx.refuse(
                f"{label} with {key}= is not supported by fmad on a value that carries a "
                f"derivative; drop {key}="
            )


# -- einsum ----------------------------------------------------------------------------------
def einsum_parts(ctx, subscripts, n: int) -> tuple[list[str], str]:
    """The input subscripts and the explicit output of an einsum of ``n`` operands."""
    if not isinstance(subscripts, str):
        ctx.refuse(
            "np.einsum of values that carry a derivative needs its subscripts as a string "
            "constant (np.einsum('ij,jk->ik', a, b)); the form einsum(a, [0, 1], b, [1, 2]) "
            "is not supported"
        )
    text = subscripts.replace(" ", "")
    inputs, arrow, output = text.partition("->")
    parts = inputs.split(",")
    allowed = set(string.ascii_letters) | {"."}
    if len(parts) != n or not set(text.replace("->", "").replace(",", "")) <= allowed:
        ctx.refuse(
            f"np.einsum('{subscripts}') with {n} operand(s): fmad reads only subscripts of "
            "letters, '...' and '->', one group per operand; write the subscripts out that way"
        )
    if not arrow:  # implicit output: the letters used once, in alphabetical order
        letters = [c for c in inputs if c in string.ascii_letters]
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        if "..." in inputs:
            output = "..." + output
    return parts, output


@defrule(np.einsum)
def einsum_rule(ctx, z, args, tangents, keywords):
    if all(t is None for t in tangents[1:]):
        return None
    _no_keywords(ctx, "np.einsum()", keywords, ("optimize",))
    if "optimize" in keywords and static(ctx, keywords["optimize"]) not in EINSUM_OPTIMIZE:
        ctx.refuse(
            "np.einsum's optimize= must be False, True, 'greedy' or 'optimal' when an operand "
            "carries a derivative; write one of them as a constant"
        )
    operands = args[1:]
    parts, output = einsum_parts(ctx, static(ctx, args[0]), len(operands))
    letter = next(c for c in reversed(string.ascii_uppercase) if c not in "".join(parts))
    extra = letter if ctx.vectorized else ""
    terms = []
    for i, t in enumerate(tangents[1:]):
        if t is None:
            continue
        subs = [p + extra if j == i else p for j, p in enumerate(parts)]
        spec = B.const(",".join(subs) + "->" + output + extra)
        ops = [ctx.full(t, x) if j == i else x for j, x in enumerate(operands)]
        call = B.call(ctx.np_("einsum"), spec, *ops, **keywords)
        terms.append(Tangent(call, full=True))
    return ctx.add(*terms)


# -- tensordot, kron, vdot -------------------------------------------------------------------
def _bilinear(ctx, name: str, x, y, dx, dy, *extra: ast.expr) -> Tangent | None:
    """``f(x, y)`` linear in each: the helper ``name(dx, x, y, *extra, k, left)``."""
    terms = []
    if dx is not None:
        terms.append(helper(ctx, name, ctx.full(dx, x), x, y, *extra, k_arg(ctx), B.const(True)))
    if dy is not None:
        terms.append(helper(ctx, name, ctx.full(dy, y), y, x, *extra, k_arg(ctx), B.const(False)))
    return ctx.add(*terms)


@defrule(np.tensordot, np.linalg.tensordot)
def tensordot_rule(ctx, z, args, tangents, keywords):
    _no_keywords(ctx, "np.tensordot()", keywords, ("axes",))
    axes = argument(args, keywords, 2, "axes", B.const(2))
    if (len(tangents) > 2 and tangents[2] is not None) or ctx.is_active(axes):
        ctx.refuse("np.tensordot's axes= must not carry a derivative; pass integers")
    return _bilinear(ctx, "tensordot_tangent", args[0], args[1], tangents[0], tangents[1], axes)


@defrule(np.kron)
def kron_rule(ctx, z, args, tangents, keywords):
    return _bilinear(ctx, "kron_tangent", args[0], args[1], tangents[0], tangents[1])


@defrule(np.vdot)
def vdot_rule(ctx, z, args, tangents, keywords):
    """Real arrays: ``np.vdot`` is the sum of the products of the flattened operands (fmad
    differentiates real-valued code; vdot conjugates a complex first operand)."""
    terms = []
    for i, (t, other) in enumerate(zip(tangents[:2], (args[1], args[0]), strict=True)):
        if t is not None:
            terms.append(helper(ctx, "vdot_tangent", ctx.full(t, args[i]), other, k_arg(ctx)))
    return ctx.add(*terms)


# -- trace -----------------------------------------------------------------------------------
def _trace(ctx, x, t, offset, axis1, axis2, dtype) -> Tangent | None:
    if t is None or not keeps_derivative(ctx, dtype):
        return None
    axes = []
    for a in (axis1, axis2):
        value = static(ctx, a)
        if not ctx.vectorized or (isinstance(value, int) and value >= 0):
            axes.append(a)
        elif isinstance(value, int):  # counted from the end: the k axis is last
            axes.append(B.const(value - 1))
        else:
            ndim = B.call(ctx.np_("ndim"), x)
            axes.append(B.call(ctx.rt("tangent_axis"), a, ndim, k_arg(ctx)))
    call = B.call(ctx.np_("trace"), ctx.full(t, x), offset, axes[0], axes[1])
    return Tangent(call, full=True)


@defrule(np.trace, method("trace"))
def trace_rule(ctx, z, args, tangents, keywords):
    if any(t is not None for t in tangents[1:]):
        ctx.refuse("np.trace's offset= and axes must not carry a derivative; pass integers")
    _no_keywords(ctx, "np.trace()", keywords, ("offset", "axis1", "axis2", "dtype"))
    x = args[0]
    return _trace(
        ctx,
        x,
        tangents[0],
        argument(args, keywords, 1, "offset", B.const(0)),
        argument(args, keywords, 2, "axis1", B.const(0)),
        argument(args, keywords, 3, "axis2", B.const(1)),
        argument(args, keywords, 4, "dtype"),
    )


if hasattr(np.linalg, "trace"):  # numpy >= 2: the trace of the last two axes

    @defrule(np.linalg.trace)
    def linalg_trace_rule(ctx, z, args, tangents, keywords):
        _no_keywords(ctx, "np.linalg.trace()", keywords, ("offset", "dtype"))
        offset = keywords.get("offset", B.const(0))
        dtype = keywords.get("dtype")
        return _trace(ctx, args[0], tangents[0], offset, B.const(-2), B.const(-1), dtype)


helper_rule(la.tensordot_tangent, (0,))
helper_rule(la.kron_tangent, (0,))
helper_rule(la.vdot_tangent, (0,))
