"""Tangents at transform time, the directions they belong to, and the algebra rules use.

A :class:`Tangent` is the tangent of one operand at transform time: the expression that
holds it (a name or a constant) and facts that let rules skip work (it has its value's full
shape; it is the folded identity seed; it is ``coef * base``...). A :class:`Direction` is
one thing differentiated with respect to: a scalar parameter, or an array parameter whose
``k`` elements travel together on a trailing axis. A :class:`Context` is what a rule sees:
the algebra of tangents in one direction (scale, add, negate, divide, broadcast, full).

Tangent layout: for a scalar parameter a tangent has the shape of its value, or any shape
that broadcasts to it (``1.0`` for ``d(x + b)/db``). For an array parameter of shape ``S``
with ``k`` elements, all ``k`` directions travel together on a *trailing* axis: the tangent of
a value of shape ``V`` has shape ``V + (k,)`` (or one that broadcasts to it). Numpy aligns
shapes from the right, so ``dx * y[..., None]`` is right whatever the ranks are, and the
gradient of a value comes out as ``V + S``, the Jacobian's usual layout.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from fmad import build as B
from fmad import runtime_seed as rs
from fmad.resolve import Scope


@dataclass(frozen=True)
class Tangent:
    """A tangent operand: an atom (a name or constant) and what is known about it."""

    expr: ast.expr
    full: bool = False  # known to have the full shape of its value (no broadcast needed)
    seed: bool = False  # the unmaterialised identity of an array parameter
    # (coef, t) when this tangent is coef[..., None] * t: a reduction of it is a contraction
    factors: tuple[ast.expr, ast.expr] | None = None
    container: bool = False  # the tangent of a list or tuple: a list of tangents
    # (coef, base) of a scalar parameter's ``coef * base``: summing it is a dot product
    product: tuple[ast.expr, ast.expr] | None = None
    # Bundled scalar parameters (one direction, a column each): ``row`` is parameter i's
    # seed, row i of the identity; ``inner`` the tangent ``factors`` scale when it is made
    # of rows; ``terms`` the tangents this one is the sum of. A reduction of such a tangent
    # meets each row with its coefficient (fmad.rows): no (N, k) array is made.
    row: int | None = None
    inner: Tangent | None = None
    terms: tuple[Tangent, ...] | None = None
    # ``factors`` is ``(coef, seed)``, the identity seed of an array parameter: the tangent
    # is ``coef`` on the diagonal, and exactly zero off it. ``coef[..., None] * seed`` would
    # turn one element's inf into ``inf * 0 = nan`` in every other element's direction.
    diagonal: bool = False
    # the base (``factors[1]``, or this tangent when it has none) is the identity seed or a
    # part of it (``dp_dp[0]``): its zeros are structural, and stay zero when scaled
    seed_zeros: bool = False

    @property
    def of_rows(self) -> bool:
        """Made of seed rows: a reduction can contract it row by row."""
        return self.row is not None or self.terms is not None or self.inner is not None


@dataclass(frozen=True)
class Direction:
    """One thing we differentiate with respect to."""

    name: str
    shape: tuple[int, ...] | None = None  # None: scalar; else the array parameter's shape

    @property
    def k(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 1

    @property
    def vectorized(self) -> bool:
        return self.shape is not None


class Emitter(Protocol):
    """What the tangent algebra needs from the pass that emits the code (``Forward``)."""

    def partial(self, coef: ast.expr) -> ast.expr: ...
    def is_partial(self, name: str) -> bool: ...
    def module(self, which: str) -> ast.expr: ...
    def inject(self, obj: Any, hint: str) -> str: ...
    def refuse(self, message: str, node: ast.AST | None = None) -> NoReturn: ...
    def is_active(self, node: ast.expr, d: str) -> bool: ...

    # the flattened function, for the rules that read what a name was assigned
    flat: ast.FunctionDef
    scope: Scope
    assign_counts: dict[str, int]
    maybe_lists: set[str]  # names that may hold a list when the code runs


def zero() -> ast.expr:
    """The zero tangent of a scalar direction (also broadcasts in a vectorized one)."""
    return ast.Constant(0.0)


def split_constant(e: ast.expr) -> tuple[Any, ast.expr | None]:
    """``e`` as ``(k, rest)``: the number ``k`` times ``rest`` (``rest`` None: ``e`` is ``k``).

    A chain rule's constant factors (``2.0 * r`` of a square, the ``-1`` of a negation) are
    kept apart from the factor that has the value's size: they multiply at transform time,
    and the generated code applies them once, to the reduced or final tangent."""
    v = B.constant_value(e)
    if v is not None:
        return v, None
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        k, rest = split_constant(e.operand)
        return -k, rest
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult):
        for a, b in ((e.left, e.right), (e.right, e.left)):
            va = B.constant_value(a)
            if va is not None:
                k, rest = split_constant(b)
                return va * k, rest
    return 1, e


def scaled(k: Any, rest: ast.expr | None) -> ast.expr:
    """``k * rest`` (``rest`` None: the number ``k``), ``1 *`` and ``-1 *`` folded."""
    if rest is None:
        return B.const(k)
    return product(B.const(k), rest)


def product(a: ast.expr, b: ast.expr) -> ast.expr:
    """``a * b`` with the constants 1 and -1 folded."""
    for x, y in ((a, b), (b, a)):
        if B.is_const(x, 1):
            return y
        if B.is_const(x, -1):
            return B.neg(y)
    return B.binop(a, ast.Mult(), b)


class Context:
    """What a rule sees: the tangent algebra of one direction, emitting expressions.

    ``fwd`` is the emitter (see :class:`Emitter`): it names compound factors once per
    statement, and knows which operands are active and how the function binds names.
    """

    def __init__(self, fwd: Emitter, direction: Direction) -> None:
        self.fwd = fwd
        self.direction = direction
        self.vectorized = direction.vectorized

    # what rules may ask of the emitter
    def refuse(self, message: str, node: ast.AST | None = None) -> NoReturn:
        self.fwd.refuse(message, node)

    def is_active(self, node: ast.expr) -> bool:
        return self.fwd.is_active(node, self.direction.name)

    @property
    def flat(self) -> ast.FunctionDef:
        """The flattened function being differentiated."""
        return self.fwd.flat

    @property
    def scope(self) -> Scope:
        return self.fwd.scope

    @property
    def assign_counts(self) -> dict[str, int]:
        return self.fwd.assign_counts

    @property
    def maybe_lists(self) -> set[str]:
        return self.fwd.maybe_lists

    # modules and helpers the generated code reads
    def module(self, which: str) -> ast.expr:
        return self.fwd.module(which)

    def np_(self, *attrs: str) -> ast.expr:
        return B.attr(self.module("numpy"), *attrs) if attrs else self.module("numpy")

    def rt(self, attr: str) -> ast.expr:
        return B.attr(self.module("fmad.runtime"), attr)

    def inject(self, obj: Any, hint: str) -> ast.expr:
        return B.name(self.fwd.inject(obj, hint))

    # tangent algebra
    def expand(self, primal: ast.expr) -> ast.expr:
        """A primal factor in the tangent's layout (a trailing axis for vectorized ones)."""
        if not self.vectorized or B.constant_value(primal) is not None:
            return primal
        # np.asarray(c)[..., None]: c with a trailing axis (np.expand_dims is ~10x slower)
        return B.subscript(
            B.call(self.np_("asarray"), primal),
            B.tuple_([ast.Constant(Ellipsis), ast.Constant(None)]),
        )

    # A tangent is kept as ``coef * base``: ``coef`` a primal value (a named partial
    # derivative), ``base`` a tangent. A chain of scalings multiplies coefficients only:
    # ``c2 * (c1 * T)`` is ``(c2 * c1) * T``, computed on the value's size and, because each
    # partial is named once per statement (``Forward.partial``), shared by every direction.
    # For an array parameter, ``T`` is often the folded seed (``X`` for ``X @ w``): a
    # reduction of ``c * X`` is then one matrix-vector product (``c @ X``), and the
    # ``(N, k)`` products nobody reads are dropped by the optimizer. That is how forward mode
    # gets backprop's cost on a loss like ``mean(f(X @ w + b))``. For a scalar parameter only
    # pure coefficients (``base`` 1) are tracked, so its code keeps the readable chain-rule
    # form ``dloss_dw = loss_partial * dr_dw``.
    def split(self, t: Tangent) -> tuple[ast.expr, ast.expr]:
        """``t`` as ``(coef, base)``."""
        if t.factors is not None:
            return t.factors
        if not self.vectorized and B.constant_value(t.expr) is not None:
            return t.expr, B.const(1.0)
        return B.const(1), t.expr

    def factored(
        self, coef: ast.expr, base: ast.expr, full: bool, of: Tangent | None = None
    ) -> Tangent:
        """The tangent ``coef * base``, remembering its factors where they are useful.

        ``coef`` may be ``k * c``, a number times a named factor: the tangent's own code
        reads the partial ``k * c`` (named once, shared by the directions, dropped when no
        one reads it), while a reduction of the tangent multiplies by ``k`` once."""
        k, rest = split_constant(coef)
        # -c stays inline where Python adds terms (a - c, not a + c_neg), and -k * c is the
        # negation of the partial k * c another direction reads
        negative = isinstance(k, int | float) and k < 0 and rest is not None
        named = B.neg(self.fwd.partial(scaled(-k, rest))) if negative else self.fwd.partial(coef)
        if not self.vectorized:
            if B.is_const(base, 1):
                keep = rest is None or (
                    isinstance(rest, ast.Name) and (k != 1 or self.fwd.is_partial(rest.id))
                )
                return Tangent(named, full=full, factors=(coef, base) if keep else None)
            expr = product(named, base)
            parts = (coef, base) if isinstance(expr, ast.BinOp) else None
            return Tangent(expr, full=full, product=parts)
        # ``of`` is the seed itself, or a multiple of it: the new tangent is one too
        diagonal = of is not None and (of.seed or of.diagonal)
        seed_zeros = of is not None and (of.seed or of.seed_zeros)
        if B.is_const(coef, 1):
            expr = base
        elif B.is_const(coef, -1):
            expr = B.neg(base)
        elif seed_zeros:
            expr = B.call(self.inject(rs.on_seed, "on_seed"), named, base)
        else:
            expr = B.binop(self.expand(named), ast.Mult(), base)
        inner = of.inner if of is not None and of.factors is not None else of
        if inner is not None and not inner.of_rows:
            inner = None
        return Tangent(
            expr,
            full=full,
            factors=(coef, base),
            inner=inner,
            diagonal=diagonal,
            seed_zeros=seed_zeros,
        )

    def scale(self, coef: ast.expr, t: Tangent | None, full: bool = False) -> Tangent | None:
        """``coef * t``, where ``coef`` is a primal value broadcasting to the result.

        ``full=True``: ``coef`` has the result's whole shape, so the product has it too.
        """
        if t is None or B.is_const(coef, 0):
            return None
        if B.is_const(coef, 1):
            return t
        c0, base = self.split(t)
        k0, r0 = split_constant(c0)
        k1, r1 = split_constant(coef)
        rest = r0 if r1 is None else r1 if r0 is None else product(r1, r0)
        named = self.fwd.partial(rest) if rest is not None else None
        return self.factored(scaled(k1 * k0, named), base, t.full or full, of=t)

    def divide(
        self, t: Tangent | None, den: ast.expr, full: bool = False, numpy: bool = False
    ) -> Tangent | None:
        """``t / den``; ``full=True``: ``den`` has the result's whole shape; ``numpy=True``:
        a constant divided the numpy way (1/0 is inf, as numpy's own functions give)."""
        if t is None:
            return None
        if B.is_const(den, 1):
            return t
        c0, base = self.split(t)
        den = self.fwd.partial(den)
        k0, r0 = split_constant(c0)
        if r0 is None and k0 == 1 and not (numpy or self.vectorized or B.is_const(base, 1)):
            # dx / y, not (1 / y) * dx: one operation (Python's division, as the primal's)
            return Tangent(B.binop(base, ast.Div(), den), full=t.full or full)
        if r0 is None:
            coef = B.call(self.np_("divide"), c0, den) if numpy else B.binop(c0, ast.Div(), den)
            return self.factored(self.fwd.partial(coef), base, t.full or full, of=t)
        # (k * r) / den is k * (r / den): the constant stays outside
        coef = self.fwd.partial(B.binop(r0, ast.Div(), den))
        return self.factored(scaled(k0, coef), base, t.full or full, of=t)

    def negate(self, t: Tangent | None) -> Tangent | None:
        if t is None:
            return None
        return (
            self.scale(B.const(-1), t, t.full)
            if self.vectorized or t.factors or B.constant_value(t.expr) is not None
            else Tangent(B.neg(t.expr), full=t.full)
        )

    def add(self, *terms: Tangent | None) -> Tangent | None:
        present = [t for t in terms if t is not None]
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        full = all(t.full for t in present)
        parts = [self.split(t) for t in present]
        if len({B.structure(base) for _, base in parts}) == 1 and (
            self.vectorized or all(t.factors for t in present)
        ):
            # c1 * T + c2 * T = (c1 + c2) * T: still one base
            coef = self.combined([c for c, _ in parts])
            return self.factored(coef, parts[0][1], full, of=present[0])
        expr = present[0].expr
        for t in present[1:]:
            if isinstance(t.expr, ast.UnaryOp) and isinstance(t.expr.op, ast.USub):
                expr = B.binop(expr, ast.Sub(), t.expr.operand)
            elif B.constant_value(t.expr) is not None and B.constant_value(t.expr) < 0:
                expr = B.binop(expr, ast.Sub(), B.const(-B.constant_value(t.expr)))
            else:
                expr = B.binop(expr, ast.Add(), t.expr)
        terms = None
        if self.vectorized and all(t.of_rows for t in present):
            # a sum of tangents made of rows is one too: a reduction takes it term by term
            terms = tuple(s for t in present for s in (t.terms or (t,)))
        return Tangent(expr, full=full, terms=terms)

    def add_operands(
        self, dx: Tangent | None, x: ast.expr, dy: Tangent | None, y: ast.expr, subtract=False
    ) -> Tangent | None:
        """The tangent of ``x + y`` (``x - y``): each term may be smaller than the result,
        but when both have their operand's full shape, the sum has the result's."""
        ty = self.broadcast(dy, x)
        t = self.add(self.broadcast(dx, y), self.negate(ty) if subtract else ty)
        if t is not None and dx is not None and dy is not None and dx.full and dy.full:
            t = dataclasses.replace(t, full=True)
        return t

    def combined(self, coefs: list[ast.expr]) -> ast.expr:
        """The coefficient ``c1 + c2 + ...``, the first one's constant factor kept outside
        (``-a + -b`` is ``-(a + b)``, ``a - 2.0 * b`` one subtraction and one product)."""
        split = [split_constant(c) for c in coefs]
        k = split[0][0]
        if any(ki == 0 or isinstance(ki, complex) for ki, _ in split):
            k = 1
        total: ast.expr | None = None
        for ki, ri in split:
            q = ki / k if k != 1 else ki
            term = B.const(q) if ri is None else ri
            sign = ast.Add()
            if ri is not None and q == -1:
                sign = ast.Sub()
            elif ri is not None and q != 1:
                term = B.binop(B.const(q), ast.Mult(), ri)
            if total is None:
                total = term if isinstance(sign, ast.Add) else B.neg(term)
            else:
                total = B.binop(total, sign, term)
        return scaled(k, self.fwd.partial(total))

    def contracted(self, coef: ast.expr, call: Any) -> ast.expr:
        """A reduction of ``coef * base``: ``call(c)`` reduces ``c * base``; a constant
        factor of ``coef`` multiplies the reduced value, not every element."""
        k, rest = split_constant(coef)
        if rest is None:
            return call(coef)
        return scaled(k, call(rest))

    def row_pairs(
        self, t: Tangent, c: ast.expr | None = None, budget: list[int] | None = None
    ) -> list[tuple[ast.expr | None, ast.expr | None, int]] | None:
        """``c * t`` for a tangent made of seed rows, as ``(c_i, coef_i, i)``: the sum of
        ``c_i * coef_i`` (None: 1) over the value is the derivative in parameter ``i``.
        Each coefficient a scaled sum meets is one product of the value's size (as in
        backpropagation); None when the tangent is not made of rows, or too big a tree."""
        budget = [64] if budget is None else budget
        budget[0] -= 1
        if budget[0] < 0:
            return None
        if t.row is not None:
            return [(c, None, t.row)]
        if t.terms is not None:
            out: list[tuple[ast.expr | None, ast.expr | None, int]] = []
            for s in t.terms:
                pairs = self.row_pairs(s, c, budget)
                if pairs is None:
                    return None
                out.extend(pairs)
            return out
        if t.factors is None or t.inner is None:
            return None
        coef = t.factors[0]
        if t.inner.row is not None:
            return [(c, coef, t.inner.row)]
        if c is not None:
            k0, r0 = split_constant(c)
            k1, r1 = split_constant(coef)
            rest = r0 if r1 is None else r1 if r0 is None else product(r0, r1)
            coef = scaled(k0 * k1, self.fwd.partial(rest) if rest is not None else None)
        return self.row_pairs(t.inner, coef, budget)

    def broadcast(self, t: Tangent | None, other: ast.expr) -> Tangent | None:
        """``t`` as a term of ``x (+) other``: ``other`` may make the result bigger than x."""
        if t is None:
            return None
        keeps_shape = B.constant_value(other) is not None
        return Tangent(
            t.expr,
            full=t.full and keeps_shape,
            seed=t.seed and keeps_shape,
            factors=t.factors,
            diagonal=t.diagonal,
            seed_zeros=t.seed_zeros,
            row=t.row,
            inner=t.inner,
            terms=t.terms,
        )

    def full(self, t: Tangent, value: ast.expr) -> ast.expr:
        """``t`` broadcast to its value's full shape (a no-op when known to be full)."""
        if t.full and B.constant_value(t.expr) is None:
            return t.expr
        args = [t.expr, value]
        if self.vectorized:
            args.append(B.const(self.direction.k))
        return B.call(self.rt("full"), *args)
