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

import numpy as np

from fmad.transform import Unit

_counter = itertools.count(1)


def compile_unit(
    unit: Unit,
    done: dict[int, types.FunctionType],
    line_maps: dict[str, tuple[str, LineMap]],
) -> types.FunctionType:
    """Compile ``unit`` (and, first, every helper unit it calls)."""
    if id(unit) in done:
        return done[id(unit)]
    text = unit.printed()
    generated = ast.parse(text).body[0]
    filename = f"<fmad:{unit.tree.name}#{next(_counter)}>"
    line_maps[filename] = (unit.filename, LineMap(generated, unit.tree))

    original = unit.function
    outer = list(original.__code__.co_freevars)
    injected = [n for n in unit.injected if n not in outer]
    factory = ast.FunctionDef(
        name="__fmad_factory__",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=n) for n in outer + injected],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[generated, ast.Return(value=ast.Name(id=generated.name, ctx=ast.Load()))],
        decorator_list=[],
        returns=None,
        type_params=[],
    )
    module = ast.Module(body=[factory], type_ignores=[])
    # only the factory's own few nodes lack a location (the rest was just parsed)
    for node in (
        factory,
        factory.args,
        *factory.args.args,
        factory.body[-1],
        factory.body[-1].value,
    ):
        node.lineno = node.end_lineno = 1
        node.col_offset = node.end_col_offset = 0
    code = compile(module, filename, "exec")
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
                value = compile_unit(value, done, line_maps)
            closure.append(types.CellType(value))
    fn = types.FunctionType(
        inner, original.__globals__, generated.name, original.__defaults__, tuple(closure)
    )
    fn.__kwdefaults__ = dict(original.__kwdefaults__) if original.__kwdefaults__ else None
    fn.__qualname__ = f"{original.__qualname__}[fmad]"
    fn.__module__ = original.__module__
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    done[id(unit)] = fn
    return fn


class LineMap:
    """Generated line -> user's line, by walking the reparsed and the original tree together
    (printing and parsing keep the shape of the tree). Built only when an error needs it."""

    def __init__(self, generated: ast.AST, tree: ast.AST) -> None:
        self.trees: tuple[ast.AST, ast.AST] | None = (generated, tree)
        self.mapping: dict[int, int] = {}

    def get(self, line: int) -> int | None:
        if self.trees is not None:
            generated, tree = self.trees
            for g, t in zip(ast.walk(generated), ast.walk(tree), strict=False):
                if isinstance(g, ast.stmt) and hasattr(t, "lineno"):
                    self.mapping.setdefault(g.lineno, t.lineno)
            self.trees = None
        return self.mapping.get(line)


def dispatcher(transformed: Any, variant: Any) -> types.FunctionType:
    """The public function: the all-scalar variant's body behind a type guard.

    ``def f(X, y, w, b): if type(w) is float and type(b) is float: <body>`` then
    ``return general(X, y, w, b)``. In the body, each ``return v, grads`` first checks that
    ``v`` is a plain float (else the gradients are shaped, or Variables unwrapped, by
    ``finish``), and a numpy shape error is reported at the user's line.
    """

    from fmad import build as B

    unit = variant.unit
    tree: ast.FunctionDef = ast.parse(unit.printed()).body[0]  # a fresh copy, fast
    public = Unit(
        unit.function,
        unit.filename,
        unit.namer,
        unit.scope,
        tree=tree,
        injected=dict(unit.injected),
    )
    general = public.inject(transformed.call, "fmad_general")
    finish = public.inject(transformed.finish, "fmad_finish")
    check = public.inject(transformed.check_shape, "fmad_check_shape")
    type_ = public.inject(type, "fmad_type")
    float_ = public.inject(float, "fmad_float")

    a = tree.args
    positional = [B.name(p.arg) for p in (*a.posonlyargs, *a.args)]
    if a.vararg:
        positional.append(ast.Starred(value=B.name(a.vararg.arg), ctx=ast.Load()))
    keywords = [ast.keyword(arg=p.arg, value=B.name(p.arg)) for p in a.kwonlyargs]
    if a.kwarg:
        keywords.append(ast.keyword(arg=None, value=B.name(a.kwarg.arg)))
    kw_dict = ast.Dict(
        keys=[ast.Constant(k.arg) if k.arg else None for k in keywords],
        values=[k.value for k in keywords],
    )

    def is_float(node: ast.expr) -> ast.expr:
        return ast.Compare(
            left=B.call(B.name(type_), node), ops=[ast.Is()], comparators=[B.name(float_)]
        )

    class Returns(ast.NodeTransformer):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            return node  # nested helpers keep their own returns

        def visit_Return(self, node: ast.Return) -> list[ast.stmt]:
            value, grads = node.value.elts
            slow = B.call(B.name(finish), value, grads, B.tuple_(positional), kw_dict)
            return [ast.If(test=is_float(value), body=[node], orelse=[]), ast.Return(value=slow)]

    body = [Returns().visit(s) for s in tree.body]
    body = [s for item in body for s in (item if isinstance(item, list) else [item])]
    handler = ast.ExceptHandler(
        type=B.name("ValueError"),
        name="fmad_error",
        body=[ast.Expr(value=B.call(B.name(check), B.name("fmad_error"))), ast.Raise()],
    )
    guarded = ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[])
    params = set(B.stored_names(ast.Tuple(elts=positional, ctx=ast.Load()))) | {
        p.arg for p in a.kwonlyargs
    }
    tests = [is_float(B.name(w)) for w in transformed.wrt if w in params]
    if transformed.bundles:  # array data: the bundled variant serves it better
        ndarray = public.inject(np.ndarray, "fmad_ndarray")
        for name in sorted(params - set(transformed.wrt)):
            is_array = ast.Compare(
                left=B.call(B.name(type_), B.name(name)),
                ops=[ast.IsNot()],
                comparators=[B.name(ndarray)],
            )
            tests.append(is_array)
    if variant.watched:  # a called function rebound since the transform: take the slow path
        tests.append(B.call(B.name(public.inject(variant.current, "fmad_current"))))
    guard = (
        ast.BoolOp(op=ast.And(), values=tests)
        if len(tests) > 1
        else (tests[0] if tests else ast.Constant(True))
    )
    fallback = ast.Return(value=ast.Call(func=B.name(general), args=positional, keywords=keywords))
    tree.body = [ast.If(test=guard, body=[guarded], orelse=[]), fallback]
    return compile_unit(public, {}, variant.line_maps)
