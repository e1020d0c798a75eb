"""``fmad.Objective``: a differentiated function as SciPy's optimizers want it.

``scipy.optimize.minimize(obj, obj.pack(params), jac=True, hess=obj.hess)`` works on one flat
float64 vector; the user's function takes named parameters of any shape. An ``Objective``
maps between the two (``pack``, ``unpack``: ``wrt`` order, each parameter raveled) and gives
the value with the flat gradient, the dense Hessian, Hessian-vector products, and, for a
function returning a vector of residuals, the residuals and their Jacobian
(``scipy.optimize.least_squares(obj.residuals, x0, jac=obj.jac)``). SciPy is not imported.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fmad import pytree
from fmad.errors import WrtError
from fmad.higher import hessian, hvp
from fmad.modes import differentiate


class Objective:
    """``Objective(fn, wrt, data)``: ``fn`` called with ``data`` (argument name -> value) and
    the parameters ``wrt`` taken from a flat vector ``x``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        wrt: Sequence[str] | str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if hasattr(fn, "__fmad__"):
            fn = fn.__fmad__.original
        self.function = fn
        self.gradient = differentiate(fn, wrt=wrt, mode="auto")
        self.wrt: tuple[str, ...] = self.gradient.wrt
        self.data = dict(data or {})
        overlap = sorted(set(self.data) & set(self.wrt))
        if overlap:
            raise WrtError(f"{overlap} are both data and parameters (wrt) of the objective")
        self._hessian = hessian(fn, self.wrt)
        self._hvp = hvp(fn, self.wrt)
        self.shapes: dict[str, tuple[int, ...] | None] | None = None
        # the structure of each parameter that is a container (its shape: (its size,))
        self.trees: dict[str, pytree.Node] = {}

    # -- the flat vector ---------------------------------------------------------------------
    def pack(self, params: Mapping[str, Any]) -> np.ndarray:
        """The flat float64 vector of ``params`` (name -> number or array), in ``wrt`` order;
        it also fixes the shapes :meth:`unpack` gives back."""
        missing = [w for w in self.wrt if w not in params]
        if missing:
            raise WrtError(f"pack needs a value for every parameter; missing {missing}")
        self.trees = {}
        for w in self.wrt:
            value = params[w]
            if isinstance(value, dict | list | tuple) and pytree.is_tree(value):
                try:
                    self.trees[w] = pytree.structure(value)
                except pytree.NotATree as exc:
                    raise WrtError(
                        f"pack cannot take the parameter {w!r}: it holds {exc}"
                    ) from None
        self.shapes = {
            w: (pytree.size(self.trees[w]),)
            if w in self.trees
            else None
            if isinstance(params[w], int | float)
            else np.shape(params[w])
            for w in self.wrt
        }
        return np.concatenate([self.flat_one(w, params[w], ()) for w in self.wrt])

    def flat_one(self, w: str, value: Any, lead: tuple[int, ...]) -> np.ndarray:
        """One parameter (or its derivative, each leaf ``lead + shape``) as ``lead + (n,)``;
        a container's leaves in a fixed order (dict keys sorted, see fmad.pytree)."""
        if w in self.trees:
            return pytree.flatten(value, lead)
        return np.reshape(np.asarray(value, dtype=float), lead + (-1,))

    def unpack(self, x: np.ndarray) -> dict[str, Any]:
        """The parameters in ``x``, each in its shape (a number as a Python float)."""
        if self.shapes is None:
            raise WrtError("call pack(params) first: it fixes the shape of each parameter")
        x = np.asarray(x, dtype=float)
        if x.shape != (self.size,):
            raise WrtError(f"x has shape {x.shape}; the parameters have {self.size} numbers")
        params: dict[str, Any] = {}
        start = 0
        for w, shape in self.shapes.items():
            n = math.prod(shape) if shape is not None else 1
            part = x[start : start + n]
            if w in self.trees:  # the container again, leaf by leaf (numbers as floats)
                params[w] = pytree.unflatten(self.trees[w], part, scalar=True)
            else:
                params[w] = float(part[0]) if shape is None else part.reshape(shape).copy()
            start += n
        return params

    @property
    def size(self) -> int:
        assert self.shapes is not None
        return sum(math.prod(s) if s is not None else 1 for s in self.shapes.values())

    def flat(self, grads: Mapping[str, Any], lead: tuple[int, ...] = ()) -> np.ndarray:
        """Derivatives by parameter (each ``lead + shape``) as one array ``lead + (size,)``."""
        parts = [self.flat_one(w, grads[w], lead) for w in self.wrt]
        return np.concatenate(parts, axis=-1)

    # -- what optimizers call -----------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(value, flat gradient)``: for ``minimize(obj, x0, jac=True)``."""
        value, grads = self.gradient(**self.data, **self.unpack(x))
        if np.size(value) != 1:
            raise WrtError(
                f"the objective returned a value of shape {np.shape(value)}; minimize needs "
                "one number (use residuals and jac for least_squares)"
            )
        return float(np.reshape(value, ())), self.flat(grads)

    def hess(self, x: np.ndarray) -> np.ndarray:
        """The dense Hessian ``(size, size)``: for ``minimize(..., hess=obj.hess)``."""
        _, _, blocks = self._hessian(**self.data, **self.unpack(x))
        rows = [self.flat(blocks[a], self.lead(a)) for a in self.wrt]
        return np.concatenate([np.reshape(r, (-1, self.size)) for r in rows], axis=0)

    def hessp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The Hessian times ``p``: for ``minimize(..., hessp=obj.hessp)``."""
        args = self.arguments(self.unpack(x))
        directions = self.unpack(p)
        _, _, hv = self._hvp(args, directions)
        return self.flat(hv)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """The function's (vector) value: for ``least_squares(obj.residuals, x0, ...)``."""
        return np.atleast_1d(np.asarray(self.function(**self.data, **self.unpack(x)), float))

    def jac(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian of the residuals, ``(m, size)``: for ``least_squares(..., jac=...)``."""
        value, grads = self.gradient(**self.data, **self.unpack(x))
        m = int(np.size(value))
        lead = (m,) if np.size(value) != 1 else ()
        rows = [np.reshape(self.flat_one(w, grads[w], lead), (m, -1)) for w in self.wrt]
        return np.concatenate(rows, axis=1)

    # -- helpers --------------------------------------------------------------------------
    def lead(self, name: str) -> tuple[int, ...]:
        assert self.shapes is not None
        return self.shapes[name] or ()

    def arguments(self, params: Mapping[str, Any]) -> tuple:
        """The positional arguments of the function for ``params`` and the data."""
        bound = inspect.signature(self.function).bind(**self.data, **params)
        bound.apply_defaults()
        return tuple(bound.args)
