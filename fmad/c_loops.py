"""``for`` and ``while`` in C for the C export (a part of :class:`fmad.c_lower.Lowerer`).

A ``for`` runs over ``range(...)`` (its bounds evaluated once, a step of 0 raising as in
Python), over a 1-D array argument, a tuple of numbers, or ``enumerate``/``zip`` of those
(``zip(..., strict=True)`` fails where Python raises; without it, the shortest length). The
loop variable is assigned from a hidden counter at the top of each pass, so reassigning it
in the body changes nothing, as in Python. An ``else`` runs unless a ``break`` set the
loop's flag.
"""

from __future__ import annotations

import ast
from typing import Any

from fmad.c_expr import literal
from fmad.c_flow import stores
from fmad.c_types import MISSING, SCALARS, Tup, join, value_type

INDENT = "    "


class Loops:
    """(mixed into :class:`fmad.c_lower.Lowerer`, whose state it uses)"""

    # -- what a loop binds (for the types) ---------------------------------------------------
    def loop_bindings(self: Any, node: ast.For) -> list[tuple[ast.expr, Any]]:
        iterable, target = node.iter, node.target
        fn = self.resolver.obj(iterable.func) if isinstance(iterable, ast.Call) else None
        if fn is range:
            return [(target, "long")]
        if fn is enumerate and isinstance(target, ast.Tuple) and len(target.elts) == 2:
            inner = ast.For(target=target.elts[1], iter=iterable.args[0], body=[], orelse=[])
            return [(target.elts[0], "long"), *self.loop_bindings(inner)]
        if fn is zip and isinstance(target, ast.Tuple) and len(target.elts) == len(iterable.args):
            pairs = []
            for t, source in zip(target.elts, iterable.args, strict=True):
                pairs.append((t, self.item_type(source)))
            return [(t, k) for t, k in pairs if k is not None]
        kind = self.item_type(iterable)
        return [] if kind is None else [(target, kind)]

    def item_type(self: Any, source: ast.expr) -> Any:
        if isinstance(source, ast.Tuple):
            item = None
            for element in source.elts:
                kind = self.etype(element)
                if kind is None:
                    return None
                item = join(item, kind)
            return item
        kind = self.etype(source)
        if kind == "arr1":
            return "double"
        if isinstance(kind, Tup):
            return kind.item
        if kind is None and isinstance(source, ast.Name):
            if self.resolver.name(source.id) is MISSING:  # a local: its type comes later
                return None
        raise self.no(
            source,
            f"a for loop over '{ast.unparse(source)}'",
            "loop over range(...), a 1-D array argument (give its shape in shapes: "
            "{'xs': (None,)}, on the command line --shapes xs=N), a tuple of numbers, or "
            "enumerate or zip of those",
        )

    # -- for -------------------------------------------------------------------------------
    def for_(self: Any, node: ast.For, depth: int) -> list[str]:
        pad, inner = INDENT * depth, INDENT * (depth + 1)
        iterable = node.iter
        fn = self.resolver.obj(iterable.func) if isinstance(iterable, ast.Call) else None
        flag = self.fresh("broke") if node.orelse else None
        lines = [f"{pad}{{"]
        if flag:
            lines.append(f"{inner}int {flag} = 0;")
        if fn is range:
            head, assign = self.range_head(node, iterable, depth + 1, lines)
        else:
            head, assign = self.sequence_head(node, fn, depth + 1, lines)
        self.loops.append(flag)
        body = self.mark(stores(node.target), depth + 2) + self.block(node.body, depth + 2)
        self.loops.pop()
        lines += [f"{inner}{head} {{", *assign, *body, f"{inner}}}"]
        if flag:
            lines += [f"{inner}if (!{flag}) {{", *self.block(node.orelse, depth + 2), f"{inner}}}"]
        return [*lines, f"{pad}}}"]

    def range_head(self: Any, node: ast.For, call: ast.Call, depth: int, lines: list[str]):
        pad = INDENT * depth
        args = call.args
        if call.keywords or not 1 <= len(args) <= 3 or not isinstance(node.target, ast.Name):
            raise self.no(call, f"'{ast.unparse(call)}'", "use range(stop), range(a, b, step)")
        start, stop, step = (
            (ast.Constant(0), args[0], ast.Constant(1)) if len(args) == 1 else (*args, None)[:3]
        )
        step = step or ast.Constant(1)
        k = self.fresh("k")
        bounds = [self.want_int(a, "a range bound") for a in (start, stop, step)]
        lines.append(f"{pad}long {k}_start = {bounds[0]}, {k}_stop = {bounds[1]};")
        lines.append(f"{pad}long {k}_step = {bounds[2]};")
        lines += self.guard(depth)
        constant = step.value if isinstance(step, ast.Constant) else None
        if constant is None or constant == 0:
            self.fails = True
            lines.append(f"{pad}if ({k}_step == 0) goto fm_fail; /* ValueError */")
        if constant is not None and constant > 0:
            test = f"{k} < {k}_stop"
        elif constant is not None and constant < 0:
            test = f"{k} > {k}_stop"
        else:
            test = f"{k}_step > 0 ? {k} < {k}_stop : {k} > {k}_stop"
        head = f"for (long {k} = {k}_start; {test}; {k} += {k}_step)"
        return head, [f"{pad}{INDENT}{self.cname(node.target.id)} = {k};"]

    def sequence_head(self: Any, node: ast.For, fn: Any, depth: int, lines: list[str]):
        pad = INDENT * depth
        iterable, target = node.iter, node.target
        index_target = None
        if fn is enumerate:
            if len(iterable.args) != 1 or iterable.keywords or not isinstance(target, ast.Tuple):
                raise self.no(iterable, f"'{ast.unparse(iterable)}'", "use enumerate(xs)")
            index_target, target = target.elts
            iterable = iterable.args[0]
            fn = self.resolver.obj(iterable.func) if isinstance(iterable, ast.Call) else None
        strict = False
        if fn is zip:
            keywords = {k.arg: k.value for k in iterable.keywords}
            strict_node = keywords.pop("strict", ast.Constant(False))
            if keywords or not isinstance(strict_node, ast.Constant):
                raise self.no(iterable, f"'{ast.unparse(iterable)}'", "use zip(a, b, strict=..)")
            strict = bool(strict_node.value)
            sources, targets = iterable.args, target.elts if isinstance(target, ast.Tuple) else []
            if len(targets) != len(sources):
                raise self.no(node, "unpacking zip into another number of names", "")
        else:
            sources, targets = [iterable], [target]
        k, n = self.fresh("k"), self.fresh("n")
        items, lengths = [], []
        for source in sources:
            array, length = self.sequence(source, depth, lines)
            items.append(array)
            lengths.append(length)
        lines.append(f"{pad}size_t {n} = {lengths[0]};")
        for length in lengths[1:]:
            if strict:
                self.fails = True
                lines.append(f"{pad}if ({length} != {n}) goto fm_fail; /* ValueError */")
            else:
                lines.append(f"{pad}if ({length} < {n}) {n} = {length};")
        assign = []
        if index_target is not None:
            assign.append(f"{pad}{INDENT}{self.lvalue(index_target)} = (long){k};")
        for t, array in zip(targets, items, strict=True):
            if not isinstance(t, ast.Name):
                raise self.no(node, f"the loop target '{ast.unparse(t)}'", "use names")
            assign.append(f"{pad}{INDENT}{self.lvalue(t)} = {array}[{k}];")
        return f"for (size_t {k} = 0; {k} < {n}; {k}++)", assign

    def sequence(self: Any, source: ast.expr, depth: int, lines: list[str]) -> tuple[str, str]:
        """(the C array, its length) of what a loop runs over."""
        pad = INDENT * depth
        kind = self.etype(source)
        if isinstance(source, ast.Name) and source.id in self.types:
            if kind == "arr1":
                return self.cname(source.id), self.lengths[source.id][0]
            if isinstance(kind, Tup):
                return self.cname(source.id), str(kind.n)
        if isinstance(source, ast.Tuple):
            item = self.item_type(source)
            texts = [self.expr(e) for e in source.elts]
        else:
            value = self.resolver.obj(source)
            kind = value_type(value)
            if not isinstance(kind, Tup):
                self.item_type(source)  # refuses
            item, texts = kind.item, [literal(v) for v in value]
        if item not in SCALARS or not texts:
            raise self.no(source, f"a loop over '{ast.unparse(source)}'", "use numbers")
        seq = self.fresh("items")
        c_type = {"double": "double", "long": "long", "bool": "int"}[item]
        lines.append(f"{pad}const {c_type} {seq}[{len(texts)}] = {{{', '.join(texts)}}};")
        lines += self.guard(depth)
        return seq, str(len(texts))

    # -- while -----------------------------------------------------------------------------
    def while_(self: Any, node: ast.While, depth: int) -> list[str]:
        pad, inner = INDENT * depth, INDENT * (depth + 1)
        flag = self.fresh("broke") if node.orelse else None
        lines = [f"{pad}{{", f"{inner}int {flag} = 0;"] if flag else []
        d = depth + 1 if flag else depth
        p = INDENT * d
        self.loops.append(flag)
        before, test = self.test(node.test, d + 1)
        if before:
            head = [f"{p}while (1) {{", *before, f"{p}{INDENT}if (!{test}) break;"]
        else:
            head = [f"{p}while ({test}) {{"]
        body = self.block(node.body, d + 1)
        self.loops.pop()
        lines += [*head, *body, f"{p}}}"]
        if flag:
            lines += [f"{inner}if (!{flag}) {{", *self.block(node.orelse, d + 1), f"{inner}}}"]
            lines.append(f"{pad}}}")
        return lines
