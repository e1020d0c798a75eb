"""Reverse mode's transposes of the functions that return several arrays: ``np.linalg``'s
``slogdet``, ``eigh``, ``qr`` (``mode='reduced'`` and ``'r'``), ``svd`` with its vectors and
``lstsq``, their named fields (``.logabsdet``, ``.eigenvectors``, ``.Q``, ``.Vh``...), and
the helpers of generated code that return a tuple of tangents (``fmad_la.eigh_tangent``...).

Their result is a *container* (``SEVERAL`` in :mod:`fmad.reverse_containers`), like the
list ``np.split`` returns: unpacking, indexing and the fields take it apart, and its adjoint
is a list, one adjoint per item (``ZERO`` for an item nothing read). The transposes
(:mod:`fmad.runtime_multi`, ``fmad_multi`` in the printed code) take that list.
"""

from __future__ import annotations

import ast

import numpy as np

from fmad import (
    adjoints_helpers,  # noqa: F401 - the rows of generated code's helpers first
    runtime_multi,
)
from fmad import build as B
from fmad import runtime_linalg as la
from fmad.adjoints import ADJOINTS, defadjoint
from fmad.adjoints_arrays import _bind, const
from fmad.adjoints_elementwise import no_keywords
from fmad.rules.base import HELPER_ROWS, attribute
from fmad.rules.decompositions import RESULT_FIELDS

# how many items each returns
COUNTS = {
    np.linalg.slogdet: 2,
    np.linalg.eigh: 2,
    np.linalg.lstsq: 4,
    np.linalg.qr: 2,
    np.linalg.svd: 3,
    la.eigh_tangent: 2,
    la.qr_tangent: 2,
    la.svd_tangent: 3,
    la.lstsq_tangent: 4,
}


def multi(ctx, attr: str) -> ast.expr:
    """``fmad_multi.attr``: a helper of :mod:`fmad.runtime_multi` in the printed code."""
    return B.attr(B.name(ctx.unit.inject(runtime_multi, "fmad_multi")), attr)


def _several(ctx, z: str, what: str) -> None:
    if z not in ctx.containers:
        ctx.refuse(f"{what} with an option that is not a constant")


@defadjoint(np.linalg.slogdet)
def slogdet_adjoint(ctx, g, z, args, keywords, active):
    no_keywords(ctx, keywords, "np.linalg.slogdet")
    _several(ctx, z, "np.linalg.slogdet")
    return [(0, B.call(multi(ctx, "slogdet_adjoint"), g, args[0]))]


@defadjoint(np.linalg.eigh)
def eigh_adjoint(ctx, g, z, args, keywords, active):
    uplo = _bind(ctx, args, keywords, ("UPLO",), "np.linalg.eigh").get("UPLO", B.const("L"))
    if const(uplo) not in ("L", "U", "l", "u"):
        ctx.refuse("np.linalg.eigh with a UPLO= that is not a constant 'L' or 'U'")
    _several(ctx, z, "np.linalg.eigh")
    lower = B.const(const(uplo) in ("L", "l"))
    return [(0, B.call(multi(ctx, "eigh_adjoint"), g, args[0], B.name(z), lower))]


@defadjoint(np.linalg.qr)
def qr_adjoint(ctx, g, z, args, keywords, active):
    mode = _bind(ctx, args, keywords, ("mode",), "np.linalg.qr").get("mode", B.const("reduced"))
    if const(mode) not in ("reduced", "r"):
        ctx.refuse("np.linalg.qr with a mode= other than the constant 'reduced' or 'r'")
    if const(mode) == "reduced":
        _several(ctx, z, "np.linalg.qr")
    call = B.call(multi(ctx, "qr_adjoint"), g, args[0], B.name(z), mode)
    return [(0, call)]


_svdvals = ADJOINTS[np.linalg.svd]


@defadjoint(np.linalg.svd)
def svd_adjoint(ctx, g, z, args, keywords, active):
    names = ("full_matrices", "compute_uv", "hermitian")
    given = _bind(ctx, args, keywords, names, "np.linalg.svd")
    if const(given.get("hermitian", B.const(False))) is not False:
        ctx.refuse("np.linalg.svd with hermitian= other than the constant False")
    uv = given.get("compute_uv", B.const(True))
    if const(uv) is False and z not in ctx.containers:
        return _svdvals(ctx, g, z, args[:1], {"compute_uv": uv}, active)
    if const(uv) is not True or const(given.get("full_matrices", B.const(True))) is None:
        ctx.refuse("np.linalg.svd with compute_uv= or full_matrices= that is not a constant")
    _several(ctx, z, "np.linalg.svd")
    return [(0, B.call(multi(ctx, "svd_adjoint"), g, B.name(z)))]


@defadjoint(np.linalg.lstsq)
def lstsq_adjoint(ctx, g, z, args, keywords, active):
    _bind(ctx, args, keywords, ("b", "rcond"), "np.linalg.lstsq")
    if len(args) < 2:
        ctx.refuse("np.linalg.lstsq with its right-hand side as a keyword")
    _several(ctx, z, "np.linalg.lstsq")
    a, b = args[:2]
    helper = multi(ctx, "lstsq_adjoint")
    return [(i, B.call(helper, g, a, b, B.name(z), B.const(i == 0))) for i in (0, 1) if active[i]]


def _field(name: str, index: int):
    def field_adjoint(ctx, g, z, args, keywords, active):
        x = args[0]
        if not (isinstance(x, ast.Name) and x.id in ctx.containers):
            ctx.refuse(
                f"'.{name}' of a value fmad does not know is the result of np.linalg.eigh, "
                f"slogdet, qr or svd; index it instead ({ast.unparse(x)}[{index}])"
            )
        return [(0, B.call(ctx.forms_("item_adjoint"), g, x, B.const(index)))]

    return field_adjoint


for _name, _index in RESULT_FIELDS.items():
    ADJOINTS[attribute(_name)] = _field(_name, _index)


def _helper_tuple(helper, previous):
    """A helper of generated code returning a tuple of tangents: each item's Jacobian."""
    slots, fixed = HELPER_ROWS[helper]
    names = list(helper.__code__.co_varnames[: helper.__code__.co_argcount])
    kpos = names.index("k")

    def helper_tuple_adjoint(ctx, g, z, args, keywords, active):
        if z not in ctx.containers:
            return previous(ctx, g, z, args, keywords, active)
        if keywords or len(args) <= kpos:
            ctx.refuse(f"{helper.__name__}() with keyword arguments")
        for i, a in enumerate(active):
            if a and i not in slots and (fixed is None or i in fixed):
                ctx.refuse(f"{helper.__name__}() with a derivative through its argument {i}")
        name = ctx.inject(helper, helper.__name__)
        call = multi(ctx, "helper_parts_adjoint")
        spots, count = B.const(tuple(slots)), B.const(COUNTS[helper])
        return [
            (i, B.call(call, g, B.const(i), spots, B.const(kpos), name, count, *args))
            for i in slots
            if i < len(args) and active[i]
        ]

    return helper_tuple_adjoint


for _helper in (la.eigh_tangent, la.qr_tangent, la.svd_tangent, la.lstsq_tangent):
    ADJOINTS[_helper] = _helper_tuple(_helper, ADJOINTS[_helper])
