"""Known composites whose derivative has an exact, simpler form (used by both modes).

The value lines never change: every primal operation runs as the user wrote it. Only the
derivative of a few well-known compositions is written the short way, with the identity
that holds exactly in real arithmetic (the ones a person writing backpropagation by hand
uses). With ``p = 1 / (1 + exp(-z))`` (or ``exp(z) / (1 + exp(z))``, or a call to a helper
whose body is one of those):

- ``log(p)`` has the derivative ``(1 - p) dz`` (instead of ``dp / p`` through the chain
  ``p * e / (1 + e)``);
- ``log(1 - p)`` has ``-p dz``;
- ``y * log(p) + (1 - y) * log(1 - p)`` (binary cross-entropy, in any order of its terms and
  factors, ``y`` carrying no derivative) has ``(y - p) dz``: the sigmoid's derivative
  cancels the cross-entropy's, as in every hand-written logistic regression.

Where ``p`` overflows to 0 or 1 the chain gives ``0 * inf = nan`` and the short form the
limit; everywhere else the two agree to rounding.

A composite is recognised in the flattened code, structurally: every name of it (``p``, the
exponential, the sum, the logarithms...) is bound exactly once in the function, by a
statement of the same block as the statement differentiated and before it, and the name
the derivative is taken against (``z``) is not bound again between the first statement of
the composite and that statement. So the values are those of the composite wherever the
derivative is read, in loops too. ``ENABLED = False`` turns it off (the tests compare both).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fmad import build as B
from fmad.errors import FmadError
from fmad.source import read_function
from fmad.tangent import split_constant

ENABLED = True

EXPS = (np.exp, math.exp)
LOGS = (np.log, math.log)


@dataclass(frozen=True)
class Partial:
    """``d value = coef * d base``, the whole derivative of the value through ``base``."""

    base: str
    coef: ast.expr
    members: frozenset[str] = frozenset()  # the names of the composite (base excluded)


@dataclass(frozen=True)
class Sigmoid:
    """``p = sigmoid(sign * base)``; ``members`` the names of its chain, ``start`` the index of
    its first statement in the block."""

    p: str
    base: str
    sign: int
    members: tuple[str, ...]
    start: int


def is_one(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value == 1


class Composites:
    """The composites of one flattened function (``tree``). ``resolve(call)`` gives the object
    a call reaches (a function, a nested ``def``'s tree, or None). ``primal_first``: every
    primal line runs before any derivative line (reverse mode), so a value bound later in the
    block may be read by the derivative."""

    def __init__(
        self,
        tree: ast.FunctionDef,
        resolve: Callable[[ast.Call], object],
        primal_first: bool = False,
        top_only: bool = False,
    ) -> None:
        self.resolve = resolve
        self.primal_first = primal_first
        counts: dict[str, int] = dict.fromkeys(B.parameters(tree.args), 1)
        for n in B.names(tree, ast.Store):
            counts[n] = counts.get(n, 0) + 1
        for loop in (n for n in B.walk(tree) if type(n) is ast.For):
            for n in B.names(loop.target):
                counts[n] = counts.get(n, 0) + 1
        self.counts = counts
        self.reads: dict[str, int] = {}
        for n in B.names(tree, ast.Load):
            self.reads[n] = self.reads.get(n, 0) + 1
        self.reader: dict[str, ast.Assign] = {}  # name -> an assignment reading it
        # the one binding of each name bound once: (block, index, statement)
        self.binding: dict[str, tuple[int, int, ast.Assign]] = {}
        # id(statement or its value) -> (block, index, the node: kept alive, so its id is its)
        self.where: dict[int, tuple[int, int, ast.AST]] = {}
        self.blocks: list[list[ast.stmt]] = []
        self.index_block(tree.body, top_only)
        self.memo: dict[int, tuple] = {}  # see partial

    def index_block(self, body: list[ast.stmt], top_only: bool) -> None:
        block = len(self.blocks)
        self.blocks.append(body)
        for i, s in enumerate(body):
            if isinstance(s, ast.Assign) and len(s.targets) == 1:
                target = s.targets[0]
                self.where[id(s)] = (block, i, s)
                self.where[id(s.value)] = (block, i, s.value)
                if isinstance(target, ast.Name) and self.counts.get(target.id) == 1:
                    self.binding[target.id] = (block, i, s)
                for n in B.names(s.value, ast.Load):
                    self.reader[n] = s
            if top_only or isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for field in ("body", "orelse"):
                inner = getattr(s, field, None)
                if isinstance(inner, list) and inner:
                    self.index_block(inner, top_only)

    # -- the chain's values --------------------------------------------------------------
    def value(self, name: str, block: int, before: int) -> ast.expr | None:
        """What ``name`` was bound to, when that is its only binding and it is in ``block``
        before index ``before`` (or anywhere in it, for a value only read by derivatives,
        ``before`` None)."""
        found = self.binding.get(name)
        if found is None or found[0] != block:
            return None
        if before is not None and found[1] >= before:
            return None
        return found[2].value

    def call_of(self, node: ast.expr, functions: tuple) -> str | None:
        """The argument name of ``f(name)``, ``f`` one of ``functions``."""
        if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
            return None
        arg = node.args[0]
        if not isinstance(arg, ast.Name) or not any(self.resolve(node) is f for f in functions):
            return None
        return arg.id

    def sigmoid(self, p: str, block: int, before: int) -> Sigmoid | None:
        value = self.value(p, block, before)
        if value is None:
            return None
        at = self.binding[p][1]
        if isinstance(value, ast.Call):  # p = sigmoid(z), a helper
            fn = self.resolve(value)
            if (
                len(value.args) == 1
                and not value.keywords
                and isinstance(value.args[0], ast.Name)
                and helper_is_sigmoid(fn)
            ):
                return Sigmoid(p, value.args[0].id, 1, (p,), at)
            return None
        if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div)):
            return None
        if not isinstance(value.right, ast.Name):
            return None
        den = value.right.id
        den_value = self.value(den, block, at)
        if not (isinstance(den_value, ast.BinOp) and isinstance(den_value.op, ast.Add)):
            return None
        sides = (den_value.left, den_value.right)
        if is_one(sides[0]) and isinstance(sides[1], ast.Name):
            e = sides[1].id
        elif is_one(sides[1]) and isinstance(sides[0], ast.Name):
            e = sides[0].id
        else:
            return None
        e_value = self.value(e, block, self.binding[den][1])
        v = self.call_of(e_value, EXPS) if e_value is not None else None
        if v is None:
            return None
        e_at = self.binding[e][1]
        if isinstance(value.left, ast.Name):
            # p = e / (1 + e), e = exp(v): sigmoid(v) (the numerator may be exp(v) again)
            n = value.left.id
            n_value = self.value(n, block, at) if n != e else e_value
            if n_value is None or self.call_of(n_value, EXPS) != v:
                return None
            return Sigmoid(p, v, 1, (p, den, e, n), min(e_at, self.binding[n][1]))
        if not is_one(value.left):
            return None
        # p = 1 / (1 + exp(v)): sigmoid(-v); v = -z makes it sigmoid(z)
        v_value = self.value(v, block, e_at)
        if (
            isinstance(v_value, ast.UnaryOp)
            and isinstance(v_value.op, ast.USub)
            and isinstance(v_value.operand, ast.Name)
        ):
            return Sigmoid(p, v_value.operand.id, 1, (p, den, e, v), self.binding[v][1])
        return Sigmoid(p, v, -1, (p, den, e), e_at)

    def complement(self, q: str, block: int, before: int | None) -> str | None:
        """``p`` when ``q = 1 - p``."""
        value = self.value(q, block, before)
        if (
            isinstance(value, ast.BinOp)
            and isinstance(value.op, ast.Sub)
            and is_one(value.left)
            and isinstance(value.right, ast.Name)
        ):
            return value.right.id
        return None

    def steady(self, name: str, block: int, start: int, end: int) -> bool:
        """``name`` is bound at most once, and not by the statements ``start..end`` of
        ``block``: it holds the same value through them."""
        if self.counts.get(name, 0) > 1:
            return False
        stmts = self.blocks[block][start:end]
        if not all(self.harmless(s) for s in stmts):
            return False
        return not any(name in B.names(s, ast.Store) for s in stmts)

    def harmless(self, s: ast.stmt) -> bool:
        """``s`` binds a name to arithmetic or to a numpy ufunc's (or math's) new value: it
        changes nothing in place (no ``out=``, no method, no helper but a sigmoid)."""
        if not (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)):
            return False
        value = s.value
        if not isinstance(value, ast.Call):
            return isinstance(value, ast.Name | ast.Constant | ast.BinOp | ast.UnaryOp)
        fn = self.resolve(value)
        if value.keywords or any(isinstance(a, ast.Starred) for a in value.args):
            return False
        return (
            isinstance(fn, np.ufunc)
            or getattr(fn, "__module__", None) == "math"
            or fn in (np.mean, np.sum)
            or helper_is_sigmoid(fn)
        )

    # -- the derivatives -----------------------------------------------------------------
    def partial(self, value: ast.expr, inactive: Callable[[str], bool]) -> Partial | None:
        """The short derivative of the statement whose right side is ``value``, if it is a
        known composite (``inactive(name)``: the name carries no derivative). Asked once per
        direction: the answer is found once and given again (a fresh ``coef``) while
        ``inactive`` answers the questions it asked alike (nothing else it reads changes)."""
        if not ENABLED:
            return None
        kept = self.memo.get(id(value))  # (value: kept alive, so its id is its; asked; found)
        if kept is None or kept[0] is not value or any(inactive(n) != a for n, a in kept[1]):
            asked: list[tuple[str, bool]] = []
            record = lambda n: asked.append((n, inactive(n))) or asked[-1][1]  # noqa: E731
            kept = self.memo[id(value)] = (value, asked, self.find_partial(value, record))
        return kept[2] and dataclasses.replace(kept[2], coef=B.clone(kept[2].coef))

    def find_partial(self, value: ast.expr, inactive: Callable[[str], bool]) -> Partial | None:
        """:meth:`partial`, found."""
        place = self.where.get(id(value))
        if place is None or place[2] is not value:
            return None
        block, at, _ = place
        found = self.bce_partial(value, block, at, inactive) or self.log_partial(value, block, at)
        if found is not None and not self.primal_first:
            if isinstance(value, ast.Call) and self.only_in_bce(at, block, inactive):
                return None  # forward mode: nothing reads this log's tangent
        if found is None:
            return None
        partial, sig = found
        if not self.steady(sig.base, block, sig.start, at):
            return None
        return partial

    def only_in_bce(self, at: int, block: int, inactive) -> bool:
        """The value of statement ``at`` is read once, by a product read once by a
        cross-entropy whose short form is taken (forward mode then needs no short form of
        it: its tangent goes unread). Reverse mode reads every primal line's value."""
        s = self.blocks[block][at]
        name = s.targets[0].id if isinstance(s.targets[0], ast.Name) else None
        for _ in range(2):
            if name is None or self.reads.get(name) != 1 or name not in self.reader:
                return False
            s = self.reader[name]
            name = s.targets[0].id if isinstance(s.targets[0], ast.Name) else None
        place = self.where.get(id(s))
        return place is not None and self.bce_partial(s.value, *place[:2], inactive) is not None

    def log_of(self, node: ast.expr, block: int, at: int):
        """``(sigmoid, complemented)`` when ``node`` is ``log(p)`` or ``log(1 - p)``."""
        x = self.call_of(node, LOGS)
        if x is None:
            return None
        sig = self.sigmoid(x, block, at)
        if sig is not None:
            return sig, False
        p = self.complement(x, block, at)
        if p is None:
            return None
        sig = self.sigmoid(p, block, self.binding[x][1])
        if sig is None:
            return None
        return dataclasses.replace(sig, members=(*sig.members, x)), True

    def log_partial(self, value: ast.expr, block: int, at: int):
        found = self.log_of(value, block, at)
        if found is None:
            return None
        sig, complemented = found
        p = B.name(sig.p)
        if complemented:  # d log(1 - p) = -p dp / (p (1 - p)) ... = -sign * p d base
            return Partial(sig.base, signed(-sig.sign, p), frozenset(sig.members)), sig
        q = self.named_complement(sig, block, at)
        return Partial(sig.base, signed(sig.sign, q), frozenset(sig.members)), sig

    def named_complement(self, sig: Sigmoid, block: int, at: int) -> ast.expr:
        """``1 - p``: a name the primal binds to it, when one is there to read."""
        for name, (b, i, _) in self.binding.items():
            if b == block and (self.primal_first or i < at) and i > self.binding[sig.p][1]:
                if self.complement(name, block, None) == sig.p:
                    return B.name(name)
        return B.binop(B.const(1.0), ast.Sub(), B.name(sig.p))

    def bce_partial(self, value: ast.expr, block: int, at: int, inactive):
        """``y * log(p) + (1 - y) * log(1 - p)``, ``y`` carrying no derivative."""
        if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add)):
            return None
        terms = []
        for side in (value.left, value.right):
            if not isinstance(side, ast.Name):
                return None
            product = self.value(side.id, block, at)
            if not (isinstance(product, ast.BinOp) and isinstance(product.op, ast.Mult)):
                return None
            pair = (product.left, product.right)
            if not all(isinstance(f, ast.Name) for f in pair):
                return None
            terms.append((pair, self.binding[side.id][1]))
        sig = None
        members = {value.left.id, value.right.id}
        weights: dict[bool, tuple[str, int]] = {}  # complemented -> (weight, its product)
        for (a, b), where in terms:
            for weight, log in ((a, b), (b, a)):
                node = self.value(log.id, block, where)
                found = node is not None and self.log_of(node, block, self.binding[log.id][1])
                if found and found[1] not in weights:
                    if sig is not None and found[0].p != sig.p:
                        return None
                    weights[found[1]] = (weight.id, where)
                    sig = found[0]
                    members.update((*sig.members, log.id))
                    break
            else:
                return None
        if sig is None or set(weights) != {False, True}:
            return None
        (y, y_at), (w, w_at) = weights[False], weights[True]
        if self.complement(w, block, w_at) != y or not inactive(y) or not inactive(w):
            return None
        if not self.steady(y, block, min(self.binding[w][1], y_at, sig.start), at):
            return None
        coef = B.binop(B.name(y), ast.Sub(), B.name(sig.p))
        if sig.sign < 0:
            coef = B.binop(B.name(sig.p), ast.Sub(), B.name(y))
        return Partial(sig.base, coef, frozenset(members)), sig


def adjoint(short: Partial, g: ast.expr) -> ast.expr:
    """Reverse mode's contribution ``g * coef`` to the adjoint of ``short.base``; ``y - p``
    written ``-(g * (p - y))``, so the negation folds into the loss's (fmad.reverse_signs)."""
    k, rest = split_constant(short.coef)
    if isinstance(rest, ast.BinOp) and isinstance(rest.op, ast.Sub) and B.names(rest.left):
        k, rest = -k, B.binop(rest.right, ast.Sub(), rest.left)
    term = B.binop(g, ast.Mult(), rest)
    return term if k == 1 else B.neg(term)


def signed(sign: int, e: ast.expr) -> ast.expr:
    return e if sign > 0 else B.binop(B.const(-1), ast.Mult(), e)


# -- helpers whose body is a sigmoid of their parameter --------------------------------------
HELPERS: weakref.WeakKeyDictionary[types.CodeType, bool] = weakref.WeakKeyDictionary()


def helper_is_sigmoid(fn: object) -> bool:
    """``def f(a): return 1 / (1 + np.exp(-a))`` (or ``np.exp(a) / (1 + np.exp(a))``)."""
    if not isinstance(fn, types.FunctionType):
        return False
    code = fn.__code__
    if code not in HELPERS:
        HELPERS[code] = read_sigmoid(fn)
    return HELPERS[code]


def read_sigmoid(fn: types.FunctionType) -> bool:
    args = fn.__code__
    if args.co_argcount != 1 or args.co_kwonlyargcount or args.co_flags & 0x0C:
        return False  # one positional parameter, no *args / **kwargs
    try:
        tree = read_function(fn).tree
    except (FmadError, OSError, TypeError):
        return False
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # a docstring
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return False
    a = tree.args.args[0].arg
    e = body[0].value

    def is_exp(node, negated: bool) -> bool:
        if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
            return False
        arg = node.args[0]
        if negated:
            if not (isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub)):
                return False
            arg = arg.operand
        if not (isinstance(arg, ast.Name) and arg.id == a):
            return False
        return any(global_object(fn, node.func, a) is f for f in EXPS)

    if not (isinstance(e, ast.BinOp) and isinstance(e.op, ast.Div)):
        return False
    den = e.right
    if not (isinstance(den, ast.BinOp) and isinstance(den.op, ast.Add)):
        return False
    pairs = ((den.left, den.right), (den.right, den.left))
    if is_one(e.left):
        return any(is_one(c) and is_exp(x, True) for c, x in pairs)
    return is_exp(e.left, False) and any(
        is_one(c) and ast.dump(x) == ast.dump(e.left) for c, x in pairs
    )


def global_object(fn: types.FunctionType, node: ast.expr, local: str) -> object:
    """What ``np.exp`` (a chain of attributes on a global name) is in ``fn``'s globals."""
    if isinstance(node, ast.Attribute):
        base = global_object(fn, node.value, local)
        return getattr(base, node.attr, None) if base is not None else None
    if not isinstance(node, ast.Name) or node.id == local:
        return None
    if node.id in fn.__code__.co_freevars:
        return None
    return fn.__globals__.get(node.id)
