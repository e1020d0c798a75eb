"""The public entry point: ``fmad.differentiate``."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np

from fmad import pytree, trace
from fmad.compile import readable_for_numbers
from fmad.errors import FmadError, InternalError, UnsupportedError, WrtError
from fmad.lazy import public_function
from fmad.source import python_function, read_function
from fmad.spec import (
    NUMBER_TYPES,
    NUMERIC_KINDS,
    Spec,
    argument_shape,
    normalize_wrt,
    refuse_variadic,
    spec_for_shapes,
)
from fmad.specialize import SELF, called_arguments, deferred, pins
from fmad.variable import Variable
from fmad.variant import Variant


@runtime_checkable
class Differentiated(Protocol):
    """What :func:`differentiate` returns: a function called like the original one.

    Calling it returns ``(value, grads)``. Its attributes show the generated code.
    """

    wrt: tuple[str, ...]
    source: str
    flat_source: str

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]: ...

    def show(self, stage: str = "forward", printer: str = "ast", **options: Any) -> str:
        """See :meth:`Transformed.show` (``comments``, ``shapes``, ``free``)."""

    def source_for(self, *args: Any, **kwargs: Any) -> str: ...


ARRAY = np.ndarray


def kind(a: np.ndarray) -> tuple:
    """What the spec of a call reads of an array argument (of a number: its type)."""
    return (a.shape, a.dtype.num)


def fast_kind(k: Any) -> bool:
    """The kind of a plain array or of a number (not a Variable, list, object...)."""
    return type(k) is tuple or k in NUMBER_TYPES


def shaping_error(fn: Any, value: Any, exc: Exception) -> InternalError:
    try:
        shape = f"of shape {np.shape(value)}"
    except ValueError:  # a ragged list
        shape = f"a {type(value).__name__} of uneven items"
    return InternalError(
        f"{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}: internal error in "
        f"fmad while shaping the gradients of '{fn.__name__}' (value {shape}): "
        f"{type(exc).__name__}: {exc}. This is a bug in fmad; please report it with "
        "the function and the arguments' shapes."
    )


class Transformed:
    """Everything fmad knows about one differentiated function: its variants (one per
    combination of scalar and array parameter shapes), and the public function."""

    def __init__(
        self, fn: Callable[..., Any], wrt: Sequence[str] | str | None = None, bound: tuple = ()
    ) -> None:
        fn = python_function(fn)
        self.original = fn
        self._signature = inspect.signature(fn)
        params = [
            p
            for p in self._signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        tree = read_function(fn).tree
        # by default every parameter but self and the functions it calls (fmad.specialize)
        self._called = called_arguments(fn, tree, params, bound)
        data = {name for name, *_ in self._called} | set(SELF)
        wrt = normalize_wrt(fn.__name__, [p.name for p in params if p.name not in data], wrt)
        self._def_line = tree.lineno
        if params and params[0].name in SELF and params[0].name in wrt:
            raise WrtError(
                f"{fn.__code__.co_filename}:{tree.lineno}: wrt names '{params[0].name}', the "
                "object the method is called on; fmad differentiates with respect to "
                "numbers and arrays: pass what you differentiate as arguments of the method"
            )
        refuse_variadic(fn, tree.lineno, wrt)
        self.wrt: tuple[str, ...] = wrt
        names = [p.name for p in params]
        # where each wrt parameter sits in a call: positional index, or None (keyword only)
        self._slots = []
        for w in wrt:
            p = self._signature.parameters.get(w)
            index = names.index(w) if p is not None and p.kind != p.KEYWORD_ONLY else None
            self._slots.append(
                (w, index, p.default if p is not None else inspect.Parameter.empty, p is not None)
            )
        self._variants: dict[Spec, Variant] = {}
        self._lock = threading.RLock()
        self._specs: dict[tuple, Spec] = {}
        self._fast: dict[tuple, Variant] = {}  # the kinds of positional arguments -> variant
        self._nested: types.FunctionType | None = None
        # bundling needs several parameters, all of them parameters (not intermediates)
        # (with two parameters it gains little, and would cost the scalar fast path a check)
        self.bundles = len(wrt) > 2 and all(is_param for *_, is_param in self._slots)
        # the positions of the wrt arguments when every one is a positional parameter: a
        # call passing them all by position finds its spec without the loop of _spec
        indices = [index for _, index, _, is_param in self._slots if is_param]
        self._positional = (
            operator.itemgetter(*indices, indices[0])  # a tuple, whatever their number
            if len(indices) == len(wrt) and None not in indices
            else None
        )
        self._numbers_key = (tuple(None for _ in wrt), False, (), ())
        # errors at decoration time; None when the code depends on a function or an object
        # argument with no default (fmad.specialize): it is made at the first call
        self._default = self.default_variant()
        self.function = self._public_function()

    # -- calling -------------------------------------------------------------------------
    def call(self, /, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The general path: unwrap Variables, pick the variant for these shapes, run it
        (a positional call of arrays and numbers finds it by their kinds alone)."""
        key = None if kwargs else tuple([kind(a) if type(a) is ARRAY else type(a) for a in args])
        variant = self._fast.get(key)
        if variant is None or (variant.watched and not variant.current()):
            if Variable in map(type, args):
                args = tuple(a.value if isinstance(a, Variable) else a for a in args)
            if kwargs and Variable in map(type, kwargs.values()):
                kwargs = {k: v.value if isinstance(v, Variable) else v for k, v in kwargs.items()}
            variant = self._variant(self._spec(args, kwargs))
            if variant.watched and not variant.current():
                # a called function was rebound after the transform: transform again
                self._variants.clear()
                if self._default is not None:
                    self._default = self._variant(self.numbers)
                variant = self._variant(self._spec(args, kwargs))
            if key is not None and not self._called and all(map(fast_kind, key)):
                self._fast[key] = variant  # the same spec for the same kinds
        try:
            value, *tangents = variant.function(*args, **kwargs)
        except Exception as exc:
            if exc.__traceback__.tb_next is not None:  # raised inside, not by the call itself
                trace.check(exc)
            raise
        if type(value) is not float or variant.spec.vectorized:
            return value, self.shaped(variant, value, tangents)
        return value, dict(zip(self.wrt, tangents, strict=True))

    def shaped(self, variant: Variant, value: Any, tangents: tuple) -> dict[str, Any]:
        """The gradients in the user's layout; a failure here is fmad's bug, said so."""
        try:
            return variant.spec.gradients(value, tangents)
        except FmadError:
            raise
        except Exception as exc:
            raise shaping_error(self.original, value, exc) from exc

    def finish(
        self, value: Any, tangents: tuple, args: tuple, kwargs: dict
    ) -> tuple[Any, dict[str, Any]]:
        """The fast path produced a value that is not a plain float: shape its gradients,
        or, if Variables were passed as data, compute again with them unwrapped."""
        if (
            isinstance(value, Variable)
            or any(isinstance(a, Variable) for a in args)
            or any(isinstance(v, Variable) for v in kwargs.values())
        ):
            return self.call(*args, **kwargs)
        return value, self.shaped(self._default, value, tangents)

    @property
    def numbers(self) -> Spec:
        """The spec of the default variant: every parameter a number."""
        functions = pins(self._called, (), {}, defaults=True) if self._called else ()
        return Spec(self.wrt, tuple(None for _ in self.wrt), functions=functions)

    def _spec(self, args: tuple, kwargs: dict) -> Spec:
        """The spec for these arguments: each ``wrt`` argument's shape, and whether scalar
        parameters with array data travel bundled."""
        if self._positional is not None and not self._called:
            try:
                values = self._positional(args)
            except IndexError:  # some passed by keyword, or left to their defaults
                values = ()
            if values and NUMBER_TYPES.issuperset(map(type, values)):  # all numbers
                key = self._numbers_key
                if self.bundles and any(
                    type(a) is np.ndarray and a.size > 1 for a in (*args, *kwargs.values())
                ):
                    key = (key[0], True, (), ())
                spec = self._specs.get(key)
                if spec is not None:
                    return spec
        shapes: list[tuple[int, ...] | None] = []
        trees: list[pytree.Node | None] = []
        for name, index, default, is_param in self._slots:
            trees.append(None)
            if not is_param:
                shapes.append(None)  # an intermediate variable: a scalar
                continue
            if index is not None and index < len(args):
                value = args[index]
            else:
                value = kwargs.get(name, default)
            if type(value) in NUMBER_TYPES:  # float, int, np.float64...: a number
                shapes.append(None)
                continue
            if type(value) is np.ndarray and value.dtype.kind in NUMERIC_KINDS:
                shapes.append(value.shape or None)  # argument_shape's first case, inline
                continue
            if isinstance(value, dict | list | tuple) and pytree.is_tree(value):
                trees[-1] = self.wrt_tree(name, value)
                shapes.append((pytree.size(trees[-1]),))
                continue
            shape = self.wrt_shape(name, value)
            shapes.append(shape if shape else None)
        # scalar parameters, array data: all parameters ride one vectorized direction
        bundle = (
            self.bundles
            and all(s is None for s in shapes)
            and any(type(a) is np.ndarray and a.size > 1 for a in (*args, *kwargs.values()))
        )
        key = (
            tuple(shapes),
            bundle,
            pins(self._called, args, kwargs) if self._called else (),
            tuple(trees) if any(trees) else (),
        )
        spec = self._specs.get(key)  # made once per kind of call: this is the hot path
        if spec is None:
            spec = self._specs[key] = Spec(self.wrt, *key)
        return spec

    def wrt_tree(self, name: str, value: Any) -> pytree.Node:
        """The structure of the container argument of the ``wrt`` parameter ``name`` (see
        :mod:`fmad.pytree`); an UnsupportedError at the ``def`` line for one fmad cannot take."""
        try:
            return pytree.structure(value)
        except pytree.NotATree as exc:
            flat = self._default.unit.flat
            raise UnsupportedError(
                self._default.unit.filename,
                flat.lineno,
                f"the argument of the parameter {name!r} of '{flat.name}' is a "
                f"{type(value).__name__} holding {exc}; fmad differentiates with respect to "
                "dicts, lists and tuples (nested to any depth) whose leaves are numbers or "
                "numpy arrays of numbers: convert the other leaves, or leave this parameter "
                "out of wrt",
            ) from None

    def wrt_shape(self, name: str, value: Any) -> tuple[int, ...]:
        """See :func:`fmad.spec.argument_shape`."""
        return argument_shape(value, name, self.original, self._def_line)

    def _variant(self, spec: Spec) -> Variant:
        free = not self.bundles or spec.vectorized  # see Variant
        return self._variants.get(spec) or made_once(
            self._lock, self._variants, spec, lambda: Variant(self.original, spec, free)
        )

    def nested_function(self) -> types.FunctionType:
        """The first-order code for numbers, readable (fmad can transform it again), for a
        call of this function inside another differentiated function (see fmad.nesting). It
        returns ``(value, *gradients)`` and refuses arrays for the ``wrt`` parameters: it is
        the variant for numbers."""
        if self._default is None or self._default.spec.functions:
            raise self.deferred(
                "inside another differentiated function, call the plain function instead"
            )
        if self._nested is None:
            params = [w for w in self.wrt if w in self._signature.parameters]
            self._nested = readable_for_numbers(self._default.unit, params, self.original)
        return self._nested

    def default_variant(self) -> Variant | None:
        """The variant for numbers, made when the function is decorated; None when it
        needs the function passed for a parameter, or calls methods of an argument whose
        class only the call tells (the variant is then made per call)."""
        spec = self.numbers
        if spec.functions is None:
            return None
        try:
            return self._variant(spec)
        except UnsupportedError:
            pinned = {name for name, _ in spec.functions}
            if all(not methods or name in pinned for name, _, _, methods in self._called):
                raise
            return None

    # -- the public function -------------------------------------------------------------
    def deferred(self, what: str) -> FmadError:
        """No variant for numbers: see :func:`fmad.specialize.deferred`."""
        return deferred(self.original, self._def_line, self._called, what)

    def _public_function(self) -> Callable[..., Any]:
        """The all-scalar variant's code behind a type guard, so the common call (float
        parameters) costs no more than the generated code itself; anything else (arrays,
        Variables) takes :meth:`call`."""
        if self._default is None:  # every call picks its variant
            fn = functools.wraps(self.original)(lambda *args, **kwargs: self.call(*args, **kwargs))
            fn.source = fn.flat_source = f"# {self.deferred('').args[0]}\n"
        else:
            fn = public_function(self, self._default)  # compiled at its first use (fmad.lazy)
            functools.update_wrapper(fn, self.original)
            fn.source = self._default.source()
            fn.flat_source = self._default.flat_source()
        fn.__fmad__ = self
        fn.__wrapped__ = self.original
        fn.wrt = self.wrt
        fn.show = self.show
        fn.source_for = self.source_for
        return fn

    # -- looking at the code -------------------------------------------------------------
    def show(
        self,
        stage: str = "forward",
        printer: str = "ast",
        *,
        comments: bool = True,
        shapes: dict[str, tuple[int | None, ...]] | None = None,
        free: bool = False,
    ) -> str:
        """The generated code: ``stage="flat"`` for the flattened primal, ``"forward"`` for
        the transformed function and the helpers it calls. ``shapes`` (argument name ->
        shape, ``()`` for a number) picks the variant compiled for arguments of those
        shapes; without it, the variant for numbers. ``comments``: ``# line N:`` comments.
        ``free``: with the ``del`` lines of the code that runs (:mod:`fmad.liveness`)."""
        if self._default is None and shapes is None:
            raise self.deferred("to see the code, use source_for(*args) with the arguments")
        variant = self._default if shapes is None else self.variant_for_shapes(shapes)
        if stage == "flat":
            return variant.flat_source(printer, comments)
        if stage == "forward":
            return variant.source(printer, comments, free)
        raise FmadError(f"unknown stage {stage!r}; choose 'flat' or 'forward'")

    def variant_for_shapes(self, shapes: dict[str, tuple[int | None, ...]]) -> Variant:
        """The variant that runs for arguments of these shapes (see :func:`spec_for_shapes`)."""
        params = set(self._signature.parameters)
        name = self.original.__name__
        spec = spec_for_shapes(self.wrt, params, shapes, self.bundles, name)
        if self._called:
            functions = self.numbers.functions
            if functions is None:
                raise self.deferred("to see the code, use source_for(*args) with the arguments")
            spec = dataclasses.replace(spec, functions=functions)
        return self._variant(spec)

    def source_for(self, /, *args: Any, **kwargs: Any) -> str:
        """The code that runs for these arguments (array parameters get vectorized tangents)."""
        args = tuple(a.value if isinstance(a, Variable) else a for a in args)
        kwargs = {k: v.value if isinstance(v, Variable) else v for k, v in kwargs.items()}
        return self._variant(self._spec(args, kwargs)).source()


def made_once(lock: threading.RLock, table: dict, key: Any, make: Callable[[], Any]) -> Any:
    """``table[key]``, made by ``make()`` if missing, once whatever the threads that ask."""
    with lock:
        found = table.get(key)
        if found is None:
            found = table[key] = make()
        return found


@overload
def differentiate(
    fn: Callable[..., Any], *, wrt: Sequence[str] | None = None
) -> Differentiated: ...


@overload
def differentiate(
    fn: None = None, *, wrt: Sequence[str] | None = None
) -> Callable[[Callable[..., Any]], Differentiated]: ...


def differentiate(fn=None, *, wrt=None):
    """Differentiate ``fn`` by rewriting its source (forward mode).

    Use bare (``@fmad.differentiate``: every parameter) or with ``wrt=["w", "b"]``. The
    result, called like ``fn``, returns ``(value, grads)``: ``value`` is exactly what ``fn``
    returns and ``grads`` maps each ``wrt`` name to the derivative of ``value`` with respect
    to it, shaped ``shape(value) + shape(parameter)``.
    """
    if fn is None:
        return lambda f: differentiate(f, wrt=wrt)
    if hasattr(fn, "__fmad__"):  # differentiate again with another wrt
        fn = fn.__wrapped__
    if isinstance(fn, types.MethodType):
        return bound_method(fn, wrt)
    return Transformed(fn, wrt).function


def bound_method(method: types.MethodType, wrt: Sequence[str] | str | None) -> Differentiated:
    """``differentiate(obj.loss)``: the function ``loss`` differentiated, called with ``obj``
    bound to its first parameter (which, by default, is not differentiated)."""
    func = python_function(method)
    if wrt is None:
        wrt = [
            p.name
            for p in list(inspect.signature(func).parameters.values())[1:]
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
    obj = method.__self__
    inner = Transformed(func, wrt, bound=(obj,))

    def public(*args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        return inner.function(obj, *args, **kwargs)

    functools.update_wrapper(public, method)
    public.__fmad__ = inner
    public.__wrapped__ = method
    public.wrt = inner.wrt
    public.source = inner.function.source
    public.flat_source = inner.function.flat_source
    public.show = inner.show
    public.source_for = lambda *args, **kwargs: inner.source_for(obj, *args, **kwargs)
    return public


def jacobian(fn=None, *, wrt=None):
    """The same as :func:`differentiate`: it returns ``(value, grads)`` with ``grads[name]`` of
    shape ``shape(value) + shape(parameter)``, the Jacobian."""
    return differentiate(fn, wrt=wrt)
