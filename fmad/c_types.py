"""What the C export knows about a generated unit before printing it (see :mod:`fmad.c_lower`).

Every name of a unit's code has one C type: ``double``, ``long`` (a Python ``int``),
``bool`` (a C ``int``), ``arr1``/``arr2`` (a 1-D or 2-D float64 array: a pointer and its
lengths) or ``Tup(n, item)`` (a tuple of ``n`` numbers: a C array). A name assigned values of
several number types gets the widest (``bool`` < ``long`` < ``double``): Python's arithmetic on
an ``int`` that a float also fits gives the same numbers. Types are found by iterating the
assignments to a fixed point. Global names the code reads are resolved to their objects
(numbers and tuples of numbers become literals; functions are looked up in the call table).
"""

from __future__ import annotations

import ast
import builtins
import types
from dataclasses import dataclass
from typing import Any

from fmad.errors import ExportError
from fmad.transform import Unit

SCALARS = ("bool", "long", "double")
MISSING = object()


@dataclass(frozen=True)
class Tup:
    n: int
    item: str


CType = str | Tup


def join(a: CType | None, b: CType | None) -> CType | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, Tup) and isinstance(b, Tup) and a.n == b.n:
        item = join(a.item, b.item)
        return Tup(a.n, item) if isinstance(item, str) else None
    if a in SCALARS and b in SCALARS:
        return SCALARS[max(SCALARS.index(a), SCALARS.index(b))]
    raise TypeError(f"{a} and {b}")


def value_type(value: Any) -> CType | None:
    """The C type of a Python constant the code reads, or None if it has none."""
    if type(value) is bool or isinstance(value, __import__("numpy").bool_):
        return "bool"
    if type(value) is int and -(2**63) < value < 2**63:
        return "long"
    if type(value) is float or type(value).__name__ == "float64":
        return "double"
    if type(value) is tuple and value and all(value_type(v) in SCALARS for v in value):
        item = None
        for v in value:
            item = join(item, value_type(v))
        return Tup(len(value), item)  # type: ignore[arg-type]
    return None


class Resolver:
    """The object a unit's global name or ``module.attribute`` chain means."""

    def __init__(self, unit: Unit) -> None:
        fn = unit.function
        self.unit = unit
        self.cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))

    def name(self, name: str) -> Any:
        if name in self.unit.injected:
            return self.unit.injected[name]
        if name in self.cells:
            try:
                return self.cells[name].cell_contents
            except ValueError:
                return MISSING
        value = self.unit.function.__globals__.get(name, MISSING)
        return getattr(builtins, name, MISSING) if value is MISSING else value

    def obj(self, node: ast.expr) -> Any:
        """What a ``Name`` or a chain of attributes of a module names, or MISSING."""
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Attribute):
            base = self.obj(node.value)
            if isinstance(base, types.ModuleType) or type(base).__name__ == "ModuleType":
                return getattr(base, node.attr, MISSING)
        return MISSING


def int_sinks(tree: ast.FunctionDef) -> set[str]:
    """Names used where Python needs an ``int`` (a ``range`` bound, an index), and the names
    they are computed from by integer arithmetic: a scalar parameter among them is a
    ``long`` in C."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "range":
                found |= {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Subscript):
            found |= {n.id for n in ast.walk(node.slice) if isinstance(n, ast.Name)}
    integer_ops = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target, value = node.targets[0], node.value
            if not (isinstance(target, ast.Name) and target.id in found):
                continue
            if isinstance(value, ast.BinOp) and isinstance(value.op, integer_ops):
                parts = [value.left, value.right]
            elif isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
                parts = [value.operand]
            elif isinstance(value, ast.Name):
                parts = [value]
            else:
                continue
            new = {p.id for p in parts if isinstance(p, ast.Name)} - found
            if new:
                found |= new
                changed = True
    return found


def refuse(filename: str, node: ast.AST | None, what: str, instead: str) -> ExportError:
    line = getattr(node, "lineno", None)
    return ExportError(filename, line, f"the C export does not support {what}; {instead}")
