"""Where objects come from, and who may still read them: the domain of :mod:`fmad.mutation`.

A *site* names the origin of an object: ``("new", key, kind, name)`` made by the function at
statement ``key`` (into ``name``; kind ``"list"`` for a ``[...]`` display), ``("old", ...)``
made there by an earlier loop iteration, ``("param", name)`` a parameter's object on entry,
``("part", site)`` an item or view of another site, ``UNKNOWN`` anything else. A
:class:`State` maps each name to the sites its object may come from and records the escaped
ones (stored in a container, passed to a callee). :class:`Liveness` tells which names may
still be read after a statement. :class:`SiteWalk` runs a flattened function over states,
loops to a fixed point; what an assignment and a call do is :class:`fmad.mutation.Mutation`'s.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad.resolve import Scope

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
    """``env``: name -> its sites; ``escaped``: sites stored in a container or passed to a
    callee; ``read``: sites an operation carrying a derivative has read (its derivative code
    may read them again later, so they must not change in place)."""

    def __init__(
        self, env: dict[str, Sites], escaped: Sites | None = None, read: Sites | None = None
    ) -> None:
        self.env = env
        self.escaped = escaped if escaped is not None else Sites()
        self.read = read if read is not None else Sites()

    def copy(self) -> State:
        return State(dict(self.env), self.escaped, self.read)

    def join(self, other: State) -> State:
        env = dict(self.env)
        for name, sites in other.env.items():
            env[name] = env.get(name, Sites()) | sites
        return State(env, self.escaped | other.escaped, self.read | other.read)

    def same(self, other: State) -> bool:
        return self.env == other.env and self.escaped == other.escaped and self.read == other.read


# -- liveness ------------------------------------------------------------------------------
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
            return (live - defs) | B.read_names(s)
        if isinstance(s, ast.Return | ast.Raise):
            return B.read_names(s)
        if isinstance(s, ast.Break | ast.Continue):
            return live | (loop or set())
        if isinstance(s, ast.If):
            return (
                B.read_names(s.test)
                | self.block(s.body, live, loop)
                | self.block(s.orelse, live, loop)
            )
        if isinstance(s, ast.For | ast.While):
            header = B.read_names(s.iter if isinstance(s, ast.For) else s.test)
            head = header | live | self.block(s.orelse, live, loop)
            while True:
                body_in = self.block(s.body, head, head | live)
                if body_in <= head:
                    return head
                head |= body_in
        if isinstance(s, ast.FunctionDef):
            return live | B.free_names(s)
        return live | B.read_names(s)


# -- the walk ------------------------------------------------------------------------------
class SiteWalk:
    """Runs a flattened function over :class:`State`\\ s: ``if`` joins both branches, a loop
    runs to a fixed point. Subclasses say what an assignment and a call do (``assign``,
    ``call``) and check the statements the walk does not follow (``unfollowed``)."""

    def __init__(self, flat: ast.FunctionDef, scope: Scope) -> None:
        self.flat = flat
        self.scope = scope
        self.locals = B.bound_names(flat)
        self.loops: list[tuple[list[State], list[State]]] = []
        self.allocated: set[int] = set()  # statements whose allocation has run
        self.iterating: list[Sites] = []  # what the enclosing for loops iterate over

    def assign(self, s: ast.Assign, state: State) -> State:
        raise NotImplementedError

    def call(self, call: ast.Call, key: ast.AST, state: State, *, discarded=False, name=""):
        raise NotImplementedError

    def unfollowed(self, s: ast.stmt) -> None:
        raise NotImplementedError

    def block(self, body: list[ast.stmt], state: State) -> State:
        for s in body:
            state = self.stmt(s, state)
        return state

    def stmt(self, s: ast.stmt, state: State) -> State:
        if isinstance(s, ast.Assign):
            return self.assign(s, state.copy())
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            state = state.copy()
            self.call(s.value, s, state, discarded=True)
            return state
        self.unfollowed(s)
        if isinstance(s, ast.If):
            return self.block(s.body, state.copy()).join(self.block(s.orelse, state.copy()))
        if isinstance(s, ast.For | ast.While):
            return self.loop(s, state)
        if isinstance(s, ast.Break | ast.Continue) and self.loops:
            (self.loops[-1][0] if isinstance(s, ast.Break) else self.loops[-1][1]).append(state)
            return state.copy()
        if isinstance(s, ast.FunctionDef):
            state = state.copy()
            state.env[s.name] = Sites({UNKNOWN})
        return state

    def loop(self, s: ast.For | ast.While, state: State) -> State:
        head = state
        while True:
            breaks: list[State] = []
            continues: list[State] = []
            self.loops.append((breaks, continues))
            entry = head.copy()
            iterated = Sites()
            if isinstance(s, ast.For):
                iterated = self.iterated(s.iter, s, entry)
                entry = self.bind(s.target, Sites(part(x) for x in iterated), entry)
            self.iterating.append(iterated)  # the loop reads it until the end
            end = self.block(s.body, entry)
            self.iterating.pop()
            self.loops.pop()
            new_head = head.join(end)
            for c in continues:
                new_head = new_head.join(c)
            if new_head.same(head):
                break
            head = new_head
        out = self.block(s.orelse, head.copy())
        for b in breaks:
            out = out.join(b)
        return out

    def iterated(self, it: ast.expr, key: ast.AST, state: State) -> Sites:
        """What a ``for`` loop iterates over: ``enumerate(xs)``, ``zip(xs, ys)``,
        ``reversed(xs)`` iterate the items of their arguments."""
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id in ("enumerate", "zip", "reversed")
            and not self.scope.is_local(it.func.id)
        ):
            return Sites().union(*(with_parts(self.sites(a, key, state)) for a in it.args))
        return self.sites(it, key, state)

    def bind(self, target: ast.expr, sites: Sites, state: State) -> State:
        for name in B.stored_names(target):
            state.env[name] = sites
        return state

    def lookup(self, name: str, state: State) -> Sites:
        if name in state.env:
            return state.env[name]
        if name in self.locals:
            return Sites()
        return Sites({UNKNOWN})

    def fresh(self, key: ast.AST, kind: str, name: str, state: State) -> Sites:
        """A new object made at ``key``: objects made there before become "old"."""
        site = ("new", id(key), kind, name)
        old = ("old", id(key), kind, name)

        def age(sites: Sites) -> Sites:
            if site not in sites and part(site) not in sites:
                return sites
            return Sites(old if x == site else part(old) if x == part(site) else x for x in sites)

        if id(key) in self.allocated:  # made here before (a loop): the old ones age
            state.env = {n: age(v) for n, v in state.env.items()}
            state.escaped = age(state.escaped)
            state.read = age(state.read)
        self.allocated.add(id(key))
        return Sites({site})

    def escape(self, atoms: list[ast.expr], state: State) -> None:
        for a in atoms:
            if isinstance(a, ast.Name):
                state.escaped = state.escaped | with_parts(self.lookup(a.id, state))

    def sites(self, value: ast.expr, key: ast.AST, state: State, name: str = "") -> Sites:
        if isinstance(value, ast.Name):
            return self.lookup(value.id, state)
        if isinstance(value, ast.Constant | ast.JoinedStr):
            return Sites()
        if isinstance(value, ast.BinOp | ast.UnaryOp | ast.Compare | ast.BoolOp):
            return self.fresh(key, "value", name, state)
        if isinstance(value, ast.List | ast.Tuple | ast.Set | ast.Dict):
            elts = value.values if isinstance(value, ast.Dict) else value.elts
            self.escape(list(elts), state)
            return self.fresh(key, "list" if isinstance(value, ast.List) else "value", name, state)
        if isinstance(value, ast.Subscript | ast.Attribute):
            root = value.value
            if isinstance(value, ast.Attribute) and not (
                isinstance(root, ast.Name) and self.scope.is_local(root.id)
            ):
                return Sites({UNKNOWN})
            return Sites(part(x) for x in self.sites(root, key, state))
        if isinstance(value, ast.Call):
            return self.call(value, key, state, name=name)
        return Sites({UNKNOWN})
