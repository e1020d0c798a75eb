"""What a rule knows about a tangent, and what a direction of differentiation is.

A :class:`Tangent` is the tangent of one operand at transform time: the expression that
holds it (a name or a constant) and facts that let rules skip work (it has its value's full
shape; it is the folded identity seed; it is ``coef * base``...). A :class:`Direction` is
one thing differentiated with respect to: a scalar parameter, or an array parameter whose
``k`` elements travel together on a trailing axis.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass


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
