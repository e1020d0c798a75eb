"""Activity analysis: which names depend on a differentiated parameter.

After this pass, for each direction (a ``wrt`` parameter), we know the set of names that may
carry a nonzero derivative with respect to it. The analysis is flow-insensitive: a name is
active if *any* assignment to it, anywhere in the function (loops included), reads an active
value. Tangents are emitted only for active names; every assignment to an active name writes
its tangent (zero when that particular right side is inactive), so branches and loops need no
special handling.

Calls are classified here too (:func:`classify`), because a call's activity depends on what
it calls: ``np.floor(w)`` has no derivative, ``sigmoid(w)`` does.
"""

from __future__ import annotations

import ast
import types
from dataclasses import dataclass
from typing import Any

from fmad import rules
from fmad.build import (
    free_names,
    names,
    nested_functions,
    parameters,
    statements,
    stored_names,
    walk,
)
from fmad.resolve import MISSING, Scope

MUTATING_METHODS = {"append", "extend", "insert"}


@dataclass(frozen=True)
class CallTarget:
    """What a call calls: ``kind`` is one of ``rule``, ``zero``, ``user``, ``nested``,
    ``method`` or ``unknown``."""

    kind: str
    obj: Any = None
    rule: Any = None
    name: str = ""


def classify(call: ast.Call, scope: Scope, nested: dict[str, ast.FunctionDef]) -> CallTarget:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if scope.is_local(func.value.id):
            return CallTarget("method", name=func.attr)
    if isinstance(func, ast.Name) and func.id in nested:
        return CallTarget("nested", obj=nested[func.id], name=func.id)
    obj = scope.lookup(func)
    label = dotted(func)
    if obj is MISSING:
        return CallTarget("unknown", name=label)
    rule = rules.rule_for(obj)
    if rule is not None:
        return CallTarget("rule", obj=obj, rule=rule, name=label)
    if rules.has_zero_derivative(obj):
        return CallTarget("zero", obj=obj, name=label)
    if isinstance(obj, types.FunctionType) and getattr(obj, "__wrapped__", None) is None:
        # a function wrapped by a decorator (``__wrapped__``) is not the function whose
        # source we would read: it stays unknown (see Forward.unknown_call)
        return CallTarget("user", obj=obj, name=label)
    return CallTarget("unknown", obj=obj, name=label)


def dotted(func: ast.expr) -> str:
    """``ast.unparse(func)``, without it for the common ``f`` and ``np.linalg.norm``
    (classify runs for every call, every time activity or the emitter meets it)."""
    parts = []
    node = func
    while type(node) is ast.Attribute:
        parts.append(node.attr)
        node = node.value
    if type(node) is not ast.Name:
        return ast.unparse(func)
    parts.append(node.id)
    return ".".join(reversed(parts))


def rebound_defs(tree: ast.FunctionDef) -> set[str]:
    """Names of nested functions that ``tree`` binds more than once (two ``def``\\ s, or a
    ``def`` and an assignment): which one a call reaches depends on the path taken."""
    defs: dict[str, int] = {}
    for s in statements(tree.body):
        if isinstance(s, ast.FunctionDef):
            defs[s.name] = defs.get(s.name, 0) + 1
    stored = set(names(tree, ast.Store)) | set(parameters(tree.args))
    return {name for name, n in defs.items() if n > 1 or name in stored}


def iteration_parts(target: ast.expr, it: ast.expr) -> list[tuple[ast.expr, ast.expr]]:
    """What each part of a ``for`` target is bound from: ``for i, x in enumerate(xs)`` binds
    ``x`` from the items of ``xs`` (``i``, an index, carries no derivative); ``for a, b in
    zip(xs, ys)`` binds ``a`` from ``xs`` and ``b`` from ``ys``; ``reversed(xs)`` iterates the
    items of ``xs``. Any other iterable binds the whole target from itself."""
    if (
        isinstance(it, ast.Call)
        and isinstance(it.func, ast.Name)
        and all(k.arg == "strict" for k in it.keywords)
    ):
        name, args = it.func.id, it.args
        pair = isinstance(target, ast.Tuple) and len(target.elts) == 2
        if name == "enumerate" and pair and len(args) in (1, 2):
            return [(target.elts[1], args[0])]
        if name == "zip" and isinstance(target, ast.Tuple) and len(target.elts) == len(args):
            return list(zip(target.elts, args, strict=True))
        if name == "reversed" and len(args) == 1:
            return [(target, args[0])]
        if name in ("enumerate", "zip"):  # any other shape: everything from all arguments
            return [(target, a) for a in args]
    return [(target, it)]


def may_be_lists(flat: ast.FunctionDef, params: set[str]) -> set[str]:
    """Names that may hold a list or tuple: parameters, and names bound to a list or tuple
    display (comprehensions start as ``[]``), to ``list(...)``/``tuple(...)``, or to such a
    name."""
    found = set(params)
    for s in walk(flat):  # 'first, *rest = xs': rest is a list
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Tuple | ast.List):
            found |= {
                e.value.id
                for e in s.targets[0].elts
                if isinstance(e, ast.Starred) and isinstance(e.value, ast.Name)
            }
    assigns = [
        s
        for s in walk(flat)
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    ]
    changed = True
    while changed:
        changed = False
        for s in assigns:
            v = s.value
            listy = (
                isinstance(v, ast.List | ast.Tuple)
                or (isinstance(v, ast.Name) and v.id in found)
                or (  # xs + ys: a concatenation when both are lists
                    isinstance(v, ast.BinOp)
                    and isinstance(v.op, ast.Add)
                    and all(isinstance(a, ast.Name) and a.id in found for a in (v.left, v.right))
                )
                or (
                    isinstance(v, ast.Call)
                    and isinstance(v.func, ast.Name)
                    and v.func.id in ("list", "tuple", "sorted")
                )
            )
            if listy and s.targets[0].id not in found:
                found.add(s.targets[0].id)
                changed = True
    return found


class Activity:
    """Computes the active names of a flattened function, per direction."""

    def __init__(self, tree: ast.FunctionDef, scope: Scope) -> None:
        self.tree = tree
        self.scope = scope
        self.nested = nested_functions(tree)

    def active(self, seeds: set[str]) -> set[str]:
        active = set(seeds)
        changed = True
        while changed:
            changed = False
            for s in statements(self.tree.body):
                for name in self.newly_active(s, active):
                    if name not in active:
                        active.add(name)
                        changed = True
        return active

    def newly_active(self, s: ast.stmt, active: set[str]) -> list[str]:
        if isinstance(s, ast.Assign) and self.expr_active(s.value, active):
            return [n for t in s.targets for n in names(t, ast.Store)]
        if isinstance(s, ast.For):
            return [
                n
                for target, source in iteration_parts(s.target, s.iter)
                if self.expr_active(source, active)
                for n in stored_names(target)
            ]
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            func = s.value.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.attr in MUTATING_METHODS
                and any(self.expr_active(a, active) for a in s.value.args)
            ):
                return [func.value.id]
        return []

    def expr_active(self, node: ast.expr | None, active: set[str]) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Name):
            return node.id in active
        if isinstance(node, ast.Constant | ast.Compare | ast.JoinedStr):
            return False
        if isinstance(node, ast.BinOp):
            if rules.has_zero_derivative(type(node.op)):
                return False
            return self.expr_active(node.left, active) or self.expr_active(node.right, active)
        if isinstance(node, ast.UnaryOp):
            if rules.has_zero_derivative(type(node.op)):
                return False
            return self.expr_active(node.operand, active)
        if isinstance(node, ast.Call):
            target = classify(node, self.scope, self.nested)
            if target.kind == "zero":
                return False
            if target.kind == "method":
                if target.name in rules.ZERO_METHODS:
                    return False
                if self.expr_active(node.func.value, active):
                    return True
            args = [*node.args, *(k.value for k in node.keywords)]
            if target.kind == "nested":  # it may read active variables of ours, too
                free = free_names(target.obj, self.nested)
                args += [ast.Name(id=n, ctx=ast.Load()) for n in sorted(free)]
                # ``n@f``: the tangent of an enclosing ``n`` that one of ours shadows
                if any(a.split("@")[0] in free for a in active if "@" in a):
                    return True
            return any(self.expr_active(a, active) for a in args)
        if isinstance(node, ast.Subscript):
            return self.expr_active(node.value, active)
        if isinstance(node, ast.Attribute):
            if node.attr in rules.ZERO_ATTRIBUTES:
                return False
            return self.expr_active(node.value, active)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(self.expr_active(e, active) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.expr_active(v, active) for v in node.values)
        return any(n in active for n in names(node))
