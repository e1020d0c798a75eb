"""The helper generated code calls for a function registered with
``fmad.register(f, jvp=...)``: the user's rule gives the tangent of one direction, and this
calls it once per direction of an array parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def jvp_call(jvp: Any, primals: tuple, tangents: tuple, value: Any, k: int | None, **kw) -> Any:
    """The tangent of ``value = f(*primals, **kw)`` from ``jvp(primals, tangents, **kw)``.

    ``tangents`` holds one tangent per positional argument, broadcast to the argument's
    shape, or None for an argument that carries no derivative (the user's rule gets zeros
    of the argument's shape there). ``k``: the number of directions of an array parameter
    (each tangent has a trailing axis of that length); the rule is called once per
    direction with that direction's slice, and the results are stacked on a trailing axis.
    """
    shape = np.shape(value)

    def one(ts: list) -> Any:
        out = jvp(primals, tuple(ts), **kw)
        return out if np.shape(out) == shape else np.broadcast_to(out, shape)

    def zeros(x: Any) -> Any:
        return 0.0 if isinstance(x, float | int) else np.zeros(np.shape(x))

    if k is None:
        return one([zeros(x) if t is None else t for x, t in zip(primals, tangents, strict=True)])
    columns = []
    for j in range(k):
        ts = [zeros(x) if t is None else t[..., j] for x, t in zip(primals, tangents, strict=True)]
        columns.append(one(ts))
    return np.stack(columns, axis=-1)
