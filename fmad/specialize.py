"""Specialising a transform on the functions and objects passed as arguments.

fmad picks a derivative rule (or the helper whose source it transforms) when it transforms a
function, by the object a call reaches. ``def net(x, act=np.tanh): return act(x)`` calls
its *parameter* ``act``: which function that is, is known only per call. So fmad makes one
variant per function object passed for ``act`` (:class:`Pin` ``"is"``, cached by identity):
in that variant ``act`` means that object (:attr:`fmad.resolve.Scope.pinned`), and the public
function takes that variant only while ``act is <that object>``. Likewise a method called on
a parameter, ``self.helper(x)`` (:class:`Pin` ``"type"``): the variant is made for the
parameter's class, and the flattened call becomes ``Model.helper(self, x)``
(:func:`rewrite_methods`), a helper fmad transforms like any other.

After this pass, on the flattened function: every call through a pinned parameter reaches
the pinned object, and every method call on a parameter pinned by its type calls the plain
function defined in the class.
"""

from __future__ import annotations

import ast
import inspect
import types
from typing import Any

import numpy as np

from fmad import build as B
from fmad import rules
from fmad.errors import FmadError, UnsupportedError
from fmad.naming import Namer
from fmad.resolve import MISSING, Scope
from fmad.source import read_function


class Pin:
    """What a variant assumes of one argument: ``"is"``: it is ``obj`` (a function called
    through the parameter); ``"type"``: its class is ``obj``, each name in ``methods`` is the
    plain function of that class it was when the variant was made (``functions``), and the
    instance does not shadow it."""

    __slots__ = ("kind", "obj", "methods", "names", "functions")

    def __init__(self, kind: str, obj: Any, methods: frozenset[str] = frozenset()) -> None:
        self.kind, self.obj, self.methods = kind, obj, methods
        self.names = tuple(sorted(methods))
        self.functions = tuple(class_attribute(obj, m) for m in self.names)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Pin)
            and self.kind == other.kind
            and self.obj is other.obj
            and self.names == other.names
            and all(a is b for a, b in zip(self.functions, other.functions, strict=True))
        )

    def __hash__(self) -> int:
        return hash((self.kind, id(self.obj), self.names))

    def matches(self, value: Any) -> bool:
        """True if ``value`` is an argument this variant was made for (the public
        function's guard)."""
        if self.kind == "is":
            return value is self.obj
        if type(value) is not self.obj:
            return False
        shadow = getattr(value, "__dict__", None)
        if shadow and not self.methods.isdisjoint(shadow):
            return False
        return all(
            class_attribute(self.obj, m) is f
            for m, f in zip(self.names, self.functions, strict=True)
        )

    def describe(self, name: str) -> str:
        if self.kind == "is":
            label = getattr(self.obj, "__qualname__", None) or getattr(self.obj, "__name__", "")
            module = getattr(self.obj, "__module__", None) or ""
            if module.startswith("numpy"):
                label = f"np.{self.obj.__name__}"
            return f"{name} = {label}"
        return f"{name} a {self.obj.__qualname__}"


def called_parameters(tree: ast.FunctionDef) -> dict[str, frozenset[str]]:
    """The parameters ``tree`` (as written) calls (in its body or in a nested ``def`` that
    does not rebind them), never rebinding them:
    ``p(...)`` gives ``{p: frozenset()}``, ``p.m(...)`` adds ``m`` to the methods of ``p``.
    A parameter both called and used for methods is left out (nothing to pin)."""
    params = set(B.parameters(tree.args))
    rebound = set(B.names(tree, ast.Store, ast.Del))
    found: dict[str, set[str] | None] = {}
    todo: list[tuple[ast.AST, set[str]]] = [(s, params) for s in tree.body]
    while todo:
        node, visible = todo.pop()
        if isinstance(node, ast.FunctionDef):  # it sees the parameters it does not rebind
            inner = visible - B.bound_names(node)
            todo.extend((s, inner) for s in node.body)
            continue
        if isinstance(node, ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in visible:
                found.setdefault(func.id, set())
                if found[func.id]:
                    found[func.id] = None
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in visible
            ):
                methods = found.setdefault(func.value.id, set())
                if methods is not None:
                    methods.add(func.attr)
        children: list[ast.AST] = []
        B.add_children(node, children)
        todo.extend([(child, visible) for child in children])
    return {
        p: frozenset(m)
        for p, m in found.items()
        if m is not None and p not in rebound and p not in (tree.args.vararg, tree.args.kwarg)
    }


def pin_for(value: Any, methods: frozenset[str]) -> Pin | None:
    """The pin of an argument: a function (anything callable but a class) called through
    the parameter; an object whose called ``methods`` are plain functions of its class. None
    when there is nothing to pin (the call is then refused as today, or is a method with a
    rule such as an array's ``.sum()``)."""
    if not methods:
        if callable(value) and not isinstance(value, type):
            return Pin("is", value)
        return None
    cls = type(value)
    if cls.__module__ == "builtins" or cls.__module__.startswith("numpy"):
        return None  # numbers, lists, arrays: their methods have rules, or are refused
    if cls.__getattribute__ is not object.__getattribute__:
        return None  # attribute lookup of its own: a method call may reach anything
    if any(not plain_method(cls, m) for m in methods):
        return None
    methods = method_closure(cls, methods)
    shadow = getattr(value, "__dict__", {})
    if any(m in shadow for m in methods):
        return None
    return Pin("type", cls, methods)


def class_attribute(cls: type, name: str) -> Any:
    """What ``name`` is in the class ``cls`` (its own or inherited), or None."""
    for c in cls.__mro__:
        if name in c.__dict__:
            return c.__dict__[name]
    return None


def plain_method(cls: type, name: str) -> bool:
    return isinstance(class_attribute(cls, name), types.FunctionType)


CLOSURES: dict[tuple, frozenset[str]] = {}


def method_closure(cls: type, methods: frozenset[str]) -> frozenset[str]:
    """``methods`` and the plain methods of ``cls`` they call on their first parameter
    (``self.helper`` calling ``self.other``), transitively: the variant made for ``cls``
    calls them all through the class, so none may be shadowed by the instance."""
    key = (cls, methods, tuple(class_attribute(cls, m) for m in sorted(methods)))
    if key not in CLOSURES:
        found: set[str] = set()
        todo = list(methods)
        while todo:
            m = todo.pop()
            if m in found or not plain_method(cls, m):
                continue
            found.add(m)
            function = class_attribute(cls, m)
            try:
                tree = read_function(function).tree
            except FmadError:  # refused with its own message if it is transformed
                continue
            first = B.parameters(tree.args)[:1]
            todo.extend(m for p in first for m in called_parameters(tree).get(p, ()))
        CLOSURES[key] = frozenset(found)
    return CLOSURES[key]


def named(flat: ast.FunctionDef, atom: ast.expr) -> ast.expr:
    """What a local name of the flattened caller stands for when it is bound once, to a
    global or an attribute of one (flattening names ``np.sin`` as ``np_sin``)."""
    if isinstance(atom, ast.Name) and B.names(flat, ast.Store).count(atom.id) == 1:
        for s in B.statements(flat.body):
            if (
                isinstance(s, ast.Assign)
                and isinstance(s.targets[0], ast.Name)
                and s.targets[0].id == atom.id
                and isinstance(s.value, ast.Name | ast.Attribute)
            ):
                return s.value
    return atom


def helper_pins(
    scope: Scope, flat: ast.FunctionDef, fn: types.FunctionType, params: dict[str, ast.expr]
) -> tuple:
    """The pins of the parameters of a helper ``fn`` that it calls (or calls methods of),
    from the arguments of one call (``params``: parameter -> argument, as the caller's
    flattened code writes it): the caller's own pinned parameter passed on, a function
    the caller reaches by name (``np.tanh``), or the parameter's default."""
    try:
        called = called_parameters(read_function(fn).tree)
    except FmadError:
        return ()
    found = []
    signature = inspect.signature(fn)
    for name, methods in sorted(called.items()):
        atom = params.get(name)
        if atom is None:
            default = signature.parameters[name].default
            pin = None if default is inspect.Parameter.empty else pin_for(default, methods)
        elif isinstance(atom, ast.Name) and atom.id in scope.classes:
            pin = scope.classes[atom.id]
            pin = pin if methods <= pin.methods else None
        else:
            obj = scope.lookup(named(flat, atom))
            pin = None if obj is MISSING or methods else pin_for(obj, methods)
        if pin is not None:
            found.append((name, pin))
    return tuple(found)


def rewrite_methods(
    flat: ast.FunctionDef, scope: Scope, namer: Namer, pins: dict[str, Pin]
) -> None:
    """``v = p.m(a)`` on a parameter ``p`` pinned by its type becomes ``v = C_m(p, a)``,
    ``C_m`` the function ``m`` of ``p``'s class (reached under a name of its own)."""
    for node in B.walk(flat):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        base = node.func.value
        pin = pins.get(base.id) if isinstance(base, ast.Name) else None
        if pin is None or pin.kind != "type" or node.func.attr not in pin.methods:
            continue
        function = class_attribute(pin.obj, node.func.attr)
        name = next((k for k, v in scope.injected.items() if v is function), MISSING)
        if name is MISSING:
            name = namer.fresh(f"{pin.obj.__name__}_{node.func.attr}")
            scope.injected[name] = function
        node.args = [B.name(base.id), *node.args]
        node.func = B.name(name)


# the names of a method's first parameter: not differentiated by default (it is the object)
SELF = ("self", "cls")


def called_arguments(
    fn: types.FunctionType, tree: ast.FunctionDef, params: list[inspect.Parameter], bound: tuple
) -> list:
    """``(name, index, default, methods)`` for each parameter the function calls or calls
    methods of, itself or in the helpers it passes it to (:func:`called_parameters`,
    :func:`passed_on`): where its argument sits in a call
    (positional index, or None), its default (``bound``: the objects bound to the first
    parameters, as a bound method binds ``self``), and the methods called on it. A
    parameter whose methods all have array rules (``X.sum()``) is left out."""
    called = called_parameters(tree)
    for name, methods in passed_on(fn, tree).items():
        called.setdefault(name, methods)
    found = []
    for i, p in enumerate(params):
        methods = called.get(p.name)
        if methods is None or (methods and all(array_method(m) for m in methods)):
            continue
        index = i if p.kind != p.KEYWORD_ONLY else None
        default = bound[i] if i < len(bound) else p.default
        found.append((p.name, index, default, methods))
    return found


def passed_on(fn: types.FunctionType, tree: ast.FunctionDef, depth: int = 3) -> dict:
    """The parameters ``fn`` passes as they are to a helper (a function it reaches by name)
    that calls them or calls their methods (itself, or in the helpers it passes them to):
    ``{parameter: methods}`` as :func:`called_parameters` gives them."""
    params = set(B.parameters(tree.args)) - set(B.names(tree, ast.Store, ast.Del))
    scope = Scope(fn, B.bound_names(tree))
    found: dict[str, frozenset[str]] = {}
    for node in B.walk(tree):
        if depth == 0 or not isinstance(node, ast.Call):
            continue
        callee = scope.lookup(node.func)
        if not isinstance(callee, types.FunctionType) or callee is fn:
            continue
        try:
            inner = read_function(callee).tree
        except FmadError:
            continue
        wanted = {**passed_on(callee, inner, depth - 1), **called_parameters(inner)}
        positional = [a.arg for a in (*inner.args.posonlyargs, *inner.args.args)]
        pairs = [
            (positional[i] if i < len(positional) else None, a) for i, a in enumerate(node.args)
        ]
        pairs += [(k.arg, k.value) for k in node.keywords]
        for q, a in pairs:
            if isinstance(a, ast.Name) and a.id in params and q in wanted:
                found.setdefault(a.id, wanted[q])
    return found


def array_method(name: str) -> bool:
    """A method of arrays, lists, dicts...: fmad has a rule for it or refuses it already."""
    return (
        rules.rule_for(rules.method(name)) is not None
        or name in rules.ZERO_METHODS
        or any(hasattr(t, name) for t in (np.ndarray, list, dict, set, tuple, str))
    )


def pins(called: list, args: tuple, kwargs: dict, defaults: bool = False) -> tuple | None:
    """The pins of a call's arguments (see :class:`Pin`), in parameter order; with
    ``defaults`` (the variant made when the function is decorated), those of the defaults,
    or None if a function called through a parameter is missing. An argument with nothing
    to pin is left out: a call through it with a derivative is refused when the function is
    transformed."""
    found = []
    for name, index, default, methods in called:
        if index is not None and index < len(args):
            value = args[index]
        else:
            value = kwargs.get(name, default)
        pin = None if value is inspect.Parameter.empty else pin_for(value, methods)
        if pin is not None:
            found.append((name, pin))
        elif defaults and not methods:
            return None
    return tuple(found)


def deferred(fn: types.FunctionType, line: int, called: list, what: str) -> UnsupportedError:
    """``fn``'s code depends on the function (or the class of the object) passed for a
    parameter with no default: fmad transforms it when it is called, not when decorated."""
    names = ", ".join(repr(name) for name, *_ in called)
    return UnsupportedError(
        fn.__code__.co_filename,
        line,
        f"the code of '{fn.__name__}' depends on the function or object passed for {names}, "
        "which fmad transforms once per object passed" + (f"; {what}" if what else ""),
    )
