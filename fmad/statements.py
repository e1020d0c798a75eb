"""Assignments and returns in the forward pass (a mixin of :class:`fmad.forward.Forward`).

``z = <operation>`` is followed by one tangent statement per direction in which ``z`` is
active; ``a, b = ...`` unpacks the tangents the same way as the values; ``return v`` returns
the value with its tangents (a helper: ``v, dv_dw, ...``; the differentiated function
too: one flat tuple, the value then one tangent per direction).
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad import pytree
from fmad.activity import classify
from fmad.tangent import Direction, Tangent, zero


class Statements:
    """The assignment and return part of the forward pass; ``self`` is a ``Forward``."""

    def assign(self, s: ast.Assign) -> list[ast.stmt]:
        target = s.targets[0]
        value = s.value
        if isinstance(value, ast.Call):
            call_target = classify(value, self.scope, self.nested)
            if call_target.kind in ("user", "nested") and any(
                self.is_active(value, d.name) for d in self.directions
            ):
                return self.call_helper(s, call_target)
        out: list[ast.stmt] = [s]
        self.partials = {}
        if isinstance(target, ast.Name):
            z = target.id
            self.target = z
            for d in self.directions:
                if z not in self.active[d.name]:
                    continue
                if z in self.seed_points and z == d.name:
                    seed = B.call(
                        self.contexts[d.name].rt("scalar_seed"), B.name(z), ast.Constant(z)
                    )
                    out.append(B.assign(self.tname(z, d.name), seed))
                    self.known.mark(z, d.name, full=True)
                    continue
                t = self.value_tangent(value, B.name(z), d.name)
                self.flush(out)
                out.append(self.set_tangent(z, d.name, t))
        elif isinstance(target, ast.Tuple | ast.List):
            out.extend(self.unpack(target, value))
        elif isinstance(target, ast.Subscript):
            if any(
                self.is_active(value, d.name) or self.is_active(target.value, d.name)
                for d in self.directions
            ):
                self.refuse(
                    "item assignment into a list or array that carries a derivative "
                    f"('{ast.unparse(target)} = ...') is not supported by fmad; build a new "
                    "list (append) and convert it with np.array, or use np.where"
                )
        return out

    def unpack(self, target: ast.Tuple | ast.List, value: ast.expr) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        names = B.stored_names(target)
        self.refuse_tree(value, "unpacking")
        for d in self.directions:
            active = [n for n in names if n in self.active[d.name]]
            if not active:
                continue
            if isinstance(value, ast.Tuple | ast.List):
                # a, b = b, a * b: the tangents move in parallel too
                pairs = [
                    (t, self.tangent(v, d.name))
                    for t, v in zip(target.elts, value.elts, strict=True)
                ]
                pairs = [
                    (t, tv)
                    for t, tv in pairs
                    if isinstance(t, ast.Name) and t.id in self.active[d.name]
                ]
                exprs = [tv.expr if tv is not None else self.zero(t.id, d.name) for t, tv in pairs]
                stores = [B.store(self.tname(t.id, d.name)) for t, _ in pairs]
                for t, tv in pairs:
                    self.known.mark(t.id, d.name, full=False)
                    if tv is None and self.single(t.id, d.name):
                        self.known.zero(t.id, d.name)  # always zero: later rules skip it
                out.append(
                    ast.Assign(
                        targets=[ast.Tuple(elts=stores, ctx=ast.Store())], value=B.tuple_(exprs)
                    )
                )
                continue
            t = self.tangent(value, d.name)
            if t is None:
                out.extend(B.assign(self.tname(n, d.name), self.zero(n, d.name)) for n in active)
                for n in active:
                    self.known.mark(n, d.name, full=False)
                    if self.single(n, d.name):
                        self.known.zero(n, d.name)
                continue
            source = self.contexts[d.name].full(t, value)
            out.append(ast.Assign(targets=[self.tangent_target(target, d.name)], value=source))
            for n in active:
                self.known.mark(n, d.name, full=False)
            self.mark_tree_parts(active, d.name)
            for e in target.elts:  # '*rest': a list, its tangent a list of tangents
                if isinstance(e, ast.Starred) and e.value.id in self.active[d.name]:
                    self.known.mark(e.value.id, d.name, full=True, container=True)
        return out

    def tangent_target(self, target: ast.expr, d: str) -> ast.expr:
        """The same structure as ``target`` with tangent names (``_`` for inactive ones)."""
        if isinstance(target, ast.Name):
            if target.id in self.active[d]:
                return B.store(self.tname(target.id, d))
            return B.store(self.namer.fresh("unused"))
        if isinstance(target, ast.Starred):
            return ast.Starred(value=self.tangent_target(target.value, d), ctx=ast.Store())
        return ast.Tuple(elts=[self.tangent_target(e, d) for e in target.elts], ctx=ast.Store())

    # -- returns ---------------------------------------------------------------------------
    def make_return(self, value: ast.expr | None) -> ast.Return:
        """``return v`` -> ``return (v, dv_dw, dv_db)``: the value, then one tangent per
        direction in order. The differentiated function and its helpers return the same flat
        tuple (plain Python, so fmad can transform it again); the public wrapper pairs the
        tangents with their names (``fmad.api``)."""
        if self.top:
            for e in value.elts if isinstance(value, ast.Tuple) else [value]:
                if self.tree(e) is not None and self.tree(e) != pytree.Leaf():
                    self.refuse(
                        f"the function returns '{e.id}', a container that carries a "
                        "derivative; return a number or an array (the loss)"
                    )
            grads = [self.gradient(value, d) for d in self.directions]
            result = value if value is not None else ast.Constant(None)
            return ast.Return(value=B.tuple_([result, *grads]))
        tangents: list[ast.expr] = []
        for d in self.directions:
            t = self.tangent_of_result(value, d.name)
            self.result_full[d.name] = self.result_full[d.name] and t is not None and t.full
            if t is not None:
                self.result_zero.discard(d.name)
                if t.container:
                    self.result_container.add(d.name)
            tangents.append(t.expr if t is not None else zero())
        return ast.Return(value=B.tuple_([value or ast.Constant(None), *tangents]))

    def tangent_of_result(self, value: ast.expr | None, d: str) -> Tangent | None:
        if isinstance(value, ast.Tuple):
            ts = [self.tangent(e, d) for e in value.elts]
            if all(t is None for t in ts):
                return None
            return Tangent(B.tuple_([t.expr if t is not None else zero() for t in ts]))
        return self.tangent(value, d)

    def gradient(self, value: ast.expr | None, d: Direction) -> ast.expr:
        """The raw tangent of the returned value; the caller shapes it (see fmad.api)."""
        if value is None:
            return ast.Constant(None)
        if isinstance(value, ast.Tuple):
            return B.tuple_([self.gradient(e, d) for e in value.elts])
        t = self.tangent(value, d.name)
        if isinstance(value, ast.Name) and t is not None and isinstance(t.expr, ast.Name):
            # a copy (reads elsewhere use the name copied) is returned by its own name:
            # dloss_db, set to loss_partial
            return B.name(self.tname(value.id, d.name))
        return t.expr if t is not None else zero()
