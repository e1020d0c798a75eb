"""Copies coalesced: ``t = e ... a = t`` becomes ``a = e``, in the code that runs.

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

Expressions are not changed or moved: each operation runs in the same order on the same
operands, so values are the same bits.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from fmad import build as B

# False: the code that runs keeps its copies (tests compare the two)
ENABLED = True

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
    if not ENABLED or not any(is_copy(n) for n in B.walk(tree) if isinstance(n, ast.stmt)):
        return None
    new = B.clone(tree)
    changed = False
    todo: list[ast.FunctionDef | ast.AsyncFunctionDef] = [new]
    users: set[str] | None = None
    while todo:
        scope = _Scope(todo.pop())
        todo += scope.functions
        if scope.bail or not scope.copies:
            continue
        if users is None:
            users = user_names()
        changed |= scope.coalesce(users)
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
        self.block(fn.body, [])

    def block(self, body: list[ast.stmt], tries: list[ast.Try] | None) -> None:
        self.blocks.append((body, tries))
        for s in body:
            kind = type(s)
            if kind in (ast.If, ast.While):
                self.expr(s.test)
                self.block(s.body, tries)
                self.block(s.orelse, tries)
            elif kind is ast.For:
                self.expr(s.iter)
                self.expr(s.target)
                self.block(s.body, tries)
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


def _location(node: ast.AST) -> dict[str, int]:
    return {k: getattr(node, k) for k in node._attributes if hasattr(node, k)}
