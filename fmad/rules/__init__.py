"""The derivative rules: one table, one entry per operator, function, method or attribute.

``RULES`` (in :mod:`fmad.rules.base`) maps an ``ast`` operator class (``ast.Mult``) or a
function object (``np.exp``, ``math.sin``, builtin ``abs``) to its tangent rule;
``METHOD_RULES`` and ``ATTRIBUTE_RULES`` do the same for ``x.sum()`` and ``x.T`` by name,
and ``ZERO_DERIVATIVE`` lists what carries no derivative. A rule receives the emitting
context ``ctx`` (see :class:`fmad.forward.Context`), the result's name ``z``, the operand
atoms and their tangents (``None`` for an operand with no derivative), and returns the
result's tangent or ``None`` when it is known to be zero. Rules never multiply by a known
zero: they skip the term. ``ctx.scale``/``ctx.divide`` put primal factors in the tangent's
layout, so one rule serves scalar parameters and vectorized array parameters alike.

The table is filled by family, each module registering its rows when imported:

- :mod:`~fmad.rules.elementwise`: operators, elementwise numpy/math functions, maximum,
  minimum, clip, where;
- :mod:`~fmad.rules.reductions`: sum, mean, prod, max, min (functions, methods, builtins);
- :mod:`~fmad.rules.shapes`: indexing, attributes, conversions, reshaping and joining;
- :mod:`~fmad.rules.linalg`: matmul, dot, inner, outer, norm.

Adding a rule is one row in the family's module, with the shorthands of
:mod:`~fmad.rules.base` (``defrule``, ``defpartials``, ``deflinear``, ``defzero``,
``alias``; an elementwise function of one argument is one line of ``ELEMENTWISE``), and one
test row in ``tests/test_rules_fd.py`` that checks it against finite differences.
"""

from fmad.rules import elementwise, linalg, reductions, shapes
from fmad.rules.base import (
    ATTRIBUTE_RULES,
    METHOD_RULES,
    RULES,
    ZERO_ATTRIBUTES,
    ZERO_DERIVATIVE,
    ZERO_METHODS,
    Rule,
    has_zero_derivative,
    hashable,
    is_numpy,
    keeps_derivative,
    register,
    rule_for,
    static_value,
)
from fmad.rules.reductions import REDUCTION_OUT, reduce_tangent, reduction_arguments
from fmad.rules.shapes import LIST_RULES, index_rule

__all__ = [
    "ATTRIBUTE_RULES",
    "LIST_RULES",
    "METHOD_RULES",
    "REDUCTION_OUT",
    "RULES",
    "ZERO_ATTRIBUTES",
    "ZERO_DERIVATIVE",
    "ZERO_METHODS",
    "Rule",
    "elementwise",
    "has_zero_derivative",
    "hashable",
    "index_rule",
    "is_numpy",
    "keeps_derivative",
    "linalg",
    "reduce_tangent",
    "reduction_arguments",
    "register",
    "reductions",
    "rule_for",
    "shapes",
    "static_value",
]
