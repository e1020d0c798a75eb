"""``fmad.differentiate(fn, wrt=..., mode=...)``: forward, reverse, or chosen per call.

- ``"forward"`` (the default): :mod:`fmad.api`, one direction per parameter element, any
  output shape;
- ``"reverse"``: :mod:`fmad.reverse_api`, one backward pass whatever the number of
  parameters, for one scalar output;
- ``"auto"``: reverse for a call whose ``wrt`` arguments have more than
  :data:`AUTO_THRESHOLD` elements in all, when reverse mode handles the function; forward
  otherwise, and whenever reverse mode refuses (a function it does not handle yet, an output
  that is not a scalar): forward mode is exact too, so the choice never changes a result
  beyond rounding. ``fmad.train`` and ``fmad.Objective`` use it.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from fmad import api
from fmad.errors import FmadError, ReverseModeError
from fmad.reverse_api import ReverseFunction, public

MODES = ("forward", "reverse", "auto")
# From benchmarks/bench_reverse.py (the MLP, N = 256, d = 8): reverse mode is ahead of forward
# mode from about this many parameter elements on (see docs/how-it-works.md, Reverse mode).
AUTO_THRESHOLD = 8


def differentiate(fn=None, *, wrt=None, mode: str = "forward"):
    """Differentiate ``fn`` by rewriting its source.

    Use bare (``@fmad.differentiate``: every parameter) or with ``wrt=["w", "b"]``. The
    result, called like ``fn``, returns ``(value, grads)``: ``value`` is exactly what ``fn``
    returns and ``grads`` maps each ``wrt`` name to the derivative of ``value`` with respect
    to it, shaped ``shape(value) + shape(parameter)``. ``mode``: ``"forward"`` (default),
    ``"reverse"`` (one scalar output; cheap for many parameters) or ``"auto"`` (see
    :mod:`fmad.modes`).
    """
    if mode not in MODES:
        raise FmadError(f"unknown mode {mode!r}; choose one of {', '.join(map(repr, MODES))}")
    if fn is None:
        return lambda f: differentiate(f, wrt=wrt, mode=mode)
    if mode == "forward":
        return api.differentiate(fn, wrt=wrt)
    if hasattr(fn, "__wrapped__") and hasattr(fn, "wrt"):  # differentiate again
        fn = fn.__wrapped__
    if mode == "reverse":
        if isinstance(fn, types.MethodType):
            raise ReverseModeError(
                fn.__func__.__code__.co_filename,
                fn.__func__.__code__.co_firstlineno,
                "a bound method is not supported by reverse mode yet; differentiate the "
                "function and pass the object, or use mode='forward'",
            )
        return public(ReverseFunction(fn, wrt))
    return auto(fn, wrt)


def jacobian(fn=None, *, wrt=None, mode: str = "forward"):
    """The same as :func:`differentiate`: ``grads[name]`` has shape ``shape(value) +
    shape(parameter)``, the Jacobian (reverse mode: a scalar output only)."""
    return differentiate(fn, wrt=wrt, mode=mode)


def size_of(values: list[Any]) -> int:
    """The number of elements of the ``wrt`` arguments (the leaves of lists, tuples and
    dicts of arrays included)."""
    total = 0
    for v in values:
        if isinstance(v, dict):
            v = list(v.values())
        total += (
            size_of(v)
            if isinstance(v, list | tuple)
            else v.size
            if isinstance(v, np.ndarray)
            else 1
        )
    return total


def auto(fn: Callable[..., Any], wrt) -> Callable[..., Any]:
    forward = api.differentiate(fn, wrt=wrt)
    try:
        reverse = None if isinstance(fn, types.MethodType) else ReverseFunction(fn, forward.wrt)
    except ReverseModeError:
        reverse = None
    if reverse is None:
        forward.mode = "forward"
        return forward
    state = {"reverse": True}

    def function(*args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if state["reverse"]:
            try:
                values = reverse.arguments(args, kwargs)
            except ReverseModeError:
                values = None
            if values is not None and size_of(values) > AUTO_THRESHOLD:
                try:
                    return reverse(*args, **kwargs)
                except ReverseModeError:
                    state["reverse"] = False  # not a scalar output: forward from now on
        return forward(*args, **kwargs)

    functools.update_wrapper(function, fn)
    for attr in ("__fmad__", "wrt", "source", "flat_source", "show", "source_for"):
        setattr(function, attr, getattr(forward, attr))
    function.__wrapped__ = fn
    function.__fmad_reverse__ = reverse
    function.mode = "auto"
    function.reverse_source = reverse.source
    return function
