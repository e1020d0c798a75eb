"""Statement forms of reverse mode: a part of :class:`fmad.reverse.Reverse`.

A pass over the checked, flattened (and inlined) body, before the renaming, that turns the
forms below into the assignments ``name = operation`` the rest of reverse mode handles:

- ``x += e`` (flattened ``t = x + e`` then ``x = t``, marked ``fmad_augmented``) is that
  rebinding, as in forward mode, where :mod:`fmad.mutation` proves ``x``'s object is the
  function's own (a number, or an array or list it computed that nothing else sees). Where
  it cannot, the same call-time check as forward mode's,
  :func:`fmad.runtime.check_rebind`, runs before it: a number or a tuple passes (Python
  rebinds those too), a list or an array (possibly shared, or the caller's) is refused;
- ``p, q = a, b`` (a display of names and numbers after flattening) becomes one
  assignment per name, in order, through a fresh name where a later element reads a name
  an earlier one rebinds (``p, q = q, p`` is ``p_1 = p; p = q; q = p_1``);
- ``p, q = pair`` becomes ``fmad_forms.unpack(pair, 2)`` (Python's check of the length,
  and a refusal of what is not a list, a tuple or an array) then ``p = pair[0]``,
  ``q = pair[1]``;
- ``xs.append(v)``, on a list built by a display, bound once, that nothing else sees
  (the mutation check) and that is read only after its last append, becomes
  ``len_xs = len(xs)`` then ``xs = fmad_forms.appended(xs, v, len_xs)`` (the same list,
  appended in place; the adjoint of ``v`` is item ``len_xs`` of the list's adjoint);
- ``for v in xs:`` over a value with a derivative becomes ``for k in range(n):``
  ``v = xs[k]``, ``n = len(xs)``, after ``fmad_forms.sequence(xs)`` (a list, a tuple or
  an array; a dict, whose loop gives its keys, is refused when called); the loop's target
  then gets its adjoint through the index's transpose.

The containers these forms read (lists and tuples of values with a derivative) have
adjoints of their own: :class:`fmad.runtime_forms.Adjoints`, see :mod:`fmad.reverse_containers`.
"""

from __future__ import annotations

import ast
import builtins
import copy
import types

from fmad import build as B
from fmad import mutation
from fmad import runtime_forms as fmad_forms
from fmad.activity import Activity


def appends_to(s: ast.stmt, scope) -> str | None:
    """The list ``xs`` of a statement ``xs.append(v)`` (a local name, one argument)."""
    if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)):
        return None
    call, func = s.value, s.value.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "append"
        and isinstance(func.value, ast.Name)
        and scope.is_local(func.value.id)
        and len(call.args) == 1
        and not call.keywords
        and isinstance(call.args[0], ast.Name | ast.Constant)
    ):
        return func.value.id
    return None


class ReverseForms:
    """Needs the host's ``flat``, ``scope``, ``filename``, ``nested``, ``namer``, ``unit``,
    ``wrt`` and ``refuse_at``."""

    def forms_(self, attr: str) -> ast.expr:
        return B.attr(B.name(self.unit.inject(fmad_forms, "fmad_forms")), attr)

    def forms(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """``body`` (checked) with the forms above rewritten (see the module docstring)."""
        self.appended: set[str] = set()
        tree = copy.copy(self.flat)
        tree.body = body
        activity = Activity(tree, self.scope)
        active = activity.active(set(self.wrt))
        self.guard_augmented(tree, activity, active)
        self.check_appends(tree.body)
        self.loads: dict[str, int] = {}
        for node in ast.walk(ast.Module(body=tree.body, type_ignores=[])):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self.loads[node.id] = self.loads.get(node.id, 0) + 1
        return self.forms_block(tree.body, active)

    def check_appends(self, body: list[ast.stmt]) -> None:
        """A list appended to (``xs.append(v)``) is bound once, by a display before its
        first append, and read only after its last append (in a later statement of the
        function's body): its adjoint statements read it after the whole primal ran."""
        lists: dict[str, list[int]] = {}
        for i, top in enumerate(body):
            for s in B.statements([top]):
                name = appends_to(s, self.scope)
                if name is not None:
                    lists.setdefault(name, []).append(i)
        for name, where in lists.items():
            first, last = min(where), max(where)
            binds = [
                (i, s)
                for i, top in enumerate(body)
                for s in B.statements([top])
                if isinstance(s, ast.Assign | ast.For)
                and name
                in B.names(s.targets[0] if isinstance(s, ast.Assign) else s.target, ast.Store)
            ]
            display = len(binds) == 1 and binds[0][0] < first
            if not display or not isinstance(binds[0][1].value, ast.List):
                self.refuse_at(
                    body[first],
                    f"appending to '{name}', not a list built by a display '[...]' once "
                    "before its appends",
                )
            for top in body[binds[0][0] + 1 : last + 1]:
                for s in B.statements([top]):
                    own = appends_to(s, self.scope) == name
                    parts = [s.target, s.iter] if isinstance(s, ast.For) else [s]
                    if isinstance(s, ast.If | ast.While):
                        parts = [s.test]
                    reads = [n for p in parts for n in B.names(p, ast.Load) if n == name]
                    if len(reads) > (1 if own else 0):
                        self.refuse_at(
                            s,
                            f"reading the list '{name}' before its last append (reverse "
                            "mode reads a list after the whole function ran)",
                        )
            self.appended |= {name}

    def guard_augmented(self, tree: ast.FunctionDef, activity: Activity, active: set) -> None:
        """Forward mode's check of ``x += e`` (:mod:`fmad.mutation`) on this body: its
        refusals, and its call-time checks inserted before the rebinding."""
        if not any(
            getattr(s, "fmad_augmented", None) or appends_to(s, self.scope)
            for s in B.statements(tree.body)
        ):
            return
        host = types.SimpleNamespace(
            flat=tree,
            scope=self.scope,
            filename=self.filename,
            nested=self.nested,
            activity=activity,
            active={"": active},
            seeds={"": dict.fromkeys(self.wrt)},
            top=True,
            unit=self.unit,
        )
        mutation.check(host, lambda: self.unit.module("fmad.runtime"))

    def forms_block(self, body: list[ast.stmt], active: set) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in body:
            if isinstance(s, ast.If):
                s.body = self.forms_block(s.body, active)
                s.orelse = self.forms_block(s.orelse, active)
            elif isinstance(s, ast.For):
                s.body = self.forms_block(s.body, active)
                hoisted = out[-1] if out else None  # `e = enumerate(xs, start=1)`; `for ... in e`
                if (
                    isinstance(hoisted, ast.Assign)
                    and isinstance(hoisted.value, ast.Call)
                    and isinstance(s.iter, ast.Name)
                    and [hoisted.targets[0]] == [t for t in hoisted.targets if t is not None]
                    and isinstance(hoisted.targets[0], ast.Name)
                    and hoisted.targets[0].id == s.iter.id
                    and self.loads.get(s.iter.id) == 1
                ):
                    merged = copy.copy(s)
                    merged.iter = hoisted.value
                    if self.loop_parts(merged, active) is not None:
                        out.pop()
                        s = merged
                out.extend(self.index_loop(s, active))
                continue
            elif isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Tuple | ast.List):
                out.extend(ast.copy_location(t, s) for t in self.unpack(s, active))
                continue
            elif (name := appends_to(s, self.scope)) is not None:
                out.extend(ast.copy_location(t, s) for t in self.append(s, name))
                continue
            out.append(s)
        return out

    def append(self, s: ast.Expr, name: str) -> list[ast.stmt]:
        """``xs.append(v)``: ``k = len(xs)`` then ``xs = fmad_forms.appended(xs, v, k)``
        (the same list, appended to in place; the adjoint of ``v`` is ``dxs[k]``)."""
        if self.scope.lookup_name("len") is not builtins.len:
            self.refuse_at(s, f"appending to '{name}' where 'len' is rebound")
        position = self.namer.fresh(f"len_{name}")
        self.scope.local_names.add(position)
        self.scope.injected[self.unit.inject(fmad_forms, "fmad_forms")] = fmad_forms
        size = B.assign(position, B.call(B.name("len"), B.name(name)))
        call = B.call(self.forms_("appended"), B.name(name), s.value.args[0], B.name(position))
        new = B.assign(name, call)
        new.fmad_appended = True
        return [size, new]

    def unpack(self, s: ast.Assign, active: set) -> list[ast.stmt]:
        targets = s.targets[0].elts
        if len(s.targets) != 1 or not all(isinstance(t, ast.Name) for t in targets):
            self.refuse_at(s, "unpacking into something other than names")
        names = [t.id for t in targets]
        value = s.value
        if isinstance(value, ast.Tuple | ast.List):
            if len(value.elts) != len(targets) or not all(
                isinstance(e, ast.Name | ast.Constant) for e in value.elts
            ):
                self.refuse_at(s, "this unpacking")
            out: list[ast.stmt] = []
            elts = list(value.elts)
            for i, name in enumerate(names):  # a later element reading `name`: kept first
                if any(isinstance(e, ast.Name) and e.id == name for e in elts[i + 1 :]):
                    kept = self.namer.fresh(name)
                    self.scope.local_names.add(kept)
                    out.append(B.assign(kept, B.name(name)))
                    elts[i + 1 :] = [
                        B.name(kept) if isinstance(e, ast.Name) and e.id == name else e
                        for e in elts[i + 1 :]
                    ]
            out.extend(B.assign(n, e) for n, e in zip(names, elts, strict=True))
            return out
        if not isinstance(value, ast.Name) or value.id in names:
            self.refuse_at(s, "unpacking this value")
        where = B.const(f"{self.filename}:{s.lineno}")
        check = B.call(self.forms_("unpack"), value, B.const(len(names)), where)
        out = [ast.Expr(check)]
        out.extend(B.assign(n, B.subscript(value, B.const(i))) for i, n in enumerate(names))
        return out

    def index_loop(self, s: ast.For, active: set) -> list[ast.stmt]:
        """``for v in xs:`` (or ``enumerate(xs)``, ``zip(xs, ys)``) over a value with a
        derivative, as a loop over its indices."""
        parts = self.loop_parts(s, active)
        if parts is None:
            return [s]
        seqs, targets, start = parts
        index, count = self.namer.fresh("k"), self.namer.fresh(f"len_{seqs[0].id}")
        self.scope.local_names |= {index, count}
        first: list[ast.stmt] = []
        for target, value in targets:
            if value is None:  # enumerate's counter
                value = (
                    B.name(index)
                    if start == 0
                    else B.binop(B.name(index), ast.Add(), B.const(start))
                )
            else:
                value = B.subscript(value, B.name(index))
            if isinstance(target, ast.Name):
                first.append(ast.Assign(targets=[target], value=value))
                continue
            item = self.namer.fresh(f"{seqs[0].id}_k")  # `p, q = pairs[k]`: through a name
            self.scope.local_names.add(item)
            first += [B.assign(item, value), ast.Assign(targets=[target], value=B.name(item))]
        for t in first:
            ast.copy_location(t, s)
        loop = ast.For(
            target=B.store(index),
            iter=B.call(B.name("range"), B.name(count)),
            body=self.forms_block(first, active) + s.body,
            orelse=s.orelse,
        )
        if hasattr(s, "fmad_stop"):  # a break ends it (fmad.reverse_jumps)
            loop.fmad_stop = s.fmad_stop
        lengths = [B.call(B.name("len"), x) for x in seqs]
        size = B.assign(count, lengths[0] if len(seqs) == 1 else B.call(B.name("min"), *lengths))
        strict = parts_strict(s.iter)
        where = B.const(f"{self.filename}:{s.lineno}")
        check = ast.Expr(B.call(self.forms_("sequence"), strict, where, *seqs))
        return [ast.copy_location(check, s), ast.copy_location(size, s), loop]

    def loop_parts(self, s: ast.For, active: set):
        """``(sequences, [(target, sequence or None for a counter)], start)`` of a loop
        reverse mode runs by index, or None (left to the loop pass)."""
        if any(
            self.scope.lookup_name(f) is not getattr(builtins, f) for f in ("len", "range", "min")
        ):
            return None  # rebound: left to the loop pass (refused there)
        it, target = s.iter, s.target
        if isinstance(it, ast.Name):
            return ([it], [(target, it)], 0) if it.id in active else None
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)):
            return None
        func = self.scope.lookup_name(it.func.id)
        args = it.args
        if not all(isinstance(a, ast.Name) for a in args) or not any(a.id in active for a in args):
            return None
        pair = isinstance(target, ast.Tuple) and not any(
            isinstance(e, ast.Starred) for e in target.elts
        )
        if func is builtins.enumerate and len(args) == 1 and pair and len(target.elts) == 2:
            start = {k.arg: k.value for k in it.keywords}.get("start", B.const(0))
            if set(k.arg for k in it.keywords) - {"start"} or not (
                isinstance(start, ast.Constant) and type(start.value) is int
            ):
                return None
            return [args[0]], [(target.elts[0], None), (target.elts[1], args[0])], start.value
        if func is builtins.zip and args and pair and len(target.elts) == len(args):
            keywords = {k.arg: k.value for k in it.keywords}
            strict = keywords.get("strict", B.const(False))
            if set(keywords) - {"strict"} or not isinstance(strict, ast.Constant):
                return None
            return list(args), list(zip(target.elts, args, strict=True)), 0
        return None


def parts_strict(it: ast.expr) -> ast.expr:
    """``zip(..., strict=True)``'s flag (False for anything else)."""
    if isinstance(it, ast.Call):
        for k in it.keywords:
            if k.arg == "strict":
                return k.value
    return B.const(False)
