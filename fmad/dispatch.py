"""The public function's fast path for numbers: the all-scalar variant's body behind a type
guard (:func:`dispatcher`), compiled by :mod:`fmad.lazy` at its first use.

After it: a function whose calls with float ``wrt`` arguments run the variant's own code and
return ``(value, {"w": dv_dw, ...})`` directly; any other call (arrays, Variables, other
kinds) goes to the general path, which picks or makes the right variant.
"""

from __future__ import annotations

import ast
import types
from typing import Any

import numpy as np

from fmad import build as B
from fmad import floats, trace
from fmad.compile import compile_unit, relocate
from fmad.transform import Unit
from fmad.variable import Variable


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
