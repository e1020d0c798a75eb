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

import numpy as np

from fmad import build as B
from fmad import columns, floats, inplace, liveness, trace
from fmad.errors import FmadError
from fmad.naming import names_in
from fmad.source import read_function
from fmad.transform import Unit
from fmad.variable import Variable

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
    # the code that runs frees each value after its last use; the readable code does not
    text = liveness.freed(unit.printed()) if free and not readable else unit.printed()
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
    relocate(generated, unit.tree, linecache.getlines(unit.filename))
    if free:  # large arrays computed into buffers no one else sees (fmad.inplace)
        inplace.apply(generated, functools.partial(free_object, unit), unit.inject)
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
        relocate(marked, unit.tree, [], mark=True)
        if free:
            inplace.apply(marked, functools.partial(free_object, unit), unit.inject)
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
        if isinstance(node, ast.stmt | ast.excepthandler):
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
        same = twin is not None and type(twin) is type(node)
        for field_name in node._fields:
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


def failed(exc: Exception, args: tuple, kwargs: dict) -> bool:
    """The public function's fast path raised ``exc``: True when Variables were passed as
    data (the general path unwraps them: take it), else False once :func:`fmad.trace.check`
    has looked at it (re-raise it)."""
    if any(isinstance(a, Variable) for a in (*args, *kwargs.values())):
        return True
    trace.check(exc)
    return False


def public_unit(transformed: Any, variant: Any) -> tuple[Unit, dict[str, str]]:
    """The unit of the public function (see :func:`dispatcher`) before its tree: the
    variant's, with the objects the dispatcher reads injected, and their names by role
    (``general``, ``finish``... ``pin <parameter>``)."""
    unit = variant.unit
    public = Unit(
        unit.function,
        unit.filename,
        unit.namer,
        unit.scope,
        flat=unit.flat,
        injected=dict(unit.injected),
        children=unit.children,
    )
    names = {
        "general": public.inject(transformed.call, "fmad_general"),
        "finish": public.inject(transformed.finish, "fmad_finish"),
        "check": public.inject(failed, "fmad_check"),
        "exception": public.inject(Exception, "fmad_exception"),
        "type": public.inject(type, "fmad_type"),
        "float": public.inject(float, "fmad_float"),
    }
    if transformed.bundles:
        names["ndarray"] = public.inject(np.ndarray, "fmad_ndarray")
    for name, pin in variant.spec.functions:  # the function or class it was made for
        obj, hint = (pin.obj, f"fmad_{name}") if pin.kind == "is" else (pin.matches, "fmad_matches")
        names[f"pin {name}"] = public.inject(obj, hint)
    if variant.watched:
        names["current"] = public.inject(variant.current, "fmad_current")
    return public, names


def call_arguments(a: ast.arguments) -> tuple[list[ast.expr], list[ast.keyword]]:
    """The arguments that pass a function's own parameters on: ``(x, *args, k=k, **kw)``."""
    positional: list[ast.expr] = [B.name(p.arg) for p in (*a.posonlyargs, *a.args)]
    if a.vararg:
        positional.append(ast.Starred(value=B.name(a.vararg.arg), ctx=ast.Load()))
    keywords = [ast.keyword(arg=p.arg, value=B.name(p.arg)) for p in a.kwonlyargs]
    if a.kwarg:
        keywords.append(ast.keyword(arg=None, value=B.name(a.kwarg.arg)))
    return positional, keywords


def guard(transformed: Any, variant: Any, names: dict[str, str], a: ast.arguments) -> ast.expr:
    """The test of the public function's fast path: every ``wrt`` argument a float (with
    bundles, no array data), the pinned functions and classes, no rebound global."""

    def is_float(node: ast.expr) -> ast.expr:
        return ast.Compare(
            left=B.call(B.name(names["type"]), node),
            ops=[ast.Is()],
            comparators=[B.name(names["float"])],
        )

    positional, _ = call_arguments(a)
    params = set(B.stored_names(ast.Tuple(elts=positional, ctx=ast.Load()))) | {
        p.arg for p in a.kwonlyargs
    }
    tests = [is_float(B.name(w)) for w in transformed.wrt if w in params]
    if transformed.bundles:  # array data: the bundled variant serves it better
        for name in sorted(params - set(transformed.wrt)):
            is_array = ast.Compare(
                left=B.call(B.name(names["type"]), B.name(name)),
                ops=[ast.IsNot()],
                comparators=[B.name(names["ndarray"])],
            )
            tests.append(is_array)
    for name, pin in variant.spec.functions:  # the function or class it was made for
        obj = B.name(names[f"pin {name}"])
        if pin.kind == "is":
            tests.append(ast.Compare(left=B.name(name), ops=[ast.Is()], comparators=[obj]))
        else:
            tests.append(B.call(obj, B.name(name)))
    if variant.watched:  # a called function rebound since the transform: take the slow path
        tests.append(B.call(B.name(names["current"])))
    if len(tests) > 1:
        return ast.BoolOp(op=ast.And(), values=tests)
    return tests[0] if tests else ast.Constant(True)


def mentions(names: list[str]) -> ast.stmt:
    """``if 0: (a, b, ...)``: code that never runs but makes each name a free variable of
    the function (see :mod:`fmad.lazy`)."""
    read = ast.Expr(value=ast.Tuple(elts=[B.name(n) for n in names], ctx=ast.Load()))
    return ast.If(test=ast.Constant(0), body=[read], orelse=[])


def dispatcher(
    transformed: Any,
    variant: Any,
    prepared: tuple | None = None,
    every: list[str] = (),
    lean: bool = False,
    finish: str = "finish",
) -> types.FunctionType:
    """The public function: the all-scalar variant's body behind a type guard.

    ``def f(X, y, w, b): if type(w) is float and type(b) is float: <body>`` then
    ``return general(X, y, w, b)``. In the body, each ``return v, dv_dw, dv_db`` becomes
    ``return v, {"w": dv_dw, "b": dv_db}`` when ``v`` is a plain float (else the gradients
    are shaped, or Variables unwrapped, by ``finish``). An exception is checked by
    :func:`fmad.trace.check` (fmad's own bug, or a shape error at the user's line) before it
    propagates, unless Variables were passed as data: the general path unwraps them.
    ``prepared``: the :func:`public_unit` to build on; ``every``: names the code mentions
    (:func:`mentions`), so that they are all its free variables; ``lean`` (code that
    computes numbers from numbers): no freeing, no computing in place (see
    :mod:`fmad.lazy`); ``finish``: the role of the function a result that is not a plain
    float goes to (``upgrade`` from the lean dispatcher).
    """
    unit = variant.unit
    public, names = prepared or public_unit(transformed, variant)
    tree: ast.FunctionDef = ast.parse(unit.printed()).body[0]  # a fresh copy, fast
    relocate(tree, unit.tree, [])  # the user's line numbers
    public.tree, public.text = tree, None
    positional, keywords = call_arguments(tree.args)
    kw_dict = ast.Dict(
        keys=[ast.Constant(k.arg) if k.arg else None for k in keywords],
        values=[k.value for k in keywords],
    )
    sure = floats.float_returns(tree, set(transformed.wrt))  # no test of their type

    class Returns(ast.NodeTransformer):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            return node  # nested helpers keep their own returns

        def visit_Return(self, node: ast.Return) -> list[ast.stmt]:
            value, *tangents = node.value.elts
            keys = [ast.Constant(name) for name in transformed.wrt]
            grads = ast.Dict(keys=keys, values=tangents)
            fast = ast.Return(value=B.tuple_([value, grads]))
            if id(node) in sure:
                return [fast]
            slow = B.call(
                B.name(names[finish]), value, B.tuple_(tangents), B.tuple_(positional), kw_dict
            )
            is_float = ast.Compare(
                left=B.call(B.name(names["type"]), value),
                ops=[ast.Is()],
                comparators=[B.name(names["float"])],
            )
            return [ast.If(test=is_float, body=[fast], orelse=[]), ast.Return(value=slow)]

    body = [Returns().visit(s) for s in tree.body]
    body = [s for item in body for s in (item if isinstance(item, list) else [item])]
    failed = B.call(B.name(names["check"]), B.name("fmad_error"), B.tuple_(positional), kw_dict)
    general = ast.Call(func=B.name(names["general"]), args=positional, keywords=keywords)
    handler = ast.ExceptHandler(
        type=B.name(names["exception"]),
        name="fmad_error",
        body=[ast.If(test=failed, body=[ast.Return(value=general)], orelse=[]), ast.Raise()],
    )
    guarded = ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[])
    test = guard(transformed, variant, names, tree.args)
    tree.body = [ast.If(test=test, body=[guarded], orelse=[]), ast.Return(value=general)]
    if every:
        tree.body.append(mentions(every))
    # with bundles, array data never takes this path: no freeing to analyse
    return compile_unit(public, {}, free=not transformed.bundles and not lean)


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
