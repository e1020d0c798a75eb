"""The pipeline: source -> flatten -> activity -> forward -> optimize, for a function and
the helpers it calls.

A :class:`Session` transforms one differentiated function (one *variant*: the shapes of its
array parameters are fixed) and every helper it calls with active arguments, each helper once
per activity pattern. The result is a list of :class:`Unit`\\ s, ready for :mod:`fmad.compile`.
"""

from __future__ import annotations

import ast
import dataclasses
import linecache
import math
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmad import build as B
from fmad import mutation, nesting, optimize, reuse, specialize
from fmad import runtime as fmad_runtime
from fmad.activity import CallTarget
from fmad.build import bound_names
from fmad.errors import unsupported
from fmad.flatten import Flattener
from fmad.forward import CalleeInfo, Forward, signature_of
from fmad.naming import Namer, names_in
from fmad.printer import to_source
from fmad.resolve import Scope
from fmad.source import read_function
from fmad.spec import Spec, check_wrt
from fmad.tangent import Direction, Tangent

MODULES = {"numpy": (np, "np"), "math": (math, "math"), "fmad.runtime": (fmad_runtime, "fmad_rt")}


@dataclass
class Unit:
    """One generated function and what its closure must hold."""

    function: types.FunctionType  # the original: globals, closure, defaults
    filename: str
    namer: Namer
    scope: Scope
    tree: ast.FunctionDef | None = None
    flat: ast.FunctionDef | None = None
    injected: dict[str, Any] = field(default_factory=dict)
    parent: Unit | None = None  # set for a nested helper: compiled inside its parent
    children: list[Unit] = field(default_factory=list)  # nested helpers compiled inside it
    text: str | None = None  # the printed tree, once printed
    tangents: frozenset[str] = frozenset()  # the names of its tangent variables
    primal: ast.FunctionDef | None = None  # reverse mode's renamed primal (the user's names)

    def flat_trees(self) -> list[ast.FunctionDef]:
        """The flattened primal of this unit and of the nested helpers compiled inside it:
        the names they use are the user's (see :mod:`fmad.trace`)."""
        found = [self.flat] if self.flat is not None else []
        found += [self.primal] if self.primal is not None else []
        for child in self.children:
            found += child.flat_trees()
        return found

    def printed(self) -> str:
        """The generated function's source, with a ``# line N:`` comment before the code
        of each user line (printed once: printing is the slow part)."""
        if self.text is None:
            self.text = to_source(self.tree, lines=linecache.getlines(self.filename))
        return self.text

    def inject(self, obj: Any, hint: str) -> str:
        if self.parent is not None:
            return self.parent.inject(obj, hint)
        for name, value in self.injected.items():
            if value is obj:
                return name
        name = self.namer.fresh(hint)
        self.injected[name] = obj
        return name

    def module(self, which: str) -> ast.expr:
        module, hint = MODULES[which]
        existing = self.scope.module_name(module) if which != "fmad.runtime" else None
        if existing is not None:
            return B.name(existing)
        return B.name(self.inject(module, hint))


def prepare(fn: types.FunctionType, reserved: set[str] = frozenset(), pins: tuple = ()):
    """``fn`` read, fenced, flattened and rewritten: its source, scope, namer and flat tree
    (once per function, reserved names and pins; each caller gets a copy: fmad.reuse)."""
    key = (frozenset(reserved), pins)
    return reuse.shared(fn, key, lambda: prepare_afresh(fn, reserved, pins))


def prepare_afresh(fn: types.FunctionType, reserved: set[str], pins: tuple):
    src = read_function(fn)
    scope = Scope(src.function, bound_names(src.tree))
    scope.pinned = {name: pin.obj for name, pin in pins if pin.kind == "is"}
    scope.classes = {name: pin for name, pin in pins if pin.kind == "type"}
    namer = Namer(names_in(src.tree) | set(src.function.__code__.co_freevars) | set(reserved))
    # fmad's own output, transformed again: name second derivatives as such (fmad.compile)
    namer.earlier = getattr(src.function, "__fmad_tangents__", frozenset())
    flat = Flattener(src.filename, namer, scope).function(src.tree)
    scope.local_names |= bound_names(flat)
    specialize.rewrite_methods(flat, scope, namer, dict(pins))
    nesting.rewrite(flat, scope, namer, src.filename)
    return src, scope, namer, flat


# the one direction of a Jacobian-vector product (see Session.jvp): tangents are named dx_dv
JVP = "v"


class Session:
    def __init__(self) -> None:
        self.units: list[Unit] = []  # helpers first, in the order they were made
        self.callees: dict[Any, tuple[Unit, CalleeInfo]] = {}
        self.variant_counts: dict[Any, int] = {}  # module helper -> variants made so far
        self.stack: list[Any] = []
        self.scopes: list[Scope] = []  # every scope consulted: their names are watched

    def watched(self) -> list:
        """Global and closure names whose objects chose a rule or a helper transform."""
        unique = {
            (id(ns), name): (ns, name, obj)
            for scope in self.scopes
            for ns, name, obj in scope.watched()
        }
        return list(unique.values())

    # -- the differentiated function ---------------------------------------------------------
    def top(self, fn: types.FunctionType, spec: Spec) -> Unit:
        """Transform ``fn`` as ``spec`` says (see :class:`fmad.spec.Spec`)."""
        wrt = spec.wrt
        src, scope, namer, flat = prepare(fn, pins=spec.functions)
        self.scopes.append(scope)
        unit = Unit(src.function, src.filename, namer, scope, flat=flat)
        unit.injected.update(scope.injected)
        params = set(signature_of(src.tree).parameters)
        intermediates = check_wrt(src.filename, src.tree, wrt, params)
        directions = spec.directions()
        seeds: dict[str, dict[str, Tangent]] = {}
        for d in directions:
            if spec.bundle or spec.tree_of(d.name) is not None:
                seeds[d.name] = {}  # seeded by the emitter (one column per parameter; trees)
            elif d.name in intermediates:
                seeds[d.name] = {}
            elif d.vectorized:
                seeds[d.name] = {d.name: Tangent(ast.Constant(None), full=True, seed=True)}
            else:
                seeds[d.name] = {d.name: Tangent(ast.Constant(1.0), full=True)}
        self.stack.append(src.function)
        numbers = frozenset(p for p in wrt if p in params and spec.shape_of(p) is None)
        fwd = Forward(
            self,
            unit,
            flat,
            scope,
            directions,
            seeds=seeds,
            seed_points=intermediates,
            top=True,
            numbers=numbers,
            bundle=wrt if spec.bundle else (),
            trees={p: t for p in wrt if (t := spec.tree_of(p)) is not None},
        )
        mutation.check(fwd, lambda: unit.module("fmad.runtime"))
        unit.tree = optimize.optimize(fwd.function(), fwd.tangent_names(), namer)
        unit.tangents = frozenset(fwd.known.tangent_names())
        self.stack.pop()
        self.units.append(unit)
        return unit

    # -- helpers it calls --------------------------------------------------------------------
    # A helper is transformed once per *variant*: (the helper, the directions it carries,
    # which of its inputs are active). A module-level helper's variant is a unit of its own,
    # compiled once and injected into the namespace of *each* unit that calls it, under a
    # name that unit chooses (so a variant made for one caller is never looked up by a
    # name that exists only in another). A nested helper's variant is a ``def`` placed right
    # after the nested ``def`` it comes from, in the function that defines it (its *owner*),
    # named by the owner's namer, which the nested units share: every caller that can see
    # the nested function (the owner and the functions nested in it) can see the variant.
    def callee(
        self, caller: Forward, target, pattern: tuple, call: ast.Call, outer=None
    ) -> CalleeInfo:
        """The variant of ``target`` for ``pattern``: ``(parameter, direction, full)`` for
        each active input. ``outer`` (nested helpers): for an input ``name@f``, the
        function (``Forward``) whose binding of ``name`` it is."""
        nested = target.kind == "nested"
        owner = caller.owners[target.name] if nested else None
        identity = target.obj
        outer = outer or {}
        directions = tuple(d for d in caller.directions if any(p[1] == d.name for p in pattern))
        bindings = tuple(sorted((n, id(f)) for n, f in outer.items()))
        # the functions and classes of the arguments it calls (fmad.specialize)
        pins = (
            ()
            if nested
            else specialize.helper_pins(
                caller.scope, caller.flat, identity, caller.bind(target, call)
            )
        )
        key = (target.kind, owner, identity, directions, pattern, bindings, pins)
        if key not in self.callees:
            if identity in self.stack:
                raise unsupported(
                    caller.filename,
                    call,
                    f"the recursive call to '{target.name}' (directly or through other "
                    "helpers) is not supported by fmad; write the recursion as a loop",
                )
            self.stack.append(identity)
            try:
                self.callees[key] = self.variant(owner, target, directions, pattern, outer, pins)
            finally:
                self.stack.pop()
        unit, info = self.callees[key]
        if nested:
            return info
        # the caller reaches the variant under a name of its own choosing
        return dataclasses.replace(info, name=caller.unit.inject(unit, info.name))

    def jvp(self, fn: types.FunctionType, names: tuple[str, ...]) -> tuple[Unit, CalleeInfo]:
        """``fn`` with one direction, :data:`JVP`, whose tangents of the parameters ``names``
        come in as keyword arguments, each of its parameter's full shape (``fmad.jvp``)."""
        target = CallTarget("user", fn, name=fn.__name__)
        pattern = tuple((name, JVP, True) for name in names)
        self.stack.append(fn)
        try:
            return self.variant(None, target, (Direction(JVP),), pattern, {})
        finally:
            self.stack.pop()

    def variant(
        self, owner: Forward | None, target, directions, pattern, outer, pins=()
    ) -> tuple[Unit, Any]:
        """Transform one helper for one activity pattern."""
        if owner is not None:
            tree = target.obj
            namer = owner.namer  # shared: names stay unique across the owner's nested defs
            scope = Scope(owner.unit.function, bound_names(tree) | owner.scope.local_names)
            own = bound_names(tree)  # an enclosing pinned parameter it reads means the same
            scope.pinned = {n: o for n, o in owner.scope.pinned.items() if n not in own}
            self.scopes.append(scope)
            flat = Flattener(owner.filename, namer, scope).function(tree)
            scope.local_names |= bound_names(flat)
            nesting.rewrite(flat, scope, namer, owner.filename)
            unit = Unit(
                owner.unit.function, owner.filename, namer, scope, flat=flat, parent=owner.unit
            )
            root = owner.unit
            while root.parent is not None:  # nested units are compiled inside the root
                root = root.parent
            root.injected.update(scope.injected)
            owner.unit.children.append(unit)
            fname = namer.fresh(f"{tree.name}_fwd")
        else:
            src, scope, namer, flat = prepare(target.obj, pins=pins)
            self.scopes.append(scope)
            unit = Unit(src.function, src.filename, namer, scope, flat=flat)
            unit.injected.update(scope.injected)
            count = self.variant_counts.get(target.obj, 0)
            self.variant_counts[target.obj] = count + 1
            fname = namer.fresh(f"{src.tree.name}_fwd" + (f"_{count}" if count else ""))
        seeds: dict[str, dict[str, Tangent]] = {d.name: {} for d in directions}
        forward = Forward(
            self,
            unit,
            flat,
            scope,
            list(directions),
            seeds=seeds,
            top=False,
            inputs=pattern,
            lexical=(owner, outer) if owner is not None else None,
        )
        inputs = forward.inputs
        mutation.check(forward, lambda: unit.module("fmad.runtime"))
        tree = forward.function()
        tree.name = fname
        tree.args.kwonlyargs += [ast.arg(arg=kw) for kw in inputs.values()]
        tree.args.kw_defaults += [None] * len(inputs)
        tree = optimize.optimize(tree, forward.tangent_names(), namer, keep=set(inputs.values()))
        unit.tangents = frozenset(forward.known.tangent_names())
        unit.tree = tree
        info = CalleeInfo(
            fname,
            inputs,
            tuple(d.name for d in directions),
            dict(forward.result_full),
            frozenset(forward.result_zero),
            frozenset(forward.result_container),
        )
        if owner is not None:
            owner.add_nested_variant(target.obj, tree)
        else:
            self.units.append(unit)
        return unit, info
