"""The spec of one transform: what is differentiated, with respect to what, in what layout.

A :class:`Spec` is decided once, by the public API, from the ``wrt`` names and the kinds of
the arguments of a call; the driver builds the variant it describes (its directions and
seeds), the public wrapper reads it to shape the tangents the variant returns, and ``show``
describes it. ``wrt`` is validated here, once: as a list (:func:`normalize_wrt`) and against
the function's source (:func:`check_wrt`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import numbers
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmad import build as B
from fmad import pytree, runtime
from fmad.errors import UnsupportedError, WrtError
from fmad.tangent import Direction
from fmad.variable import Variable

# the name of the one direction that bundles every scalar parameter (see Spec.bundle)
BUNDLE = "wrt"

Shape = tuple[int, ...]

# the types of a value that is one number, whose gradients Spec.scalar_gradients shapes
SCALAR_LOSSES = frozenset({float, np.float64})
# numpy dtype kinds a wrt argument may have: booleans, integers, floats, complex numbers
NUMERIC_KINDS = frozenset("biufc")
# the types of the numbers met as wrt arguments (Python's and numpy's scalar types): each
# is a number by its type alone, so a call asks once per type
NUMBER_TYPES: set[type] = {float, int}


@dataclass(frozen=True)
class Spec:
    """One variant: ``shapes[i]`` is the shape of ``wrt[i]`` (None: a number). ``bundle``:
    all (scalar) parameters travel as one vectorized direction of ``len(wrt)`` columns, each
    seeded with a one-hot row, so that with array data one array operation serves them all."""

    wrt: tuple[str, ...]
    shapes: tuple[Shape | None, ...]
    bundle: bool = False
    # (parameter, fmad.specialize.Pin): the function or the class of an argument the
    # function calls through its parameter, which this variant is made for
    functions: tuple[tuple[str, Any], ...] = ()
    # the structure of each wrt argument that is a container (fmad.pytree), else None; its
    # shape in ``shapes`` is ``(k,)``, k the number of its leaves' elements
    trees: tuple[pytree.Node | None, ...] = ()

    def tree_of(self, name: str) -> pytree.Node | None:
        return self.trees[self.wrt.index(name)] if self.trees else None

    @functools.cached_property  # read on every call of the general path
    def vectorized(self) -> bool:
        """Tangents carry a trailing direction axis: array parameters, or the bundle."""
        return self.bundle or any(s is not None for s in self.shapes)

    def shape_of(self, name: str) -> Shape | None:
        return self.shapes[self.wrt.index(name)]

    def directions(self) -> list[Direction]:
        """The directions the generated code carries, in the order it returns tangents."""
        if self.bundle:
            return [Direction(BUNDLE, (len(self.wrt),))]
        return [Direction(p, s) for p, s in zip(self.wrt, self.shapes, strict=True)]

    def gradients(self, value: Any, tangents: Sequence[Any]) -> dict[str, Any]:
        """The generated function's tangents (one per direction, in order) shaped as the
        user gets them (see :func:`fmad.runtime.gradient`), by ``wrt`` name."""
        if type(value) in SCALAR_LOSSES:  # the common case, without numpy's dispatch
            found = self.scalar_gradients(tangents)
            if found is not None:
                return found
        if self.bundle:  # one tangent, one column per parameter
            (t,) = tangents
            if np.ndim(value) == 0:  # a scalar loss
                t = np.broadcast_to(t, (len(self.wrt),))  # a constant tangent too (0.0)
                return dict(zip(self.wrt, t.tolist(), strict=True))
            t = np.broadcast_to(t, np.shape(value) + (len(self.wrt),))
            return {name: runtime.gradient(t[..., i], value) for i, name in enumerate(self.wrt)}
        trees = self.trees or (None,) * len(self.wrt)
        return {
            name: runtime.gradient(t, value, shape)
            if tree is None
            else pytree.gradient(tree, t, value)
            for name, t, shape, tree in zip(self.wrt, tangents, self.shapes, trees, strict=True)
        }

    def scalar_gradients(self, tangents: Sequence[Any]) -> dict[str, Any] | None:
        """:meth:`gradients` of a scalar loss when each tangent is what it commonly is (a
        number for a scalar parameter, a flat array for an array parameter or the bundle):
        the same objects :func:`fmad.runtime.gradient` returns; None for anything else."""
        if self.bundle:
            (t,) = tangents
            if type(t) is np.ndarray and t.shape == (len(self.wrt),):
                return dict(zip(self.wrt, t.tolist(), strict=True))
            return None
        if self.trees:
            return None
        grads = {}
        for name, t, shape in zip(self.wrt, tangents, self.shapes, strict=True):
            if shape is None:
                if type(t) not in SCALAR_LOSSES:
                    return None
            elif type(t) is np.ndarray and t.ndim == 1 and t.size == math.prod(shape):
                t = t.reshape(shape)
            else:
                return None
            grads[name] = t
        return grads

    def describe(self) -> str:
        """In words, for ``show``: ``w of shape 3, b scalar``."""
        pinned = "".join(f", {pin.describe(name)}" for name, pin in self.functions or ())
        if self.bundle:
            return (
                f"scalar {', '.join(self.wrt)} (numbers) bundled on one axis, with array data"
                + pinned
            )
        trees = self.trees or (None,) * len(self.wrt)
        return (
            ", ".join(
                f"{w} scalar"
                if shape is None
                else f"{w} of shape {format_shape(shape)}"
                if tree is None
                else f"{w} a container {pytree.describe(tree)} ({shape[0]} numbers)"
                for w, shape, tree in zip(self.wrt, self.shapes, trees, strict=True)
            )
            + pinned
        )


def format_shape(shape: tuple[int | None, ...]) -> str:
    """``(100, 3)`` -> ``100x3``, as the command line writes shapes."""
    return "x".join("N" if n is None else str(n) for n in shape) or "()"


def normalize_wrt(fn_name: str, params: list[str], wrt: Sequence[str] | str | None) -> tuple:
    """``wrt`` as a tuple of names: every parameter by default; a string is split at commas."""
    if wrt is None:
        wrt = list(params)
    elif isinstance(wrt, str):
        wrt = [w.strip() for w in wrt.split(",") if w.strip()]
    wrt = tuple(wrt)
    if not wrt:
        raise WrtError(f"'{fn_name}' has no parameters to differentiate with respect to")
    if len(set(wrt)) != len(wrt):
        raise WrtError(f"wrt names a variable twice: {list(wrt)}")
    return wrt


def refuse_variadic(fn: Any, line: int, wrt: Sequence[str]) -> None:
    """``wrt`` may not name a ``*args`` or ``**kwargs`` parameter: its value is a tuple or a
    dict fmad does not seed."""
    for w in wrt:
        p = inspect.signature(fn).parameters.get(w)
        if p is not None and p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            stars = "*" if p.kind == p.VAR_POSITIONAL else "**"
            raise WrtError(
                f"{fn.__code__.co_filename}:{line}: wrt names '{w}', the {stars}{w} parameter "
                f"of '{fn.__name__}'; fmad differentiates with respect to named parameters: "
                f"give '{fn.__name__}' one parameter per value, or a list parameter"
            )


def spec_for_shapes(
    wrt: tuple[str, ...],
    params: set[str],
    shapes: dict[str, tuple[int | None, ...]],
    bundles: bool,
    fn_name: str,
) -> Spec:
    """The spec for arguments of these shapes (names left out: numbers). A ``None`` length
    (known only at run time) is allowed for data, not for ``wrt`` parameters, whose sizes fix
    the generated code. ``bundles``: the function may bundle its scalar parameters."""
    for name, shape in shapes.items():
        if name not in params:
            raise WrtError(
                f"shapes names {name!r}, which is not a parameter of "
                f"'{fn_name}' (its parameters: {', '.join(sorted(params))})"
            )
        if not isinstance(shape, tuple) or not all(
            n is None or (isinstance(n, int) and n >= 0) for n in shape
        ):
            raise WrtError(f"the shape of {name!r} must be a tuple of lengths, got {shape!r}")
    kinds: list[Shape | None] = []
    for w in wrt:
        shape = shapes.get(w, ())
        if None in shape:
            raise WrtError(
                f"the shape of the wrt parameter {w!r} must be known ({shape!r}): its "
                "size fixes the generated code"
            )
        kinds.append(shape or None)
    data = [s for n, s in shapes.items() if n not in wrt]
    bundle = (
        bundles
        and all(k is None for k in kinds)
        and any(None in s or math.prod(s) > 1 for s in data if s)
    )
    return Spec(wrt, tuple(kinds), bundle)


def check_wrt(
    filename: str, tree: ast.FunctionDef, wrt: tuple[str, ...], params: set[str]
) -> set[str]:
    """Validate ``wrt`` against the user's function as written (before flattening, whose
    own rewrites, ``t = a if c else b`` into an ``if``, must not count); return the names in
    it that are intermediate variables."""
    intermediates: set[str] = set()
    for name in wrt:
        if name in params:
            continue
        top_level = [s for s in tree.body if name in assigned_by(s)]
        everywhere = [s for s in B.statements(tree.body) if name in assigned_by(s)]
        if not everywhere:
            raise WrtError(
                f"{filename}:{tree.lineno}: wrt names {name!r}, which is neither a "
                f"parameter of '{tree.name}' nor a variable it assigns; its "
                f"parameters are {', '.join(sorted(params)) or 'none'}" + attribute_hint(tree, name)
            )
        single = top_level[0] if len(top_level) == 1 else None
        if (
            len(everywhere) != 1
            or not isinstance(single, ast.Assign)
            or len(single.targets) != 1
            or not isinstance(single.targets[0], ast.Name)
            or isinstance(single.value, ast.ListComp | ast.GeneratorExp)
        ):
            line = everywhere[min(1, len(everywhere) - 1)].lineno  # the second binding
            raise WrtError(
                f"{filename}:{line}: wrt names the variable {name!r}, which is "
                "assigned more than once or inside a loop or branch; fmad can "
                "differentiate with respect to a variable assigned exactly once, at "
                "the top level of the function, to one number"
            )
        intermediates.add(name)
    return intermediates


def attribute_hint(tree: ast.FunctionDef, name: str) -> str:
    """``self.w`` read where ``wrt`` names ``w``: fmad differentiates with respect to
    arguments, and an object's attributes are data."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == name
            and isinstance(node.value, ast.Name)
        ):
            owner = node.value.id
            return (
                f". It reads '{owner}.{name}' (line {node.lineno}): fmad differentiates with "
                f"respect to arguments, and the attributes of '{owner}' are data; pass {name} "
                f"as an argument (def {tree.name}(..., {name}) using {name} instead of "
                f"{owner}.{name}) and differentiate with respect to it"
            )
    return ""


def assigned_by(s: ast.stmt) -> set[str]:
    """The names a statement binds itself (not in the blocks it contains)."""
    if isinstance(s, ast.Assign):
        targets: list[ast.expr] = list(s.targets)
    elif isinstance(s, ast.AugAssign | ast.AnnAssign):
        targets = [s.target]
    elif isinstance(s, ast.For):
        targets = [s.target]
    elif isinstance(s, ast.With):
        targets = [i.optional_vars for i in s.items if i.optional_vars is not None]
    elif isinstance(s, ast.FunctionDef | ast.ClassDef):
        return {s.name}
    elif isinstance(s, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in s.names}
    else:
        return set()
    return {n for t in targets for n in B.stored_names(t)}


def argument_shape(value: Any, name: str, fn: types.FunctionType, line: int) -> Shape:
    """The shape of the argument of the ``wrt`` parameter ``name`` of ``fn``; an
    UnsupportedError (at ``line``, the ``def``) for a kind of value fmad cannot differentiate
    with respect to."""
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC_KINDS:
        return value.shape
    if isinstance(value, numbers.Number | np.bool_) and not isinstance(value, Variable):
        if isinstance(value, np.generic | bool):  # a fixed set of types
            NUMBER_TYPES.add(type(value))  # the next one is quick
        return ()
    if isinstance(value, list | tuple):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):  # ragged
            array = None
        if array is not None and array.dtype.kind in NUMERIC_KINDS:
            return array.shape
    what = f"an object of type '{type(value).__name__}'"
    if isinstance(value, list | tuple):
        kind = type(value).__name__
        what = f"a {kind} that is not a flat (or evenly nested) {kind} of numbers"
    elif isinstance(value, set | frozenset):
        what = f"a {type(value).__name__} (its items have no order)"
    elif isinstance(value, np.ndarray):
        what = f"an array of dtype {value.dtype}"
    raise UnsupportedError(
        fn.__code__.co_filename,
        line,
        f"the argument of the parameter {name!r} of '{fn.__name__}' is {what}; "
        "fmad differentiates with respect to numbers, numpy arrays of numbers, and dicts, "
        "lists and tuples of them (nested to any depth): pass the numbers as separate "
        "parameters, as one array or in a list or dict, or leave this parameter out of "
        "wrt",
    )
