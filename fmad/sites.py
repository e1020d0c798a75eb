"""Where objects come from, and who may still read them: the domain of :mod:`fmad.mutation`.

A *site* names the origin of an object: ``("new", key, kind, name)`` made by the function at
statement ``key`` (into ``name``; kind ``"list"`` for a ``[...]`` display), ``("old", ...)``
made there by an earlier loop iteration, ``("param", name)`` a parameter's object on entry,
``("part", site)`` an item or view of another site, ``UNKNOWN`` anything else. A
:class:`State` maps each name to the sites its object may come from and records the escaped
ones (stored in a container, passed to a callee). :class:`Liveness` tells which names may
still be read after a statement.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad.activity import free_names

# -- sites ---------------------------------------------------------------------------------
# ("new", key, kind, name): made by this function at statement ``key`` (into ``name``);
# kind "list" for a [...] display. ("old", ...): made there by an earlier iteration.
# ("param", name): a parameter's object on entry. ("part", site): an item or view of site.
UNKNOWN = ("unknown",)
Sites = frozenset


def part(site: tuple) -> tuple:
    if site[0] == "part" or site == UNKNOWN:
        return site
    return ("part", site)


def with_parts(sites: Sites) -> Sites:
    return Sites(sites | {part(s) for s in sites})


class State:
    def __init__(self, env: dict[str, Sites], escaped: Sites | None = None) -> None:
        self.env = env
        self.escaped = escaped if escaped is not None else Sites()

    def copy(self) -> State:
        return State(dict(self.env), self.escaped)

    def join(self, other: State) -> State:
        env = dict(self.env)
        for name, sites in other.env.items():
            env[name] = env.get(name, Sites()) | sites
        return State(env, self.escaped | other.escaped)

    def same(self, other: State) -> bool:
        return self.env == other.env and self.escaped == other.escaped


# -- liveness ------------------------------------------------------------------------------
def reads(node: ast.AST | None) -> set[str]:
    return B.read_names(node) if node is not None else set()


class Liveness:
    """``after[id(stmt)]``: names that may be read after ``stmt`` runs (over-approximated)."""

    def __init__(self, tree: ast.FunctionDef) -> None:
        self.after: dict[int, set[str]] = {}
        self.block(tree.body, set(), None)

    def block(self, body: list[ast.stmt], live: set[str], loop) -> set[str]:
        live = set(live)
        for s in reversed(body):
            self.after[id(s)] = self.after.get(id(s), set()) | live
            live = self.stmt(s, live, loop)
        return live

    def stmt(self, s: ast.stmt, live: set[str], loop) -> set[str]:
        if isinstance(s, ast.Assign):
            defs = {t.id for t in s.targets if isinstance(t, ast.Name)}
            return (live - defs) | reads(s)
        if isinstance(s, ast.Return | ast.Raise):
            return reads(s)
        if isinstance(s, ast.Break | ast.Continue):
            return live | (loop or set())
        if isinstance(s, ast.If):
            return reads(s.test) | self.block(s.body, live, loop) | self.block(s.orelse, live, loop)
        if isinstance(s, ast.For | ast.While):
            header = reads(s.iter if isinstance(s, ast.For) else s.test)
            head = header | live | self.block(s.orelse, live, loop)
            while True:
                body_in = self.block(s.body, head, head | live)
                if body_in <= head:
                    return head
                head |= body_in
        if isinstance(s, ast.FunctionDef):
            return live | free_names(s)
        return live | reads(s)
