"""Mutation and aliasing: the in-place changes fmad models, and the refusal of the others.

fmad's tangents follow *names*: after ``z = f(x)`` comes ``dz_dw = ...``. A change made to an
object in place (a method such as ``s.reverse()``, ``x[i] = v``, ``out=``, a callee that
changes its argument) leaves the tangents of every name that sees the object stale: a silent
wrong derivative. And fmad's rewrite of ``x += v`` as ``x = x + v`` differs from Python's
in-place update as soon as another name sees ``x``'s list or array. This pass runs on the
flattened function once its active names are known. After it:

- ``append``, ``extend`` and ``insert`` are called with values carrying a derivative only on
  a list the function built itself (a ``[...]`` display or a comprehension), that no other
  live name, container or callee can see (fmad models those exactly);
- every other in-place change touches no value that carries a derivative: the primal
  performs it as the original does, and no tangent is involved;
- ``x += v`` is rewritten ``x = x + v`` as it is only where ``x``'s object is provably the
  function's own (a value it computed that no other live name, container, callee or loop
  sees); elsewhere the rewrite is preceded by a call-time check,
  :func:`fmad.runtime.check_rebind`, which lets a number or tuple through (Python rebinds
  those too) and refuses a list or an array (shared, a view, or the caller's: fmad never
  changes its inputs);
- anything else has raised :class:`fmad.UnsupportedError` with the user's file and line.

The analysis is a small abstract interpreter: each name maps to the *sites* its object may
come from (an allocation in this function, a parameter, a part or view of another site, or
somewhere unknown), with a liveness pass telling which other names could still observe it.
The tables (which methods change their receiver, which functions return a view...) are in
:mod:`fmad.effects`.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable

import numpy as np

from fmad import build as B
from fmad import rules
from fmad.activity import classify, free_names, nested_functions
from fmad.effects import (
    ALIASING_FUNCTIONS,
    FRESH_METHODS,
    MODELLED_METHODS,
    MUTATING_FUNCTIONS,
    MUTATING_METHODS,
    OPERATOR_DUNDERS,
    PURE_METHODS,
    changes_state,
    effect_free,
    mutating_method,
    out_arguments,
    out_free,
    source_text,
)
from fmad.errors import unsupported
from fmad.resolve import bound_names
from fmad.source import read_function

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


# -- the pass ------------------------------------------------------------------------------
class Mutation:
    def __init__(self, fwd, runtime: Callable[[], ast.expr]) -> None:
        self.fwd = fwd
        self.flat: ast.FunctionDef = fwd.flat
        self.filename: str = fwd.filename
        self.scope = fwd.scope
        self.nested = fwd.nested
        self.runtime = runtime
        self.locals = bound_names(self.flat)
        a = self.flat.args
        every = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
        self.params = [x.arg for x in every if x is not None]
        self.captured = set().union(*(free_names(t) for t in nested_functions(self.flat).values()))
        self.live = Liveness(self.flat).after
        self.problems: dict[int, tuple[ast.AST, str]] = {}
        self.guards: dict[int, tuple[ast.Assign, ast.Call]] = {}
        self.loops: list[tuple[list[State], list[State]]] = []
        self.allocated: set[int] = set()  # statements whose allocation has run
        self.iterating: list[Sites] = []  # what the enclosing for loops iterate over

    # -- activity ----------------------------------------------------------------------
    def active(self, node: ast.expr | None) -> bool:
        return node is not None and any(
            self.fwd.activity.expr_active(node, names) for names in self.fwd.active.values()
        )

    def problem(self, node: ast.AST, message: str) -> None:
        self.problems.setdefault(id(node), (node, message))

    # -- running -----------------------------------------------------------------------
    def run(self) -> None:
        env = {p: Sites({("param", p)}) for p in self.params}
        self.block(self.flat.body, State(env))
        if self.problems:
            node, message = min(
                self.problems.values(), key=lambda p: (p[0].lineno, p[0].col_offset)
            )
            raise unsupported(self.filename, node, message)
        for assign, guard in self.guards.values():
            if not insert_before(self.flat.body, assign, ast.Expr(value=guard)):
                raise AssertionError("fmad bug: an augmented assignment vanished")

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
        if isinstance(s, ast.Expr) and any(isinstance(n, ast.Call) for n in ast.walk(s.value)):
            self.problem(
                s,
                f"'{source_text(self.filename, s, s)}' calls a function inside an expression "
                "whose value is dropped, for its effect, which fmad does not follow; write "
                "the call as a statement of its own (a for loop that appends, say)",
            )
        if isinstance(s, ast.If | ast.While | ast.Assert):
            self.test_calls(s)
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

    # -- where an object comes from ----------------------------------------------------
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

    # -- calls -------------------------------------------------------------------------
    def call(
        self, call: ast.Call, key: ast.AST, state: State, *, discarded=False, name=""
    ) -> Sites:
        func = call.func
        args = [*call.args, *(k.value for k in call.keywords)]
        arg_sites = Sites().union(*(self.sites(a, key, state) for a in args if is_atom(a)))
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            receiver = func.value.id
            is_module = not self.scope.is_local(receiver) and isinstance(
                self.scope.lookup_name(receiver), types.ModuleType
            )
            if not is_module and mutating_method(func.attr):
                self.in_place(key, call, func.value, args, state, method=func.attr)
                self.escape(args, state)
                return Sites({UNKNOWN}) | with_parts(self.lookup(receiver, state))
        target = classify(call, self.scope, self.nested)
        method = func.attr if target.kind == "method" else None
        outs = out_arguments(target.obj, call, method)
        for out in outs:
            if isinstance(out, ast.Name):
                self.in_place(key, call, out, args, state, out=True, obj=target.obj)
        if target.obj is not None and rules.hashable(target.obj):
            position = MUTATING_FUNCTIONS.get(target.obj)
            if position is not None and len(call.args) > position:
                atom = call.args[position]
                if isinstance(atom, ast.Name):
                    self.in_place(key, call, atom, args, state)
        if discarded:
            self.discarded(call, target, key)
        if outs:
            return with_parts(Sites().union(*(self.sites(o, key, state) for o in outs)))
        if target.kind in ("rule", "zero"):
            if rules.hashable(target.obj) and target.obj in ALIASING_FUNCTIONS:
                return with_parts(arg_sites)
            if target.obj is np.array and any(k.arg == "copy" for k in call.keywords):
                return with_parts(arg_sites)
            return self.fresh(key, "value", name, state)
        if target.kind == "method":
            base = self.lookup(func.value.id, state)
            if func.attr in FRESH_METHODS:
                return self.fresh(key, "value", name, state)
            if func.attr in rules.METHOD_RULES:
                return with_parts(base)
            self.escape(args, state)
            return Sites({UNKNOWN}) | with_parts(base | arg_sites)
        # a helper or an unknown callee: it may keep its arguments, or return one
        self.escape(args, state)
        return Sites({UNKNOWN}) | with_parts(arg_sites)

    def discarded(self, call: ast.Call, target, key: ast.AST) -> None:
        """A call whose result is dropped is made for an effect: refuse one that may change
        an argument carrying a derivative (or reached by one)."""
        func = call.func
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if not (self.active(call) or self.active(receiver) or any(map(self.active, call.args))):
            return
        if target.kind in ("rule", "zero") or effect_free(target.obj):
            return
        what = source_text(self.filename, key, call)
        if target.kind == "method" and target.name in PURE_METHODS:
            return
        if target.kind in ("user", "nested"):
            effect = self.helper_effect(target)
            if effect is None:
                return
            self.problem(
                key,
                f"'{what}' discards the result of '{target.name}', which changes its "
                f"arguments or other state in place ({effect}); fmad does not model changes "
                f"made inside a callee; make '{target.name}' return the new value and "
                "assign it (build new lists with '+' instead of append)",
            )
            return
        self.problem(
            key,
            f"'{what}' calls '{target.name}' with a value that carries a derivative and "
            "discards the result, so it is called for an effect (such as changing an "
            "argument in place) that fmad cannot see; fmad does not model it; compute "
            "a new value and assign it, or move the call out of the differentiated function",
        )

    def helper_effect(self, target) -> str | None:
        if target.kind == "nested":
            return changes_state(target.obj, self.filename, self.fwd.unit.function, set())
        try:
            src = read_function(target.obj)
        except Exception:  # noqa: BLE001 - no source: assume the worst
            return f"fmad cannot read the source of '{target.name}'"
        return changes_state(src.tree, src.filename, src.function, set())

    def test_calls(self, s: ast.If | ast.While | ast.Assert) -> None:
        """The test of an ``if``, ``while`` or ``assert`` is left as written (a boolean has
        no derivative): it must change nothing that carries a derivative."""
        for call in ast.walk(s.test):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            args = [*call.args, *(k.value for k in call.keywords)]
            receiver = func.value if isinstance(func, ast.Attribute) else None
            if not any(self.active(a) for a in [*args, receiver]):
                continue
            changes = any(k.arg == "out" for k in call.keywords) or (
                isinstance(receiver, ast.Name)
                and self.scope.is_local(receiver.id)
                and mutating_method(func.attr)
            )
            target = classify(call, self.scope, self.nested)
            if not changes and target.kind in ("user", "nested"):
                changes = self.helper_effect(target) is not None
            if changes:
                self.problem(
                    s,
                    f"the test '{ast.unparse(s.test)}' changes a value that carries a "
                    f"derivative in place ('{ast.unparse(call)}'); fmad does not model "
                    "in-place changes; compute the value in a statement before the test",
                )

    # -- assignments -------------------------------------------------------------------
    def assign(self, s: ast.Assign, state: State) -> State:
        target = s.targets[0]
        augmented = getattr(s, "fmad_augmented", None)
        if augmented is not None and isinstance(target, ast.Name):
            self.rebind(s, augmented, target.id, state)
        if isinstance(target, ast.Subscript):
            self.sites(s.value, s, state)
            if isinstance(target.value, ast.Name):
                self.in_place(s, s, target.value, [s.value], state, store=True)
            self.escape([s.value], state)
            return state
        if isinstance(target, ast.Tuple | ast.List) and isinstance(s.value, ast.Tuple | ast.List):
            values = [self.sites(v, s, state) for v in s.value.elts]
            new = state.copy()
            for t, v in zip(target.elts, values, strict=True):
                new = self.bind(t, v, new)
            return new
        name = target.id if isinstance(target, ast.Name) else ""
        sites = self.sites(s.value, s, state, name)
        if not isinstance(target, ast.Name):
            sites = Sites(part(x) for x in sites)
        return self.bind(target, sites, state.copy())

    # -- the checks --------------------------------------------------------------------
    def shared(self, name: str, sites: Sites, key: ast.AST, state: State) -> str | None:
        """Why another part of the program may see ``name``'s object, or None."""
        if name in self.captured:
            return f"a nested function reads '{name}'"
        closure = with_parts(sites)
        if closure & state.escaped:
            return "it was stored in a container or passed to a function"
        if any(closure & iterated for iterated in self.iterating):
            return "a for loop is iterating over it"
        for other in sorted(self.live.get(id(key), set()) | self.captured):
            if other != name and self.lookup(other, state) & closure:
                return f"'{other}' refers to it too"
        return None

    def owned_list(self, name: str, sites: Sites, key: ast.AST, state: State) -> str | None:
        """Why ``name`` is not a list the function owns (None: it is)."""
        if not sites or any(s[0] not in ("new", "old") or s[2] != "list" for s in sites):
            inputs = sorted(s[1] for s in sites if s[0] == "param")
            if inputs:
                held = "was passed in" if inputs == [name] else f"holds the argument '{inputs[0]}'"
                return f"'{name}' {held} (fmad never changes its inputs)"
            return f"fmad did not see '{name}' built as a new list in this function"
        reason = self.shared(name, sites, key, state)
        if reason is not None:
            return reason
        for names in self.fwd.active.values():
            for s in sites:
                if name in names and s[3] not in names:
                    return f"'{name}' is a second name for the list built as '{s[3]}'"
        return None

    def in_place(
        self, key, call, atom, written, state, *, method=None, out=False, obj=None, store=False
    ):
        """``atom`` (a name) is changed in place by ``call``, writing ``written``."""
        if not (self.active(atom) or any(self.active(w) for w in written)):
            return  # no derivative involved: the primal does it as the original does
        name = atom.id
        sites = self.lookup(name, state)
        what = source_text(self.filename, key, call)
        if method in MODELLED_METHODS:
            reason = self.owned_list(name, sites, key, state)
            if reason is None:
                return
            self.problem(
                key,
                f"'{what}' changes the list '{name}' in place, but {reason}; fmad models "
                "append, extend and insert only on a list the function builds itself ([...] or "
                "a comprehension) that no other name, container or function sees; "
                + MUTATING_METHODS[method].format(n=name),
            )
        elif out:
            self.problem(
                key,
                f"'{what}' writes its result into '{name}' (an out= argument), changing it "
                f"in place; fmad does not model out= arguments; assign the result instead "
                f"({name} = {out_free(what, call, obj)})",
            )
        elif store:
            self.problem(
                key,
                f"'{what}' changes the list or array '{name}' in place, and it carries a "
                "derivative; fmad does not model item assignment; build a new list (append) "
                "and convert it with np.array, or use np.where",
            )
        else:
            hint = MUTATING_METHODS.get(method or "", "compute a new value instead")
            self.problem(
                key,
                f"'{what}' changes '{name}' in place, and it carries a derivative; fmad does "
                "not model in-place changes (other than append, extend and insert on a list "
                f"the function builds itself); {hint.format(n=name)}",
            )

    def rebind(self, s: ast.Assign, augmented: ast.AugAssign, name: str, state: State) -> None:
        """``name op= v``, rewritten ``name = name op v``: exact unless ``name``'s object
        is a list or array that something else sees."""
        sites = self.lookup(name, state)
        if not sites:
            return  # a constant: immutable
        owned = all(x[0] in ("new", "old") for x in sites)
        reason = self.shared(name, sites, s, state) if owned else "it may be shared"
        if reason is None:
            return
        what = source_text(self.filename, augmented, augmented)
        plain = f"{name} = {ast.unparse(binop_of(augmented))}"
        if all(x[0] in ("new", "old") and x[2] == "list" for x in sites):
            self.problem(
                s,
                f"'{what}' extends the list '{name}' in place, but {reason}; fmad rewrites "
                f"it as '{plain}', which leaves that other reference unchanged; write "
                f"'{plain}' if that is what you mean, or keep one name for the list",
            )
            return
        inputs = sorted(
            x[1] for x in sites | {y[1] for y in sites if y[0] == "part"} if x[0] == "param"
        )
        if inputs:
            message = (
                f"'{what}' changes the {{kind}} '{name}' in place, and it may be (part of) "
                f"the {{kind}} the caller passed as '{inputs[0]}'; fmad never changes its "
                f"inputs, and its rewrite '{plain}' would differ from Python's in-place "
                f"update; write '{plain}' to compute a new value"
            )
        else:
            message = (
                f"'{what}' changes the {{kind}} '{name}' in place, and its object may also be "
                "seen through another name (an alias, a view such as x[0:1], or a container); "
                f"fmad rewrites it as '{plain}' and does not model in-place changes of shared "
                f"lists and arrays; write '{plain}' (a new value) if that is what you mean, or "
                f"copy first ({name} = {name}.copy())"
            )
        dunder = f"__i{OPERATOR_DUNDERS[type(augmented.op)]}__"
        guard = B.call(
            B.attr(self.runtime(), "check_rebind"),
            B.name(name),
            B.const(dunder),
            B.const(self.filename),
            B.const(augmented.lineno),
            B.const(message),
        )
        self.guards[id(s)] = (s, guard)


def is_atom(node: ast.expr) -> bool:
    return isinstance(node, ast.Name | ast.Constant)


def binop_of(aug: ast.AugAssign) -> ast.BinOp:
    return ast.BinOp(left=ast.Name(id=ast.unparse(aug.target)), op=aug.op, right=aug.value)


def insert_before(body: list[ast.stmt], node: ast.stmt, new: ast.stmt) -> bool:
    for i, s in enumerate(body):
        if s is node:
            ast.copy_location(new, node)
            ast.fix_missing_locations(new)
            body.insert(i, new)
            return True
        for block in ("body", "orelse"):
            if isinstance(s, ast.If | ast.For | ast.While) and insert_before(
                getattr(s, block), node, new
            ):
                return True
    return False


def check(fwd, runtime: Callable[[], ast.expr]) -> None:
    """Refuse the in-place changes fmad does not model (see the module docstring); add the
    call-time checks of augmented assignments to the flattened function."""
    Mutation(fwd, runtime).run()
