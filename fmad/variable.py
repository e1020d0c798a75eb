"""Named values whose arithmetic records what was computed, in the names of the results.

>>> w = Variable("w", 1.5)
>>> w * 2
Variable('w_mult_2', 3.0)
>>> -(w * Variable("X", 2.0) + 1)
Variable('neg_w_mult_X_add_1', -4.0)

A :class:`Variable` is value-only: it carries no gradient and records no tape. Derivatives
come from :func:`fmad.differentiate`, which accepts Variables as arguments (it uses their
``.value``); :func:`fmad.train` assigns new values to their ``.value``.

Operators (``+ - * / ** @``, their reflected forms, unary ``-`` and ``+``) take Variables,
numbers and numpy arrays and return a new Variable; no operand is ever changed, and
``v += 1`` rebinds ``v`` to a new Variable. Names use the same words as the names in the
generated code (:data:`fmad.naming.OP_NAMES`); an array operand is called ``array``.
NumPy functions work too: ``np.exp(v)`` is ``Variable('exp_v', ...)``, ``X * v`` with an
array ``X`` is a Variable, ``np.mean(v)`` is ``Variable('mean_v', ...)``, and
``np.asarray(v)`` is the value.

Comparisons are not overloaded: ``==`` is identity (Variables are hashable, mutable
containers), ``<`` and friends raise ``TypeError``, as do numpy comparisons such as
``X < v``. Compare the ``.value`` instead.
"""

from __future__ import annotations

import ast
import numbers
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from fmad.naming import OP_NAMES, describe

# NumPy ufuncs that are operators are named with the operator's word, so ``X * v`` and
# ``v * X`` read alike.
_UFUNC_WORDS: dict[np.ufunc, str] = {
    np.add: OP_NAMES[ast.Add],
    np.subtract: OP_NAMES[ast.Sub],
    np.multiply: OP_NAMES[ast.Mult],
    np.true_divide: OP_NAMES[ast.Div],
    np.floor_divide: OP_NAMES[ast.FloorDiv],
    np.remainder: OP_NAMES[ast.Mod],
    np.power: OP_NAMES[ast.Pow],
    np.matmul: OP_NAMES[ast.MatMult],
    np.negative: OP_NAMES[ast.USub],
    np.positive: OP_NAMES[ast.UAdd],
}
_COMPARISONS = {np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal}


def _binary(op: type[ast.operator], compute: Callable[[Any, Any], Any]) -> tuple[Callable, ...]:
    """The forward and reflected methods of one binary operator."""
    word = OP_NAMES[op]

    def forward(self: Variable, other: Any) -> Variable:
        if not _is_operand(other):
            return NotImplemented
        return Variable(
            f"{self.name}_{word}_{_describe(other)}", compute(self.value, _value(other))
        )

    def reflected(self: Variable, other: Any) -> Variable:
        if not _is_operand(other):
            return NotImplemented
        return Variable(
            f"{_describe(other)}_{word}_{self.name}", compute(_value(other), self.value)
        )

    return forward, reflected


class Variable:
    """A named value: ``Variable("w", 0.5)``. See the module docstring for the operators."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a Variable's name must be a str, not {type(name).__name__}")
        if isinstance(value, Variable):
            value = value.value
        elif isinstance(value, list | tuple) and _numbers_only(value):
            # A list would repeat under `*` and concatenate under `+`; arithmetic wants arrays.
            # (A container of arrays or dicts, a parameter tree, stays as it is: see train.)
            value = np.asarray(value)
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"Variable({self.name!r}, {self.value!r})"

    __add__, __radd__ = _binary(ast.Add, operator.add)
    __sub__, __rsub__ = _binary(ast.Sub, operator.sub)
    __mul__, __rmul__ = _binary(ast.Mult, operator.mul)
    __truediv__, __rtruediv__ = _binary(ast.Div, operator.truediv)
    __pow__, __rpow__ = _binary(ast.Pow, operator.pow)
    __matmul__, __rmatmul__ = _binary(ast.MatMult, operator.matmul)

    def __neg__(self) -> Variable:
        return Variable(f"{OP_NAMES[ast.USub]}_{self.name}", -self.value)

    def __pos__(self) -> Variable:
        return Variable(f"{OP_NAMES[ast.UAdd]}_{self.name}", +self.value)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy:
            return np.array(self.value, dtype=dtype)
        return np.asarray(self.value, dtype=dtype)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or "out" in kwargs:
            return NotImplemented
        if ufunc in _COMPARISONS:
            raise TypeError(
                f"fmad.Variable does not support numpy's {ufunc.__name__}; "
                "compare the .value instead"
            )
        result = ufunc(*(_value(x) for x in inputs), **kwargs)
        word = _UFUNC_WORDS.get(ufunc)
        if word is not None and len(inputs) == 2:
            name = f"{_describe(inputs[0])}_{word}_{_describe(inputs[1])}"
        else:
            name = "_".join([word or ufunc.__name__, *map(_describe, inputs)])
        if isinstance(result, tuple):  # divmod, modf, frexp: one Variable per output
            return tuple(Variable(f"{name}_{i}", part) for i, part in enumerate(result))
        return Variable(name, result)

    def __array_function__(
        self, func: Callable[..., Any], types: Any, args: tuple, kwargs: dict
    ) -> Any:
        result = func(*_unwrap(args), **_unwrap(kwargs))
        if isinstance(result, np.ndarray | numbers.Number) and not isinstance(result, bool):
            return Variable("_".join([func.__name__, *map(_describe, args)]), result)
        # Shapes, flags, tuples of arrays: not values one computes with; return them as they are.
        return result


def _is_operand(x: Any) -> bool:
    return isinstance(x, Variable | numbers.Number | np.ndarray)


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Variable) else x


def _describe(x: Any) -> str:
    """How an operand appears in a result's name."""
    if isinstance(x, Variable):
        return x.name
    if isinstance(x, np.ndarray):
        return "array"
    if isinstance(x, np.generic):
        x = x.item()  # np.float64(2.0) is described like 2.0
    if isinstance(x, numbers.Number):
        return describe(ast.Constant(x))
    if isinstance(x, list | tuple):
        return "_".join(map(_describe, x))
    return type(x).__name__


def _unwrap(x: Any) -> Any:
    """``x`` with every Variable in it (also inside lists, tuples, dicts) replaced by its value."""
    if isinstance(x, Variable):
        return x.value
    if isinstance(x, list):
        return [_unwrap(item) for item in x]
    if isinstance(x, tuple):
        return tuple(_unwrap(item) for item in x)
    if isinstance(x, dict):
        return {key: _unwrap(item) for key, item in x.items()}
    return x


def _numbers_only(value: list | tuple) -> bool:
    """An evenly nested list or tuple of numbers (not a container of arrays or dicts)."""
    if any(isinstance(v, dict | np.ndarray) for v in value):
        return False
    if not all(isinstance(v, list | tuple) is isinstance(value[0], list | tuple) for v in value):
        return False
    if value and isinstance(value[0], list | tuple):
        return all(_numbers_only(v) for v in value) and len({len(v) for v in value}) == 1
    return True
