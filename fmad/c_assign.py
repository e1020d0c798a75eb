"""Assignments that are more than one C statement, for the C export (a part of
:class:`fmad.c_lower.Lowerer`): tuples (every item evaluated before any target is assigned),
calls of helper functions (the value returned, the tangents written through pointers), the
builtins ``min``/``max`` and the tangent of ``min``/``max`` (the mean of the tied items').
"""

from __future__ import annotations

import ast
from typing import Any

from fmad.c_types import SCALARS, value_type
from fmad.transform import Unit

C_TYPE = {"double": "double", "long": "long", "bool": "int"}
INDENT = "    "


class Assignments:
    """(mixed into :class:`fmad.c_lower.Lowerer`, whose state it uses)"""

    def parallel(self: Any, targets: list, items: list, depth: int, node: ast.AST) -> list[str]:
        """``a, b = x, y``: every item evaluated before any target is assigned."""
        pad = INDENT * depth
        if len(targets) != len(items):
            raise self.no(node, "unpacking a tuple of another length", "")
        lines = [f"{pad}{{"]
        temps = []
        for item in items:
            kind = self.etype(item)
            if kind not in SCALARS:
                raise self.no(node, f"a tuple holding '{ast.unparse(item)}'", "use numbers")
            temp = self.fresh("t")
            temps.append(temp)
            lines.append(f"{pad}{INDENT}{C_TYPE[kind]} {temp} = {self.expr(item)};")  # type: ignore[index]
            lines += self.guard(depth + 1)
        for target, temp in zip(targets, temps, strict=True):
            if isinstance(target, ast.Tuple):
                raise self.no(node, "nested unpacking", "unpack one level at a time")
            lines.append(f"{pad}{INDENT}{self.lvalue(target)} = {temp};")
        return [*lines, f"{pad}}}"]

    def call_helper(
        self: Any, unit: Unit, target: ast.Tuple, call: ast.Call, depth: int
    ) -> list[str]:
        pad = INDENT * depth
        args = unit.tree.args
        names = [a.arg for a in (*args.posonlyargs, *args.args)]
        if args.vararg or args.kwarg or any(isinstance(a, ast.Starred) for a in call.args):
            raise self.no(call, "a helper with *args or **kwargs", "name its parameters")
        bound: dict[str, ast.expr] = dict(zip(names, call.args, strict=False))
        bound.update({k.arg: k.value for k in call.keywords if k.arg})
        defaults = list(unit.function.__defaults__ or ())
        for name, value in zip(names[len(names) - len(defaults) :], defaults, strict=True):
            if name not in bound:
                if value_type(value) not in SCALARS:
                    raise self.no(call, f"the default {name}={value!r:.30}", "pass it")
                bound[name] = ast.Constant(value)
        for name, value in (unit.function.__kwdefaults__ or {}).items():
            bound.setdefault(name, ast.Constant(value))
        order = names + [a.arg for a in args.kwonlyargs]
        kinds = [self.etype(bound[n]) for n in order]
        fname = self.callee(unit, kinds, call, len(target.elts) - 1)  # type: ignore[arg-type]
        text = []
        for name, kind in zip(order, kinds, strict=True):
            value = bound[name]
            if kind in ("arr1", "arr2"):
                if not isinstance(value, ast.Name):
                    raise self.no(call, "passing an array expression to a helper", "name it")
                text += [self.cname(value.id), *self.lengths[value.id]]
            else:
                text.append(self.expr(value))
        outs = [f"&{self.cname(t.id)}" for t in target.elts[1:]]  # type: ignore[attr-defined]
        first = self.lvalue(target.elts[0])
        self.checked = True
        call_text = ", ".join([*text, *outs, "fm_err"])
        return [f"{pad}{first} = {fname}({call_text});", *self.guard(depth)]

    def extreme(self: Any, target: ast.Name, call: ast.Call, depth: int) -> list[str]:
        """The tangent of ``min``/``max``: the mean of the tangents of the tied items."""
        pad, inner = INDENT * depth, INDENT * (depth + 1)
        tangents, values, result = call.args[:3]
        if not isinstance(tangents, ast.List | ast.Tuple) or not isinstance(
            values, ast.List | ast.Tuple
        ):
            raise self.no(call, "the tangent of min/max of a sequence", "list the items")
        total, count = self.fresh("total"), self.fresh("n")
        z = self.expr(result)
        lines = [f"{pad}{{", f"{inner}double {total} = 0.0;", f"{inner}long {count} = 0;"]
        for t, v in zip(tangents.elts, values.elts, strict=True):
            term = f"{total} = {total} + {self.expr(t)};"
            lines.append(f"{inner}if ({self.sub(v)} == {z}) {{ {term} {count} += 1; }}")
        lines += [f"{inner}{self.cname(target.id)} = {total} / (double){count};", f"{pad}}}"]
        return lines

    def min_max(self: Any, target: ast.Name, call: ast.Call, is_min: bool, depth: int) -> list[str]:
        """``min(a, b, ...)``: the first item, replaced by each later one that is smaller."""
        pad, inner = INDENT * depth, INDENT * (depth + 1)
        kind = self.etype(call)
        if kind not in SCALARS:
            raise self.no(call, "min/max of arrays", "call it on numbers")
        temp = self.fresh("m")
        items = [self.expr(a) for a in call.args]
        lines = [f"{pad}{{", f"{inner}{C_TYPE[kind]} {temp} = {items[0]};"]  # type: ignore[index]
        for item in items[1:]:
            lines.append(f"{inner}if ({item} {'<' if is_min else '>'} {temp}) {temp} = {item};")
        lines += [f"{inner}{self.cname(target.id)} = {temp};", f"{pad}}}"]
        return [*lines, *self.guard(depth)]

    def return_(self: Any, node: ast.Return, depth: int) -> list[str]:
        pad = INDENT * depth
        value = node.value
        items = value.elts if isinstance(value, ast.Tuple) else [value]
        if len(items) != len(self.outputs) + 1 or items[0] is None:
            raise self.no(node, "this return", "return one number")
        lines = []
        for out, item in zip(self.outputs, items[1:], strict=True):
            lines.append(f"{pad}{out} = {self.expr(item)};")  # type: ignore[arg-type]
        text = self.expr(items[0])  # type: ignore[arg-type]
        if self.checked:
            lines = [f"{pad}{{", f"{pad}{INDENT}double fm_value = {text};"] + [
                INDENT + line for line in lines
            ]
            self.checked = True
            lines += self.guard(depth + 1) + [f"{pad}{INDENT}return fm_value;", f"{pad}}}"]
            return lines
        return [*lines, f"{pad}return {text};"]
