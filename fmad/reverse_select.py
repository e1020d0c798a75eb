"""Which lines reverse mode masks to the elements ``np.where`` selects (``fmad_sel``,
:mod:`fmad.runtime_select`).

A branch ``a`` of ``np.where(c, a, b)`` made by an elementwise line (``np.log(p)``,
``x * 2.0``, ``-x``, an elementwise call, another ``np.where``) in the same block, bound once
and read by nothing else, is *masked*: its mask (the elements of ``a`` the output reads) is
computed where the ``np.where`` is transposed, and each contribution of its line is kept
there only. An operand of a masked line that is itself such a line (bound once, read by it
alone, in the same block) is masked too, with the mask brought to its shape, and so on up.
Everything else (a line read twice, in another block, not elementwise) is left as it was:
its adjoint is exactly 0 where nothing reads it, and 0 * an infinite partial is nan there.
A program without ``np.where`` gets no mask and costs nothing more.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np

from fmad import build as B
from fmad import runtime_select
from fmad.adjoints import before_unbroadcast
from fmad.rules.base import PARTIALS
from fmad.rules.elementwise import elementwise_functions

ARITHMETIC = {np.add, np.subtract, np.multiply, np.divide, np.power, np.float_power}
ELEMENTWISE = {f for f, _, _ in elementwise_functions()} | set(PARTIALS) | ARITHMETIC
ELEMENTWISE |= {np.negative, np.true_divide}
OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)


@dataclass
class Masks:
    """``mask[name]``: the name of the mask of a masked line; ``reads[z]``: the masked lines
    the line that made ``z`` reads, with the expression of its part of each one's mask
    (reading ``fmad_sel``); ``wrapped``: the lines whose contributions are masked (not a
    ``np.where``, whose own adjoint is 0 there already, nor ``x + y``...); ``checked``:
    the lines a branch reads that cannot be masked (read by another line too, or in
    another block), whose contributions refuse 0 * an infinite partial when called."""

    mask: dict[str, str] = field(default_factory=dict)
    reads: dict[str, list[tuple[str, ast.expr]]] = field(default_factory=dict)
    wrapped: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    defined: set[str] = field(default_factory=set)

    def statements(self, z: str) -> list[ast.stmt]:
        """Where the line that made ``z`` is transposed: its parts of the masks of the lines
        it reads (the first one emitted defines a mask, the later ones add with ``|``)."""
        out = []
        for x, expr in self.reads.get(z, ()):
            m = self.mask[x]
            if m in self.defined:
                expr = B.binop(B.name(m), ast.BitOr(), expr)
            self.defined.add(m)
            out.append(B.assign(m, expr))
        return out


def _is(function, obj) -> bool:
    try:
        return function is obj or function in obj
    except TypeError:
        return False


def select_masks(ctx, primal: list[ast.stmt], active: set) -> Masks:
    """The masks of ``primal`` (its statements and the final ``return``; see the module's
    docstring), ``ctx`` the reverse emitter (its ``function_of``, ``namer``, ``unit``)."""
    function_of = ctx.function_of
    reads: dict[str, int] = {}
    made: dict[str, ast.expr | None] = {}
    block: dict[str, int] = {}
    order: list[str] = []
    for number, body in enumerate(B.blocks(primal)):
        for s in body:
            # what a line reads that may take an adjoint from it (a comparison, a test or
            # any line without a derivative gives its operands none)
            own = [getattr(s, f, None) for f in ("value", "test", "iter", "msg")]
            if isinstance(s, ast.If | ast.While | ast.For):
                own = []
            elif isinstance(s, ast.Assign):
                stored = [n for t in s.targets for n in B.names(t, ast.Store)]
                own = own if any(n in active for n in stored) else []
            elif not isinstance(s, ast.Expr):
                own = [s]
            for n in [n for node in own if node is not None for n in B.names(node, ast.Load)]:
                reads[n] = reads.get(n, 0) + 1
            for t in getattr(s, "targets", [getattr(s, "target", None)]):
                for name in B.names(t, ast.Store) if t is not None else []:
                    once = name not in made and isinstance(s, ast.Assign)
                    made[name] = s.value if once and isinstance(t, ast.Name) else None
                    block[name] = number
                    order.append(name)
    out = Masks()
    if not any(_where(v, function_of) for v in made.values() if v is not None):
        return out  # no np.where: nothing to do

    def sel(attr: str) -> ast.expr:
        return B.attr(B.name(ctx.unit.inject(runtime_select, "fmad_sel")), attr)

    def operands(name: str) -> list[ast.expr]:
        value = made[name]
        if isinstance(value, ast.BinOp) and isinstance(value.op, OPERATORS):
            return [value.left, value.right]
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            return [value.operand]
        if isinstance(value, ast.Call) and not value.keywords:
            if _where(value, function_of) or _is(function_of(value), ELEMENTWISE):
                return list(value.args)
        return []

    def candidate(x: ast.expr, z: str) -> bool:
        return (
            isinstance(x, ast.Name)
            and x.id in active
            and made.get(x.id) is not None
            and block.get(x.id) == block[z]
            and bool(operands(x.id))
        )

    masked_reads: dict[str, int] = {}
    upstream: set[str] = set()  # the lines a branch reads, through elementwise lines
    parts: dict[str, list[tuple[str, object]]] = {}  # z -> (x, its part of x's mask)
    for z in reversed(order):  # each line after every line that reads it
        value = made.get(z)
        if value is None or z not in active:
            continue
        if masked_reads.get(z, 0) == reads.get(z, 0) > 0:  # read by masked lines only
            out.mask[z] = ctx.namer.fresh(f"{z}_read")
        elif z in upstream and operands(z) and not _zero_in_zero_out(value):
            out.checked.add(z)  # read elsewhere too: refused where it gives 0 * inf
        if z in upstream and z not in out.mask:
            for x in operands(z):
                if isinstance(x, ast.Name) and made.get(x.id) is not None:
                    upstream.add(x.id)
        if z not in out.mask and not _where(value, function_of):
            continue
        if _where(value, function_of):
            branches = [(value.args[i], ("branch", i)) for i in (1, 2)]
        else:
            branches = [(x, ("narrow", 0)) for x in operands(z)]
            if not _zero_in_zero_out(value):
                out.wrapped.add(z)
        for x, part in branches:
            if isinstance(x, ast.Name) and made.get(x.id) is not None:
                upstream.add(x.id)
            if candidate(x, z):
                masked_reads[x.id] = masked_reads.get(x.id, 0) + 1
                if (x.id, part) not in parts.setdefault(z, []):
                    parts[z].append((x.id, part))
    needed: set[str] = set()  # the masks a wrapped line reads, itself or further up
    for z in order:  # each line before the lines that read it
        if z in out.wrapped or any(x in needed for x, _ in parts.get(z, ())):
            needed.add(z)
    out.mask = {z: m for z, m in out.mask.items() if z in needed}
    for z, found in parts.items():
        value = made[z]
        for x, (kind, i) in found:
            if x not in out.mask:
                continue
            if kind == "branch":
                parent = B.name(out.mask[z]) if z in out.mask else B.const(None)
                call = B.call(sel("branch_mask"), value.args[0], B.name(x), B.const(i == 1), parent)
            else:
                call = B.call(sel("narrow"), B.name(out.mask[z]), B.name(x))
            out.reads.setdefault(z, []).append((x, call))
    return out


def _zero_in_zero_out(value: ast.expr) -> bool:
    """A line whose contributions are 0 wherever its adjoint is (``x + y``, ``-x``, ``x *
    2.0``, ``x / 2.0``): they need no mask, though its operands may."""
    if (
        isinstance(value, ast.UnaryOp)
        or isinstance(value, ast.BinOp)
        and isinstance(value.op, ast.Add | ast.Sub)
    ):
        return True
    if not isinstance(value, ast.BinOp) or not isinstance(value.op, ast.Mult | ast.Div):
        return False
    right = value.right
    if isinstance(value.op, ast.Mult) and isinstance(value.left, ast.Constant):
        right = value.left
    number = right.value if isinstance(right, ast.Constant) else None
    return (
        type(number) in (int, float)
        and number != 0
        and abs(number) != float("inf")
        and number == number
    )


def _where(value: ast.expr, function_of) -> bool:
    return (
        isinstance(value, ast.Call)
        and len(value.args) == 3
        and not value.keywords
        and function_of(value) is np.where
    )


def selected_only(ctx, expr: ast.expr, z: str) -> ast.expr:
    """``expr``, a contribution of the line that made ``z``: for a masked line, kept where
    its mask is; for a checked one, refused where it is nan and the adjoint 0; inside
    ``fmad_rev.unbroadcast(e, x)`` (before the sum over broadcast axes)."""
    masks: Masks = ctx.selected
    sel = B.name(ctx.unit.inject(runtime_select, "fmad_sel"))
    if z in masks.wrapped:
        other, attr = B.name(masks.mask[z]), "selected_only"
    else:
        other, attr = B.name(ctx.adjoint[z]), "zero_times_infinite"

    def wrap(e: ast.expr) -> ast.expr:
        return B.call(B.attr(sel, attr), e, other)

    return before_unbroadcast(expr, wrap)
