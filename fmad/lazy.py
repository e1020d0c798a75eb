"""The public function, its fast path compiled at its first use.

What ``fmad.differentiate`` returns is a plain function: the all-scalar variant's code
behind a type guard (:func:`fmad.dispatch.dispatcher`). Compiling that code (printing it again
with its guard, freeing values, computing in place, compiling its helpers) is a good part of
a transform, and a function only ever called with arrays never runs it. So the variant
itself is made when the function is decorated (every refusal is raised there, as before),
and the public function starts as a *stub* with the same guard:

``def f(X, y, w, b): if <guard>: return fmad_first(X, y, w, b)`` then
``return fmad_general(X, y, w, b)``.

Calls that fail the guard (arrays) take the general path at once, as the dispatcher would.
The first call that passes it compiles the dispatcher and gives the stub its code
(``__code__``), so from then on the stub *is* the dispatcher: no call in between, the same
bytecode. A function's code can only be replaced by code with the same free variables, so
the stub and the dispatcher both mention (:func:`fmad.dispatch.mentions`) every name either
may read: the original's closure variables and every injected object, in the same cells,
which the swap fills. Should the two ever differ, the stub keeps calling the dispatcher
(one call more, the same results). A lock makes the dispatcher once when two threads call
at the same time.

Code that makes numbers from numbers (:func:`arithmetic_only`: the arithmetic of its own
names, no call, no global), called with numbers, first gets a *lean* dispatcher: no freeing
and no computing in place, and no test of its data arguments (its guard tests the ``wrt``
arguments only, as the full one does). Both run the same lines, so any data gets the same
values from either; the lean one merely keeps arrays until it returns. Arithmetic on
numbers makes a number, so data other than numbers show in the result: the first result
that is not a plain float is shaped as the full dispatcher shapes it (``fmad_upgrade``), and
the full dispatcher is compiled for the calls after it, which the stub takes over the same
way (``fmad_first``, ``fmad_full``). The stub itself tests its data to be numbers, so a
first call with array data compiles the full dispatcher only.
"""

from __future__ import annotations

import ast
import threading
import types
from typing import Any

from fmad import build as B
from fmad import runtime_arrays
from fmad.compile import factory_module
from fmad.dispatch import call_arguments, dispatcher, guard, mentions, public_unit
from fmad.transform import Unit

# False: the dispatcher is compiled when the function is decorated (tests compare the two)
ENABLED = True


# the nodes of code that computes with numbers only, given numbers (fmad.lazy: no array can
# reach it, so it needs neither freeing nor computing in place)
ARITHMETIC = frozenset(
    {ast.FunctionDef, ast.arguments, ast.arg, ast.Assign, ast.Return, ast.If, ast.Pass}
    | {ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Tuple, ast.Compare, ast.BoolOp}
)


def arithmetic_only(unit: Unit) -> bool:
    """``unit`` is the arithmetic of its own parameters and local names on constants: no
    call, no subscript, no loop, no global, no helper (given numbers, it makes numbers)."""
    if unit.children or unit.injected:
        return False
    local = B.bound_names(unit.tree)
    return all(
        type(n) in ARITHMETIC and (type(n) is not ast.Name or n.id in local)
        for n in B.walk(unit.tree)
    )


def data_numbers(names: dict[str, str], transformed: Any, a: ast.arguments) -> ast.expr | None:
    """``type(X) is float or type(X) is int`` for each parameter not in ``wrt`` (None: there
    is none)."""
    params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    tests = []
    for p in params:
        if p in transformed.wrt:
            continue
        kinds = [
            ast.Compare(
                left=B.call(B.name(names["type"]), B.name(p)),
                ops=[ast.Is()],
                comparators=[B.name(names[kind])],
            )
            for kind in ("float", "int")
        ]
        tests.append(ast.BoolOp(op=ast.Or(), values=kinds))
    if not tests:
        return None
    return ast.BoolOp(op=ast.And(), values=tests) if len(tests) > 1 else tests[0]


class Lazy:
    """The stub of one public function and how it becomes the dispatcher."""

    def __init__(self, transformed: Any, variant: Any) -> None:
        self.transformed = transformed
        self.variant = variant
        self.lock = threading.Lock()
        self.target: types.FunctionType | None = None  # what the stub's fast path runs
        self.built: str | None = None  # "lean" or "full": the dispatcher the stub became
        self.builds = 0  # dispatchers compiled (tests)
        self.prepared = public_unit(transformed, variant)
        public, names = self.prepared
        names["first"] = public.inject(self.first, "fmad_first")
        names["full"] = public.inject(self.full, "fmad_full")
        names["upgrade"] = public.inject(self.upgrade, "fmad_upgrade")
        names["int"] = public.inject(int, "fmad_int")
        if not transformed.bundles:  # the dispatcher computes in place (fmad.inplace)
            public.inject(runtime_arrays, "fmad_ip")
        args = variant.unit.tree.args
        # code that makes numbers from numbers needs no freeing, no computing in place
        self.lean = (
            not transformed.bundles
            and args.vararg is None
            and args.kwarg is None
            and arithmetic_only(variant.unit)
        )
        original = variant.unit.function
        self.every = sorted(set(original.__code__.co_freevars) | set(public.injected))
        self.stub = self.make_stub(names)

    def make_stub(self, names: dict[str, str]) -> types.FunctionType:
        variant = self.variant
        generated = variant.unit.tree
        args = B.clone(generated.args)
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if a is not None:
                a.annotation = None
        args.defaults = []  # the function object holds the original's defaults
        args.kw_defaults = [None] * len(args.kwonlyargs)
        positional, keywords = call_arguments(args)
        first = ast.Call(func=B.name(names["first"]), args=positional, keywords=keywords)
        full = ast.Call(func=B.name(names["full"]), args=positional, keywords=keywords)
        general = ast.Call(func=B.name(names["general"]), args=positional, keywords=keywords)
        test = guard(self.transformed, variant, names, args)
        self.numbers = data_numbers(names, self.transformed, args) if self.lean else None
        fast: list[ast.stmt] = [ast.Return(value=first if self.lean else full)]
        if self.numbers is not None:
            fast = [ast.If(test=self.numbers, body=fast, orelse=[]), ast.Return(value=full)]
        body = [
            ast.If(test=test, body=fast, orelse=[]),
            ast.Return(value=general),
            mentions(self.every),
        ]
        stub = ast.FunctionDef(
            name=generated.name,
            args=args,
            body=body,
            decorator_list=[],
            returns=None,
            type_params=[],
        )
        line = variant.unit.flat.lineno
        for node in ast.walk(stub):
            if "lineno" in node._attributes:
                node.lineno = node.end_lineno = line
                node.col_offset = node.end_col_offset = 0
        module = factory_module(stub, self.every)
        code = compile(module, variant.unit.filename, "exec")
        factory = next(c for c in code.co_consts if isinstance(c, types.CodeType))
        inner = next(
            c for c in factory.co_consts if isinstance(c, types.CodeType) and c.co_name == stub.name
        )
        original = variant.unit.function
        cells = dict(zip(original.__code__.co_freevars, original.__closure__ or (), strict=True))
        public, _ = self.prepared
        closure = []
        for name in inner.co_freevars:
            if name in cells:
                closure.append(cells[name])
                continue
            value = public.injected[name]
            # helper variants are compiled with the dispatcher; the stub never reads them
            closure.append(types.CellType() if isinstance(value, Unit) else types.CellType(value))
        fn = types.FunctionType(
            inner, original.__globals__, stub.name, original.__defaults__, tuple(closure)
        )
        fn.__kwdefaults__ = dict(original.__kwdefaults__) if original.__kwdefaults__ else None
        fn.__qualname__ = f"{original.__qualname__}[fmad]"
        fn.__module__ = original.__module__
        return fn

    def first(self, *args: Any, **kwargs: Any) -> Any:
        """The stub's fast path where every argument is a number and the code makes numbers
        from numbers: compile the lean dispatcher (once), become it, run it."""
        return self.run("lean", args, kwargs)

    def full(self, *args: Any, **kwargs: Any) -> Any:
        """The fast path of the stub, or of the lean dispatcher, for any other arguments:
        compile the full dispatcher (once), become it, run it."""
        return self.run("full", args, kwargs)

    def upgrade(self, value: Any, tangents: tuple, args: tuple, kwargs: dict) -> Any:
        """The lean dispatcher made a result that is not a plain float (data other than
        numbers reached it): compile the full dispatcher for the next calls (once), and
        shape this result as it would (the same lines made it)."""
        with self.lock:
            if self.built == "lean":
                self.target = self.build(lean=False)
                self.built = "full"
        return self.transformed.finish(value, tangents, args, kwargs)

    def run(self, kind: str, args: tuple, kwargs: dict) -> Any:
        with self.lock:
            if self.built is None or (kind == "full" and self.built == "lean"):
                self.target = self.build(lean=kind == "lean")
                self.built = kind
            target = self.target
        return target(*args, **kwargs)

    def build(self, lean: bool) -> types.FunctionType:
        transformed, variant, prepared = self.transformed, self.variant, self.prepared
        finish = "upgrade" if lean else "finish"
        real = dispatcher(transformed, variant, prepared, self.every, lean, finish)
        self.builds += 1
        stub = self.stub
        if real.__code__.co_freevars != stub.__code__.co_freevars:
            return real  # the stub calls the dispatcher
        for mine, theirs in zip(stub.__closure__ or (), real.__closure__ or (), strict=True):
            if mine is not theirs:
                mine.cell_contents = theirs.cell_contents
        stub.__code__ = real.__code__
        stub.__defaults__ = real.__defaults__
        stub.__kwdefaults__ = real.__kwdefaults__
        return stub


def public_function(transformed: Any, variant: Any) -> types.FunctionType:
    """The public function of ``transformed`` for its all-scalar ``variant``: the stub, or
    (``ENABLED`` False) the dispatcher compiled now."""
    if not ENABLED:
        return dispatcher(transformed, variant)
    lazy = Lazy(transformed, variant)
    lazy.stub.__fmad_lazy__ = lazy
    return lazy.stub
