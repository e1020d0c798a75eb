"""One function read and flattened once, each variant of it given a copy.

A differentiated function gets several variants (numbers; scalar parameters bundled with
array data; array parameters of given shapes), and each helper one per activity pattern; each
starts from the same read, fenced, flattened and rewritten tree (:func:`fmad.transform.prepare`).
:func:`shared` makes that tree once per (function, reserved names, pins) and hands each
caller a copy of it and of the namer and scope that made it, so every variant finds exactly
what a fresh read would have given it (tests/test_reuse.py compares the two).

Nothing stale is handed out: the entry goes with the function (a weak key); it is made again
when a global or closure name it was matched through has been rebound since (as variants
are, :func:`fmad.resolve.still_bound`); the scope's view of the closure is read again from
the cells on each copy. A refusal raises every time (nothing is kept of a failed read).
"""

from __future__ import annotations

import copy
import types
import weakref
from collections.abc import Callable
from typing import Any

from fmad import build as B
from fmad.naming import Namer
from fmad.resolve import Scope, still_bound
from fmad.source import FunctionSource

# False: every variant reads and flattens the function itself (tests compare the two)
ENABLED = True

Prepared = tuple[FunctionSource, Scope, Namer, Any]  # src, scope, namer, the flat tree

CACHE: weakref.WeakKeyDictionary[types.FunctionType, dict[Any, Prepared]] = (
    weakref.WeakKeyDictionary()
)


def shared(fn: types.FunctionType, key: Any, make: Callable[[], Prepared]) -> Prepared:
    """``make()``'s result for ``fn`` and ``key``, made once and then copied."""
    if not ENABLED:
        return make()
    table = CACHE.get(fn)
    kept = table.get(key) if table is not None else None
    if kept is not None and still_bound(kept[1].watched()):
        return duplicate(kept)
    made = CACHE.setdefault(fn, {})[key] = make()  # kept as made: only copies go out
    return duplicate(made)


def duplicate(prepared: Prepared) -> Prepared:
    """A copy no pass of one variant can change for another: the flat tree (the passes
    change it in place; its copy shares no node with the source's tree, which they only
    read), the namer's names and the scope's tables."""
    src, scope, namer, flat = prepared
    return src, copy_scope(scope), copy_namer(namer), B.clone(flat)


def copy_namer(namer: Namer) -> Namer:
    new = copy.copy(namer)
    new._taken = set(namer._taken)
    new._counters = dict(namer._counters)
    return new


def copy_scope(scope: Scope) -> Scope:
    new = copy.copy(scope)
    new.local_names = set(scope.local_names)
    new.seen = dict(scope.seen)
    new.injected = dict(scope.injected)
    new.pinned = dict(scope.pinned)
    new.classes = dict(scope.classes)
    fn = scope.fn
    new.closure = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            new.closure[name] = cell.cell_contents
        except ValueError:  # an empty cell: not bound yet
            pass
    return new
