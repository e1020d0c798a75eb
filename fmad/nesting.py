"""Calls to differentiated functions inside a differentiated function (nesting).

``v, g = d_inner(x, 1.0)`` calls a function that ``fmad.differentiate`` made: it returns the
value and a dict of gradients, and the gradients are ordinary values of the outer function
(a gradient-norm penalty ``g["w"] ** 2``). After this pass, on the flattened function, such
a call calls the inner function's *first-order code* (readable, see
``fmad.api.Transformed.nested_function``), which returns one flat tuple, and each gradient
is a variable of its own::

    d_inner_x_1p0 = d_inner_grad(x, 1.0)
    v, g_y = d_inner_x_1p0
    t = g_y                             # was: t = g['y']

The outer transform then differentiates that code like any helper. Its tangents are
variables distinct from the inner code's (``dg_y_dx`` is not ``g_y``), so the inner
derivative is a value the outer one differentiates, never mixed with it: no perturbation
confusion. Uses this pass cannot follow by name (``g`` passed on, iterated, or reassigned)
are refused.
"""

from __future__ import annotations

import ast
import types
from typing import Any

from fmad import build as B
from fmad.errors import unsupported
from fmad.naming import Namer
from fmad.resolve import Scope

USE = (
    "use its result as 'value, grads = {name}(...)' and each gradient as grads['w'] (a "
    "constant name of its wrt)"
)


def differentiated(scope: Scope, call: ast.Call) -> Any:
    """The ``Transformed`` behind the function ``call`` calls, if fmad made it."""
    obj = scope.lookup(call.func)
    return getattr(obj, "__fmad__", None) if callable(obj) else None


def rewrite(flat: ast.FunctionDef, scope: Scope, namer: Namer, filename: str) -> None:
    """Rewrite every call to a differentiated function in ``flat`` (see the module)."""
    for body in B.blocks(flat.body):
        for s in body:
            if (
                isinstance(s, ast.Assign)
                and isinstance(s.targets[0], ast.Name)
                and isinstance(s.value, ast.Call)
            ):
                transformed = differentiated(scope, s.value)
                if transformed is not None:
                    Nesting(flat, scope, namer, filename).call(s, transformed)


class Nesting:
    def __init__(self, flat: ast.FunctionDef, scope: Scope, namer: Namer, filename: str) -> None:
        self.flat, self.scope, self.namer, self.filename = flat, scope, namer, filename

    def refuse(self, node: ast.AST, message: str) -> None:
        raise unsupported(self.filename, node, message)

    def uses(self, name: str) -> list[ast.stmt]:
        """The statements that read ``name`` themselves (a compound statement in its header;
        a nested ``def`` anywhere in it)."""
        return [s for s in B.statements(self.flat.body) if name in own_reads(s)]

    def bindings(self, name: str) -> int:
        return B.names(self.flat, ast.Store).count(name)

    def call(self, s: ast.Assign, transformed: Any) -> None:
        label = ast.unparse(s.value.func)
        if isinstance(getattr(transformed.function, "__wrapped__", None), types.MethodType):
            self.refuse(
                s,
                f"'{label}' differentiates a bound method; calling it inside a differentiated "
                "function is not supported: differentiate the plain function instead",
            )
        result = s.targets[0].id
        unpack = self.uses(result)
        if (
            self.bindings(result) != 1
            or len(unpack) != 1
            or not isinstance(unpack[0], ast.Assign)
            or not isinstance(unpack[0].value, ast.Name)
            or not isinstance(unpack[0].targets[0], ast.Tuple)
            or len(unpack[0].targets[0].elts) != 2
            or not all(isinstance(e, ast.Name) for e in unpack[0].targets[0].elts)
        ):
            self.refuse(
                s,
                f"'{label}' is a function fmad.differentiate made; inside a differentiated "
                f"function, {USE.format(name=label)}",
            )
        # the readable first-order code, reached under a name of this function's own
        name = self.namer.fresh(f"{label.split('.')[-1]}_grad")
        self.scope.injected[name] = transformed.nested_function()
        s.value.func = B.name(name)
        value, grads = unpack[0].targets[0].elts
        if self.bindings(grads.id) != 1:
            self.refuse(
                unpack[0],
                f"'{grads.id}' holds the gradients of '{label}' and is assigned again; give "
                "the gradients a name of their own",
            )
        wrt = transformed.wrt
        names = {w: self.namer.fresh(f"{grads.id}_{w}") for w in wrt}
        unpack[0].targets[0].elts = [value, *(B.store(n) for n in names.values())]
        self.gradients(grads.id, names, label)

    def gradients(self, grads: str, names: dict[str, str], label: str) -> None:
        """Each ``t = grads['w']`` becomes ``t = grads_w``; any other use is refused."""
        for use in self.uses(grads):
            value = use.value if isinstance(use, ast.Assign) else None
            index = value.slice if isinstance(value, ast.Subscript) else None
            if (
                not isinstance(value, ast.Subscript)
                or not isinstance(use.value.value, ast.Name)
                or use.value.value.id != grads
                or not isinstance(index, ast.Constant)
                or index.value not in names
            ):
                self.refuse(
                    use,
                    f"'{grads}' holds the gradients of '{label}' (a dict by wrt name: "
                    f"{', '.join(names)}); fmad follows them by name only: read them as "
                    f"{grads}['{next(iter(names))}']",
                )
            use.value = B.name(names[index.value])


def own_reads(s: ast.stmt) -> list[str]:
    """The names a statement reads itself, not in the blocks it contains."""
    if isinstance(s, ast.If | ast.While):
        return B.names(s.test, ast.Load)
    if isinstance(s, ast.For):
        return B.names(s.iter, ast.Load)
    if isinstance(s, ast.FunctionDef):
        return B.names(s)
    return B.names(s, ast.Load)
