"""Compile generated trees into functions.

After this pass: a function object per unit, whose code was compiled from the printed source
(so what ``show`` prints is exactly what runs), with the original function's globals (the
same dict: globals are read at call time, never copied) and closure cells (shared with the
original), plus cells for the names the transform injected (numpy, helpers). The source is
registered with ``linecache`` so tracebacks and ``inspect`` show the generated lines, and a
line map leads from each generated line back to the user's line.
"""

from __future__ import annotations

import ast
import itertools
import linecache
import types
from typing import Any

from fmad.printer import to_source
from fmad.transform import Unit

_counter = itertools.count(1)


def compile_unit(unit: Unit, done: dict[int, types.FunctionType],
                 line_maps: dict[str, tuple[str, dict[int, int]]]) -> types.FunctionType:
    """Compile ``unit`` (and, first, every helper unit it calls)."""
    if id(unit) in done:
        return done[id(unit)]
    text = to_source(unit.tree)
    generated = ast.parse(text).body[0]
    filename = f"<fmad:{unit.tree.name}#{next(_counter)}>"
    line_maps[filename] = (unit.filename, line_map(generated, unit.tree))

    original = unit.function
    outer = list(original.__code__.co_freevars)
    injected = [n for n in unit.injected if n not in outer]
    factory = ast.FunctionDef(
        name="__fmad_factory__",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n in outer + injected],
                           kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=[generated, ast.Return(value=ast.Name(id=generated.name, ctx=ast.Load()))],
        decorator_list=[], returns=None, type_params=[],
    )
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in factory_code.co_consts
                 if isinstance(c, types.CodeType) and c.co_name == generated.name)

    cells = dict(zip(outer, original.__closure__ or (), strict=True))
    closure = []
    for name in inner.co_freevars:
        if name in cells:
            closure.append(cells[name])
        else:
            value: Any = unit.injected[name]
            if isinstance(value, Unit):
                value = compile_unit(value, done, line_maps)
            closure.append(types.CellType(value))
    fn = types.FunctionType(inner, original.__globals__, generated.name,
                            original.__defaults__, tuple(closure))
    fn.__kwdefaults__ = dict(original.__kwdefaults__) if original.__kwdefaults__ else None
    fn.__qualname__ = f"{original.__qualname__}[fmad]"
    fn.__module__ = original.__module__
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    done[id(unit)] = fn
    return fn


def line_map(generated: ast.AST, tree: ast.AST) -> dict[int, int]:
    """Generated line -> user's line, by walking the reparsed and the original tree together
    (printing and parsing keep the shape of the tree)."""
    mapping: dict[int, int] = {}
    for g, t in zip(ast.walk(generated), ast.walk(tree), strict=False):
        if isinstance(g, ast.stmt) and hasattr(t, "lineno"):
            mapping.setdefault(g.lineno, t.lineno)
    return mapping
