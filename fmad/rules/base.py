"""The rule table itself, how rows are added to it, and what rules share.

``RULES`` maps a key to the rule that gives its tangent: an ``ast`` operator class
(``ast.Mult``), a function object (``np.exp``, ``math.sin``, builtin ``abs``),
``method("sum")``, ``attribute("T")`` or ``ast.Subscript``. ``ZERO_DERIVATIVE`` holds the
keys whose result carries no derivative. The family modules fill both through the
shorthands below; ``METHOD_RULES`` and the others below are views of them by name.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from fmad import build as B
from fmad import runtime_user
from fmad.resolve import MISSING
from fmad.tangent import Tangent

Rule = Callable[..., Any]
RULES: dict[Any, Rule] = {}
# The keys that carry no derivative (integer-valued, shapes, constructors...).
ZERO_DERIVATIVE: set[Any] = set()
# Functions whose rule takes the tangent of a list argument as a list of tangents; every
# other function of a list gets it stacked into one array first (fmad_rt.stack_tangents).
LIST_RULES: set[Any] = set()
# The rules written as partial derivatives (defpartials): key -> (partials, broadcast), so
# reverse mode (fmad.adjoints) transposes them mechanically.
PARTIALS: dict[Any, tuple[tuple[Rule, ...], bool]] = {}
# The elementwise functions of one argument written as text (``d f(x) = coef * dx``, or
# ``dx / coef``): key -> (form, coef, helpers), and those of an order and an argument
# (``f(v, x)``): key -> (coef, helpers), for reverse mode too.
UNARY: dict[Any, tuple[str, str, dict[str, Any]]] = {}
ORDERED: dict[Any, tuple[str, dict[str, Any]]] = {}
# The helpers of generated code, linear in their tangent arguments at ``slots``:
# helper -> (slots, fixed); ``fixed`` the other arguments a derivative must not go through
# (None: every other one), for reverse mode too.
HELPER_ROWS: dict[Any, tuple[tuple[int, ...], tuple[int, ...] | None]] = {}


def method(name: str) -> tuple[str, str]:
    """The key of the method ``x.name(...)`` of an array."""
    return ("method", name)


def attribute(name: str) -> tuple[str, str]:
    """The key of the attribute ``x.name`` of an array."""
    return ("attribute", name)


class _Named(Mapping):
    """The rules of one kind of key (methods or attributes) by name: a view of ``RULES``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __getitem__(self, name: str) -> Rule:
        return RULES[(self.kind, name)]

    def __iter__(self) -> Iterator[str]:
        return (k[1] for k in list(RULES) if isinstance(k, tuple) and k[0] == self.kind)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _NamedZero(AbstractSet):
    """The names of one kind of key that carry no derivative: a view of ``ZERO_DERIVATIVE``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __contains__(self, name: object) -> bool:
        return (self.kind, name) in ZERO_DERIVATIVE

    def __iter__(self) -> Iterator[str]:
        return (k[1] for k in list(ZERO_DERIVATIVE) if isinstance(k, tuple) and k[0] == self.kind)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _from_iterable(cls, names) -> set[str]:  # ``names | view`` is a plain set
        return set(names)


METHOD_RULES = _Named("method")
ATTRIBUTE_RULES = _Named("attribute")
ZERO_METHODS = _NamedZero("method")
ZERO_ATTRIBUTES = _NamedZero("attribute")


# -- adding rows -----------------------------------------------------------------------------
def defrule(*keys: Any) -> Callable[[Rule], Rule]:
    """Decorator: the function is the rule of every key."""

    def register_(rule: Rule) -> Rule:
        for key in keys:
            RULES[key] = rule
        return rule

    return register_


def alias(*keys: Any, to: Any) -> None:
    """The keys share the rule of ``to`` (``np.absolute`` is ``np.abs``)."""
    for key in keys:
        RULES[key] = RULES[to]


def defzero(*keys: Any) -> None:
    """The keys' results carry no derivative (``np.floor``, ``len``, ``ast.FloorDiv``)."""
    ZERO_DERIVATIVE.update(keys)


def deflinear(*keys: Any) -> Rule:
    """``f(x, ...)`` is the identity of ``x`` as far as derivatives go (``float(x)``,
    ``x.copy()``, ``+x``): the tangent passes through."""

    def identity_rule(ctx, z, args, tangents, keywords):
        return tangents[0] if tangents else None

    return defrule(*keys)(identity_rule)


def defpartials(*keys: Any, partials: tuple[Rule, ...], broadcast: bool = True) -> Rule:
    """``d f(x, y) = p0 * dx + p1 * dy``, each ``p_i(ctx, z, x, y)`` an expression of the
    primal values. ``broadcast``: the other operand may make the result bigger than a
    tangent's own operand (``np.maximum``); without it, the partial has the result's shape
    (``x * y``: the partial in ``x`` is ``y``)."""
    for key in keys:
        PARTIALS[key] = (partials, broadcast)

    def partials_rule(ctx, z, args, tangents, keywords):
        x, y = args[0], args[1]
        others = (y, x)
        return ctx.add(
            *(
                ctx.scale(p(ctx, z, x, y), ctx.broadcast(t, other) if broadcast else t)
                for p, t, other in zip(partials, tangents, others, strict=False)
                if t is not None
            )
        )

    return defrule(*keys)(partials_rule)


# -- lookups ---------------------------------------------------------------------------------
def rule_for(key: Any) -> Rule | None:
    """The rule of ``key`` (a function, an operator or node class, ``method(name)``,
    ``attribute(name)``), or None."""
    try:
        return RULES.get(key)
    except TypeError:  # unhashable callables have no rule
        return None


def hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def has_zero_derivative(key: Any) -> bool:
    try:
        return key in ZERO_DERIVATIVE
    except TypeError:
        return False


def is_numpy(func: Any) -> bool:
    """A numpy function (or ufunc): it takes lists and tuples as arrays."""
    if isinstance(func, np.ufunc):
        return True
    module = getattr(func, "__module__", None) or ""
    return module == "numpy" or module.startswith("numpy.")


# -- small helpers rules share ---------------------------------------------------------------
def tangent_of(expr: ast.expr, full: bool = True) -> Tangent:
    return Tangent(expr, full=full)


def k_list(ctx) -> list[ast.expr]:
    """``[k]`` for a vectorized direction, ``[]`` for a scalar one (an optional argument)."""
    return [B.const(ctx.direction.k)] if ctx.vectorized else []


def k_arg(ctx) -> ast.expr:
    return B.const(ctx.direction.k) if ctx.vectorized else ast.Constant(None)


def is_none(node) -> bool:
    return node is None or (isinstance(node, ast.Constant) and node.value is None)


def argument(args, keywords, i, key, default=None):
    """The ``i``-th positional argument, or the keyword ``key``."""
    if len(args) > i:
        return args[i]
    return keywords.get(key, default)


def static_value(ctx, node: ast.expr, depth: int = 0) -> Any:
    """The object ``node`` stands for when fmad transforms the function (a constant, a
    global such as ``np.int64``, or a flattened name assigned once from one), else None."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):  # a tuple of constants, such as (0, 2)
        parts = [static_value(ctx, e, depth + 1) for e in node.elts]
        return None if any(p is None for p in parts) else tuple(parts)
    found = ctx.scope.lookup(node)
    if found is not MISSING:
        return found
    if isinstance(node, ast.Name) and depth < 8 and ctx.assign_counts.get(node.id) == 1:
        for s in ast.walk(ctx.flat):
            if isinstance(s, ast.Assign) and B.stored_names(s.targets[0]) == [node.id]:
                return static_value(ctx, s.value, depth + 1)
    return None


def keeps_derivative(ctx, dtype: ast.expr | None) -> bool:
    """Whether a conversion to ``dtype`` (an argument node; None: unchanged) keeps the
    derivative: a floating or complex type does, an integer or boolean one makes it zero
    (``x.astype(int)`` is a step function). A type fmad cannot see at transform time is
    refused: guessing would be a silent wrong derivative."""
    if dtype is None or is_none(dtype):
        return True
    obj = static_value(ctx, dtype)
    try:
        kind = np.dtype(obj).kind if obj is not None else "?"  # np.dtype(None) is float64
    except TypeError:
        kind = "?"
    if kind not in "fciub":
        ctx.refuse(
            f"the dtype '{ast.unparse(dtype)}' of a conversion of a value that carries a "
            "derivative must be known when fmad transforms the function; write the type "
            "itself (float, np.float64, int)"
        )
    return kind in "fc"


# -- user rules ----------------------------------------------------------------------------
def register(
    func: Callable[..., Any],
    derivative: Callable[..., Any] | None = None,
    *,
    jvp: Callable[..., Any] | None = None,
) -> None:
    """Give ``func`` (a function fmad has no source or rule for) a derivative, in one of two
    forms.

    ``register(func, derivative)``, for an elementwise (or scalar) ``func``: ``derivative``
    takes the same positional arguments as ``func`` and returns its partial derivative
    with respect to its first argument, or, for a function of several arguments, a tuple
    with one partial per positional argument. The tangent is ``derivative(x) * dx``.

    >>> from scipy.special import expit
    >>> fmad.register(expit, lambda x: expit(x) * (1 - expit(x)))

    ``register(func, jvp=rule)``, for any ``func`` (a matrix function, a reduction...):
    ``rule(primals, tangents, **keywords)`` returns the tangent of ``func(*primals,
    **keywords)`` (the output's change, to first order) for ONE direction: ``primals`` is
    the tuple of the positional arguments, ``tangents`` a tuple with one entry per argument,
    of the argument's shape (zeros for one that carries no derivative). Keyword arguments
    must not carry a derivative; they are passed to ``rule`` too. For an array parameter
    fmad calls ``rule`` once per element of it and stacks the results.

    >>> fmad.register(logdet, jvp=lambda p, t: np.trace(np.linalg.solve(p[0], t[0])))
    """
    if not callable(func) or (derivative is None) == (jvp is None):
        raise TypeError(
            "fmad.register takes a function and either its elementwise derivative, "
            "register(func, derivative), or its forward rule, register(func, jvp=rule)"
        )
    if not callable(derivative if jvp is None else jvp):
        raise TypeError("fmad.register: the derivative or jvp= rule must be callable")
    label = getattr(func, "__name__", "f")
    RULES[func] = _elementwise_rule(label, derivative) if jvp is None else _jvp_rule(label, jvp)
    RULES[func].__doc__ = f"user rule registered for {func!r}"


def _elementwise_rule(label: str, derivative: Callable[..., Any]) -> Rule:
    def user_rule(ctx, z, args, tangents, keywords):
        deriv = ctx.inject(derivative, label + "_derivative")
        partials = B.call(deriv, *args)
        terms = []
        for i, t in enumerate(tangents):
            if t is None:
                continue
            p = partials if len(args) == 1 else B.subscript(partials, B.const(i))
            terms.append(ctx.scale(p, t))
        return ctx.add(*terms)

    return user_rule


def _jvp_rule(label: str, jvp: Callable[..., Any]) -> Rule:
    def user_rule(ctx, z, args, tangents, keywords):
        if any(ctx.is_active(v) for v in keywords.values()):
            ctx.refuse(
                f"a keyword argument of '{label}' (registered with jvp=) carries a "
                "derivative; pass the values that carry one as positional arguments"
            )
        if all(t is None for t in tangents):
            return None
        rule = ctx.inject(jvp, label + "_jvp")
        ts = [
            ast.Constant(None) if t is None else ctx.full(t, a)
            for a, t in zip(args, tangents, strict=False)
        ]
        helper = B.attr(ctx.inject(runtime_user, "fmad_user"), "jvp_call")
        call = B.call(helper, rule, B.tuple_(list(args)), B.tuple_(ts), z, k_arg(ctx), **keywords)
        return Tangent(call, full=True)

    return user_rule


@defrule(runtime_user.jvp_call)
def jvp_call_rule(ctx, z, args, tangents, keywords):
    """fmad does not differentiate a user's jvp= rule again."""
    refuse_when_active(
        ctx,
        tangents,
        keywords,
        "code fmad generated for a function registered with jvp= cannot be differentiated "
        "again; register the derivative of the generated function itself",
    )
    return None


def refuse_when_active(ctx, tangents, keywords, message: str) -> None:
    """Refuse (``message``) a call whose arguments carry a derivative; else no tangent."""
    if any(t is not None for t in tangents) or any(ctx.is_active(v) for v in keywords.values()):
        ctx.refuse(message)


def active_slots(ctx, label: str, slots: tuple[int, ...], tangents) -> list[int]:
    """The arguments at ``slots`` that carry a tangent, for the rule of a helper that
    generated code calls: it is differentiated again with respect to a scalar only."""
    active = [i for i in slots if i < len(tangents) and tangents[i] is not None]
    if active and ctx.vectorized:
        ctx.refuse(
            f"{label}() in code fmad generated can be differentiated again with respect to a "
            "scalar only; differentiate with respect to one element at a time"
        )
    return active
