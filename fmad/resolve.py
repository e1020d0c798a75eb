"""What a name means at transform time: a local of the function, or an object.

Calls are matched to derivative rules by the object they call (``np.exp``), so the
transform looks the callee up in the function's closure, globals and builtins. The
generated code still reads those names at call time; only the *choice of rule* is made here.
"""

from __future__ import annotations

import ast
import builtins
import types
from typing import Any

MISSING = object()


class Scope:
    """Looks names up as the function would: closure, then globals, then builtins."""

    def __init__(self, fn: types.FunctionType, local_names: set[str]) -> None:
        self.fn = fn
        self.local_names = local_names
        self.closure: dict[str, object] = {}
        self.seen: dict[str, tuple[Any, str, object]] = {}
        # names the transform binds for the generated code (fmad.nesting): they come first
        self.injected: dict[str, object] = {}
        # parameters whose argument this variant is made for (fmad.specialize): a call
        # through one of them reaches that object
        self.pinned: dict[str, object] = {}
        # parameters whose argument's class this variant is made for: name -> its pin
        self.classes: dict[str, object] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:  # an empty cell: not bound yet
                pass

    def watched(self) -> list[tuple[Any, str, object]]:
        """(namespace, name, object) for every global or closure name a call was matched
        through: if one is rebound later, the rules chosen from it are stale."""
        return list(self.seen.values())

    def is_local(self, name: str) -> bool:
        return name in self.local_names

    def lookup_name(self, name: str) -> object:
        if name in self.injected:
            return self.injected[name]
        if name in self.pinned:
            return self.pinned[name]
        if name in self.local_names:
            return MISSING
        if name in self.closure:
            cell = self.fn.__closure__[self.fn.__code__.co_freevars.index(name)]
            self.seen[name] = (cell, name, self.closure[name])
            return self.closure[name]
        if name in self.fn.__globals__:
            self.seen[name] = (self.fn.__globals__, name, self.fn.__globals__[name])
            return self.fn.__globals__[name]
        return getattr(builtins, name, MISSING)

    def lookup(self, node: ast.expr) -> object:
        """The object a ``Name`` or ``a.b.c`` chain rooted at a non-local name refers to."""
        if isinstance(node, ast.Name):
            return self.lookup_name(node.id)
        if isinstance(node, ast.Attribute):
            base = self.lookup(node.value)
            if base is MISSING:
                return MISSING
            return getattr(base, node.attr, MISSING)
        return MISSING

    def module_name(self, module: types.ModuleType) -> str | None:
        """A global name under which the function already reaches ``module``, if any."""
        for name in ("np", "numpy", "math"):
            if name not in self.local_names and self.fn.__globals__.get(name) is module:
                return name
        return None


def still_bound(watched: list[tuple[Any, str, object]]) -> bool:
    """True while every watched name still refers to the object it did at transform time."""
    for namespace, name, obj in watched:
        if isinstance(namespace, dict):
            if namespace.get(name, MISSING) is not obj:
                return False
        else:  # a closure cell
            try:
                if namespace.cell_contents is not obj:
                    return False
            except ValueError:
                return False
    return True
