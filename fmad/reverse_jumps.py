"""Reverse mode: ``break``, ``continue``, ``return`` before the end and loop ``else`` blocks
rewritten as flags and guards, before the reverse pass (reverse mode only).

The reverse pass (:mod:`fmad.reverse`, :mod:`fmad.reverse_branches`,
:mod:`fmad.reverse_loops`) handles ``if`` statements and loops whose bodies run to their end;
this pass gives it those, on a flattened body that ends with ``return``:

- ``return v`` before the end becomes ``result = v; returned = True``, with ``returned =
  False`` and ``result = None`` at the top of the function and one ``return result`` at its
  end (a function without an early ``return`` is left as it is);
- ``break`` becomes ``broke = True`` (``broke = False`` before the loop) and ``continue``
  becomes ``skip = True`` (``skip = False`` at the top of the body);
- the statements after a statement that may have set one of those flags run under a guard,
  ``if not (broke or skip):``; a statement after an unconditional jump is dropped (it never
  runs);
- a loop that a ``break`` (or a ``return``) may end gets ``fmad_stop``, the expression
  (``broke``, ``returned``, ``broke or returned``) after which it must stop: the reverse
  pass ends its body with ``if broke: break``, after the copies of the carried values and
  the tape's push, so the loop runs exactly the iterations the original ran;
- a loop's ``else`` block runs after it under ``if not broke:`` (unguarded when the loop
  has no ``break``), its own jumps belonging to the enclosing loop.

The statements the flags guard are the original's, in the same order, on the same values:
the value stays the original's bit for bit. The flags have no derivative; what the adjoint
reads of them is the branch flag of each guard (:mod:`fmad.reverse_branches`).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable

from fmad import build as B

JUMPS = (ast.Return, ast.Break, ast.Continue)


class Loop:
    """One loop's flags, named when first needed."""

    def __init__(self, fresh: Callable[[str], str]) -> None:
        self.fresh = fresh
        self.names: dict[str, str] = {}

    def flag(self, kind: str) -> str:
        if kind not in self.names:
            self.names[kind] = self.fresh(kind)
        return self.names[kind]


class Jumps:
    """``fresh`` names a new variable; ``refuse(node, what)`` raises the refusal."""

    def __init__(self, fresh: Callable[[str], str], refuse: Callable) -> None:
        self.fresh = fresh
        self.refuse = refuse
        self.returned: str | None = None
        self.result: str | None = None

    def function(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """``body`` (ending with ``return``) with no jump left but its final ``return``."""
        final = body[-1] if body and isinstance(body[-1], ast.Return) else None
        early = any(isinstance(s, ast.Return) and s is not final for s in B.statements(body))
        loops = [s for s in B.statements(body) if isinstance(s, ast.For | ast.While)]
        jumps = any(isinstance(s, JUMPS[1:]) for s in B.statements(body))
        if (final is None and not early) or not (early or jumps or any(s.orelse for s in loops)):
            return body  # nothing to do (or no 'return' at all: the reverse pass refuses it)
        body = copy.deepcopy(body)  # the flattened tree stays as it was (shown, read)
        final = body[-1] if final is not None else None
        if not early:
            return [*self.block(body[:-1], None)[0], final]
        self.returned, self.result = self.fresh("returned"), self.fresh("result")
        start = [
            ast.copy_location(B.assign(self.returned, B.const(False)), body[0]),
            ast.copy_location(B.assign(self.result, B.const(None)), body[0]),
        ]
        stmts, _ = self.block(body, None, final)
        end = ast.copy_location(ast.Return(value=B.name(self.result)), final or body[-1])
        return [*start, *stmts, end]

    def block(
        self, stmts: list[ast.stmt], loop: Loop | None, final: ast.stmt | None = None
    ) -> tuple[list[ast.stmt], set[str]]:
        """The statements without jumps, and the flags they may have set that the rest of
        the enclosing block must test."""
        out: list[ast.stmt] = []
        for i, s in enumerate(stmts):
            after: list[ast.stmt] = []
            if isinstance(s, ast.Return):
                value = s.value if s.value is not None else B.const(None)
                if not isinstance(value, ast.Name | ast.Constant):
                    what = "returning several values (reverse mode needs one scalar output)"
                    self.refuse(s, what)
                out.append(ast.copy_location(B.assign(self.result, value), s))
                if s is final:
                    return out, set()
                out.append(ast.copy_location(B.assign(self.returned, B.const(True)), s))
                return out, {self.returned}
            if isinstance(s, ast.Break | ast.Continue):
                flag = loop.flag("broke" if isinstance(s, ast.Break) else "skip")
                out.append(ast.copy_location(B.assign(flag, B.const(True)), s))
                return out, {flag}
            if isinstance(s, ast.If):
                s.body, then_flags = self.block(s.body, loop)
                s.orelse, else_flags = self.block(s.orelse, loop)
                s.body = s.body or [ast.copy_location(ast.Pass(), s)]
                new, flags = [s], then_flags | else_flags
            elif isinstance(s, ast.For | ast.While):
                new, flags, after = self.loop(s)
            else:
                new, flags = [s], set()
            out.extend(new)
            if not flags and not after:
                continue
            rest = after + stmts[i + 1 :]
            if not rest:
                return out, flags
            guarded, more = self.block(rest, loop, final)
            if not flags:
                out.extend(guarded)
            elif guarded:
                test = ast.UnaryOp(op=ast.Not(), operand=either(sorted(flags)))
                out.append(ast.copy_location(ast.If(test=test, body=guarded, orelse=[]), s))
            return out, flags | more
        return out, set()

    def loop(self, s: ast.For | ast.While) -> tuple[list[ast.stmt], set[str], list[ast.stmt]]:
        """The statements before the loop and the loop; the flags the code after it must
        test (a ``return`` inside it); the ``else`` block, to run after it."""
        inner = Loop(self.fresh)
        s.body, flags = self.block(s.body, inner)
        s.body = s.body or [ast.copy_location(ast.Pass(), s)]
        before: list[ast.stmt] = []
        broke, skip = inner.names.get("broke"), inner.names.get("skip")
        if skip is not None and skip in flags:
            s.body.insert(0, ast.copy_location(B.assign(skip, B.const(False)), s))
        stop = [f for f in (broke, self.returned) if f is not None and f in flags]
        if broke is not None and broke in flags:
            before.append(ast.copy_location(B.assign(broke, B.const(False)), s))
        if stop:
            s.fmad_stop = either(stop)
        after = s.orelse
        s.orelse = []
        if after and broke in flags:
            test = ast.UnaryOp(op=ast.Not(), operand=B.name(broke))
            after = [ast.copy_location(ast.If(test=test, body=after, orelse=[]), s)]
        outside = {self.returned} & flags
        return [*before, s], outside, after


def either(flags: list[str]) -> ast.expr:
    if len(flags) == 1:
        return B.name(flags[0])
    return ast.BoolOp(op=ast.Or(), values=[B.name(f) for f in flags])


def without_jumps(body: list[ast.stmt], fresh: Callable[[str], str], refuse) -> list[ast.stmt]:
    """``body`` (a flattened function body ending with ``return``) rewritten without
    ``break``, ``continue``, loop ``else`` and ``return`` before the end (see above)."""
    return Jumps(fresh, refuse).function(body)
