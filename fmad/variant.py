"""One variant of a differentiated function: the units the driver made for one
:class:`~fmad.spec.Spec`, compiled at first use, and their printed code."""

from __future__ import annotations

import linecache
import threading
import types

from fmad import liveness
from fmad.compile import compile_unit, running_source
from fmad.printer import to_source
from fmad.resolve import still_bound
from fmad.spec import Spec
from fmad.transform import Session


class Variant:
    """The function compiled for one :class:`~fmad.spec.Spec` (the kinds of its ``wrt``
    arguments: numbers, or arrays of given shapes). ``free``: its code frees each value
    after its last use (False where array data never reach it: with bundles, they take
    the bundled variant)."""

    def __init__(self, fn: types.FunctionType, spec: Spec, free: bool = True) -> None:
        session = Session()
        self.spec = spec
        self.unit = session.top(fn, spec)
        self.units = session.units
        self.free = free
        self.compiled: types.FunctionType | None = None  # see function
        self.lock = threading.Lock()
        self.watched = session.watched()
        for unit in self.units:
            unit.printed()  # printing completes the trees' locations, which export reads

    @property
    def function(self) -> types.FunctionType:
        """The compiled unit, made at its first use, once (a lock: two threads may call
        first at the same time) (the scalar calls of the variant for numbers run the public
        function, which holds its own copy)."""
        compiled = self.compiled
        if compiled is None:
            with self.lock:
                if self.compiled is None:
                    shapes = {
                        n: s for n, s in zip(self.spec.wrt, self.spec.shapes, strict=True) if s
                    }
                    self.compiled = compile_unit(self.unit, {}, free=self.free, shapes=shapes)
                compiled = self.compiled
        return compiled

    @function.setter
    def function(self, compiled: types.FunctionType) -> None:
        """Code compiled from the unit after a later pass changed it (fmad.higher)."""
        self.compiled = compiled

    def current(self) -> bool:
        """False once a function this variant's rules were chosen from has been rebound."""
        return still_bound(self.watched)

    def source(self, printer: str = "ast", comments: bool = True, free: bool = False) -> str:
        """The generated code: helpers first, then the function; ``comments``: a
        ``# line N:`` comment before the code of each line of the user's source; ``free``:
        with the ``del`` lines of the code that runs (:mod:`fmad.liveness`)."""
        texts = [
            u.printed()
            if printer == "ast" and comments
            else to_source(u.tree, printer, linecache.getlines(u.filename) if comments else None)
            for u in self.units
        ]
        if free:  # the code that runs: copies coalesced, del lines
            texts = [liveness.freed(running_source(u, printer, comments)[0]) for u in self.units]
        return "\n\n".join(t.rstrip("\n") for t in texts) + "\n"

    def flat_source(self, printer: str = "ast", comments: bool = True) -> str:
        lines = linecache.getlines(self.unit.filename) if comments else None
        return to_source(self.unit.flat, printer, lines)
