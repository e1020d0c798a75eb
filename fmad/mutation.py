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
The walk and its domain are in :mod:`fmad.sites`; the tables (which methods change their
receiver, which functions return a view...) and the texts of the refusals in
:mod:`fmad.effects`. This module says what assignments and calls do, and checks them.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable

import numpy as np

from fmad import build as B
from fmad import rules
from fmad.activity import classify
from fmad.effects import (
    ALIASING_FUNCTIONS,
    FRESH_METHODS,
    MODELLED_METHODS,
    MUTATING_FUNCTIONS,
    MUTATING_METHODS,
    OPERATOR_DUNDERS,
    PURE_METHODS,
    REFUSALS,
    changes_state,
    effect_free,
    mutating_method,
    out_arguments,
    out_free,
    source_text,
)
from fmad.errors import unsupported
from fmad.sites import UNKNOWN, Liveness, Sites, SiteWalk, State, part, with_parts
from fmad.source import read_function


# -- the pass ------------------------------------------------------------------------------
class Mutation(SiteWalk):
    def __init__(self, fwd, runtime: Callable[[], ast.expr]) -> None:
        super().__init__(fwd.flat, fwd.scope)
        self.fwd = fwd
        self.filename: str = fwd.filename
        self.nested = fwd.nested
        self.runtime = runtime
        self.params = B.parameters(self.flat.args)
        nested = B.nested_functions(self.flat).values()
        self.captured = set().union(*(B.free_names(t) for t in nested))
        self.live = Liveness(self.flat).after
        self.problems: dict[int, tuple[ast.AST, str]] = {}
        self.guards: dict[int, tuple[ast.Assign, ast.Call]] = {}
        self.param_changes: dict[str, ast.AST] = {}  # parameter -> where it is changed
        self.read_at: dict[tuple, ast.AST] = {}  # site -> a statement with a derivative read it

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
        self.distinct_arguments()

    def distinct_arguments(self) -> None:
        """A parameter changed in place (with no derivative involved) must not be the very
        object passed as a differentiated argument: checked when the function is called."""
        wrt = {n for seeds in self.fwd.seeds.values() for n in seeds if n in self.params}
        checks: list[ast.stmt] = []
        for param, key in sorted(self.param_changes.items()):
            others = sorted(wrt - {param})
            if not self.fwd.top or not others:
                continue
            call = B.call(
                B.attr(self.runtime(), "check_distinct"),
                B.name(param),
                B.tuple_([B.name(o) for o in others]),
                B.const(self.filename),
                B.const(key.lineno),
                B.const(source_text(self.filename, key, key)),
            )
            checks.append(ast.fix_missing_locations(ast.copy_location(ast.Expr(call), key)))
        self.flat.body[:0] = checks

    def unfollowed(self, s: ast.stmt) -> None:
        """What the walk does not follow must change nothing that carries a derivative."""
        if isinstance(s, ast.Expr) and any(isinstance(n, ast.Call) for n in B.walk(s.value)):
            what = source_text(self.filename, s, s)
            self.problem(s, REFUSALS["dropped expression"].format(what=what))
        if isinstance(s, ast.If | ast.While | ast.Assert):
            self.test_calls(s)

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
            message = REFUSALS["discarded helper"]
            self.problem(key, message.format(what=what, name=target.name, effect=effect))
            return
        self.problem(key, REFUSALS["discarded call"].format(what=what, name=target.name))

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
        for call in B.walk(s.test):
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
                test, text = ast.unparse(s.test), ast.unparse(call)
                self.problem(s, REFUSALS["test"].format(test=test, call=text))

    # -- assignments -------------------------------------------------------------------
    def assign(self, s: ast.Assign, state: State) -> State:
        read_by_derivative(self, s, state)
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
        name = atom.id
        sites = self.lookup(name, state)
        if not (self.active(atom) or any(self.active(w) for w in written)):
            # no derivative involved: the primal does it as the original does, unless the
            # caller passed the same object as a differentiated argument (checked on entry)
            for site in sites | {x[1] for x in sites if x[0] == "part"}:
                if site[0] == "param":
                    self.param_changes.setdefault(site[1], key)
            used = with_parts(sites) & state.read
            if used:
                line = min(self.read_at[x].lineno for x in used)
                what = source_text(self.filename, key, call)
                message = REFUSALS["changed after use"]
                self.problem(key, message.format(what=what, name=name, line=line))
            return
        what = source_text(self.filename, key, call)
        if method in MODELLED_METHODS:
            reason = self.owned_list(name, sites, key, state)
            if reason is None:
                return
            instead = MUTATING_METHODS[method].format(n=name)
            message = REFUSALS["not owned list"]
            self.problem(key, message.format(what=what, name=name, reason=reason, instead=instead))
        elif out:
            message = REFUSALS["out argument"]
            self.problem(key, message.format(what=what, name=name, call=out_free(what, call, obj)))
        elif store:
            self.problem(key, REFUSALS["item assignment"].format(what=what, name=name))
        else:
            hint = MUTATING_METHODS.get(method or "", "compute a new value instead")
            message = REFUSALS["in place"]
            self.problem(key, message.format(what=what, name=name, instead=hint.format(n=name)))

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
            message = REFUSALS["shared list"]
            self.problem(s, message.format(what=what, name=name, reason=reason, plain=plain))
            return
        inputs = sorted(
            x[1] for x in sites | {y[1] for y in sites if y[0] == "part"} if x[0] == "param"
        )
        guard = B.call(
            B.attr(self.runtime(), "check_rebind"),
            B.name(name),
            B.const(f"__i{OPERATOR_DUNDERS[type(augmented.op)]}__"),
            B.const(self.filename),
            B.const(augmented.lineno),
            B.const(what),
            B.const(inputs[0] if inputs else None),
        )
        self.guards[id(s)] = (s, guard)


def read_by_derivative(m: Mutation, s: ast.Assign, state: State) -> None:
    """An operation that carries a derivative reads its other operands: its derivative
    code may keep them (``db_dw = a`` for ``b = w * a``) or read them later (a contraction
    at a reduction), so they must not change in place afterwards (``Mutation.in_place``)."""
    if not m.active(s.value):
        return
    read = Sites()
    for node in B.walk(s.value):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if m.scope.is_local(node.id) and not m.active(node):
                sites = with_parts(m.lookup(node.id, state))
                read |= sites
                for site in sites:
                    m.read_at.setdefault(site, s)
    state.read = state.read | read


def is_atom(node: ast.expr) -> bool:
    return isinstance(node, ast.Name | ast.Constant)


def binop_of(aug: ast.AugAssign) -> ast.BinOp:
    return ast.BinOp(left=ast.Name(id=ast.unparse(aug.target)), op=aug.op, right=aug.value)


def insert_before(body: list[ast.stmt], node: ast.stmt, new: ast.stmt) -> bool:
    for block in B.blocks(body):
        for i, s in enumerate(block):
            if s is node:
                ast.copy_location(new, node)
                ast.fix_missing_locations(new)
                block.insert(i, new)
                return True
    return False


def check(fwd, runtime: Callable[[], ast.expr]) -> None:
    """Refuse the in-place changes fmad does not model (see the module docstring); add the
    call-time checks of augmented assignments to the flattened function."""
    Mutation(fwd, runtime).run()
