"""Calls to helper functions, for the forward pass (a mixin of :class:`fmad.forward.Forward`).

``v = helper(x, k=y)`` with an active argument becomes ``v, dv_dw = helper_fwd(x, k=y,
dx_dw=...)``: the arguments are bound to the helper's parameters (:meth:`bind`), the pattern
of active ones picks a variant (:meth:`fmad.transform.Session.callee`), and the variant's
value and tangents are unpacked. A nested helper also receives the tangents of the enclosing
variables it reads (:meth:`nested_inputs`). Calls fmad cannot follow faithfully (decorated
functions, ``*args``, recursion...) are refused with the line of the call.
"""

from __future__ import annotations

import ast
import functools
import inspect
import types
from typing import Any, Protocol

from fmad import build as B
from fmad.activity import CallTarget
from fmad.build import free_reads, lexical_bound
from fmad.errors import is_numpy, no_rule_advice


class Callees(Protocol):
    """What the forward pass asks of the driver: the variant of a helper for one pattern of
    active inputs (``fmad.transform.Session`` implements it). The emitter never imports the
    driver, and the driver never writes into the emitter."""

    def callee(
        self, caller: Any, target: CallTarget, pattern: tuple, call: ast.Call, outer: Any
    ) -> Any: ...


class HelperCalls:
    """The helper-call part of the forward pass; ``self`` is a ``Forward``."""

    def unknown_call(self, target: CallTarget, call: ast.Call) -> None:
        if hasattr(target.obj, "__fmad__") or (
            hasattr(target.obj, "__wrapped__") and not is_numpy(target.obj)
        ):
            self.refuse(decorated_message(target.name, target.obj), call)
        if isinstance(target.obj, types.MethodType | functools.partial):
            kind = "a bound method" if isinstance(target.obj, types.MethodType) else "a partial"
            self.refuse(
                f"'{target.name}' is {kind}, which fmad does not transform (it transforms "
                "functions defined with 'def'); call a plain function and pass what it "
                f"needs as arguments, or register a derivative: fmad.register({target.name}, "
                "derivative)",
                call,
            )
        if target.kind == "method":
            self.refuse(
                f"'{ast.unparse(call.func)}(...)' calls a method of an object with a value that "
                "depends on a differentiated parameter; fmad transforms a method called on a "
                "parameter (self.helper(x)) that its class defines with 'def' (not a "
                "staticmethod, a property or a function stored on the instance, for it and "
                "the methods it calls on the object); otherwise call a plain function and "
                "pass what it needs as arguments",
                call,
            )
        root = call.func
        while isinstance(root, ast.Attribute):
            root = root.value
        local = isinstance(root, ast.Name) and self.scope.is_local(root.id)
        advice = no_rule_advice(target.name, target.obj, local)
        self.refuse(
            f"the call to '{target.name}' depends on a differentiated parameter, but fmad has "
            f"no derivative rule for it and cannot read its source; {advice}",
            call,
        )

    def call_helper(self, s: ast.Assign, target: CallTarget) -> list[ast.stmt]:
        call: ast.Call = s.value
        params = self.bind(target, call)
        outer = {}
        if target.kind == "nested":
            inputs, outer = self.nested_inputs(target, call, params)
            params.update(inputs)
        pattern = []
        for d in self.directions:
            for pname, atom in params.items():
                t = self.tangent(atom, d.name)
                if t is not None:
                    pattern.append((pname, d.name, t.full, self.tree(atom)))
        info = self.session.callee(self, target, tuple(pattern), call, outer)
        keywords = list(call.keywords)
        for (pname, dname), kw in info.inputs.items():
            t = self.tangent(params[pname], dname)
            expr = t.expr
            if t.seed:
                expr = B.name(self.tname(params[pname].id, dname))
            keywords.append(ast.keyword(arg=kw, value=expr))
        fcall = ast.Call(func=B.name(info.name), args=list(call.args), keywords=keywords)
        # directions in which the result carries a tangent (the helper may return a zero)
        carried = [d for d in info.directions if d not in info.result_zero]
        outs: list[ast.expr] = []
        lhs = s.targets[0]
        if not isinstance(lhs, ast.Name):
            value_name = self.namer.fresh(f"{target.name}_value")
            for dname in carried:
                self.active[dname].add(value_name)  # unpacked below from its tangent
        else:
            value_name = lhs.id
        outs.append(B.store(value_name))
        for dname in info.directions:
            if dname in carried and value_name in self.active[dname]:
                outs.append(B.store(self.tname(value_name, dname)))
                single = self.assign_counts.get(value_name, 0) <= 1
                full = info.result_full.get(dname, False) and single
                # a list of tangents when the helper returns a list (numpy functions stack it)
                container = True if dname in info.result_container else None
                self.known.mark(value_name, dname, full=full, container=container)
            else:
                outs.append(B.store(self.namer.fresh("unused")))
        out: list[ast.stmt] = [
            ast.Assign(targets=[ast.Tuple(elts=outs, ctx=ast.Store())], value=fcall)
        ]
        if isinstance(lhs, ast.Name):
            for d in self.directions:
                if lhs.id in self.active[d.name] and d.name not in carried:
                    out.append(self.set_tangent(lhs.id, d.name, None))
        else:  # a, b = helper(...): unpack value and tangents
            out.append(ast.Assign(targets=[lhs], value=B.name(value_name)))
            for n in B.stored_names(lhs):
                self.assign_counts[n] = self.assign_counts.get(n, 0) + 1
            out.extend(self.unpack(lhs, B.name(value_name)))
        return out

    def nested_inputs(self, target: CallTarget, call: ast.Call, params) -> dict[str, ast.expr]:
        """The variables of ours a nested helper reads (itself, or through the nested
        helpers it calls): their tangents are passed in like those of its arguments."""
        owner = self.owners[target.name]
        if target.name in owner.rebound:
            self.refuse(
                f"the nested function '{target.name}' is defined more than once or also "
                "assigned; fmad cannot tell which one this call reaches: give each its own "
                "name",
                call,
            )
        a = target.obj.args
        positional = [*a.posonlyargs, *a.args]
        defaults = dict(
            zip(
                [p.arg for p in positional[len(positional) - len(a.defaults) :]],
                a.defaults,
                strict=True,
            )
        )
        defaults.update(
            {p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None}
        )
        for pname, default in defaults.items():
            if pname not in params and any(
                n in owner.active[d.name] for d in owner.directions for n in B.names(default)
            ):
                self.refuse(
                    f"the default value of '{pname}' in the nested function "
                    f"'{target.name}' depends on a differentiated parameter; fmad cannot "
                    "follow its derivative: pass the argument explicitly",
                    call,
                )
        # each free variable the helper reads (itself or through the nested helpers it
        # calls) means the binding seen from where the reading ``def`` is defined. The
        # binding the helper itself sees comes in as ``name``; another one (shadowed on
        # the way) as ``name@<function binding it>``.
        inputs: dict[str, ast.expr] = {}
        outer: dict[str, Any] = {}
        chosen: dict[str, Any] = {}
        target_bound = lexical_bound(target.obj)
        reads = free_reads(target.obj, owner, self.nested, self.owners)
        for name, readers in sorted(reads.items()):
            wheres = {binding(name, reader) for reader in readers} - {None}
            for where in sorted(wheres, key=lambda f: f.flat.name):
                own_view = name not in target_bound and binding(name, owner) is where
                key = name if own_view else f"{name}@{where.flat.name}"
                atom = self.tangent_source(name, where)
                if atom is None or chosen.setdefault(key, where) is not where:
                    self.refuse(
                        f"the nested function '{target.name}' reads '{name}' of an enclosing "
                        f"function, and another '{name}' is bound on the way to this call; "
                        "fmad cannot tell the two apart: rename one",
                        call,
                    )
                if key != name:
                    outer[key] = where
                if any(atom.id in self.active[d.name] for d in self.directions):
                    inputs[key] = atom
        return inputs, outer

    def tangent_source(self, name: str, where: Any) -> ast.Name | None:
        """The name whose tangent is that of ``where``'s binding of ``name``, here."""
        if binding(name, self) is where:
            return B.name(name)
        for key, f in self.outer.items():
            if f is where and key.split("@")[0] == name:  # it came in as name@...
                return ast.Name(id=key, ctx=ast.Load())
        return None

    def bind(self, target: CallTarget, call: ast.Call) -> dict[str, ast.expr]:
        """Which parameter of the helper each argument of ``call`` goes to."""
        if target.kind == "nested":
            sig = signature_of(target.obj)
        else:
            sig = inspect.signature(target.obj)
        positional = list(range(len(call.args)))
        keywords = {k.arg: ("kw", k.arg) for k in call.keywords}
        try:
            bound = sig.bind(*positional, **keywords)
        except TypeError as exc:
            self.refuse(f"cannot call '{target.name}' with these arguments: {exc}", call)
        params: dict[str, ast.expr] = {}
        by_kw = {k.arg: k.value for k in call.keywords}
        for pname, slot in bound.arguments.items():
            kind = sig.parameters[pname].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                slots = slot if kind == inspect.Parameter.VAR_POSITIONAL else slot.values()
                for sl in slots:
                    atom = call.args[sl] if isinstance(sl, int) else by_kw[sl[1]]
                    if any(self.is_active(atom, d.name) for d in self.directions):
                        self.refuse(
                            f"'{target.name}' takes *args/**kwargs; fmad cannot pass "
                            "derivatives through them; name the parameters",
                            call,
                        )
                continue
            params[pname] = call.args[slot] if isinstance(slot, int) else by_kw[slot[1]]
        return params

    def inherit(self, owner: Any, outer: dict[str, Any]) -> None:
        """This is a nested helper defined in ``owner``: it sees the nested functions
        ``owner`` sees (unless it binds the name itself); ``outer[key]``: for an input
        ``name@f``, the function (``Forward``) whose binding of ``name`` it is."""
        self.lexical_parent = owner
        self.outer = dict(outer)
        own = self.bound
        for name, tree in owner.nested.items():
            if name not in self.nested and name not in own:
                self.nested[name] = tree
                self.owners[name] = owner.owners[name]


def decorated_message(name: str, obj: Any) -> str:
    """Why a call to a decorated function is refused (fmad would read the wrong source)."""
    inner = inspect.unwrap(obj)
    code = getattr(inner, "__code__", None)
    where = f" (defined at {code.co_filename}:{code.co_firstlineno})" if code else ""
    if hasattr(obj, "__fmad__"):
        return (
            f"'{name}'{where} is a function returned by fmad.differentiate: inside a "
            f"function fmad differentiates, use its result as 'value, grads = {name}(...)' "
            f"and each gradient as grads['w'], or call the plain function ('{name}.__wrapped__')"
        )
    return (
        f"'{name}'{where} is wrapped by a decorator; fmad reads the source of the function "
        "inside and cannot follow what the decorator does to its arguments and result: "
        "call the undecorated function, or give the decorated one a derivative with "
        f"fmad.register({name}, derivative)"
    )


def binding(name: str, forward: Any) -> Any:
    """The function (a ``Forward``) whose scope binds ``name`` as seen from ``forward``'s
    body, or None (a global, or a variable of a function fmad does not transform)."""
    while forward is not None:
        if name in forward.bound:
            return forward
        forward = forward.lexical_parent
    return None


def signature_of(tree: ast.FunctionDef) -> inspect.Signature:
    """An ``inspect.Signature`` for a ``def`` we only have as a tree."""
    P = inspect.Parameter
    a = tree.args
    params: list[inspect.Parameter] = []
    positional = [*a.posonlyargs, *a.args]
    n_defaults = len(a.defaults)
    for i, arg in enumerate(positional):
        kind = P.POSITIONAL_ONLY if i < len(a.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        has_default = i >= len(positional) - n_defaults
        params.append(P(arg.arg, kind, default=0 if has_default else P.empty))
    if a.vararg:
        params.append(P(a.vararg.arg, P.VAR_POSITIONAL))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(P(arg.arg, P.KEYWORD_ONLY, default=P.empty if default is None else 0))
    if a.kwarg:
        params.append(P(a.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(params)
