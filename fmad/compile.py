"""Compile generated trees into functions.

After this pass: a function object per unit, whose code was compiled from the printed source
(so what ``show`` prints is exactly what runs), with the original function's globals (the
same dict: globals are read at call time, never copied) and closure cells (shared with the
original), plus cells for the names the transform injected (numpy, helpers).

The code carries the user's file name and, for each generated statement, the line of the
user's statement it comes from: tracebacks and numpy's warnings point at the user's line.
:mod:`fmad.trace` keeps the printed text of each code object (also in ``linecache`` under
``<fmad:NAME#N>``) to tell, when an exception escapes, whether the user's operation or
fmad's own line raised it.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import functools
import itertools
import linecache
import types
from collections.abc import Mapping
from typing import Any

from fmad import build as B
from fmad import coalesce, columns, liveness, reverse_inplace, trace
from fmad.errors import FmadError
from fmad.naming import names_in
from fmad.printer import to_source
from fmad.source import read_function
from fmad.transform import Unit

_counter = itertools.count(1)


def compile_unit(
    unit: Unit,
    done: dict[int, types.FunctionType],
    readable: bool = False,
    free: bool = True,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> types.FunctionType:
    """Compile ``unit`` (and, first, every helper unit it calls).

    ``readable``: compiled under the printed text's own name and lines instead of the
    user's, so that ``inspect`` finds the generated source and fmad can transform the
    function again (second derivatives); its ``__fmad_tangents__`` names its tangents.
    ``free`` (not readable): each value freed after its last use (:mod:`fmad.liveness`);
    False where no large array can reach the code (it saves the analysis).
    ``shapes``: the shapes of the array parameters the variant was made for, where known
    (:mod:`fmad.columns` reads them).
    """
    if id(unit) in done:
        return done[id(unit)]
    # the code that runs has its copies coalesced and frees each value after its last use;
    # the readable code does neither
    if readable:
        text, twin_tree = unit.printed(), unit.tree
    else:
        text, twin_tree = running_source(unit)
        if free:
            text = liveness.freed(text)
    generated = ast.parse(text).body[0]
    fmad_name = f"<fmad:{unit.tree.name}#{next(_counter)}>"
    linecache.cache[fmad_name] = (len(text), None, text.splitlines(True), fmad_name)

    original = unit.function
    outer = list(original.__code__.co_freevars)
    if readable:
        factory_args = outer + [n for n in unit.injected if n not in outer]
        code = compile(factory_module(generated, factory_args), fmad_name, "exec")
        return finish_function(unit, done, code, generated, readable)

    # tracebacks and numpy's warnings name the user's file and line
    relocate(generated, twin_tree, linecache.getlines(unit.filename))
    if free:  # large arrays computed into buffers no one else sees (fmad.inplace)
        reverse_inplace.both(generated, unit, free_object)
    columns.apply(generated, shapes, unit.inject)  # X @ w with w of shape (1,)
    factory_args = outer + [n for n in unit.injected if n not in outer]
    code = compile(factory_module(generated, factory_args), unit.filename, "exec")
    factory_index, factory_code = next(
        (i, c) for i, c in enumerate(code.co_consts) if isinstance(c, types.CodeType)
    )
    inner_index, inner = next(
        (i, c)
        for i, c in enumerate(factory_code.co_consts)
        if isinstance(c, types.CodeType) and c.co_name == generated.name
    )

    @functools.cache  # read only when an exception escapes the code
    def user_names() -> set[str]:
        return trace.user_names_of(unit.flat_trees())

    def twin() -> types.CodeType:
        # The same code, its columns holding the generated lines. The lines stay the user's:
        # they decide which instructions the compiler fuses (3.13), so the bytecode is equal.
        marked = ast.parse(text).body[0]
        relocate(marked, twin_tree, [], mark=True)
        if free:
            reverse_inplace.both(marked, unit, free_object)
        columns.apply(marked, shapes, unit.inject)
        return compile(factory_module(marked, factory_args), fmad_name, "exec")

    def source_names() -> set[str]:
        return names_in(read_function(original).tree) if unit.parent is None else user_names()

    def origin_for(path: tuple[int, ...]) -> trace.Origin:
        return trace.Origin(
            text, twin, (factory_index, inner_index, *path), user_names, source_names
        )

    trace.register(inner, origin_for)
    return finish_function(unit, done, code, generated, readable)


def running_source(
    unit: Unit, printer: str = "ast", comments: bool = True
) -> tuple[str, ast.FunctionDef]:
    """The source of the code that runs for ``unit`` before its ``del`` lines (its copies
    coalesced, :mod:`fmad.coalesce`), and the tree it prints."""
    tree = coalesce.coalesced(unit.tree, lambda: trace.user_names_of(unit.flat_trees()))
    if tree is None and printer == "ast" and comments:
        return unit.printed(), unit.tree
    tree = unit.tree if tree is None else tree
    return to_source(tree, printer, linecache.getlines(unit.filename) if comments else None), tree


def free_object(unit: Unit, name: str) -> Any:
    """The object the free name ``name`` of ``unit``'s code refers to (None: unknown)."""
    while unit.parent is not None:
        unit = unit.parent
    if name in unit.injected:
        return unit.injected[name]
    original = unit.function
    cells = dict(zip(original.__code__.co_freevars, original.__closure__ or (), strict=True))
    if name in cells:
        try:
            return cells[name].cell_contents
        except ValueError:  # an empty cell
            return None
    if name in original.__globals__:
        return original.__globals__[name]
    return getattr(builtins, name, None)


def finish_function(
    unit: Unit, done: dict, code: types.CodeType, generated: ast.FunctionDef, readable: bool
) -> types.FunctionType:
    """The function object of the generated code: the original's globals, its closure cells
    and cells for what the transform injected."""
    original = unit.function
    outer = list(original.__code__.co_freevars)
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(
        c
        for c in factory_code.co_consts
        if isinstance(c, types.CodeType) and c.co_name == generated.name
    )
    cells = dict(zip(outer, original.__closure__ or (), strict=True))
    closure = []
    for name in inner.co_freevars:
        if name in cells:
            closure.append(cells[name])
        else:
            value: Any = unit.injected[name]
            if isinstance(value, Unit):
                value = compile_unit(value, done, readable)
            closure.append(types.CellType(value))
    fn = types.FunctionType(
        inner, original.__globals__, generated.name, original.__defaults__, tuple(closure)
    )
    fn.__kwdefaults__ = dict(original.__kwdefaults__) if original.__kwdefaults__ else None
    fn.__qualname__ = f"{original.__qualname__}[fmad]"
    fn.__module__ = original.__module__
    if readable:
        fn.__fmad_tangents__ = unit.tangents
    done[id(unit)] = fn
    return fn


def factory_module(generated: ast.FunctionDef, args: list[str]) -> ast.Module:
    """``def __fmad_factory__(<closure names>): <generated>; return <generated's name>``:
    the generated function's free names become closure cells, as in the original."""
    factory = ast.FunctionDef(
        name="__fmad_factory__",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=n) for n in args],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[generated, ast.Return(value=ast.Name(id=generated.name, ctx=ast.Load()))],
        decorator_list=[],
        returns=None,
        type_params=[],
    )
    # only the factory's own few nodes lack a location
    line = generated.lineno
    for node in (
        factory,
        factory.args,
        *factory.args.args,
        factory.body[-1],
        factory.body[-1].value,
    ):
        node.lineno = node.end_lineno = line
        node.col_offset = node.end_col_offset = 0
    return ast.Module(body=[factory], type_ignores=[])


STATEMENTS: dict[type, bool] = {}  # node class -> a statement (or an except clause)


def relocate(
    generated: ast.AST,
    tree: ast.AST | None,
    lines: list[str],
    line: int = 0,
    mark: bool = False,
) -> None:
    """Give each statement of ``generated`` (``tree`` printed and parsed again: the same
    statements) the user's line of its counterpart in ``tree``, and every expression in it
    that line too. Statements fmad made without a line take their parent's. Columns span
    the user's line, or, with ``mark``, hold the node's own generated line (for
    :mod:`fmad.trace`)."""
    columns: dict[int, tuple[int, int]] = {}  # line -> its span, computed once

    def visit(node: ast.AST, twin: ast.AST | None, line: int) -> None:
        kind = type(node)
        statement = STATEMENTS.get(kind)
        if statement is None:
            statement = STATEMENTS[kind] = issubclass(kind, ast.stmt | ast.excepthandler)
        if statement:
            line = getattr(twin, "lineno", None) or line
        if node._attributes:  # parsed: it has a location
            if mark:
                node.col_offset = node.end_col_offset = node.lineno
            else:
                span = columns.get(line)
                if span is None:
                    text = lines[line - 1] if 0 < line <= len(lines) else ""
                    span = columns[line] = (len(text) - len(text.lstrip()), len(text.rstrip()))
                node.col_offset, node.end_col_offset = span
            node.lineno = node.end_lineno = line
        same = twin is not None and type(twin) is kind
        for field_name, _ in B.child_fields(kind):  # contexts and operators have no location
            value = getattr(node, field_name, None)
            other = getattr(twin, field_name, None) if same else None
            if isinstance(value, list):
                others = other if isinstance(other, list) else []
                i = 0
                previous = line
                for item in value:
                    if not isinstance(item, ast.AST):
                        i += 1  # a None key of a dict display keeps its place
                        continue
                    twin_item = others[i] if i < len(others) else None
                    if isinstance(item, ast.Delete) and not isinstance(twin_item, ast.Delete):
                        # a del line of fmad.liveness: the line of the statement before it
                        visit(item, None, previous)
                        continue
                    i += 1
                    visit(item, twin_item, line)
                    previous = getattr(item, "lineno", line)
            elif isinstance(value, ast.AST):
                visit(value, other if isinstance(other, ast.AST) else None, line)

    visit(generated, tree, line)


def readable_for_numbers(unit: Unit, params: list[str], original: types.FunctionType):
    """The first-order code of ``unit`` (the variant for numbers), readable, behind a guard
    that refuses arrays for ``params``: what a call of the differentiated function inside
    another one runs (see :mod:`fmad.nesting`)."""
    tree = copy.copy(unit.tree)
    error = unit.inject(FmadError, "fmad_error")
    ndim = ast.Attribute(value=unit.module("numpy"), attr="ndim", ctx=ast.Load())
    tests = [
        ast.Compare(left=B.call(ndim, B.name(p)), ops=[ast.NotEq()], comparators=[ast.Constant(0)])
        for p in params
    ]
    code = original.__code__
    message = (
        f"{code.co_filename}:{code.co_firstlineno}: '{original.__name__}' is called inside a "
        f"differentiated function with an array for one of {', '.join(params)}; there it "
        "takes numbers only: differentiate the plain function inside instead"
    )
    raise_error = ast.Raise(exc=B.call(B.name(error), ast.Constant(message)), cause=None)
    if tests:
        test = ast.BoolOp(op=ast.Or(), values=tests) if len(tests) > 1 else tests[0]
        tree.body = [ast.If(test=test, body=[raise_error], orelse=[]), *tree.body]
    ast.fix_missing_locations(tree)
    return compile_unit(dataclasses.replace(unit, tree=tree, text=None), {}, readable=True)
