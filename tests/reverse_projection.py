"""A scalar projection of a rule row that returns an array, for reverse mode.

Reverse mode needs one real scalar output, but most rule rows return an array
(``np.reshape(x * p, ...)``). ``projected(fn, args)`` writes a module holding the row's
function and ``projected_<name>(<its parameters>, weights_)`` that returns
``np.sum(<name>(...) * weights_)``, with fixed random ``weights_`` of the row's output shape.
Reverse mode inlines the row's function (a helper of the same module, fmad/reverse_inline.py),
so the row's rule runs in reverse mode; the caller compares it with forward mode of the same
projection (tests/reverse_check.compare).
"""

from __future__ import annotations

import inspect
import os
import tempfile
import textwrap
import zlib
from typing import Any

import numpy as np

_DIR = tempfile.mkdtemp(prefix="fmad_projected_")
_MADE: dict[Any, Any] = {}


def needs_projection(value: Any) -> bool:
    """An output reverse mode cannot seed: an array of more than one element."""
    return isinstance(value, np.ndarray) and value.size != 1


def projected(fn, args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``(projection, its arguments)`` for a row function returning an array (its value at
    ``args`` gives the weights' shape)."""
    value = fn(**args)
    key = (fn, np.shape(value))
    if key not in _MADE:
        _MADE[key] = _make(fn, list(args), np.shape(value))
    projection, weights = _MADE[key]
    return projection, {**args, "weights_": weights}


def _make(fn, names: list[str], shape: tuple[int, ...]):
    name = fn.__name__
    label = f"{fn.__module__}.{fn.__qualname__}{shape}"
    rng = np.random.default_rng(zlib.crc32(label.encode()))
    weights = rng.uniform(-1.0, 1.0, shape)
    source = textwrap.dedent(inspect.getsource(fn))
    params = ", ".join(names)
    call = ", ".join(f"{n}={n}" for n in names)
    source += (
        f"\n\ndef projected_{name}({params}, weights_):\n"
        f"    return np_projection_.sum({name}({call}) * weights_)\n"
    )
    path = os.path.join(_DIR, f"projected_{len(_MADE)}_{name}.py")
    with open(path, "w") as handle:
        handle.write(source)
    namespace = dict(fn.__globals__)
    namespace.update(__name__=f"fmad_projected_{len(_MADE)}", __file__=path, np_projection_=np)
    exec(compile(source, path, "exec"), namespace)
    return namespace[f"projected_{name}"], weights
