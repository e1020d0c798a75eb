"""Reverse mode: each helper of the user's module gets a forward and an adjoint function.

A call ``z = helper(a, b)`` whose helper :mod:`fmad.reverse_inline` would inline is kept as
a call instead (marked ``fmad_helper``), and once the caller's activity is known it becomes,
for the helper's *pattern* (which of its parameters receive a value with a derivative, and
whether its result has one):

- in the primal, ``z, helper_saved = helper_fwd(a, b)``: ``helper_fwd`` is the helper's own
  reverse-mode primal (flattened, its early returns made flags, its loops pushing a tape),
  returning its value and the tuple of the values its adjoint reads (its parameters, the
  operands the rules multiply by, branch flags, loop tapes: nothing else). Where the result
  has no derivative it is ``z = helper_value(a, b)``, the same primal returning the value
  only;
- in the adjoint statements, at the call's place in reverse order,
  ``dloss_da = helper_bwd(helper_saved, dloss_dz)`` (a tuple ``dloss_da, dloss_db`` for two
  active arguments, each added to what the argument's adjoint already holds):
  ``helper_bwd(saved, dloss_dhelper)`` unpacks the saved values, runs the helper's adjoint
  statements (``# line N:`` comments quote the helper's own lines) and returns the adjoint
  of each active parameter, in the signature's order.

Both are generated once per (helper, pattern) for the whole function, and printed before it
(``show --mode reverse``, ``.source``), so a helper's adjoint is read once however many
places call it. A call in a loop keeps ``helper_saved`` on the loop's tape like any value
the adjoints read. A helper that calls helpers gets calls of its own the same way.

What stays inlined (:mod:`fmad.reverse_inline`, see :func:`fmad.reverse.reverse_unit`),
because the function form cannot do it safely: a helper returning a tuple or a list (a
display, or a name bound to one: a container of the caller's,
:mod:`fmad.reverse_containers`), a call one of whose arguments or whose result is a list or
tuple with a derivative, and a helper whose own reverse pass refuses something (then the
inlined pass refuses it at the helper's line, or handles it). Recursion is refused. Nested
``def``\\ s are inlined by :mod:`fmad.reverse_nested` (they read the enclosing function's
variables where they are called). The per-shape variants that run
(:mod:`fmad.reverse_shapes`) and the fast path for numbers are made from the code with every
helper inlined: :mod:`fmad.reverse_shapes` follows kinds and shapes through its statements,
not through a call (measured, the function form costs 1.2x-1.4x there).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
from typing import Any

from fmad import build as B
from fmad.errors import FmadError
from fmad.naming import Namer
from fmad.reverse_loops import definite, exposed


class Fallback(Exception):
    """The function form of ``helper`` cannot serve: build again with it inlined."""

    def __init__(self, helper: Any) -> None:
        super().__init__(getattr(helper, "__name__", "helper"))
        self.helper = helper


@dataclasses.dataclass
class Pair:
    fwd: Any  # the Unit of helper_fwd
    bwd: Any | None  # the Unit of helper_bwd (None: no active parameter)
    active: tuple[str, ...]  # the helper's active parameters, in order


class Calls:
    """What one reverse-mode build shares between the function's pass and its helpers'."""

    def __init__(self, inline: set | None = None, everything: bool = False) -> None:
        self.inline = set(inline or ())  # helpers inlined: their function form failed
        self.everything = everything  # inline every helper (the speed variants' code)
        self.pairs: dict[tuple, Pair] = {}
        self.units: list[Any] = []  # the helpers' units, innermost first (printed first)
        self.stack: list[Any] = []  # helpers whose pass is being built (recursion)
        self.names = Namer()  # the helper functions' names, unique in the build

    def keeps(self, helper: Any) -> bool:
        """A call of ``helper`` becomes a call of its forward and adjoint functions."""
        return not self.everything and helper not in self.inline


def inject_as(unit: Any, obj: Any, name: str) -> str:
    """``obj`` (a helper unit) in ``unit``'s closure, under ``name`` where it is free."""
    for existing, value in unit.injected.items():
        if value is obj:
            return existing
    if unit.namer.is_taken(name):
        return unit.inject(obj, name)
    unit.namer.reserve(name)
    unit.injected[name] = obj
    return name


def rewrite_calls(rev: Any, primal: list[ast.stmt]) -> None:
    """Each kept call of ``primal`` made a call of the helper's forward function, once the
    caller's activity (``rev.active``) is known (see the module's docstring)."""
    for s in B.statements(primal):
        if isinstance(s, ast.Assign) and getattr(s.value, "fmad_helper", None) is not None:
            rewrite(rev, s)


def rewrite(rev: Any, s: ast.Assign) -> None:
    call = s.value
    helper = call.fmad_helper
    # each parameter's argument, as the call reads it now (renamed since it was kept)
    keywords = {k.arg: k.value for k in call.keywords}
    bound = inspect.signature(helper).bind(*call.args, **keywords).arguments
    z = s.targets[0].id
    lists = getattr(rev, "containers", {}) or {}
    read = [a.id for a in bound.values() if isinstance(a, ast.Name)]
    if z in lists or any(n in lists for n in read):
        raise Fallback(helper)  # a list or tuple with a derivative: inlined
    active: tuple[str, ...] = ()
    if z in rev.active:
        active = tuple(
            p for p, a in bound.items() if isinstance(a, ast.Name) and a.id in rev.active
        )
    pair = pair_for(rev, helper, active)
    fwd = inject_as(rev.unit, pair.fwd, pair.fwd.tree.name)
    s.value = ast.copy_location(
        ast.Call(func=B.name(fwd), args=call.args, keywords=call.keywords), call
    )
    if pair.bwd is None:
        return
    saved = rev.namer.fresh(f"{pair.fwd.function.__name__}_saved")
    s.targets = [ast.Tuple(elts=[B.store(z), B.store(saved)], ctx=ast.Store())]
    bwd = inject_as(rev.unit, pair.bwd, pair.bwd.tree.name)
    s.fmad_pair = (bwd, saved, [bound[p].id for p in active])


def backward_call(rev: Any, s: ast.Assign, out: list[ast.stmt]) -> None:
    """The adjoint of ``z, saved = helper_fwd(...)``: ``helper_bwd(saved, dloss_dz)``, its
    results added to the adjoints of the arguments."""
    z = s.targets[0].elts[0].id
    if z not in rev.adjoint:
        return
    bwd, saved, args = s.fmad_pair
    result = B.call(B.name(bwd), B.name(saved), B.name(rev.adjoint[z]))
    if len(args) == 1:
        rev.contribute(args[0], result, out)
        return
    targets, later = [], []
    for a in args:
        if a not in rev.adjoint and args.count(a) == 1:  # its first contribution
            rev.adjoint[a] = rev.namer.fresh(f"d{rev.output}_d{a}", limit=80)
            targets.append(rev.adjoint[a])
        else:
            part = rev.namer.fresh(f"d{rev.output}_d{a}_part", limit=80)
            targets.append(part)
            later.append((a, part))
    elts = [B.store(t) for t in targets]
    out.append(ast.Assign(targets=[ast.Tuple(elts=elts, ctx=ast.Store())], value=result))
    for a, part in later:
        rev.contribute(a, B.name(part), out)


def pair_for(rev: Any, helper: Any, active: tuple[str, ...]) -> Pair:
    """The forward and adjoint functions of ``helper`` for its active parameters
    ``active``, made once per build."""
    calls = rev.calls
    key = (helper, active)
    if key in calls.pairs:
        return calls.pairs[key]
    if helper in calls.stack:  # recursion: the inlined pass refuses it at its line
        raise Fallback(helper)
    calls.stack.append(helper)
    try:
        sub = type(rev)(helper, active, calls=calls, output=rev.output)
        tree, primal, backward, ret = sub.parts()
    except FmadError:  # refused in the function form: inline it (and refuse there)
        raise Fallback(helper) from None
    finally:
        calls.stack.pop()
    if isinstance(ret.value, ast.Name) and ret.value.id in sub.containers:
        raise Fallback(helper)  # it returns a list or tuple: the caller's container
    pair = assemble(sub, helper, tree, primal, backward, ret, active)
    calls.pairs[key] = pair
    return pair


def assemble(sub, helper, tree, primal, backward, ret, active) -> Pair:
    """The units of ``helper_fwd`` and ``helper_bwd`` from the helper's reverse pass."""
    calls = sub.calls
    base = helper.__name__
    fwd_tree = ast.copy_location(
        ast.FunctionDef(
            name=calls.names.fresh(f"{base}_fwd" if active else f"{base}_value"),
            args=tree.args,
            body=list(primal),
            decorator_list=[],
            returns=None,
            type_params=[],
        ),
        tree,
    )
    fwd = dataclasses.replace(sub.unit, tree=fwd_tree, text=None)
    calls.units.append(fwd)
    if not active:
        fwd_tree.body.append(ast.copy_location(ast.Return(value=ret.value), ret))
        ast.fix_missing_locations(fwd_tree)
        return Pair(fwd, None, active)
    # in the order the primal binds them (its parameters first)
    order = [*B.parameters(tree.args), *(n for t in primal for n in B.names(t, ast.Store))]
    grads = gradients(sub)
    value = grads[0] if len(grads) == 1 else B.tuple_(grads)
    needed = exposed([*backward, ast.Return(value=value)])
    saved = [n for n in dict.fromkeys(order) if n in needed]
    # a value bound in one branch (or a loop) only is None where it did not run (the adjoint
    # reads it only where it did), so the return never reads an unbound name
    always = definite(primal) | set(B.parameters(tree.args))
    unset = [ast.copy_location(B.assign(n, B.const(None)), tree) for n in saved if n not in always]
    fwd_tree.body[:0] = unset
    result = B.tuple_([ret.value, B.tuple_([B.name(n) for n in saved])])
    fwd_tree.body.append(ast.copy_location(ast.Return(value=result), ret))
    ast.fix_missing_locations(fwd_tree)
    body: list[ast.stmt] = []
    pack = sub.namer.fresh("saved")
    if saved:
        targets = ast.Tuple(elts=[B.store(n) for n in saved], ctx=ast.Store())
        unpack = ast.Assign(targets=[targets], value=B.name(pack))
        body.append(ast.copy_location(unpack, backward[0] if backward else ret))
    body += [*backward, ast.copy_location(ast.Return(value=value), ret)]
    args = [ast.arg(arg=pack), ast.arg(arg=sub.dout)]
    bwd_tree = ast.copy_location(
        ast.FunctionDef(
            name=calls.names.fresh(f"{base}_bwd"),
            args=ast.arguments(
                posonlyargs=[], args=args, kwonlyargs=[], kw_defaults=[], defaults=[]
            ),
            body=body,
            decorator_list=[],
            returns=None,
            type_params=[],
        ),
        tree,
    )
    ast.fix_missing_locations(bwd_tree)
    # the adjoint function takes (saved, dout): not the helper's defaults
    plain = types.FunctionType(helper.__code__, helper.__globals__, helper.__name__)
    plain.__qualname__ = helper.__qualname__
    bwd = dataclasses.replace(sub.unit, function=plain, tree=bwd_tree, text=None)
    calls.units.append(bwd)
    return Pair(fwd, bwd, active)


def watched(unit: Any) -> list:
    """The globals ``unit`` and its helpers' units were made from (rebound: build again)."""
    return [*unit.scope.watched(), *(w for h in unit.helpers for w in h.scope.watched())]


def gradients(rev: Any) -> list[ast.expr]:
    """Each ``wrt`` parameter's adjoint (zeros where nothing reached it)."""
    return [
        B.name(rev.adjoint[w]) if w in rev.adjoint else B.call(rev.rev("zeros"), B.name(w))
        for w in rev.wrt
    ]
