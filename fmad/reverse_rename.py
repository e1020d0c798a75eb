"""Renaming in reverse mode's primal: each name bound once.

After :meth:`ReverseRename.rename`, in the primal the adjoints read: a second assignment to
a name binds a fresh name (and the reads after it read that one), so every value the
backward pass needs is still there when it runs; each ``if`` records the branch it took in
a flag and merges what its branches assign (:mod:`fmad.reverse_branches`), each loop keeps
its names on its tape (:mod:`fmad.reverse_loops`); a read of a name that may be unbound
(first bound in a loop or one branch) is checked where the original would raise.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad.reverse_loops import later_reads


class ReverseRename:
    """The renaming part of :class:`fmad.reverse.Reverse` (a mixin: it uses the emitter's
    ``params``, ``namer``, ``rev``, ``refuse_at`` and the branches' and loops' parts)."""

    def rename(self, body: list[ast.stmt], final_reads: list[str]) -> list[ast.stmt]:
        """A fresh name for each second assignment to a name (and the reads after it); each
        ``if`` records the branch it took in a flag and merges what its branches assign."""
        self.current: dict[str, str] = {p: p for p in self.params}
        self.branch_local: set[str] = set()  # bound in one branch only: not read after it
        self.loop_local: set[str] = set()  # of those, first bound inside a loop
        self.maybe: dict[str, str] = {}  # renamed name -> the user's, maybe still unbound
        self.checked: set[str] = set()  # of those, the ones a read checked already
        later_reads(body, set(final_reads))
        return self.rename_block(body, set(self.params))

    def rename_block(self, body: list[ast.stmt], bound: set[str]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        checked = set(self.checked)
        for s in body:
            s = B.clone(s)
            if isinstance(s, ast.Assign):
                s.value = self.renamed(s.value)
                out.extend(self.read_checks(s.value, s))
                if getattr(s, "fmad_return", False):  # a wrong output: at its return's line
                    out.append(ast.copy_location(ast.Expr(B.call(self.rev("seed"), s.value)), s))
                name = s.targets[0].id
                self.current[name] = self.namer.fresh(name) if name in bound else name
                s.targets[0] = ast.copy_location(B.store(self.current[name]), s)
                bound.add(name)
                self.branch_local.discard(name)
            elif isinstance(s, ast.If):
                s = self.rename_if(s, bound)
                out.extend(self.read_checks(s.test, s))
            elif isinstance(s, ast.For | ast.While):
                out.extend(self.rename_for(s, bound))
                continue
            elif isinstance(s, ast.Expr | ast.Assert):
                for field in ("value", "test", "msg"):
                    if getattr(s, field, None) is not None:
                        setattr(s, field, self.renamed(getattr(s, field)))
                out.extend(self.read_checks(s, s))
            out.append(s)
        self.checked = checked
        return out

    def renamed(self, node: ast.expr | None) -> ast.expr | None:
        current = self.current
        for n in B.names(node, ast.Load):
            if n in self.branch_local:
                where = "inside a loop" if n in self.loop_local else "in only one branch of an 'if'"
                self.refuse_at(node, f"reading '{n}', bound {where}")

        class Rename(ast.NodeTransformer):
            def visit_Name(self, n: ast.Name) -> ast.Name:
                if isinstance(n.ctx, ast.Load) and n.id in current:
                    return ast.copy_location(B.name(current[n.id]), n)
                return n

        return Rename().visit(node) if node is not None else None
