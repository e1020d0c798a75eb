"""Reverse mode: a call to a helper of the user's module, inlined before the reverse pass
where the helper's own forward and adjoint functions (:mod:`fmad.reverse_calls`) cannot
serve, and everywhere in the code the per-shape variants are made from.

``z = helper(a, b)`` (after flattening its arguments are names or constants) becomes the
helper's own flattened body, each name it binds renamed to a fresh name of the caller, each
parameter bound to its argument (the caller's name itself when the helper never assigns the
parameter, else ``x_1 = a``), and its final ``return v`` turned into ``z = v`` (or, for
``t = ...; return t``, that last assignment made to assign ``z``). The statements
keep the helper's line numbers, so the printed adjoint quotes the helper's lines
(``# line N:``) and a refusal inside the helper names its line. Helpers that call helpers are
inlined in turn.

Refused with a :class:`~fmad.errors.ReverseModeError` at the call's line: a helper of another
module (its globals are not the caller's), a helper with a closure, recursion, ``*args`` or
``**kwargs`` (in the signature or the call), a default that is not an immutable constant, a
helper without a ``return`` (its early returns, ``break`` and ``continue`` are rewritten by
:mod:`fmad.reverse_jumps` first), a generator, a comprehension or lambda in
the helper, and a helper reading a global that the caller binds as a local. Decorated helpers
(``__wrapped__``) and nested ``def``\\ s stay refused by the reverse pass.
"""

from __future__ import annotations

import ast
import copy
import inspect

from fmad import build as B
from fmad.activity import classify
from fmad.build import bound_names, free_names
from fmad.errors import FmadError, ReverseModeError
from fmad.reverse_binding import bind, constant, keep_call, returning_body
from fmad.reverse_jumps import without_jumps


class Inliner:
    """Inlines the helper calls of a reverse-mode unit's flattened body (``rev`` is the
    :class:`~fmad.reverse.Reverse` pass: its namer, scope, refusals)."""

    def __init__(self, rev, prepare) -> None:
        self.rev = rev
        self.prepare = prepare  # fmad.transform.prepare (a higher layer)
        self.fn = rev.unit.function
        self.inlined: list[str] = []  # the helpers inlined, in order (for the docs/tests)

    def body(self, stmts: list[ast.stmt], stack: tuple = ()) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call):
                target = classify(s.value, self.rev.scope, self.rev.nested)
                if target.kind == "user":
                    out.extend(self.inline(s, target.obj, target.name, stack))
                    continue
            if isinstance(s, ast.If | ast.For | ast.While):
                s.body = self.body(s.body, stack)
                s.orelse = self.body(s.orelse, stack)
            out.append(s)
        return out

    def inline(self, s: ast.Assign, helper, label: str, stack: tuple) -> list[ast.stmt]:
        rev = self.rev
        what = f"a call to the helper '{label}'"
        if helper in stack or helper is self.fn:
            rev.refuse_at(s, f"{what}: recursion")
        if helper.__globals__ is not self.fn.__globals__:
            rev.refuse_at(s, f"{what}, defined in another module (reverse mode inlines helpers)")
        if helper.__code__.co_freevars:
            rev.refuse_at(s, f"{what}, which reads variables of an enclosing function")
        if inspect.isgeneratorfunction(helper) or inspect.iscoroutinefunction(helper):
            rev.refuse_at(s, f"{what}, a generator or coroutine")
        call = s.value
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            rev.refuse_at(s, f"{what} with *args or **kwargs")
        signature = inspect.signature(helper)
        kinds = {p.kind for p in signature.parameters.values()}
        if kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
            rev.refuse_at(s, f"{what}, whose signature takes *args or **kwargs")
        try:
            bound = signature.bind(*call.args, **{k.arg: k.value for k in call.keywords})
        except TypeError as error:
            rev.refuse_at(s, f"{what}: {error}")
        try:
            src, _, _, flat = self.prepare(helper)
        except ReverseModeError:
            raise
        except FmadError as error:  # unreadable, or refused by flatten: say it at the call,
            # as a ReverseModeError (mode='auto' falls back to forward mode on it)
            rev.refuse_at(s, f"{what}: {error}")
        if src.filename != rev.filename:
            rev.refuse_at(s, f"{what}, defined in another file (reverse mode inlines helpers)")
        # its early returns, breaks and continues made flags and guards (one final return)
        taken = bound_names(flat) | free_names(flat)

        def fresh(hint: str) -> str:  # a caller's name none of the helper's names shadows
            name = rev.namer.fresh(hint)
            while name in taken:
                name = rev.namer.fresh(hint)
            return name

        body = without_jumps(flat.body, fresh, rev.refuse_at)
        returning_body(body, flat, rev.refuse_at, what, s)
        if rev.calls.keeps(helper) and isinstance(body[-1].value, ast.Name | ast.Constant):
            # its own forward and adjoint functions (fmad.reverse_calls)
            return keep_call(s, helper)
        bound_here = bound_names(flat)
        free = free_names(flat) - bound_here
        closure = set(self.fn.__code__.co_freevars)
        for name in sorted(free):
            if rev.scope.is_local(name) or name in closure or name in rev.scope.injected:
                rev.refuse_at(s, f"{what}, which reads the global '{name}' the caller binds")
            rev.namer.reserve(name)
        params = B.parameters(flat.args)
        arguments = {}
        for p in params:
            if p in bound.arguments:
                arguments[p] = bound.arguments[p]
            else:
                default = signature.parameters[p].default
                if not constant(default):
                    rev.refuse_at(s, f"{what}: the default of '{p}' is not a constant")
                arguments[p] = ast.Constant(value=default)
        out, renamed, mapping = bind(s, params, arguments, body, bound_here, rev.namer.fresh)
        rev.scope.local_names |= set(mapping.values())
        self.inlined.append(label)
        inner = self.body(renamed[:-1], (*stack, helper))
        value = renamed[-1].value
        last = inner[-1] if inner else None
        if (  # `t = f(x)` then `return t`: the last assignment assigns the caller's target
            isinstance(value, ast.Name)
            and isinstance(last, ast.Assign)
            and isinstance(s.targets[0], ast.Name)
            and getattr(s, "fmad_augmented", None) is None
            and [t.id for t in last.targets if isinstance(t, ast.Name)] == [value.id]
            and sum(value.id in B.names(t, ast.Load) for t in inner) == 0
            and value.id not in {mapping[p] for p in params}
        ):
            last = copy.copy(last)
            last.targets = [copy.deepcopy(s.targets[0])]
            return out + inner[:-1] + [last]
        result = copy.copy(s)  # keeps what flatten marked on it (an augmented assignment)
        result.value = value
        return out + inner + [result]


def inline_helpers(rev, body: list[ast.stmt], prepare) -> list[ast.stmt]:
    """``body`` with every call to a helper of the user's module inlined (see above);
    ``prepare`` is :func:`fmad.transform.prepare`."""
    return Inliner(rev, prepare).body(body)
