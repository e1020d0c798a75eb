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
from fmad.errors import UnsupportedError
from fmad.naming import Namer
from fmad.resolve import MISSING, Scope


class Pin:
    """What a variant assumes of one argument: ``"is"``: it is ``obj`` (a function called
    through the parameter); ``"type"``: its class is ``obj`` and each name in ``methods`` is
    a plain function of that class, not shadowed by the instance."""

    __slots__ = ("kind", "obj", "methods")

    def __init__(self, kind: str, obj: Any, methods: frozenset[str] = frozenset()) -> None:
        self.kind, self.obj, self.methods = kind, obj, methods

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Pin)
            and self.kind == other.kind
            and self.obj is other.obj
            and self.methods == other.methods
        )

    def __hash__(self) -> int:
        return hash((self.kind, id(self.obj), self.methods))

    def matches(self, value: Any) -> bool:
        """True if ``value`` is an argument this variant was made for."""
        if self.kind == "is":
            return value is self.obj
        return pin_for(value, self.methods) == self

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
        todo.extend((child, visible) for child in ast.iter_child_nodes(node))
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
    shadow = getattr(value, "__dict__", {})
    for m in methods:
        if m in shadow or not isinstance(inspect.getattr_static(cls, m, None), types.FunctionType):
            return None
    return Pin("type", cls, methods)


def rewrite_methods(
    flat: ast.FunctionDef, scope: Scope, namer: Namer, pins: dict[str, Pin]
) -> None:
    """``v = p.m(a)`` on a parameter ``p`` pinned by its type becomes ``v = C_m(p, a)``,
    ``C_m`` the function ``m`` of ``p``'s class (reached under a name of its own)."""
    for node in ast.walk(flat):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        base = node.func.value
        pin = pins.get(base.id) if isinstance(base, ast.Name) else None
        if pin is None or pin.kind != "type" or node.func.attr not in pin.methods:
            continue
        function = inspect.getattr_static(pin.obj, node.func.attr)
        name = next((k for k, v in scope.injected.items() if v is function), MISSING)
        if name is MISSING:
            name = namer.fresh(f"{pin.obj.__name__}_{node.func.attr}")
            scope.injected[name] = function
        node.args = [B.name(base.id), *node.args]
        node.func = B.name(name)


# the names of a method's first parameter: not differentiated by default (it is the object)
SELF = ("self", "cls")


def called_arguments(tree: ast.FunctionDef, params: list[inspect.Parameter], bound: tuple) -> list:
    """``(name, index, default, methods)`` for each parameter the function calls or calls
    methods of (see :func:`called_parameters`): where its argument sits in a call
    (positional index, or None), its default (``bound``: the objects bound to the first
    parameters, as a bound method binds ``self``), and the methods called on it. A
    parameter whose methods all have array rules (``X.sum()``) is left out."""
    called = called_parameters(tree)
    found = []
    for i, p in enumerate(params):
        methods = called.get(p.name)
        if methods is None or (methods and all(array_method(m) for m in methods)):
            continue
        index = i if p.kind != p.KEYWORD_ONLY else None
        default = bound[i] if i < len(bound) else p.default
        found.append((p.name, index, default, methods))
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
