"""Copies coalesced (``t = e ... a = t`` becomes ``a = e``) and single-use temporaries of
loops folded, in the code that runs.

Flattening ``loss += e`` in a loop makes a new name for the sum and a copy back
(``loss_add = loss + e_1`` ... ``loss = loss_add``), and each tangent follows it
(``dloss_dw = dloss_add_dw``). A hand-written loop has neither the copy nor the extra name.
:func:`coalesced` takes a generated function and returns a copy of it in which each such
copy is gone and the value is bound to its final name where it is computed; it is applied
only to the code :mod:`fmad.compile` compiles to run (never to what ``show``, ``.source``,
the golden files or a second pass read), before :mod:`fmad.liveness` adds its ``del``
lines (so ``loss = loss + e_1`` keeps ``loss`` alive instead of freeing and copying it).

A copy ``a = t`` (both plain names, ``a`` not ``t``) is removed, and the one assignment of
``t``, ``t = e``, made ``a = e``, only where every run of the original gives the same values:

- ``t`` is a local of the function bound exactly once, by ``t = e`` with a single name
  target, and read exactly once, by the copy; neither ``t`` nor ``a`` is mentioned by a
  nested scope (``def``, ``lambda``, comprehension, class) or declared ``global`` or
  ``nonlocal``, and ``t`` is not a parameter;
- ``t = e`` and the copy stand in the same block, and every statement between them is a
  simple statement (no ``if``, loop, ``break``, ``continue``, ``return``, ``raise``,
  ``del``) that does not mention ``a``: ``a`` is bound to ``e`` earlier, but nothing reads
  it before the copy would have bound it, on any path (an exception between the two leaves
  the function, or reaches a handler that only re-raises and does not read ``a``);
- ``a`` and ``t`` are both the user's (or the flattened primal's) names or both fmad's, so
  :mod:`fmad.trace` classifies an exception raised by ``e`` as before;
- nothing at all in a function holding ``del``, ``yield``, ``await``, ``with``, ``match``,
  ``try``/``finally``, ``global``/``nonlocal`` of either name, or a call of
  ``locals``/``vars``/``eval``/``exec``/``dir``.

In a loop's body (where values are typically numbers, each name a cost per iteration), a
temporary ``t = e`` read once, by the statement right after it, is also folded into it:
``u = w * x_i`` then ``v = u + b`` runs as ``v = w * x_i + b``. Only where both come from the
same user line, ``e`` and the reading value are operators, subscripts and slices of names and
constants (not ``@``, which :mod:`fmad.columns` rewrites; outside loops the flat statements
stay for :mod:`fmad.inplace`), both are the user's or both fmad's, and Python evaluates
nothing but loads of the function's own locals before it reaches ``t`` (so ``e`` still runs
first, and nothing it does can change them).

Each operation runs in the same order on the same operands, so values are the same bits.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from fmad import build as B

# False: the code that runs keeps its copies and temporaries (tests compare the two)
ENABLED = True
# False: single-use temporaries in loops stay (only copies go)
FOLD = True

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_NESTED = _SCOPES + (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_BAIL = (ast.Delete, ast.Yield, ast.YieldFrom, ast.Await, ast.With, ast.AsyncWith, ast.Match)
_OPAQUE_CALLS = frozenset({"locals", "vars", "eval", "exec", "dir"})
# statements that may stand between ``t = e`` and its copy: each runs to its end or raises
_SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Pass)


def is_copy(s: ast.stmt) -> bool:
    """``a = t``, two plain names."""
    return (
        type(s) is ast.Assign
        and len(s.targets) == 1
        and type(s.targets[0]) is ast.Name
        and type(s.value) is ast.Name
        and s.targets[0].id != s.value.id
    )


def coalesced(tree: ast.FunctionDef, user_names: Callable[[], set[str]]) -> ast.FunctionDef | None:
    """A copy of ``tree`` (a generated function, nested functions included) with its copies
    coalesced (see the module docstring); None where there is none to coalesce.
    ``user_names()``: the names of the user's code and of the flattened primal."""
    if not ENABLED:
        return None
    statements = [n for n in B.walk(tree) if isinstance(n, ast.stmt)]
    loops = FOLD and any(type(n) is ast.For or type(n) is ast.While for n in statements)
    if not loops and not any(is_copy(n) for n in statements):
        return None
    new = B.clone(tree)
    changed = False
    todo: list[ast.FunctionDef | ast.AsyncFunctionDef] = [new]
    users: set[str] | None = None
    while todo:
        scope = _Scope(todo.pop())
        todo += scope.functions
        if scope.bail or not (scope.copies or scope.loops):
            continue
        if users is None:
            users = user_names()
        changed |= scope.coalesce(users)
        if FOLD:
            changed |= scope.fold(users)
    return new if changed else None


class _Scope:
    """One function's own scope: how often each name is bound and read, and its blocks."""

    def __init__(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.fn = fn
        a = fn.args
        self.params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
        self.params |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
        self.stores: dict[str, int] = {}
        self.loads: dict[str, int] = {}
        self.kept: set[str] = set()  # mentioned by a nested scope, global, nonlocal...
        self.functions: list = []  # functions defined here: each is a scope of its own
        self.bail = False
        self.copies = 0
        # (block, the try statements around it whose handlers only re-raise, or None: some
        # handler around it does more)
        self.blocks: list[tuple[list[ast.stmt], list[ast.Try] | None]] = []
        self.loops: set[int] = set()  # the blocks in a loop's body (by id)
        self.in_loop = False
        self.block(fn.body, [])

    def block(self, body: list[ast.stmt], tries: list[ast.Try] | None) -> None:
        self.blocks.append((body, tries))
        if self.in_loop:
            self.loops.add(id(body))
        for s in body:
            kind = type(s)
            if kind is ast.If:
                self.expr(s.test)
                self.block(s.body, tries)
                self.block(s.orelse, tries)
            elif kind is ast.While:
                self.expr(s.test)
                self.loop(s.body, tries)
                self.block(s.orelse, tries)
            elif kind is ast.For:
                self.expr(s.iter)
                self.expr(s.target)
                self.loop(s.body, tries)
                self.block(s.orelse, tries)
            elif kind is ast.Try and not s.finalbody:
                reraise = all(h.body and type(h.body[-1]) is ast.Raise for h in s.handlers)
                self.block(s.body, [*tries, s] if reraise and tries is not None else None)
                for h in s.handlers:
                    self.expr(h.type)
                    if h.name:
                        self.kept.add(h.name)
                    self.block(h.body, tries)
                self.block(s.orelse, tries)
            elif isinstance(s, _SCOPES):
                self.kept.add(s.name)
                self.nested(s)
            elif kind is ast.Global or kind is ast.Nonlocal:
                self.kept.update(s.names)
            elif kind in (ast.Import, ast.ImportFrom):
                self.kept |= {(a.asname or a.name).split(".")[0] for a in s.names}
            elif isinstance(s, _SIMPLE + (ast.Return, ast.Raise, ast.Break, ast.Continue)):
                if kind is ast.AugAssign and type(s.target) is ast.Name:
                    self.loads[s.target.id] = self.loads.get(s.target.id, 0) + 1
                self.copies += is_copy(s)
                self.expr(s)
            else:  # try/finally, with, match, del, async...
                self.bail = True

    def loop(self, body: list[ast.stmt], tries: list[ast.Try] | None) -> None:
        outer, self.in_loop = self.in_loop, True
        self.block(body, tries)
        self.in_loop = outer

    def nested(self, node: ast.AST) -> None:
        """A nested scope: every name it mentions is kept; its functions are scopes."""
        for n in B.walk(node):
            if type(n) is ast.Name:
                self.kept.add(n.id)
            elif type(n) is ast.arg:
                self.kept.add(n.arg)
        if isinstance(node, ast.ClassDef):
            self.functions += [n for n in node.body if isinstance(n, _SCOPES[:2])]
        elif isinstance(node, _SCOPES[:2]):
            self.functions.append(node)
            # its defaults and decorators are evaluated here
            for d in (*node.args.defaults, *node.args.kw_defaults, *node.decorator_list):
                if d is not None:
                    self.expr(d)

    def expr(self, node: ast.AST | None) -> None:
        if node is None:
            return
        todo = [node]
        while todo:
            n = todo.pop()
            kind = type(n)
            if kind is ast.Name:
                counts = self.loads if type(n.ctx) is ast.Load else self.stores
                counts[n.id] = counts.get(n.id, 0) + 1
                continue
            if n is not node and isinstance(n, _NESTED):
                self.nested(n)
                continue
            if isinstance(n, _BAIL):
                self.bail = True
            elif kind is ast.Call and type(n.func) is ast.Name and n.func.id in _OPAQUE_CALLS:
                self.bail = True
            B.add_children(n, todo)

    def coalesce(self, users: set[str]) -> bool:
        changed = False
        for body, tries in self.blocks:
            if tries is None:
                continue
            i = 0
            while i < len(body):
                if is_copy(body[i]) and self.merge(body, i, tries, users):
                    del body[i]
                    changed = True
                    continue
                i += 1
        return changed

    def fold(self, users: set[str]) -> bool:
        """Fold each single-use temporary of a loop's body into the statement right after
        it, which reads it (see the module docstring)."""
        changed = False
        for body, _ in self.blocks:
            if id(body) not in self.loops:
                continue
            i = 1
            while i < len(body):
                if self.folds(body[i - 1], body[i], users):
                    del body[i - 1]
                    changed = True
                    i = max(i - 1, 1)
                    continue
                i += 1
        return changed

    def folds(self, before: ast.stmt, s: ast.stmt, users: set[str]) -> bool:
        """Put the value of ``before`` (``t = e``) in place of ``t`` in ``s``, if that
        evaluates the same operations in the same order, at the same user line."""
        if not (_single(before) and _single(s)):
            return False
        if getattr(before, "lineno", None) != getattr(s, "lineno", None):
            return False
        t = before.targets[0].id
        if t in self.params or t in self.kept:
            return False
        if self.stores.get(t) != 1 or self.loads.get(t) != 1:
            return False
        if not (_foldable(before.value) and _foldable(s.value)):
            return False
        primal = all(n in users for n in B.names(before))
        if primal != all(n in users for n in B.names(s)):
            return False  # fmad.trace tells the user's lines from fmad's by their names
        order = _order(s.value, [])
        at = next((k for k, n in enumerate(order) if type(n) is ast.Name and n.id == t), None)
        if at is None:
            return False
        # only loads of the function's own locals before it: nothing e does changes them
        for n in order[:at]:
            if type(n) is ast.Constant:
                continue
            if type(n) is not ast.Name or n.id in self.kept:
                return False
            if n.id not in self.params and not self.stores.get(n.id):
                return False  # a global or free variable: a call in e might rebind it
        _replace(s, order[at], before.value)
        self.stores[t] = self.loads[t] = 0
        return True

    def merge(self, body: list[ast.stmt], i: int, tries: list[ast.Try], users: set[str]) -> bool:
        """Bind the value ``body[i]`` copies to its target where it is computed, if that
        keeps every value (see the module docstring)."""
        copy = body[i]
        a, t = copy.targets[0].id, copy.value.id
        if t in self.params or t in self.kept or a in self.kept:
            return False
        if self.stores.get(t) != 1 or self.loads.get(t) != 1 or (a in users) != (t in users):
            return False
        if any(a in B.names(h) for s in tries for h in s.handlers):
            return False
        for j in range(i - 1, -1, -1):
            s = body[j]
            if (
                type(s) is ast.Assign
                and len(s.targets) == 1
                and type(s.targets[0]) is ast.Name
                and s.targets[0].id == t
            ):
                s.targets[0] = ast.Name(id=a, ctx=ast.Store(), **_location(s.targets[0]))
                self.stores[t] = self.loads[t] = 0
                return True
            if not isinstance(s, _SIMPLE) or a in B.names(s):
                return False
        return False


# what a temporary folded into the next statement, and that statement's value, may hold
_FOLDABLE = frozenset(
    {ast.BinOp, ast.UnaryOp, ast.Subscript, ast.Slice, ast.Tuple, ast.Name, ast.Constant}
)


def _foldable(node: ast.expr) -> bool:
    """Operators, subscripts and slices of names and constants, not ``@`` (whose statements
    fmad.columns rewrites)."""
    for n in B.walk(node):
        kind = type(n)
        if kind not in _FOLDABLE or (kind is ast.BinOp and type(n.op) is ast.MatMult):
            return False
    return True


def _order(node: ast.AST, out: list[ast.AST]) -> list[ast.AST]:
    """The nodes of a :func:`_foldable` expression in the order Python evaluates them."""
    kind = type(node)
    if kind is ast.BinOp:
        _order(node.left, out)
        _order(node.right, out)
    elif kind is ast.UnaryOp:
        _order(node.operand, out)
    elif kind is ast.Subscript:
        _order(node.value, out)
        _order(node.slice, out)
    elif kind is ast.Slice:
        for part in (node.lower, node.upper, node.step):
            if part is not None:
                _order(part, out)
    elif kind is ast.Tuple:
        for e in node.elts:
            _order(e, out)
    out.append(node)
    return out


def _single(s: ast.stmt) -> bool:
    """``name = value``."""
    return type(s) is ast.Assign and len(s.targets) == 1 and type(s.targets[0]) is ast.Name


def _replace(s: ast.Assign, old: ast.Name, new: ast.expr) -> None:
    """Put ``new`` where ``old`` stands in ``s``'s value."""
    if s.value is old:
        s.value = new
        return
    for node in B.walk(s.value):
        for field_name in node._fields:
            value = getattr(node, field_name, None)
            if value is old:
                setattr(node, field_name, new)
                return
            if type(value) is list and any(v is old for v in value):
                value[[v is old for v in value].index(True)] = new
                return


def _location(node: ast.AST) -> dict[str, int]:
    return {k: getattr(node, k) for k in node._attributes if hasattr(node, k)}
