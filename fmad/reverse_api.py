"""The public function of reverse mode (``fmad.differentiate(fn, mode="reverse")``).

The generic unit (:mod:`fmad.reverse`) serves every shape: its adjoint statements read
shapes when they run (``fmad_rev.unbroadcast``...); it is the code ``source`` and ``show``
print. A call runs the variant of it made for the kinds and shapes of its arguments
(:mod:`fmad.reverse_shapes`: each argument's type, and for an array its shape and dtype),
made at the first call of that kind (at most ``reverse_shapes.LIMIT`` of them; further
kinds run the generic code); ``source_for(*args)`` prints it. The wrapper checks the
``wrt`` arguments (numbers and real arrays, and lists, tuples and dicts
of those, whose gradients it gives the same structure), turns the runtime's refusals into
:class:`~fmad.errors.ReverseModeError` at the user's line, and gives each gradient its
parameter's shape (a float for a number), a new array for each.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import numbers
import operator
import threading
import types
from collections.abc import Sequence
from typing import Any

import numpy as np

from fmad import reverse_kinds, reverse_shapes, trace
from fmad import runtime_forms as fmad_forms
from fmad import runtime_reverse as fmad_rev
from fmad.build import statements
from fmad.compile import compile_unit
from fmad.errors import InternalError, ReverseModeError
from fmad.printer import to_source
from fmad.resolve import still_bound
from fmad.reverse import ADVICE, reverse_unit
from fmad.reverse_calls import watched
from fmad.reverse_numbers import numbers_function
from fmad.source import python_function, read_function
from fmad.spec import normalize_wrt, refuse_variadic
from fmad.variable import Variable

SELF = ("self", "cls")
FLOAT64 = np.dtype(np.float64)
TREES = (list, tuple, dict)
NDARRAY = np.ndarray
NUMPY_FLOAT = np.float64
LOCK = threading.Lock()  # the generic unit of each function compiled once


def default_wrt(fn: types.FunctionType, wrt: Sequence[str] | str | None) -> tuple[str, ...]:
    params = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if params and params[0] in SELF:
        params = params[1:]
    return normalize_wrt(fn.__name__, params, wrt)


def bound_arguments(names: Sequence[str], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A call's arguments by parameter name (the positional ones by ``names``)."""
    params = dict(zip(names, args, strict=False))
    params.update(kwargs)
    return params


def internal(f: Any, name: str, g: Any, value: Any) -> InternalError:
    return InternalError(
        f"{f.filename}:{f.def_line}: internal error in fmad: the reverse-mode "
        f"gradient of {name!r} has shape {np.shape(g)}, its argument {np.shape(value)}. "
        "This is a bug in fmad; please report it (mode='forward' avoids it)"
    )


class ReverseFunction:
    """``fn`` differentiated in reverse mode with respect to ``wrt``."""

    def __init__(self, fn: Any, wrt: Sequence[str] | str | None = None) -> None:
        fn = python_function(fn)
        self.original = fn
        self.wrt = default_wrt(fn, wrt)
        refuse_variadic(fn, read_function(fn).tree.lineno, self.wrt)
        self.build()
        self.filename = self.unit.filename
        self.def_line = read_function(fn).tree.lineno
        self.return_line = return_line(self.unit.flat)
        signature = inspect.signature(fn)
        names = list(signature.parameters)
        self.slots = []
        for w in self.wrt:
            p = signature.parameters[w]
            index = names.index(w) if p.kind != p.KEYWORD_ONLY else None
            self.slots.append((w, index, p.default))
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.positional = [p.name for p in signature.parameters.values() if p.kind in kinds]
        indices = [index for _, index, _ in self.slots]
        # the wrt arguments of a call that passes them all by position, in one C call
        self.getter = (
            operator.itemgetter(*indices, indices[0]) if indices and None not in indices else None
        )

    def build(self) -> None:
        self.unit = reverse_unit(self.original, self.wrt)
        self._generic = None  # the generic unit compiled: see compiled
        # the variants for the arguments' kinds and shapes are made from the code with every
        # helper inlined: reverse_shapes follows values through it, not through a call
        self.inlined = self.unit
        if self.unit.helpers:
            try:
                self.inlined = reverse_unit(self.original, self.wrt, everything=True)
            except ReverseModeError:  # inlining refuses what the helpers' functions do
                pass
        # key (reverse_kinds.key_of each argument) -> the variant's compiled function; a
        # call that passes every wrt argument by position finds it in `fast`
        self.variants: dict[Any, Any] = {}
        self.fast: dict[tuple, Any] = {}
        # the globals a call was matched through (a helper inlined, a rule chosen): if one is
        # rebound later, the code is stale and is built again (as forward mode does)
        self.watched = self.watched_now()

    def watched_now(self) -> list:
        """The globals the code was made through (the helpers' functions' and the inlined
        code's too), each once: the wrapper checks them at every call."""
        every = [*watched(self.unit), *self.inlined.scope.watched()]
        return list({(id(ns), name, id(obj)): (ns, name, obj) for ns, name, obj in every}.values())

    @property
    def compiled(self) -> Any:
        """The generic unit compiled, at its first use (what runs once a function has
        ``reverse_shapes.LIMIT`` variants), once."""
        if self._generic is None:
            with LOCK:
                if self._generic is None:
                    self._generic = compile_unit(self.unit, {})
        return self._generic

    def key(self, args: tuple, kwargs: dict) -> Any:
        key = tuple([reverse_kinds.key_of(a) for a in args])
        if kwargs:
            return key, tuple([(k, reverse_kinds.key_of(v)) for k, v in kwargs.items()])
        return key

    def variant_unit(self, args: tuple, kwargs: dict):
        """The generic unit specialised to what the arguments' kinds tell (reverse_shapes)."""
        params = bound_arguments(self.positional, args, kwargs)
        infos = {
            name: reverse_kinds.info_of_key(reverse_kinds.key_of(v)) for name, v in params.items()
        }
        return reverse_shapes.specialize(self.inlined, infos)

    def variant(self, args: tuple, kwargs: dict) -> Any:
        """The compiled variant for these (checked, unwrapped) arguments, made at first use."""
        key = self.key(args, kwargs)
        function = self.variants.get(key)
        if function is None:
            if len(self.variants) >= reverse_shapes.LIMIT:
                return self.compiled
            params = bound_arguments(self.positional, args, kwargs)
            shapes = {n: v.shape for n, v in params.items() if type(v) is np.ndarray}
            function = compile_unit(self.variant_unit(args, kwargs), {}, shapes=shapes)
            self.watched = self.watched_now()  # the rules the variant looked up too
            self.variants[key] = function
            if not kwargs and self.getter is not None:
                try:
                    wrt_values = self.getter(args)
                except IndexError:  # a wrt argument left to its default
                    return function
                if not any(type(v) in TREES for v in wrt_values):
                    # a list, tuple or dict parameter: its items are checked at every call
                    self.fast[key] = function
        return function

    @property
    def source(self) -> str:
        """The helpers' forward and adjoint functions (fmad.reverse_calls), then the
        function's."""
        texts = [u.printed() for u in [*self.unit.helpers, self.unit]]
        return "\n\n".join(t.rstrip("\n") for t in texts) + "\n"

    def source_for(self, *args: Any, **kwargs: Any) -> str:
        """The code that runs for these arguments: the variant for their kinds and shapes."""
        args = tuple(a.value if isinstance(a, Variable) else a for a in args)
        kwargs = {k: v.value if isinstance(v, Variable) else v for k, v in kwargs.items()}
        return self.variant_unit(args, kwargs).printed()

    def show(self, stage: str = "reverse", printer: str = "ast", *, comments: bool = True, **_):
        units = [self.unit] if stage == "flat" else [*self.unit.helpers, self.unit]
        texts = [
            to_source(
                u.flat if stage == "flat" else u.tree,
                printer,
                linecache.getlines(u.filename) if comments else None,
            )
            for u in units
        ]
        return "\n\n".join(t.rstrip("\n") for t in texts) + "\n"

    def arguments(self, args: tuple, kwargs: dict) -> list[Any]:
        """The ``wrt`` arguments of a call, each checked."""
        values = []
        for name, index, default in self.slots:
            if index is not None and index < len(args):
                value = args[index]
            else:
                value = kwargs.get(name, default)
            kind = type(value)
            if kind is float or (kind is np.ndarray and value.dtype.kind in "iuf"):
                values.append(value)  # the common kinds, checked fast
                continue
            ok = (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)) or (
                isinstance(value, np.ndarray) and value.dtype.kind in "iuf"
            )
            ok = ok or (isinstance(value, list | tuple | dict) and fmad_forms.is_tree(value))
            if not ok:
                what = (
                    f"an array of dtype {value.dtype}"
                    if isinstance(value, np.ndarray)
                    else f"a {type(value).__name__}"
                )
                raise ReverseModeError(
                    self.filename,
                    self.def_line,
                    f"the argument of the parameter {name!r} is {what}; reverse mode "
                    "differentiates with respect to real numbers and real arrays (and lists, "
                    f"tuples and dicts of those); {ADVICE}",
                )
            values.append(value)
        return values

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if not kwargs:  # the common call: its variant found from the arguments' kinds alone
            function = self.fast.get(
                tuple([(a.shape, a.dtype.num) if type(a) is NDARRAY else type(a) for a in args])
            )
            if function is not None and (not self.watched or still_bound(self.watched)):
                try:
                    value, *grads = function(*args)
                except Exception as exc:
                    self.failed(exc)
                    raise
                return value, self.gradients(value, grads, self.getter(args))
        return self.general(args, kwargs)

    def general(self, args: tuple, kwargs: dict) -> tuple[Any, dict[str, Any]]:
        """Any call: Variables unwrapped, the wrt arguments checked, its variant made."""
        if Variable in map(type, args):
            args = tuple(a.value if isinstance(a, Variable) else a for a in args)
        if kwargs and Variable in map(type, kwargs.values()):
            kwargs = {k: v.value if isinstance(v, Variable) else v for k, v in kwargs.items()}
        values = self.arguments(args, kwargs)
        if self.watched and not still_bound(self.watched):
            self.build()
        function = self.variant(args, kwargs)
        try:
            value, *grads = function(*args, **kwargs)
        except Exception as exc:
            self.failed(exc)
            raise
        return value, self.gradients(value, grads, values)

    def failed(self, exc: Exception) -> None:
        """The generated code raised ``exc``: the runtime's refusals become
        ReverseModeErrors at the user's line, fmad's own bugs InternalErrors
        (:func:`fmad.trace.check`); the caller re-raises anything else as it is."""
        if isinstance(exc, fmad_rev.NotScalar):
            raise ReverseModeError(
                self.filename,
                self.returned_at(exc),
                f"reverse mode needs one real scalar output; '{self.original.__name__}' "
                f"returned {fmad_rev.describe(exc.value)}: use mode='forward' (it gives the "
                "whole Jacobian), or reduce the output to a scalar",
            ) from None
        if isinstance(exc, fmad_rev.Refused):
            where = trace.locate(exc)
            line = where.line if where is not None else self.def_line
            raise ReverseModeError(
                self.filename, line, f"{exc}: reverse mode does not support this yet; {ADVICE}"
            ) from None
        if exc.__traceback__.tb_next is not None:
            trace.check(exc)

    def returned_at(self, exc: fmad_rev.NotScalar) -> int:
        """The line of the ``return`` that returned ``exc.value`` (each checks its value
        where the function has several), else the last ``return``'s."""
        where = trace.locate(exc)
        return where.line if where is not None else self.return_line

    def gradients(self, value: Any, grads: list, values: Sequence[Any]) -> dict[str, Any]:
        """Each gradient in its parameter's shape (:meth:`shaped`), each array a new one
        (two gradients may be one array in the generated code: the second is copied)."""
        array = type(value) is NDARRAY or isinstance(value, np.ndarray)  # 0-d: array grads
        out = {}
        arrays: list[np.ndarray] = []
        for name, g, v in zip(self.wrt, grads, values, strict=False):
            if type(v) in TREES:
                g = self.tree(name, g, v, array)
            elif type(g) is NDARRAY:  # the common case checked fast: a new float64 array
                if type(v) is NDARRAY and g.dtype is FLOAT64 and g.shape == v.shape:
                    flags = g.flags
                    if not (flags.owndata and flags.writeable):
                        g = self.shaped(name, g, v, array)
                else:
                    g = self.shaped(name, g, v, array)
                if arrays:
                    for other in arrays:
                        if other is g:
                            g = g.copy()
                            break
                arrays.append(g)
            elif type(g) is NUMPY_FLOAT and type(v) is float and not array:
                g = float(g)  # a sum's numpy float for a number parameter
            elif type(g) is not float or type(v) is not float or array:
                g = self.shaped(name, g, v, array)
                if type(g) is NDARRAY:
                    arrays.append(g)
            out[name] = g
        return out

    def tree(self, name: str, g: Any, value: Any, array: bool) -> Any:
        """The gradient of a list, tuple or dict parameter, in its structure."""
        out = fmad_forms.structured(g, value, lambda gi, v: self.shaped(name, gi, v, array))
        if out is None:
            raise ReverseModeError(
                self.filename,
                self.def_line,
                f"the parameter {name!r} is a {type(value).__name__}, and reverse mode "
                "differentiates only reading its items (params[0], params['W'], unpacking, "
                f"a loop over it) and np.array() of it; {ADVICE}",
            )
        return out

    def shaped(self, name: str, g: Any, value: Any, array: bool) -> Any:
        """``g`` in the type forward mode gives: a float for a number, an array of the
        parameter's shape (a numpy scalar for a 0-d array), an array for a 0-d array output."""
        # the common cases, checked fast
        if type(g) is np.ndarray and type(value) is np.ndarray and g.shape == value.shape:
            if g.dtype is FLOAT64 and g.flags.owndata and g.flags.writeable:
                return g
        elif (type(g) is float or type(g) is np.float64) and type(value) is float and not array:
            return float(g)
        if np.iscomplexobj(g):
            raise ReverseModeError(
                self.filename,
                self.def_line,
                f"the gradient of {name!r} went through complex values; reverse mode "
                f"differentiates real code only; {ADVICE}",
            )
        if np.shape(g) != np.shape(value):
            raise internal(self, name, g, value)
        if not array and not isinstance(value, np.ndarray):
            return float(g)
        g = np.asarray(g, dtype=np.result_type(g, float))
        if not array and g.ndim == 0:
            return g[()]
        if not (g.flags.owndata and g.flags.writeable):
            g = g.copy()  # a view (broadcast, reshape) of another array: the user's own copy
        return g


def return_line(flat: ast.FunctionDef) -> int:
    """The line of the function's last ``return`` (a final ``if`` returns in its
    branches): where a wrong output is reported when it cannot tell which one ran."""
    returns = [s for s in statements(flat.body) if isinstance(s, ast.Return)]
    return (returns[-1] if returns else flat.body[-1]).lineno


def public(self: ReverseFunction) -> Any:
    """The function ``differentiate`` returns: for numbers, the variant for floats behind
    a type guard (:mod:`fmad.reverse_numbers`), else (and for every other call) this."""
    function = numbers_function(self, self.__call__)
    if function is None:

        def function(*args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            return self(*args, **kwargs)

    functools.update_wrapper(function, self.original)
    function.__fmad_reverse__ = self
    function.__wrapped__ = self.original
    function.wrt = self.wrt
    function.mode = "reverse"
    function.source = self.source
    function.flat_source = self.show("flat")
    function.show = self.show
    function.source_for = self.source_for
    return function
