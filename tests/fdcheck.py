"""Shared checks for the test suite: central finite differences and a gradient checker.

``check_gradients`` pins the contract every differentiated function must keep: the value is
bit-for-bit the original function's, the inputs are not mutated, the gradients come back in
``wrt`` order with shape ``np.shape(value) + np.shape(param)``, and they agree with central
finite differences of the original function.
"""

from __future__ import annotations

import copy
import math
import numbers
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

EPS = float(np.finfo(float).eps)
# Relative step of the central differences: small enough that the O(h**2) truncation error
# is ~1e-12 for smooth functions of order one, large enough that rounding stays ~1e-10.
RELATIVE_STEP = 1e-6


def step_for(x: float, h: float | None = None) -> float:
    """The finite-difference step for an input of value ``x``."""
    if h is not None:
        return h
    return RELATIVE_STEP * max(1.0, abs(float(x)))


def _evaluate(f: Callable[..., Any], args: Mapping[str, Any]) -> np.ndarray:
    # A fresh copy per call: the function under test may not mutate its inputs, and the
    # finite differences must not be disturbed if it does.
    return np.asarray(f(**copy.deepcopy(dict(args))), dtype=float)


def _with_value(args: Mapping[str, Any], name: str, index: tuple[int, ...], value: float) -> dict:
    """A copy of ``args`` with element ``index`` of argument ``name`` set to ``value``."""
    new_args = copy.deepcopy(dict(args))
    old = new_args[name]
    if np.ndim(old) == 0:
        new_args[name] = value
        return new_args
    array = np.array(old, dtype=float)
    array[index] = value
    # Keep the argument's kind: a list stays a list, so list semantics (+, *) are unchanged.
    if isinstance(old, list):
        new_args[name] = array.tolist()
    elif isinstance(old, tuple):
        new_args[name] = tuple(array.tolist())
    else:
        new_args[name] = array.astype(np.asarray(old).dtype)
    return new_args


def central_fd(
    f: Callable[..., Any], args: Mapping[str, Any], name: str, h: float | None = None
) -> np.ndarray:
    """Central finite differences of ``f(**args)`` with respect to argument ``name``.

    Works for a scalar argument and, element by element, for an array (or list) argument.
    Returns an array of shape ``np.shape(value) + np.shape(args[name])``.
    """
    param = np.asarray(args[name], dtype=float)
    value_shape = np.shape(_evaluate(f, args))
    result = np.empty(value_shape + param.shape)
    for index in np.ndindex(param.shape):
        x = float(param[index])
        step = step_for(x, h)
        upper = _evaluate(f, _with_value(args, name, index, x + step))
        lower = _evaluate(f, _with_value(args, name, index, x - step))
        # Divide by the step actually taken, which rounding may have changed slightly.
        taken = (x + step) - (x - step)
        result[(...,) + index] = (upper - lower) / taken
    return result


def fd_noise(f: Callable[..., Any], args: Mapping[str, Any], name: str) -> float:
    """Rounding error to expect in ``central_fd`` for ``name``: eps * |f| / h, with margin."""
    param = np.asarray(args[name], dtype=float)
    magnitude = float(np.max(np.abs(_evaluate(f, args)), initial=0.0))
    smallest_step = min((step_for(float(x)) for x in param.ravel()), default=1.0)
    return 64.0 * EPS * magnitude / smallest_step


def same_value(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are the same value bit for bit: type, shape, dtype, bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, types.SimpleNamespace):
        return same_value(vars(a), vars(b))
    if isinstance(a, np.ndarray | np.generic | float | int | complex | bool):
        x, y = np.asarray(a), np.asarray(b)
        # tobytes() compares the bits, so -0.0 != 0.0 and NaN payloads count.
        return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
    return a == b


def describe_value(a: Any) -> str:
    return f"{a!r} ({type(a).__name__}, shape {np.shape(a) if _is_numeric(a) else '-'})"


def _is_numeric(a: Any) -> bool:
    return isinstance(a, np.ndarray | np.generic | float | int | list | tuple)


def check_gradients(
    dfn: Any,
    args: Mapping[str, Any],
    rtol: float = 1e-6,
    atol: float = 1e-8,
    *,
    expected: Mapping[str, Any] | None = None,
    h: float | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Call ``dfn(**args)`` and check its value and gradients; return ``(value, grads)``.

    ``expected`` gives reference gradients for ``wrt`` names that are not arguments (an
    intermediate local): those cannot be checked by finite differences of the arguments.
    The finite-difference comparison allows ``atol + rtol * |fd|`` plus the rounding error
    the differences themselves carry (see ``fd_noise``).
    """
    original = dfn.__wrapped__
    before = copy.deepcopy(dict(args))
    value, grads = dfn(**args)
    assert same_value(dict(args), before), "fmad mutated its inputs"

    reference = original(**copy.deepcopy(before))
    assert same_value(value, reference), (
        f"primal value differs from the original function's: "
        f"{describe_value(value)} != {describe_value(reference)}"
    )

    wrt = tuple(dfn.wrt)
    assert isinstance(grads, dict), f"grads should be a dict, got {type(grads).__name__}"
    assert tuple(grads) == wrt, f"grads keys {tuple(grads)} are not wrt {wrt} in order"

    expected = dict(expected or {})
    for name in wrt:
        grad = grads[name]
        if name in expected:
            want = np.asarray(expected[name], dtype=float)
            tolerance = atol + rtol * np.abs(want)
        else:
            assert name in args, f"no argument and no expected gradient for {name!r}"
            param = args[name]
            want_shape = np.shape(value) + np.shape(param)
            assert np.shape(grad) == want_shape, (
                f"d/d{name}: shape {np.shape(grad)}, expected {want_shape}"
            )
            if isinstance(param, float) and isinstance(value, float):
                # a scalar: Python number or numpy scalar (the type follows the arithmetic:
                # d(int(x) * w)/dw is int(x) itself)
                assert isinstance(grad, numbers.Real) and np.ndim(grad) == 0, (
                    f"d/d{name} of a float loss wrt a float should be a real scalar, "
                    f"got {type(grad).__name__}"
                )
            want = central_fd(original, before, name, h)
            tolerance = atol + rtol * np.abs(want) + fd_noise(original, before, name)
        got = np.asarray(grad, dtype=float)
        assert np.all(np.isfinite(got)), f"d/d{name} is not finite: {grad!r}"
        error = np.abs(got - want)
        assert np.all(error <= tolerance), (
            f"d/d{name} at {before}: fmad {grad!r}, reference {want!r}, "
            f"|error| {error!r} > tolerance {tolerance!r}"
        )
    return value, grads


def assert_close_to(actual: Any, want: float, rel: float = 1e-12) -> None:
    """Scalar comparison used for hand-derived references."""
    assert math.isclose(float(actual), want, rel_tol=rel, abs_tol=rel), f"{actual!r} != {want!r}"
