"""Reverse mode: a ``def`` nested in the differentiated function, inlined at its calls.

A nested function that the function only calls (``inner(w)``, ``inner(b, k=w)``: never
passed on, returned, rebound or defined inside an ``if`` or a loop) is inlined at each call,
as :mod:`fmad.reverse_inline` inlines a module's helpers: its body is flattened with the
caller's namer, each name it binds gets a fresh name, each parameter is bound to its
argument, and its final ``return v`` becomes ``z = v``. The names it reads from the
enclosing function are read where the call is, which is what a closure does (it reads the
variable's value when it is called); the ``def`` itself leaves the primal. Calls between
nested functions are inlined in turn.

Refused (a :class:`~fmad.errors.ReverseModeError` at its line, with ``mode='forward'``):
a nested function used otherwise than called, decorated, defined in a block, recursive,
with ``*args``/``**kwargs``/keyword-only or positional-only parameters, a default that is
not a number or a string, a call with ``*``/``**``, ``nonlocal``/``global``, and a lambda or
comprehension inside it. Its early returns, ``break`` and ``continue`` are made flags and
guards (:mod:`fmad.reverse_jumps`), and its parameters bound to the arguments as
:mod:`fmad.reverse_binding` binds a module helper's.
"""

from __future__ import annotations

import ast
import copy

from fmad import build as B
from fmad.activity import classify
from fmad.build import bound_names
from fmad.flatten import Flattener
from fmad.reverse_binding import SCOPED, bind, constant, returning_body
from fmad.reverse_jumps import without_jumps


class NestedInliner:
    """``rev`` is the :class:`~fmad.reverse.Reverse` pass (its namer, scope, refusals)."""

    def __init__(self, rev) -> None:
        self.rev = rev
        self.defs: dict[str, ast.FunctionDef] = {}

    def function(self, body: list[ast.stmt]) -> list[ast.stmt]:
        rev = self.rev
        self.defs = {s.name: s for s in body if isinstance(s, ast.FunctionDef)}
        if not self.defs:
            return body
        for s in B.statements(body):
            if isinstance(s, ast.FunctionDef) and self.defs.get(s.name) is not s:
                rev.refuse_at(s, f"the nested 'def {s.name}' inside a block or defined twice")
        for node in ast.walk(ast.Module(body=body, type_ignores=[])):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                node.func.fmad_called = True
        for t in body:
            for node in ast.walk(t):
                if isinstance(node, ast.Name) and node.id in self.defs:
                    if not getattr(node, "fmad_called", False) or isinstance(node.ctx, ast.Store):
                        what = f"the nested function '{node.id}' used otherwise than called"
                        rev.refuse_at(node, what)
        for fdef in self.defs.values():
            self.check_def(fdef)
        kept = [s for s in body if not isinstance(s, ast.FunctionDef)]
        return self.block(kept, ())

    def check_def(self, fdef: ast.FunctionDef) -> None:
        rev = self.rev
        what = f"the nested function '{fdef.name}'"
        args = fdef.args
        if fdef.decorator_list:
            rev.refuse_at(fdef, f"{what}, decorated")
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            rev.refuse_at(
                fdef, f"{what}, with *args, **kwargs, keyword-only or positional-only parameters"
            )
        for d in args.defaults:
            try:
                ok = constant(ast.literal_eval(d))
            except ValueError:
                ok = False
            if not ok:
                rev.refuse_at(fdef, f"{what}: a default that is not a constant")
        for node in ast.walk(fdef):
            if isinstance(node, ast.Nonlocal | ast.Global):
                rev.refuse_at(node, f"{what}: 'nonlocal' or 'global'")
            if isinstance(node, SCOPED) or (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and node is not fdef
            ):
                rev.refuse_at(node, f"{what}: a lambda, a comprehension or a def inside it")

    def block(self, stmts: list[ast.stmt], stack: tuple) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call):
                target = classify(s.value, self.rev.scope, self.defs)
                if target.kind == "nested" and target.name in self.defs:
                    out.extend(self.inline(s, self.defs[target.name], stack))
                    continue
            if isinstance(s, ast.If | ast.For | ast.While):
                s.body = self.block(s.body, stack)
                s.orelse = self.block(s.orelse, stack)
            out.append(s)
        return out

    def inline(self, s: ast.Assign, fdef: ast.FunctionDef, stack: tuple) -> list[ast.stmt]:
        rev = self.rev
        what = f"a call to the nested function '{fdef.name}'"
        if fdef.name in stack:
            rev.refuse_at(s, f"{what}: recursion")
        call = s.value
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            rev.refuse_at(s, f"{what} with *args or **kwargs")
        params = [a.arg for a in fdef.args.args]
        first = len(params) - len(fdef.args.defaults)
        defaults = dict(zip(params[first:], fdef.args.defaults, strict=True))
        bound: dict[str, ast.expr] = {}
        if len(call.args) > len(params):
            rev.refuse_at(s, f"{what}: too many arguments")
        bound.update(zip(params, call.args, strict=False))  # fewer arguments: defaults
        for k in call.keywords:
            if k.arg not in params or k.arg in bound:
                rev.refuse_at(s, f"{what}: the argument '{k.arg}'")
            bound[k.arg] = k.value
        for p in params:
            if p not in bound:
                if p not in defaults:
                    rev.refuse_at(s, f"{what}: no argument for '{p}'")
                bound[p] = copy.deepcopy(defaults[p])
        flat = Flattener(rev.filename, rev.namer, rev.scope).function(copy.deepcopy(fdef))
        # its early returns, breaks and continues made flags and guards (one final return)
        body = without_jumps(flat.body, rev.namer.fresh, rev.refuse_at)
        returning_body(body, flat, rev.refuse_at, what, fdef)
        out, renamed_body, mapping = bind(
            s, params, bound, body, bound_names(flat), rev.namer.fresh
        )
        rev.scope.local_names |= set(mapping.values())
        inner = self.block(renamed_body[:-1], (*stack, fdef.name))
        result = copy.copy(s)
        result.value = renamed_body[-1].value
        return out + inner + [result]


def inline_nested(rev, body: list[ast.stmt]) -> list[ast.stmt]:
    """``body`` with the calls to the nested functions inlined (see above)."""
    return NestedInliner(rev).function(body)
