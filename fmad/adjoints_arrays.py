"""Transposes of the array rules :mod:`fmad.adjoints` does not hold: list displays,
rearrangements and joins, traces and cumulative sums, moments and order statistics,
contractions (``np.einsum``, ``np.tensordot``, ``np.inner``, ``np.outer``) and linear
algebra. The helpers they call are :mod:`fmad.runtime_transpose`'s (``fmad_tr``).

- A rearrangement or join (``np.flip``, ``np.roll``, ``np.pad``, ``np.tile``, ``np.diag``,
  ``np.concatenate``...) is transposed by applying it to labels (``gather_adjoint``): exact,
  whatever its options; only its first argument may carry a derivative.
- The adjoint of a list display ``xs = [a, b]`` is a list of adjoints (``fmad_tr.Parts``):
  item ``i`` of it goes to ``a``, ``b``...
- Rules whose forward helper is linear in the tangent and hard to transpose by hand
  (``np.quantile``, ``np.cumprod``, ``np.prod``, ``np.linalg.norm`` with options, the matrix
  functions of decompositions) use that helper's Jacobian (``dense_adjoint``): forward mode's
  conventions at ties and kinks, at a cost of (size of x) x (size of the result).
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import build as B
from fmad import runtime_arrays, runtime_linalg
from fmad.adjoints import ADJOINTS, defadjoint
from fmad.adjoints_elementwise import no_keywords, tr
from fmad.rules.base import is_none, method


def const(node):
    """The value of a constant argument (a string too), else None."""
    return node.value if isinstance(node, ast.Constant) else None


def only_first(ctx, active, what: str) -> None:
    if any(active[1:]):
        ctx.refuse(f"{what} with an argument other than the array carrying a derivative")


def _bind(ctx, args, keywords, names: tuple[str, ...], what: str) -> dict:
    given = dict(zip(names, args[1:], strict=False))
    for key, node in keywords.items():
        if key not in names or key in given:
            ctx.refuse(f"{what} with {key}=")
        given[key] = node
    if len(args) - 1 > len(names):
        ctx.refuse(f"{what} with more than {len(names)} further arguments")
    return given


@defadjoint(ast.List, ast.Tuple)
def display_adjoint(ctx, g, z, args, keywords, active):
    return [(i, B.subscript(g, B.const(i))) for i in range(len(args)) if active[i]]


# -- rearrangements and joins ----------------------------------------------------------------
def _gather(func: str, is_method: bool = False, single: bool = False):
    def gather_rule(ctx, g, z, args, keywords, active):
        label = f"'.{func}()'" if is_method else f"np.{func}"
        only_first(ctx, active, label)
        if single and len(args) != 1:
            ctx.refuse(f"{label} of several arrays")
        f = B.const(func) if is_method else ctx.np_(func)
        return [(0, B.call(tr(ctx, "gather_adjoint"), g, f, *args, **keywords))]

    return gather_rule


for _name in (
    "flip fliplr flipud roll rot90 moveaxis swapaxes rollaxis squeeze expand_dims broadcast_to "
    "tile repeat take take_along_axis diag diagonal triu tril concatenate stack hstack vstack "
    "dstack column_stack"
).split():
    ADJOINTS[getattr(np, _name)] = _gather(_name)
for _name in ("atleast_1d", "atleast_2d", "atleast_3d"):
    ADJOINTS[getattr(np, _name)] = _gather(_name, single=True)
for _name in ("transpose", "swapaxes", "squeeze", "repeat", "take", "diagonal"):
    ADJOINTS[method(_name)] = _gather(_name, is_method=True)

PAD_MODES = ("constant", "edge", "wrap", "symmetric", "reflect")


@defadjoint(np.pad)
def pad_adjoint(ctx, g, z, args, keywords, active):
    """Padding copies items (or writes a constant, labelled 0: no item)."""
    only_first(ctx, active, "np.pad")
    names = ("pad_width", "mode", "stat_length", "constant_values", "end_values", "reflect_type")
    given = _bind(ctx, args, keywords, names, "np.pad")
    if any(k in given for k in ("stat_length", "end_values")):
        ctx.refuse("np.pad with stat_length= or end_values=")
    for key in ("constant_values", "reflect_type"):
        given.pop(key, None)
    mode = given.get("mode", B.const("constant"))
    if const(mode) not in PAD_MODES:
        ctx.refuse(f"np.pad with mode={ast.unparse(mode)} (fmad transposes {', '.join(PAD_MODES)})")
    odd = keywords.get("reflect_type")
    if odd is not None and const(odd) != "even":
        ctx.refuse("np.pad with reflect_type= other than 'even'")
    return [(0, B.call(tr(ctx, "gather_adjoint"), g, ctx.np_("pad"), args[0], **given))]


def _trace(axes: tuple[int, int]):
    def trace_adjoint(ctx, g, z, args, keywords, active):
        only_first(ctx, active, "a trace")
        given = _bind(ctx, args, keywords, ("offset", "axis1", "axis2"), "a trace")
        offset = given.get("offset", B.const(0))
        a1 = given.get("axis1", B.const(axes[0]))
        a2 = given.get("axis2", B.const(axes[1]))
        return [(0, B.call(tr(ctx, "trace_adjoint"), g, args[0], offset, a1, a2))]

    return trace_adjoint


ADJOINTS[np.trace] = ADJOINTS[method("trace")] = _trace((0, 1))
if hasattr(np.linalg, "trace"):
    ADJOINTS[np.linalg.trace] = _trace((-2, -1))


@defadjoint(np.cumsum, method("cumsum"))
def cumsum_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.cumsum")
    given = _bind(ctx, args, keywords, ("axis",), "np.cumsum")
    return [(0, B.call(tr(ctx, "cumsum_adjoint"), g, args[0], given.get("axis", B.const(None))))]


# -- moments, order statistics, products -----------------------------------------------------
def _moment(std: bool):
    def moment_adjoint(ctx, g, z, args, keywords, active):
        only_first(ctx, active, "np.var/np.std")
        given = _bind(ctx, args, keywords, ("axis", "dtype", "out", "ddof", "keepdims"), "np.var")
        if not all(is_none(given.get(k)) for k in ("dtype", "out")):
            ctx.refuse("np.var/np.std with dtype= or out=")
        axis = given.get("axis", B.const(None))
        keepdims = given.get("keepdims", B.const(False))
        ddof = given.get("ddof", B.const(0))
        helper = tr(ctx, "moment_adjoint")
        return [(0, B.call(helper, g, args[0], B.name(z), axis, keepdims, ddof, B.const(std)))]

    return moment_adjoint


ADJOINTS[np.var] = ADJOINTS[method("var")] = _moment(False)
ADJOINTS[np.std] = ADJOINTS[method("std")] = _moment(True)


def dense(ctx, g, x, helper, hint: str, *rest) -> ast.expr:
    """``fmad_tr.dense_adjoint(g, x, helper, *rest)``: the Jacobian of a forward helper."""
    return B.call(tr(ctx, "dense_adjoint"), g, x, ctx.inject(helper, hint), *rest)


def _quantile(scale: float | None):
    names = ("q", "axis", "out", "overwrite_input", "method", "keepdims")
    if scale is None:
        names = ("axis", "out", "overwrite_input", "keepdims")

    def quantile_adjoint(ctx, g, z, args, keywords, active):
        only_first(ctx, active, "a quantile")
        given = _bind(ctx, args, keywords, names, "a quantile")
        if not is_none(given.get("out")) or const(given.get("overwrite_input")):
            ctx.refuse("a quantile with out= or overwrite_input=")
        if given.get("method") is not None and const(given["method"]) != "linear":
            ctx.refuse("a quantile with a method= other than 'linear'")
        q = given.get("q", B.const(0.5))
        axis = given.get("axis", B.const(None))
        keepdims = given.get("keepdims", B.const(False))
        call = B.call(
            tr(ctx, "quantile_adjoint"), g, args[0], q, axis, keepdims, B.const(scale or 1.0)
        )
        return [(0, call)]

    return quantile_adjoint


ADJOINTS[np.median] = _quantile(None)
ADJOINTS[np.percentile] = _quantile(100.0)
ADJOINTS[np.quantile] = _quantile(1.0)


@defadjoint(np.cumprod, method("cumprod"))
def cumprod_adjoint(ctx, g, z, args, keywords, active):
    only_first(ctx, active, "np.cumprod")
    axis = _bind(ctx, args, keywords, ("axis",), "np.cumprod").get("axis", B.const(None))
    tangent = runtime_arrays.cumprod_tangent
    return [(0, dense(ctx, g, args[0], tangent, "cumprod_tangent", args[0], B.name(z), axis))]


# -- contractions ----------------------------------------------------------------------------
@defadjoint(np.einsum)
def einsum_adjoint(ctx, g, z, args, keywords, active):
    if set(keywords) - {"optimize"}:
        ctx.refuse("np.einsum with keywords other than optimize=")
    if active[0] or not isinstance(const(args[0]), str):
        ctx.refuse("np.einsum without its subscripts written as a string")
    helper = tr(ctx, "einsum_adjoint")
    return [
        (i, B.call(helper, g, B.const(i - 1), args[0], *args[1:]))
        for i in range(1, len(args))
        if active[i]
    ]


def _contraction(subscripts: str):
    def contraction_adjoint(ctx, g, z, args, keywords, active):
        a, b = args[:2]
        rest = list(args[2:]) + list(keywords.values())
        if len(rest) > 1 or (keywords and set(keywords) != {"axes"}):
            ctx.refuse("this contraction with further arguments")
        spec = B.call(tr(ctx, subscripts), a, b, *rest)
        helper = tr(ctx, "einsum_adjoint")
        return [(i, B.call(helper, g, B.const(i), spec, a, b)) for i in (0, 1) if active[i]]

    return contraction_adjoint


ADJOINTS[np.tensordot] = _contraction("tensordot_subscripts")
ADJOINTS[np.inner] = _contraction("inner_subscripts")
if hasattr(np.linalg, "tensordot"):
    ADJOINTS[np.linalg.tensordot] = ADJOINTS[np.tensordot]
ADJOINTS[method("dot")] = ADJOINTS[np.dot]
if hasattr(np.linalg, "matmul"):
    ADJOINTS[np.linalg.matmul] = ADJOINTS[np.matmul]


@defadjoint(np.outer)
def outer_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.outer")
    helper = tr(ctx, "outer_adjoint")
    a, b = args
    return [
        (i, B.call(helper, g, args[i], b if i == 0 else a, B.const(i == 0)))
        for i in (0, 1)
        if active[i]
    ]


# -- linear algebra --------------------------------------------------------------------------
@defadjoint(np.linalg.inv)
def inv_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.linalg.inv")
    return [(0, B.call(tr(ctx, "inv_adjoint"), g, B.name(z)))]


@defadjoint(np.linalg.solve)
def solve_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.linalg.solve")
    a, b = args
    helper = tr(ctx, "solve_adjoint")
    return [(i, B.call(helper, g, a, b, B.name(z), B.const(i == 0))) for i in (0, 1) if active[i]]


@defadjoint(np.linalg.det)
def det_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.linalg.det")
    return [(0, B.call(tr(ctx, "det_adjoint"), g, args[0]))]


@defadjoint(np.linalg.matrix_power)
def matrix_power_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.linalg.matrix_power")
    only_first(ctx, active, "np.linalg.matrix_power")
    a, n = args
    helper = runtime_linalg.matrix_power_tangent
    return [(0, dense(ctx, g, a, helper, "matrix_power_tangent", a, n))]


def _svdvals(ctx, g, z, args, keywords, active):
    if set(keywords) - {"compute_uv"} or const(keywords.get("compute_uv")) is not False:
        if args[1:] or keywords:
            ctx.refuse("np.linalg.svd returning its vectors (compute_uv=True)")
    if len(args) > 1:
        ctx.refuse("np.linalg.svd with positional options")
    helper = runtime_linalg.svdvals_tangent
    return [(0, dense(ctx, g, args[0], helper, "svdvals_tangent", args[0]))]


ADJOINTS[np.linalg.svd] = _svdvals
if hasattr(np.linalg, "svdvals"):
    ADJOINTS[np.linalg.svdvals] = _svdvals


@defadjoint(np.linalg.norm)
def norm_adjoint(ctx, g, z, args, keywords, active):
    """The 2-norm of everything: ``g x / |x|`` (0 at x = 0, as in forward mode); with
    ``ord``, ``axis`` or ``keepdims``: forward mode's helper's Jacobian."""
    only_first(ctx, active, "np.linalg.norm")
    x = args[0]
    if len(args) == 1 and not keywords:
        return [(0, B.call(tr(ctx, "norm2_adjoint"), g, x, B.name(z)))]
    given = _bind(ctx, args, keywords, ("ord", "axis", "keepdims"), "np.linalg.norm")
    none = B.const(None)
    order, axis = given.get("ord", none), given.get("axis", none)
    keepdims = given.get("keepdims", B.const(False))
    return [(0, B.call(tr(ctx, "norm_adjoint"), g, x, order, axis, keepdims, B.const("norm")))]
