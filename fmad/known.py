"""What the forward pass knows about each variable's tangent, per direction.

Every tangent variable has one name (``dz_dw``), chosen once. For a variable assigned once
(and not seeded), what its tangent was set to holds at every read: always zero (later rules
skip its terms), a constant (``X * 1.0`` folds to ``X``), a copy of another name bound once
(reads use that name: no ``dz_dw = dx_dw`` line is needed), ``coef * base`` factors (a
reduction of it is a contraction) or a scalar ``coef * base`` product. For a variable
assigned more than once only what holds for every assignment is kept (it is a list of
tangents; it does not have its value's full shape). :meth:`Known.read` gives the
:class:`~fmad.tangent.Tangent` a rule sees for a read of the variable.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable

from fmad import build as B
from fmad.naming import Namer
from fmad.tangent import Tangent

ZERO = None  # the fact of a tangent that is always zero


class Known:
    def __init__(
        self, namer: Namer, stable: Callable[[str], bool], bound: Callable[[str], bool]
    ) -> None:
        """``stable(name)``: the name is bound at most once, so a later read sees the
        value an earlier rule saw (factors may refer to it); ``bound(name)``: the function
        binds the name (a parameter, an assignment, a name the pass made)."""
        self.namer = namer
        self.stable = stable
        self.bound = bound
        self.names: dict[tuple[str, str], str] = {}
        self.owners: dict[str, str] = {}  # tangent name -> the first variable named so
        self.facts: dict[tuple[str, str], Tangent | None] = {}

    def name(self, var: str, d: str) -> str:
        key = (var, d)
        if key not in self.names:
            self.names[key] = found = self.namer.tangent(var, d)
            self.owners.setdefault(found, var)
        return self.names[key]

    def record(self, var: str, d: str, t: Tangent | None, single: bool) -> None:
        """The tangent of ``var`` was just set to ``t`` (None: zero)."""
        key = (var, d)
        container = (t is not None and t.container) or self.container(var, d)
        if single and t is None:
            self.facts[key] = ZERO
            return
        if single and B.constant_value(t.expr) is not None:
            self.facts[key] = t
            return
        if t is None:
            self.mark(var, d, full=False, container=container)
            return
        # a copy (dz_dw = dx_dw, or a primal name): reads see the name copied, which is
        # bound once too, so ``dz_dw = dx_dw`` is left for nobody to read
        copied = (
            single
            and isinstance(t.expr, ast.Name)
            and self.stable(t.expr.id)
            and (self.bound(t.expr.id) or t.expr.id in self.owners)
            and not (t.seed or container)
        )
        rows = single and self.stable_rows(t)  # asked once: it walks every factor
        self.facts[key] = Tangent(
            t.expr if copied else B.name(self.name(var, d)),
            full=t.full and single,
            factors=t.factors if single and self.stable_parts(t.factors) else None,
            diagonal=t.diagonal and single and self.stable_parts(t.factors),
            seed_zeros=t.seed_zeros
            and single
            and (t.factors is None or self.stable_parts(t.factors)),
            container=container,
            product=t.product if single and self.stable_parts(t.product) else None,
            inner=t.inner if t.factors and rows else None,
            terms=t.terms if rows else None,
        )

    def stable_rows(self, t: Tangent) -> bool:
        """Every factor of a tangent made of rows is bound once (see Tangent.of_rows)."""
        if t.factors is not None and not self.stable_parts(t.factors):
            return False
        if t.inner is not None and not self.stable_rows(t.inner):
            return False
        return all(self.stable_rows(s) for s in t.terms or ())

    def stable_parts(self, parts: tuple[ast.expr, ast.expr] | None) -> bool:
        return parts is not None and all(self.stable(n) for f in parts for n in B.read_names(f))

    def mark(self, var: str, d: str, full: bool, container: bool | None = None) -> None:
        """Set whether ``var``'s tangent has its value's full shape, keeping other facts."""
        key = (var, d)
        if key in self.facts and (
            self.facts[key] is ZERO or B.constant_value(self.facts[key].expr) is not None
        ):
            return  # always zero, or a constant: that is what every read sees
        fact = self.facts.get(key) or Tangent(B.name(self.name(var, d)))
        if container is not None:
            fact = dataclasses.replace(fact, container=container)
        self.facts[key] = dataclasses.replace(fact, full=full)

    def zero(self, var: str, d: str) -> None:
        """``var`` is assigned once, to a zero tangent."""
        self.facts[(var, d)] = ZERO

    def container(self, var: str, d: str) -> bool:
        fact = self.facts.get((var, d))
        return fact is not None and fact.container

    def read(self, var: str, d: str) -> Tangent | None:
        key = (var, d)
        if key in self.facts:
            return self.facts[key]
        return Tangent(B.name(self.name(var, d)))

    def tangent_names(self) -> set[str]:
        return set(self.names.values())
