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
    label = ast.unparse(func)
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


def nested_functions(tree: ast.FunctionDef) -> dict[str, ast.FunctionDef]:
    """Functions defined with ``def`` directly inside ``tree`` (any block depth)."""
    found: dict[str, ast.FunctionDef] = {}

    def walk(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            if isinstance(s, ast.FunctionDef):
                found[s.name] = s
            for field in ("body", "orelse"):
                if isinstance(s, ast.If | ast.For | ast.While):
                    walk(getattr(s, field))

    walk(tree.body)
    return found


def rebound_defs(tree: ast.FunctionDef) -> set[str]:
    """Names of nested functions that ``tree`` binds more than once (two ``def``\\ s, or a
    ``def`` and an assignment): which one a call reaches depends on the path taken."""
    defs: dict[str, int] = {}
    for s in statements(tree.body):
        if isinstance(s, ast.FunctionDef):
            defs[s.name] = defs.get(s.name, 0) + 1
    stored = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    a = tree.args
    params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x}
    return {name for name, n in defs.items() if n > 1 or name in stored | params}


def lexical_bound(tree: ast.FunctionDef) -> set[str]:
    """Names ``tree`` binds in its own scope: parameters, assignment and loop targets,
    nested ``def`` names (not the names bound inside those)."""
    a = tree.args
    bound = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x}
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return bound


def lexical_free(tree: ast.FunctionDef) -> set[str]:
    """Names ``tree``'s body reads (its own nested defs included) and does not bind, and
    the names its default values read (where it is defined: the call depends on them)."""
    reads: set[str] = set()
    defaults = [e for e in [*tree.args.defaults, *tree.args.kw_defaults] if e is not None]
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            reads |= lexical_free(node)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            reads.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return (reads - lexical_bound(tree)) | {
        n.id for e in defaults for n in ast.walk(e) if isinstance(n, ast.Name)
    }


def free_reads(
    tree: ast.FunctionDef,
    owner: Any = None,
    nested: dict[str, ast.FunctionDef] | None = None,
    owners: dict[str, Any] | None = None,
) -> dict[str, set[Any]]:
    """The names a nested function reads from outside: those it reads itself and, with
    ``nested`` (the nested functions visible where it is defined), those the nested
    functions it calls read, transitively (``inner10`` calling ``inner5``, which reads
    ``p2``, depends on ``p2`` too). For each name, every owner (the function defining the
    ``def``) it is read from: the name means the binding seen from there."""
    nested = nested or {}
    found: dict[str, set[Any]] = {}
    seen: set[int] = set()
    todo = [(tree, owner)]
    while todo:
        t, o = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        for name in sorted(lexical_free(t)):
            found.setdefault(name, set()).add(o)
            if name in nested:
                todo.append((nested[name], owners.get(name) if owners else None))
    return found


def free_names(tree: ast.FunctionDef, nested: dict[str, ast.FunctionDef] | None = None) -> set[str]:
    """The names of :func:`free_reads`."""
    return set(free_reads(tree, None, nested))


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


def statements(body: list[ast.stmt]):
    """Every statement of a body, nested blocks included, nested defs excluded."""
    for s in body:
        yield s
        if isinstance(s, ast.If | ast.For | ast.While):
            yield from statements(s.body)
            yield from statements(s.orelse)


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
            return [
                n.id
                for t in s.targets
                for n in ast.walk(t)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            ]
        if isinstance(s, ast.For):
            return [
                n.id
                for target, source in iteration_parts(s.target, s.iter)
                if self.expr_active(source, active)
                for n in ast.walk(target)
                if isinstance(n, ast.Name)
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
        return any(isinstance(n, ast.Name) and n.id in active for n in ast.walk(node))
