"""``for`` loops in the forward pass (a mixin of :class:`fmad.forward.Forward`).

``for x in xs`` over a list or array that carries a derivative becomes
``for i, x in enumerate(xs)`` with ``dx_dw = dxs_dw[i]`` first in the body: the item's
tangent is the same row of the iterable's tangent. ``enumerate`` and ``zip`` are unpacked the
same way, part by part (``for a, b in zip(xs, ys)`` becomes ``for i, a, b in zip(count(),
xs, ys)``).
"""

from __future__ import annotations

import ast
import itertools

from fmad import build as B


class Loops:
    """The loop part of the forward pass; ``self`` is a ``Forward``."""

    def for_(self, s: ast.For) -> list[ast.stmt]:
        active_dirs = [d for d in self.directions if self.is_active(s.iter, d.name)]
        targets = B.stored_names(s.target)
        prologue: list[ast.stmt] = []
        for d in self.directions:
            if d in active_dirs:
                continue
            for n in targets:
                if n in self.active[d.name]:
                    prologue.append(self.set_tangent(n, d.name, None))
        target, it = s.target, s.iter
        if active_dirs:
            index = self.namer.fresh("i")
            is_call = isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
            if is_call and it.func.id == "reversed":
                self.refuse(
                    "iterating with reversed() over values that carry a derivative is "
                    "not supported by fmad; loop over an index range instead",
                    s,
                )
            if is_call and it.func.id == "enumerate":
                if (
                    not (isinstance(target, ast.Tuple) and len(target.elts) == 2)
                    or it.keywords
                    or len(it.args) != 1
                ):
                    self.refuse("use 'for i, x in enumerate(xs)' when xs carries a derivative", s)
                index_node = target.elts[0]
                if not isinstance(index_node, ast.Name):
                    self.refuse("the index of enumerate() must be a plain name", s)
                index = index_node.id
                parts = [(target.elts[1], it.args[0])]
            elif is_call and it.func.id == "zip":
                if not (isinstance(target, ast.Tuple) and len(target.elts) == len(it.args)):
                    self.refuse(
                        "unpack zip() into as many names as it has arguments when its "
                        "arguments carry derivatives",
                        s,
                    )
                parts = list(zip(target.elts, it.args, strict=True))
                if it.keywords:  # zip(..., strict=True): a counter would be the longest
                    target = ast.Tuple(elts=[B.store(index), target], ctx=ast.Store())
                    it = B.call(B.name("enumerate"), it)
                else:
                    # zip(count(), xs, ys): the same flat header shape, so that a second pass
                    # (fmad's output transformed again) meets a zip, not a nested one
                    counter = B.call(B.name(self.inject(itertools.count, "count")))
                    target = ast.Tuple(elts=[B.store(index), *target.elts], ctx=ast.Store())
                    it = ast.Call(func=it.func, args=[counter, *it.args], keywords=[])
            else:
                parts = [(target, it)]
                target = ast.Tuple(elts=[B.store(index), target], ctx=ast.Store())
                it = B.call(B.name("enumerate"), it)
            for d in active_dirs:
                ctx = self.contexts[d.name]
                bound = {n for part_target, _ in parts for n in B.stored_names(part_target)}
                for n in targets:  # bound from no item (an enumerate index): no derivative
                    if n in self.active[d.name] and n not in bound:
                        prologue.append(self.set_tangent(n, d.name, None))
                for part_target, source in parts:
                    self.refuse_tree(source, "iterating over")
                    names = [n for n in B.stored_names(part_target) if n in self.active[d.name]]
                    if not names:
                        continue
                    t = self.tangent(source, d.name)
                    if t is None:
                        prologue.extend(self.set_tangent(n, d.name, None) for n in names)
                        continue
                    element = B.subscript(ctx.full(t, source), B.name(index))
                    prologue.append(
                        ast.Assign(
                            targets=[self.tangent_target(part_target, d.name)], value=element
                        )
                    )
                    for n in names:
                        self.known.mark(n, d.name, full=False)
                    self.mark_tree_parts(names, d.name)
        body = prologue + self.block(s.body)
        return [
            ast.For(
                target=target,
                iter=it,
                body=body or [ast.Pass()],
                orelse=self.block(s.orelse),
                type_comment=None,
            )
        ]
