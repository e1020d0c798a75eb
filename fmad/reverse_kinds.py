"""What reverse-mode variants know of a value: its kind and shape (:data:`Info`), from the
arguments of a call (:func:`key_of`, :func:`info_of_key`) through numpy's rules for the
results of broadcasting, ``@`` and reductions, and Python's for numbers
(:mod:`fmad.reverse_shapes` walks the code with them). None: unknown.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from fmad import build as B

# what is known of a value: (kind, shape); kinds: "float" and "int" (Python's), "number"
# (another number: a numpy scalar, a bool, a complex; shape ()), "array" (an np.ndarray)
Info = tuple[str, tuple[int, ...]]
PYTHON = {float: "float", int: "int"}
NUMBERS = (bool, complex, np.number, np.bool_)


def key_of(value: Any) -> Any:
    """The part of a variant's key one argument gives: its shape and dtype for an array
    (the dtype's number: an int hashes fast; the byte order does not change what a variant
    does), else its type (a number's type says its kind; any other type makes it unknown)."""
    return (value.shape, value.dtype.num) if type(value) is np.ndarray else type(value)


def info_of_key(key: Any) -> Info | None:
    if isinstance(key, tuple):
        return ("array", key[0])
    if key in PYTHON:
        return (PYTHON[key], ())
    if isinstance(key, type) and issubclass(key, NUMBERS):
        return ("number", ())
    return None


def scalar_or_array(shape: tuple[int, ...]) -> Info:
    """numpy's result of that shape: a numpy scalar for shape (), else an array."""
    return ("array", shape) if shape else ("number", ())


def broadcast(*infos: Info | None) -> Info | None:
    if any(i is None for i in infos):
        return None
    try:
        shape = np.broadcast_shapes(*(i[1] for i in infos))
    except ValueError:  # the primal raises there
        return None
    return scalar_or_array(shape)


def matmul_shape(a: Info | None, b: Info | None) -> Info | None:
    """``a @ b`` for arrays of at least one dimension (numpy's rules), else unknown."""
    if a is None or b is None or a[0] != "array" or b[0] != "array":
        return None
    sa, sb = a[1], b[1]
    if not sa or not sb:
        return None
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        return None
    if len(sa) == 1 and len(sb) == 1:
        return ("number", ())
    if len(sb) == 1:
        return ("array", sa[:-1])
    if len(sa) == 1:
        return ("array", sb[:-2] + sb[-1:])
    try:
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        return None
    return ("array", (*batch, sa[-2], sb[-1]))


def python_arithmetic(op: ast.operator, a: Info, b: Info, right: ast.expr) -> Info | None:
    """Python numbers: an int or a float for the operators whose result type is certain."""
    both_int = a[0] == b[0] == "int"
    if isinstance(op, ast.Add | ast.Sub | ast.Mult | ast.FloorDiv | ast.Mod):
        return ("int" if both_int else "float", ())
    if isinstance(op, ast.Div):
        return ("float", ())
    n = B.constant_value(right)
    if isinstance(op, ast.Pow) and type(n) is int:  # float ** int is a float, never complex
        return ("int" if a[0] == "int" and n >= 0 else "float", ())
    return ("number", ())


def reduced(x: Info | None, axis: ast.expr, keepdims: ast.expr) -> Info | None:
    """The result of summing (or averaging, max, min) ``x`` over ``axis``."""
    if x is None or not isinstance(keepdims, ast.Constant) or keepdims.value not in (0, 1):
        return None
    keep = bool(keepdims.value)
    shape = x[1]
    if isinstance(axis, ast.Constant) and axis.value is None:
        axes = tuple(range(len(shape)))
    else:
        a = B.constant_value(axis)
        if type(a) is not int or not -len(shape) <= a < len(shape):
            return None
        axes = (a % len(shape),)
    if keep:
        return scalar_or_array(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return scalar_or_array(tuple(n for i, n in enumerate(shape) if i not in axes))
