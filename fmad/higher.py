"""Jacobian-vector products and second derivatives: ``fmad.jvp``, ``fmad.hvp``,
``fmad.hessian``.

All three transform code that fmad generated itself. The first-order code of a function
(:func:`fmad.differentiate`'s, for the kinds of the arguments at hand) is compiled as a
*readable* function (its source is the printed code, see :func:`fmad.compile.compile_unit`),
so fmad transforms it again like user code: forward over forward. Names of the second pass
say so (``d2loss_dw_db`` is the derivative of ``dloss_dw`` with respect to ``b``), and the
second-order code prints like the first (``.source``, ``show(shapes=...)``).

- ``jvp``: one pass with one direction ``v`` (tangents ``dx_dv``) whose seeds are the given
  direction arrays: the tangent of the output, with no Jacobian built.
- ``hvp``: the ``jvp`` of the first-order code: the gradient and ``H @ v`` for about the cost
  of two gradients.
- ``hessian``: the first-order code differentiated again, one direction per parameter (an
  array parameter's on a trailing axis; the runtime helpers of the first-order code are
  applied per direction). Where a second pass is refused, one Hessian-vector product per
  parameter element instead (the generated code is compiled once).
"""

from __future__ import annotations

import inspect
import linecache
import math
import re
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fmad import hessian_blocks, pytree, trace
from fmad.api import Transformed
from fmad.compile import compile_unit
from fmad.errors import FmadError, UnsupportedError, WrtError
from fmad.hessian_blocks import Plan
from fmad.source import python_function, read_function
from fmad.spec import Spec, normalize_wrt
from fmad.transform import Session

Tangents = dict[str, Any]


def plain(fn: Callable[..., Any]) -> types.FunctionType:
    """The user's function behind ``fn`` (a function ``fmad.differentiate`` returned)."""
    if hasattr(fn, "__fmad__"):
        fn = fn.__fmad__.original
    return python_function(fn)


def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call generated code; an exception from it is classified first (see fmad.trace)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if exc.__traceback__.tb_next is not None:  # raised inside, not by the call itself
            trace.check(exc)
        raise


def user_line(exc: UnsupportedError, fn: types.FunctionType) -> UnsupportedError:
    """A refusal raised while transforming fmad's own first-order code again, pointed at
    the user's line that code comes from (its ``# line N:`` comments say which)."""
    if not (exc.filename.startswith("<fmad:") and exc.lineno):
        return exc
    lines = linecache.getlines(exc.filename)
    for text in reversed(lines[: exc.lineno]):
        found = re.match(r"\s*# line (\d+): ", text)
        if found:
            generated = lines[exc.lineno - 1].strip()
            return UnsupportedError(
                fn.__code__.co_filename,
                int(found.group(1)),
                f"{exc.message} (second derivatives transform fmad's first-order code "
                f"again; the refused line is `{generated}`)",
            )
    return exc


def full(t: Any, value: Any) -> Any:
    """A raw tangent (it may broadcast) in its value's shape."""
    if isinstance(value, tuple):
        return tuple(full(ti, vi) for ti, vi in zip(t, value, strict=True))
    if np.ndim(value) == 0 and np.ndim(t) == 0:
        return t
    return np.broadcast_to(t, np.shape(value)).copy()


class JVP:
    """``fmad.jvp(fn, wrt)``: called as ``jvp(args, tangents)``."""

    def __init__(self, fn: Callable[..., Any], wrt: Sequence[str] | str | None = None) -> None:
        self.original = plain(fn)
        signature = inspect.signature(self.original)
        params = [
            p.name
            for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        self.params = params
        self.wrt: tuple[str, ...] = normalize_wrt(self.original.__name__, params, wrt)
        for name in self.wrt:
            if name not in params:
                raise WrtError(
                    f"jvp differentiates with respect to parameters; {name!r} is not a "
                    f"parameter of '{self.original.__name__}' (its parameters: "
                    f"{', '.join(params)})"
                )
        self._variants: dict[tuple[str, ...], tuple[types.FunctionType, dict, Any]] = {}
        self.variant(self.wrt)  # refusals at decoration time

    def variant(self, names: tuple[str, ...]) -> tuple[types.FunctionType, dict, Any]:
        """The compiled code carrying the directions of ``names`` (the others are zero)."""
        if names not in self._variants:
            session = Session()
            unit, info = session.jvp(self.original, names)
            keywords = {pname: kw for (pname, _), kw in info.inputs.items()}
            self._variants[names] = (compile_unit(unit, {}), keywords, session)
        return self._variants[names]

    def raw(self, args: tuple, tangents: Tangents) -> tuple[Any, Any]:
        """``(value, tangent)`` as the generated code returns them (a tangent may broadcast)."""
        if not isinstance(args, tuple):
            raise WrtError(f"jvp takes the positional arguments as a tuple, got {args!r}")
        unknown = sorted(set(tangents) - set(self.wrt))
        if unknown:
            raise WrtError(f"tangents names {unknown}, which jvp does not differentiate (wrt)")
        bound = inspect.signature(self.original).bind(*args).arguments
        for name, direction in tangents.items():
            if any(
                isinstance(v, dict | list | tuple) and pytree.is_tree(v)
                for v in (direction, bound.get(name))
            ):
                raise WrtError(
                    f"the argument or direction of {name!r} is a container (a dict, list or "
                    "tuple of arrays); jvp takes numbers and arrays: pass one flat array, or "
                    "use fmad.differentiate, which takes containers"
                )
            if np.shape(direction) != np.shape(bound.get(name)):
                raise WrtError(
                    f"the direction for {name!r} has shape {np.shape(direction)}; its argument "
                    f"has shape {np.shape(bound.get(name))}: give a direction of the same shape"
                )
        names = tuple(n for n in self.wrt if n in tangents)
        fn, keywords, _ = self.variant(names)
        value, tangent = run(fn, *args, **{keywords[n]: tangents[n] for n in names})
        if isinstance(value, tuple) and not isinstance(tangent, tuple):
            tangent = (tangent,) * len(value)  # a tuple that does not depend on the direction
        return value, tangent

    def __call__(self, args: tuple, tangents: Tangents) -> tuple[Any, Any]:
        value, tangent = self.raw(args, tangents)
        return value, full(tangent, value)

    @property
    def source(self) -> str:
        """The generated code (with every ``wrt`` direction)."""
        fn, _, session = self.variant(self.wrt)
        return "\n\n".join(u.printed().rstrip("\n") for u in session.units) + "\n"


class SecondOrder:
    """What ``hvp`` and ``hessian`` share: the first-order code, readable, per spec."""

    def __init__(self, fn: Callable[..., Any], wrt: Sequence[str] | str | None) -> None:
        self.first = Transformed(plain(fn), wrt)
        self.wrt = self.first.wrt
        default = self.first._default  # one variant per function passed: not differentiated again
        if default is None or default.spec.functions:
            raise self.first.deferred(
                "second derivatives of such a function are not supported: call the function "
                "by its own name (np.tanh(x)) and read the object's data from arguments"
            )
        if not all(is_param for *_, is_param in self.first._slots):
            raise WrtError(
                "second derivatives are taken with respect to parameters; wrt names an "
                f"intermediate variable: {list(self.wrt)}"
            )
        self._readable: dict[Spec, types.FunctionType] = {}
        self._jvps: dict[Spec, JVP] = {}

    def spec(self, args: tuple, kwargs: dict) -> Spec:
        return self.spec_of(self.first._spec(args, kwargs))

    def spec_of(self, spec: Spec) -> Spec:
        """The spec of the second derivatives for the first-order spec ``spec``."""
        if any(t is not None for t in spec.trees):
            name = next(w for w, t in zip(spec.wrt, spec.trees, strict=True) if t is not None)
            code = self.first.original.__code__
            raise UnsupportedError(
                code.co_filename,
                code.co_firstlineno,
                f"the argument of {name!r} is a container (a dict, list or tuple of "
                "arrays); second derivatives are taken with respect to numbers and arrays "
                "only: pass one flat array (see fmad.Objective.pack) or use "
                "fmad.differentiate for the gradient",
            )
        return Spec(spec.wrt, spec.shapes)  # one direction per parameter, never bundled

    def readable(self, spec: Spec) -> types.FunctionType:
        """The first-order code for ``spec``, compiled so that fmad can read it again."""
        if spec not in self._readable:
            unit = self.first._variant(spec).unit
            self._readable[spec] = compile_unit(unit, {}, readable=True)
        return self._readable[spec]

    def again(self, cache: dict, spec: Spec, transform: Callable[..., Any]) -> Any:
        """``transform(readable first-order code, wrt)``, cached per spec; a refusal names
        the user's line."""
        if spec not in cache:
            try:
                cache[spec] = transform(self.readable(spec), self.wrt)
            except UnsupportedError as exc:
                raise user_line(exc, self.first.original) from None
        return cache[spec]

    def jvp(self, spec: Spec) -> JVP:
        return self.again(self._jvps, spec, JVP)

    def hvp_raw(self, spec: Spec, args: tuple, directions: Tangents) -> tuple[Any, tuple, tuple]:
        """``(value, raw gradients, raw H v)`` from one pass of the jvp of the gradient."""
        (value, *grads), (_, *hv) = self.jvp(spec).raw(args, directions)
        check_scalar(value, self.first.original)
        return value, tuple(grads), tuple(hv)

    def shaped(self, spec: Spec, value: Any, raw: Sequence[Any]) -> dict[str, Any]:
        """Raw first-order tangents of a scalar output as arrays of the parameters' shapes."""
        return {
            name: as_block(t, np.shape(value), shape, None)
            for name, t, shape in zip(self.wrt, raw, spec.shapes, strict=True)
        }


def check_scalar(value: Any, fn: types.FunctionType) -> None:
    if np.size(value) != 1 or isinstance(value, tuple):
        code = fn.__code__
        raise FmadError(
            f"{code.co_filename}:{code.co_firstlineno}: second derivatives need a scalar "
            f"output; '{fn.__name__}' returned a value of shape {np.shape(value)}: reduce it "
            "to one number (np.sum, np.mean), or use fmad.jvp for directional derivatives"
        )


def as_block(t: Any, vshape: tuple, a: tuple | None, b: tuple | None) -> Any:
    """A raw derivative of a scalar (``vshape`` has one element) as a block of shape
    ``shape(a) + shape(b)`` (each ``()`` for a number)."""
    sa, sb = a or (), b or ()
    columns = tuple(math.prod(s) for s in (a, b) if s is not None)
    block = np.reshape(np.broadcast_to(t, vshape + columns), sa + sb)
    return block.item() if block.ndim == 0 else block.copy()  # a number: a Python float


class HVP(SecondOrder):
    """``fmad.hvp(fn, wrt)``: called as ``hvp(args, directions)``."""

    def __call__(self, args: tuple, directions: Tangents) -> tuple[Any, dict, dict]:
        spec = self.spec(args, {})
        value, grads, hv = self.hvp_raw(spec, args, directions)
        return value, self.shaped(spec, value, grads), self.shaped(spec, value, hv)

    def show(self, shapes: dict[str, tuple[int | None, ...]] | None = None) -> str:
        """The code of the Hessian-vector product for arguments of these shapes."""
        spec = Spec(self.wrt, tuple(None for _ in self.wrt))
        if shapes is not None:
            spec = self.first.variant_for_shapes(shapes).spec
            spec = Spec(spec.wrt, spec.shapes)
        return self.jvp(spec).source


class Hessian(SecondOrder):
    """``fmad.hessian(fn, wrt)``: called like ``fn``, returns ``(value, grads, hess)``."""

    def __init__(self, fn: Callable[..., Any], wrt: Sequence[str] | str | None) -> None:
        super().__init__(fn, wrt)
        self._second: dict[Spec, Transformed] = {}
        # per spec of the first-order code: the second-order function and its Plan, or
        # None where the second pass is refused (one product per column instead)
        self._code: dict[Spec, tuple[Callable[..., Any], Plan] | None] = {}
        self.second(Spec(self.wrt, tuple(None for _ in self.wrt)))  # refusals now

    def second(self, spec: Spec) -> Transformed:
        """The first-order code for numbers, differentiated again."""
        return self.again(self._second, spec, Transformed)

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, dict, dict]:
        first = self.first._spec(args, kwargs)
        code = self._code.get(first)
        if code is None:
            code = self.code(first)
            if code is None:
                return self.columns(self.spec_of(first), args, kwargs)
        function, plan = code
        out = run(function, *args, **kwargs)
        primal = out[0]
        value = primal[0]
        check_scalar(value, self.first.original)
        vshape = np.shape(value)
        block = hessian_blocks.block
        grads = {
            name: block(t, vshape, shape, None)
            for name, t, shape in zip(self.wrt, primal[1:], plan.shapes, strict=True)
        }
        return value, grads, hessian_blocks.assemble(out[1:], vshape, plan)

    def code(self, first: Spec) -> tuple[Callable[..., Any], Plan] | None:
        """The second-order function for the first-order spec ``first`` and its Plan, made
        once: the first-order code differentiated again in one pass (one direction per
        parameter: an array parameter's on a trailing axis), each symmetric pair of blocks
        computed once (fmad.hessian_blocks). None: that pass is refused for arrays, the
        Hessian is taken column by column."""
        if first in self._code:
            return self._code[first]
        spec = self.spec_of(first)
        try:
            variant = self.second_variant(spec)
        except UnsupportedError:
            if not spec.vectorized:
                raise
            self._code[first] = None
            return None
        self._code[first] = (variant.function, variant.plan)
        return self._code[first]

    def second_variant(self, spec: Spec) -> Any:
        """The compiled second-order code for ``spec`` (its ``plan`` attribute says which
        blocks it returns)."""
        variant = self.second(spec)._variant(Spec(self.wrt, spec.shapes))
        if not hasattr(variant, "plan"):
            plan = Plan(self.wrt, spec.shapes)
            first_order = read_function(variant.unit.function).tree
            if hessian_blocks.prune(variant.unit.tree, plan, first_order):
                variant.unit.text = None
                variant.function = compile_unit(variant.unit, {})
            variant.plan = plan
        return variant

    def columns(self, spec: Spec, args: tuple, kwargs: dict) -> tuple[Any, dict, dict]:
        """With array parameters: column ``(b, j)`` of the Hessian is ``H e_j``."""
        if kwargs:
            bound = inspect.signature(self.first.original).bind(*args, **kwargs)
            bound.apply_defaults()
            if any(p.kind == p.KEYWORD_ONLY for p in bound.signature.parameters.values()):
                raise WrtError("hessian with array parameters takes positional arguments only")
            args = tuple(bound.args)
        zeros = {
            name: np.zeros(shape) if shape is not None else 0.0
            for name, shape in zip(self.wrt, spec.shapes, strict=True)
        }
        hess: dict[str, dict[str, Any]] = {a: {} for a in self.wrt}
        value = grads = None
        for b, shape in zip(self.wrt, spec.shapes, strict=True):
            n = math.prod(shape) if shape is not None else 1
            cols: dict[str, list[Any]] = {a: [] for a in self.wrt}
            for j in range(n):
                unit = np.zeros(n)
                unit[j] = 1.0
                directions = dict(zeros)
                directions[b] = unit.reshape(shape) if shape is not None else 1.0
                value, raw, hv = self.hvp_raw(spec, args, directions)
                grads = raw
                for a, t, sa in zip(self.wrt, hv, spec.shapes, strict=True):
                    cols[a].append(as_block(t, np.shape(value), sa, None))
            for a, sa in zip(self.wrt, spec.shapes, strict=True):
                block = np.stack([np.asarray(c) for c in cols[a]], axis=-1)
                hess[a][b] = block.reshape((sa or ()) + (shape or ()))
        hess = hessian_blocks.finish(hess, Plan(self.wrt, spec.shapes))
        return value, self.shaped(spec, value, grads), hess

    def show(self, shapes: dict[str, tuple[int | None, ...]] | None = None) -> str:
        """The second-order code: the first-order code for these ``shapes`` (numbers by
        default) differentiated again, or, where that is refused, the Hessian-vector
        product the Hessian takes column by column."""
        spec = Spec(self.wrt, tuple(None for _ in self.wrt))
        if shapes is not None:
            spec = Spec(self.wrt, self.first.variant_for_shapes(shapes).spec.shapes)
        try:
            return self.second_variant(spec).source()
        except UnsupportedError:
            if not spec.vectorized:
                raise
            return self.jvp(spec).source

    @property
    def source(self) -> str:
        return self.show()


def jvp(fn: Callable[..., Any], wrt: Sequence[str] | str | None = None) -> JVP:
    """``jvp(args, tangents) -> (value, tangent)``: the derivative of ``fn`` at ``args`` in the
    direction ``tangents`` (parameter name -> an array of the parameter's shape; names left
    out are zero), in one forward pass: ``tangent`` has the value's shape and no Jacobian is
    built. With a direction of ones it is the elementwise derivative of an elementwise
    function."""
    return JVP(fn, wrt)


def hvp(fn: Callable[..., Any], wrt: Sequence[str] | str | None = None) -> HVP:
    """``hvp(args, directions) -> (value, grads, hv)`` with ``hv[a] = sum_b H[a][b] . v[b]``
    for a scalar-valued ``fn``: the Hessian times a vector, for about two gradients."""
    return HVP(fn, wrt)


def hessian(fn: Callable[..., Any], wrt: Sequence[str] | str | None = None) -> Hessian:
    """A function called like ``fn`` returning ``(value, grads, hess)`` for a scalar-valued
    ``fn``: ``hess[a][b]`` has shape ``shape(a) + shape(b)``. ``.source`` prints the
    second-order code (fmad's first-order code, differentiated again)."""
    return Hessian(fn, wrt)
