"""The derivative rules: one table, one entry per operator, function, method or attribute.

``RULES`` (in :mod:`fmad.rules.base`) maps a key to its tangent rule: an ``ast`` operator
class (``ast.Mult``, ``ast.USub``), a function object (``np.exp``, ``math.sin``, builtin
``abs``, ``fmad.runtime.full``), ``method("sum")`` for ``x.sum()``, ``attribute("T")`` for
``x.T``, and ``ast.Subscript`` for ``x[i]``. ``ZERO_DERIVATIVE`` holds the keys whose result
carries no derivative. ``METHOD_RULES``, ``ATTRIBUTE_RULES``, ``ZERO_METHODS`` and
``ZERO_ATTRIBUTES`` are views of those two by name.

Every rule has one calling convention, ``rule(ctx, z, args, tangents, kwargs)``: the
emitting context ``ctx`` (see :class:`fmad.forward.Context`), the result's name ``z``, the
operand atoms (the receiver first for a method or an attribute; ``[x, index]`` for a
subscript), their tangents (``None`` for an operand with no derivative) and the keyword
arguments by name. It returns the result's tangent, or ``None`` when it is known to be zero.
Rules never multiply by a known zero: they skip the term. ``ctx.scale``/``ctx.divide`` put
primal factors in the tangent's layout, so one rule serves scalar parameters and vectorized
array parameters alike; ``ctx.refuse`` refuses the construct at the user's line.

The table is filled by family, each module registering its rows when imported:

- :mod:`~fmad.rules.elementwise`: operators, elementwise numpy/math functions, maximum,
  minimum, clip, where;
- :mod:`~fmad.rules.arithmetic`: numpy's arithmetic as functions (``np.add``...), the
  elementwise extras (hypot, logaddexp, sinc, nan_to_num...), polyval, cross, and the check
  of every ufunc's keywords;
- :mod:`~fmad.rules.reductions`: sum, mean, prod, max, min (functions, methods, builtins);
- :mod:`~fmad.rules.shapes`: indexing, attributes, conversions, reshaping and joining;
- :mod:`~fmad.rules.linalg`: matmul, dot, inner, outer, norm;
- :mod:`~fmad.rules.statistics`: var, std, median, percentile, quantile, average;
- :mod:`~fmad.rules.cumulative`: cumsum, cumprod, diff, ediff1d, gradient, trapezoid;
- :mod:`~fmad.rules.reshaping`: repeat, tile, pad, roll, flip, rot90, copy, take, moveaxis,
  swapaxes, rollaxis, broadcast_to, atleast_1d/2d/3d, the splits;
- :mod:`~fmad.rules.selection`: sort, partition, take_along_axis, diag, diagonal, triu, tril
  (:mod:`~fmad.rules.options`: what these four share);
- :mod:`~fmad.rules.contractions`: einsum, tensordot, kron, vdot, trace;
- :mod:`~fmad.rules.decompositions`: solve, inv, det, slogdet, matrix_power, cholesky,
  eigh, eigvalsh, qr, svd, pinv, lstsq, vector and matrix norms (helpers in
  :mod:`fmad.runtime_linalg`);
- :mod:`~fmad.rules.special`: ``scipy.special`` (expit, logsumexp, softmax, erf, gammaln...),
  registered only when scipy can be imported;
- :mod:`~fmad.rules.runtime`: the ``fmad_rt`` helpers generated code calls (so that fmad's
  output can be differentiated again).

Adding a rule is one row in the family's module, with the shorthands of
:mod:`~fmad.rules.base` (``defrule``, ``defpartials``, ``deflinear``, ``defzero``,
``alias``; an elementwise function of one argument is one line of ``ELEMENTWISE``), and one
test row in ``tests/test_rules_fd.py`` that checks it against finite differences
(``tests/test_rule_coverage.py`` fails until it has one).
"""

from fmad.rules import (  # noqa: F401 - they register rows
    arithmetic,
    contractions,
    cumulative,
    decompositions,
    elementwise,
    linalg,
    reductions,
    reshaping,
    runtime,
    selection,
    shapes,
    special,
    statistics,
)
from fmad.rules.base import (
    ATTRIBUTE_RULES,
    LIST_RULES,
    METHOD_RULES,
    RULES,
    ZERO_ATTRIBUTES,
    ZERO_DERIVATIVE,
    ZERO_METHODS,
    Rule,
    attribute,
    has_zero_derivative,
    hashable,
    is_numpy,
    keeps_derivative,
    method,
    register,
    rule_for,
    static_value,
)
from fmad.rules.reductions import (
    REDUCTION_OUT,
    reduce_builtin,
    reduce_tangent,
    reduction_arguments,
)
from fmad.rules.shapes import index_rule

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
    "arithmetic",
    "attribute",
    "contractions",
    "decompositions",
    "elementwise",
    "has_zero_derivative",
    "hashable",
    "index_rule",
    "is_numpy",
    "keeps_derivative",
    "linalg",
    "method",
    "reduce_builtin",
    "reduce_tangent",
    "reduction_arguments",
    "register",
    "reductions",
    "rule_for",
    "runtime",
    "shapes",
    "special",
    "static_value",
]
