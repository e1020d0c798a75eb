"""The public function of reverse mode for calls with numbers: the variant for Python floats
behind a type guard, so such a call costs about what its generated code costs.

``def f(X, y, w, b): if type(X) is float and ... and type(b) is float: <the variant for
floats>`` then ``return general(X, y, w, b)`` (the wrapper: any other call). It is made
only where it serves: a function whose parameters are all positional, whose variant for
floats (:mod:`fmad.reverse_shapes`) ends with its one ``return``, calls no runtime helper
(``fmad_rev``, ``fmad_forms``...: nothing there can refuse at run time) and returns a
Python float value and Python float gradients (known from the walk): it returns
``(value, {"w": dw, ...})`` directly. An exception is checked by
:func:`fmad.trace.check` (fmad's own bug, or an error at the user's line) before it
propagates, as in forward mode. If a global the code was made from is rebound, the guard
fails from then on and the wrapper builds the code again.
"""

from __future__ import annotations

import ast
import copy
import inspect
import types
from collections.abc import Callable
from typing import Any

from fmad import build as B
from fmad import reverse_shapes, trace
from fmad import runtime_reverse as fmad_rev
from fmad.compile import compile_unit
from fmad.resolve import still_bound

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def is_runtime(obj: Any) -> bool:
    return obj is fmad_rev or (
        isinstance(obj, types.ModuleType) and obj.__name__.startswith("fmad.runtime")
    )


def numbers_function(reverse: Any, general: Callable[..., Any]) -> types.FunctionType | None:
    """The public function with the fast path for floats, or None where it would not serve
    (see the module's docstring). ``reverse``: the :class:`~fmad.reverse_api.ReverseFunction`;
    ``general``: what every other call runs."""
    parameters = inspect.signature(reverse.original).parameters.values()
    if not parameters or any(p.kind not in POSITIONAL for p in parameters):
        return None
    names = [p.name for p in parameters]
    floats = dict.fromkeys(names, ("float", ()))
    unit, walker = reverse_shapes.specialized(reverse.inlined, floats)
    body = unit.tree.body
    ret = body[-1]
    # fmad's runtime helpers (fmad_rev, fmad_forms...) may refuse when the code runs
    rev = {n for n, v in unit.injected.items() if is_runtime(v)}
    if (
        not isinstance(ret, ast.Return)
        or not isinstance(ret.value, ast.Tuple)
        or any(isinstance(n, ast.Return) for s in body[:-1] for n in ast.walk(s))
        or any(isinstance(n, ast.Name) and n.id in rev for n in ast.walk(unit.tree))
        or any(walker.info_of(e) != ("float", ()) for e in ret.value.elts)
    ):
        return None
    value, *grads = ret.value.elts
    keys = [ast.Constant(w) for w in reverse.wrt]
    done = ast.Return(value=B.tuple_([value, ast.Dict(keys=keys, values=grads)]))
    body[-1] = ast.copy_location(done, ret)

    def inject(obj: Any, hint: str) -> ast.Name:
        return B.name(unit.inject(obj, hint))

    handler = ast.ExceptHandler(
        type=inject(Exception, "fmad_exception"),
        name="fmad_error",
        body=[
            ast.Expr(value=B.call(inject(trace.check, "fmad_check"), B.name("fmad_error"))),
            ast.Raise(),
        ],
    )
    guarded = ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[])
    float_, type_ = inject(float, "fmad_float"), inject(type, "fmad_type")
    tests: list[ast.expr] = [
        ast.Compare(left=B.call(type_, B.name(n)), ops=[ast.Is()], comparators=[float_])
        for n in names
    ]
    watched = reverse.watched_now()
    if watched:  # a global rebound since: the slow path, which builds the code again
        tests.append(B.call(inject(lambda: still_bound(watched), "fmad_current")))
    guard = ast.BoolOp(op=ast.And(), values=tests) if len(tests) > 1 else tests[0]
    fallback = ast.Return(value=B.call(inject(general, "fmad_general"), *map(B.name, names)))
    tree = copy.copy(unit.tree)
    tree.body = [ast.If(test=guard, body=[guarded], orelse=[]), fallback]
    tree.name = reverse.original.__name__
    for node in (tree.body[0], fallback):
        ast.copy_location(node, ret)
    ast.fix_missing_locations(tree)
    unit.tree = tree
    return compile_unit(unit, {}, free=False)
