"""Liveness: free each local value after its last use, in the code that runs.

:func:`freed` takes the printed text of a generated function (helpers nested in it
included) and returns the same text with ``del`` lines added; nothing else changes. It is
applied only to the code :mod:`fmad.compile` compiles to run: ``show``, ``.source``, the
golden files and the readable code a second pass reads (:mod:`fmad.fence` refuses ``del``)
stay without it (``show(free=True)`` and ``python -m fmad show --free`` print it).

After it, in each function (each nested ``def`` on its own):

- a ``del n`` stands only where ``n`` is certainly bound: right after a statement that
  bound ``n`` or read it unconditionally (the read succeeded), or where a forward analysis
  of what is bound on every path (``del`` lines included) says so; so it never raises;
- no path from a ``del n`` reads ``n`` before binding it again (backward liveness over the
  structured code: ``if``/``else`` on each path, ``for`` and ``while`` to a fixed point, so
  a name read in a later iteration or after the loop is live across the back edge;
  ``break``, ``continue``, ``return``, ``raise``; inside ``try`` every name a handler reads
  is live throughout the body);
- never freed: parameters (the caller holds them anyway), names declared ``global`` or
  ``nonlocal``, names any nested scope (``def``, ``lambda``, comprehension, class) mentions,
  names bound by ``def``, ``class``, ``import`` or ``except ... as``; nothing at all in a
  function that contains ``del``, ``yield``, ``await``, ``try``/``finally``, ``with``,
  ``match`` or calls ``locals``/``vars``/``eval``/``exec``/``dir``;
- no ``del`` right before a ``return`` or at the end of the function (returning frees
  them anyway);
- the values computed are exactly the same: dropping a name only drops a reference.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_NESTED = _SCOPES + _COMPREHENSIONS
_NESTED_KINDS = frozenset(_NESTED)
_COMPOUND = frozenset(
    {ast.If, ast.For, ast.While, ast.Try, ast.TryStar, ast.With, ast.AsyncWith, ast.AsyncFor}
    | {ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Match}
)
_OPAQUE_CALLS = frozenset({"locals", "vars", "eval", "exec", "dir"})
# a function holding one of these is left as it is
_BAIL = (ast.Delete, ast.Yield, ast.YieldFrom, ast.Await, ast.With, ast.AsyncWith)
_BAIL += (ast.Match, ast.AsyncFor)
_BAIL_KINDS = frozenset(_BAIL)


# False: the code that runs is the printed code, without del lines (tests and benchmarks
# compare the two)
ENABLED = True


def freed(text: str) -> str:
    """``text`` (the source of one function) with a ``del`` line after each local value's
    last use (see the module docstring)."""
    if not ENABLED:
        return text
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    inserts: list[tuple[int, int, int, list[str]]] = []  # (before line index, col, seq, names)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    try:
        while functions:
            functions += _Function(functions.pop(), lines, inserts).run()
    finally:
        _CACHE.clear()
    if not inserts:
        return text
    inserts.sort(key=lambda item: (item[0], -item[1], item[2]))
    out: list[str] = []
    position = 0
    for index, col, _, names in inserts:
        out.extend(lines[position:index])
        position = index
        out.append(" " * col + "del " + ", ".join(names) + "\n")
    out.extend(lines[position:])
    return "".join(out)


# -- names ---------------------------------------------------------------------------------


def _targets(node: ast.AST) -> set[str]:
    """Names a store target binds (``a``, ``a, (b, *c)``); not subscripts or attributes."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Tuple | ast.List):
        return set().union(*(_targets(e) for e in node.elts)) if node.elts else set()
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return set()


def _loads(node: ast.AST | None, certain: bool = False) -> frozenset[str]:
    """The names read anywhere in ``node`` (nested scopes included: conservative); with
    ``certain``, only those certainly read when it is evaluated to completion (not behind
    ``and``/``or``, a conditional expression or a nested scope). Cached per node."""
    if node is None:
        return frozenset()
    found = _CACHE.get((id(node), certain))
    if found is None:
        _collect(node, None)
        found = _CACHE[(id(node), certain)]
    return found


_CACHE: dict = {}  # (id(node), certain) -> names; cleared after each text


def _collect(node: ast.AST, facts: _Facts | None) -> None:
    """One walk over ``node``: the names it reads (all, and certainly), cached; with
    ``facts``, what :func:`_candidates` needs to know (stores, nested scopes, bail)."""
    loads: set[str] = set()
    certain: set[str] = set()
    stack = [(node, True)]
    while stack:
        n, sure = stack.pop()
        kind = type(n)
        if kind is ast.Name:
            if type(n.ctx) is ast.Store:
                if facts is not None:
                    facts.store(n)
            else:
                loads.add(n.id)
                if sure:
                    certain.add(n.id)
            continue
        if kind is ast.BoolOp:
            stack.append((n.values[0], sure))
            stack += [(v, False) for v in n.values[1:]]
            continue
        if kind is ast.IfExp:
            stack += [(n.test, sure), (n.body, False), (n.orelse, False)]
            continue
        if kind in _NESTED_KINDS and n is not node:
            sure = False
            if facts is not None:
                facts.scopes.append(n)
        elif facts is not None:
            if kind in _BAIL_KINDS:
                facts.bail = True
            elif kind is ast.Call and type(n.func) is ast.Name and n.func.id in _OPAQUE_CALLS:
                facts.bail = True
        for field_name in n._fields:
            value = getattr(n, field_name, None)
            if type(value) is list:
                stack += [(v, sure) for v in value if isinstance(v, ast.AST)]
            elif isinstance(value, ast.AST):
                stack.append((value, sure))
    _CACHE[(id(node), False)] = frozenset(loads)
    _CACHE[(id(node), True)] = frozenset(certain)


def _reads(s: ast.stmt, certain: bool = False) -> frozenset[str]:
    """Names a simple statement reads (``x += 1`` reads ``x``)."""
    found = _loads(s, certain)
    if isinstance(s, ast.AugAssign):
        found |= _targets(s.target)
    return found


def _kills(s: ast.stmt) -> set[str]:
    """Names a simple statement certainly binds when it completes."""
    if isinstance(s, ast.Assign):
        return set().union(*(_targets(t) for t in s.targets))
    if isinstance(s, ast.AugAssign) or (isinstance(s, ast.AnnAssign) and s.value is not None):
        return _targets(s.target)
    if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {s.name}
    if isinstance(s, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in s.names}
    return set()


class _Facts:
    """What a function's own scope does with its names (see :func:`_candidates`)."""

    def __init__(self) -> None:
        self.stored: set[str] = set()
        self.kept: set[str] = set()
        self.bail = False
        self.scopes: list[ast.AST] = []  # nested defs, lambdas, comprehensions, classes
        # the values bound to each name: an expression for ``name = value``, None otherwise
        self.bindings: dict[str, list[ast.expr | None]] = {}
        self.simple: set[int] = set()

    def store(self, target: ast.Name) -> None:
        self.stored.add(target.id)
        if id(target) not in self.simple:
            self.bindings.setdefault(target.id, []).append(None)

    def block(self, body: list[ast.stmt]) -> None:
        for s in body:
            kind = type(s)
            if kind is ast.If or kind is ast.While:
                _collect(s.test, self)
                self.block(s.body)
                self.block(s.orelse)
            elif kind is ast.For:
                _collect(s.iter, self)
                _collect(s.target, self)
                self.block(s.body)
                self.block(s.orelse)
            elif kind is ast.Try and not s.finalbody:
                for h in s.handlers:
                    if h.type is not None:
                        _collect(h.type, self)
                    if h.name:
                        self.kept.add(h.name)
                    self.block(h.body)
                self.block(s.body)
                self.block(s.orelse)
            elif isinstance(s, _SCOPES):
                self.scopes.append(s)
                self.kept |= _kills(s)
            elif kind is ast.Global or kind is ast.Nonlocal:
                self.kept.update(s.names)
            elif type(s) in _COMPOUND or isinstance(s, _BAIL):
                self.bail = True
            else:
                if kind is ast.Assign and len(s.targets) == 1 and type(s.targets[0]) is ast.Name:
                    self.bindings.setdefault(s.targets[0].id, []).append(s.value)
                    self.simple.add(id(s.targets[0]))
                elif kind is ast.Import or kind is ast.ImportFrom:
                    self.kept |= _kills(s)
                _collect(s, self)


def _candidates(fn: ast.FunctionDef | ast.AsyncFunctionDef, nested: list) -> set[str]:
    """The names this pass may free in ``fn`` (see the module docstring); the functions
    defined in it are added to ``nested``."""
    a = fn.args
    params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    params |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
    facts = _Facts()
    facts.block(fn.body)
    kept = facts.kept | params
    for scope in facts.scopes:
        for inner in ast.walk(scope):
            if type(inner) is ast.Name:
                kept.add(inner.id)
            elif type(inner) is ast.arg:
                kept.add(inner.arg)
        # each function defined here is analysed on its own (a class's methods too)
        if isinstance(scope, ast.ClassDef):
            nested += [n for n in scope.body if isinstance(n, _FUNCTIONS)]
        elif isinstance(scope, _FUNCTIONS):
            nested.append(scope)
    if facts.bail:
        return set()
    return facts.stored - kept - _held_elsewhere(facts.bindings, params - facts.stored)


def _held_elsewhere(bindings: dict[str, list], params: set[str]) -> set[str]:
    """Names whose every binding is a constant or a copy of a parameter never rebound (or
    of such a name): freeing them frees nothing."""
    held: set[str] = set()
    while True:
        more = {
            name
            for name, values in bindings.items()
            if name not in held
            and all(
                isinstance(v, ast.Constant)
                or (isinstance(v, ast.Name) and (v.id in params or v.id in held))
                for v in values
            )
        }
        if not more:
            return held
        held |= more


# -- the analysis --------------------------------------------------------------------------


@dataclass
class _Jumps:
    """Where ``break``, ``continue`` and an exception go (liveness), and what is bound
    when they are taken (the forward pass)."""

    brk: frozenset[str] = frozenset()
    cont: frozenset[str] = frozenset()
    exc: frozenset[str] = frozenset()
    breaks: list = field(default_factory=list)


class _Function:
    def __init__(self, fn, lines: list[str], inserts: list) -> None:
        self.fn = fn
        self.lines = lines
        self.inserts = inserts
        self.before: dict[int, frozenset[str]] = {}  # live just before each statement
        self.after: dict[int, frozenset[str]] = {}  # live just after it
        self.head: dict[int, frozenset[str]] = {}  # live at a loop's head
        self.hold: frozenset[str] = frozenset()  # targets of the loops around: kept

    def run(self) -> list:
        """Add the del lines of this function; return the functions defined in it."""
        nested: list = []
        self.cands = _candidates(self.fn, nested)
        if not self.cands:
            return nested
        self.live(self.fn.body, frozenset(), _Jumps())
        self.emit(self.fn.body, frozenset(), _Jumps(), tail=False)
        return nested

    # backward: what is live ---------------------------------------------------------------
    def live(self, body: list[ast.stmt], out: frozenset[str], j: _Jumps) -> frozenset[str]:
        for s in reversed(body):
            out_s = out | j.exc
            self.after[id(s)] = out_s
            out = self.stmt_live(s, out_s, j) | j.exc
            self.before[id(s)] = out
        return out

    def stmt_live(self, s: ast.stmt, out: frozenset[str], j: _Jumps) -> frozenset[str]:
        if isinstance(s, ast.Return | ast.Raise):
            return frozenset(_loads(s))
        if isinstance(s, ast.Break):
            return j.brk
        if isinstance(s, ast.Continue):
            return j.cont
        if isinstance(s, ast.If):
            return self.live(s.body, out, j) | self.live(s.orelse, out, j) | _loads(s.test)
        if isinstance(s, ast.For | ast.While):
            exit_ = self.live(s.orelse, out, j) if s.orelse else out
            head: frozenset[str] = frozenset()
            while True:
                inner = _Jumps(brk=out, cont=head, exc=j.exc)
                body = self.live(s.body, head, inner)
                if isinstance(s, ast.For):
                    new = (body - _targets(s.target)) | _loads(s.target) | exit_ | j.exc
                else:
                    new = body | exit_ | _loads(s.test) | j.exc
                if new == head:
                    break
                head = new
            self.head[id(s)] = head
            return head | (_loads(s.iter) if isinstance(s, ast.For) else frozenset())
        if isinstance(s, ast.Try) and not s.finalbody:
            handlers = frozenset()
            for h in s.handlers:
                handlers |= (self.live(h.body, out, j) - {h.name}) | _loads(h.type)
            rest = self.live(s.orelse, out, j) if s.orelse else out
            inner = _Jumps(brk=j.brk, cont=j.cont, exc=j.exc | handlers)
            return self.live(s.body, rest, inner) | handlers
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return (out - {s.name}) | _loads(s)
        if type(s) in _COMPOUND:  # opaque (try/finally, with, match...): keeps what it reads
            return out | _loads(s)
        return (out - _kills(s)) | _reads(s)

    # forward: what is bound, and the del lines -------------------------------------------
    def emit(self, body, bound, j: _Jumps, tail: bool = True):
        """Walk ``body`` with ``bound`` (names certainly bound at its start); add the del
        lines; return what is certainly bound at its end (None: the end is not reached).
        ``tail``: del lines may follow its last statement."""
        for i, s in enumerate(body):
            bound = self.stmt_emit(s, bound, j)
            if bound is None:
                return None
            dead = (bound & self.cands) - self.after[id(s)] - self.hold
            last = i == len(body) - 1
            if dead and (not last or tail) and (last or not isinstance(body[i + 1], ast.Return)):
                self.add(s.end_lineno, s.col_offset, dead)
                bound = bound - dead
        return bound

    def stmt_emit(self, s: ast.stmt, bound, j: _Jumps):
        if isinstance(s, ast.Return | ast.Raise):
            return None
        if isinstance(s, ast.Break):
            j.breaks.append(bound)
            return None
        if isinstance(s, ast.Continue):
            return None
        if isinstance(s, ast.If):
            bound = bound | _loads(s.test, certain=True)
            # del lines at the top of a branch only where both branches are written out; an
            # ``elif``'s own del lines would land after the whole chain: none after it
            elif_ = self.is_elif(s)
            both = bool(s.orelse) and not elif_
            then = self.emit(s.body, self.enter(s.body, bound, both), j)
            else_ = self.emit(s.orelse, self.enter(s.orelse, bound, both), j, tail=not elif_)
            return _meet([then, else_])
        if isinstance(s, ast.For | ast.While):
            if isinstance(s, ast.For):
                bound = bound | _loads(s.iter, certain=True)
            # a name live at the head and bound before the loop stays bound at the head:
            # every del of it in the body is followed, on the way back, by a new binding
            head = bound & self.head[id(s)]
            if isinstance(s, ast.For):
                entry = head | _targets(s.target) | _loads(s.target, certain=True)
            else:
                entry = head | _loads(s.test, certain=True)
                head = entry  # the exit path has evaluated the test
            inner = _Jumps()
            # the target is bound again by the next iteration: no del of it in the body
            held = self.hold
            self.hold = held | (entry - head)
            self.emit(s.body, self.enter(s.body, entry, True), inner)
            self.hold = held
            done = self.emit(s.orelse, head, j) if s.orelse else head
            return _meet([done, *inner.breaks])
        if isinstance(s, ast.Try) and not s.finalbody:
            end = self.emit(s.body, bound, j)
            ends = []
            for h in s.handlers:
                live_h = self.before[id(h.body[0])] if h.body else frozenset()
                ends.append(self.emit(h.body, (bound & live_h), j))
            if end is not None and s.orelse:
                end = self.emit(s.orelse, end, j)
            return _meet([end, *ends])
        if type(s) in _COMPOUND:
            return bound
        return bound | _kills(s) | _reads(s, certain=True)

    def enter(self, branch: list[ast.stmt], bound, allowed: bool):
        """Free, at the top of ``branch``, what is bound and dead there (if ``allowed``);
        return what is then bound."""
        if not allowed or not branch:
            return bound
        dead = (bound & self.cands) - self.before[id(branch[0])] - self.hold
        if dead:
            self.add(branch[0].lineno - 1, branch[0].col_offset, dead)
        return bound - dead

    def add(self, index: int, col: int, names) -> None:
        self.inserts.append((index, col, len(self.inserts), sorted(names)))

    def is_elif(self, s: ast.If) -> bool:
        if len(s.orelse) != 1 or not isinstance(s.orelse[0], ast.If):
            return False
        first = s.orelse[0]
        return self.lines[first.lineno - 1].lstrip().startswith("elif")


def _meet(ends: list):
    """What is bound at a join: on every path that reaches it (None: none does)."""
    reached = [e for e in ends if e is not None]
    return frozenset.intersection(*reached) if reached else None
