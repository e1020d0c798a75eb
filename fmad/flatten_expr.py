"""Flatten an expression: each operation computed into a name of its own, on atoms.

The expression half of :class:`fmad.flatten.Flattener`: :meth:`ExprFlattener.atom` returns a
name or a constant holding an expression's value, writing the assignments that compute it,
one operation each, in Python's order of evaluation; :meth:`ExprFlattener.value` returns one
operation on atoms. A branchy operand (``a if c else b``, ``and``/``or``, a comprehension)
becomes statements: :meth:`branchy`, on the statement side.
"""

from __future__ import annotations

import ast
import copy

from fmad import build as B
from fmad.naming import Namer, describe
from fmad.resolve import Scope


def is_atom(node: ast.expr) -> bool:
    """A name, a constant, or an expression of constants alone (``-2.0``, ``1 / 3``)."""
    if isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp | ast.BinOp):
        return all(
            isinstance(n, ast.Constant | ast.UnaryOp | ast.BinOp | ast.operator | ast.unaryop)
            for n in B.walk(node)
        )
    return False


def describe_index(index: ast.expr) -> str:
    """``x[i, 1:n]`` -> ``i_1ton``: the index part of a subscript's name."""
    if isinstance(index, ast.Tuple):
        return "_".join(describe_index(e) for e in index.elts)
    if isinstance(index, ast.Slice):
        parts = [describe(p) if p is not None else "" for p in (index.lower, index.upper)]
        return "to".join(parts) if any(parts) else "all"
    return describe(index)


class ExprFlattener:
    def __init__(self, filename: str, namer: Namer, scope: Scope) -> None:
        self.filename = filename
        self.namer = namer
        self.scope = scope

    def branchy(self, node: ast.expr, target: str, out: list[ast.stmt]) -> None:
        raise NotImplementedError  # statements: fmad.flatten.Flattener

    def is_global(self, node: ast.Attribute) -> bool:
        """An attribute of a name the function does not bind (``np.linalg.norm``)."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and not self.scope.is_local(node.id)

    def atom(self, node: ast.expr, out: list[ast.stmt]) -> ast.expr:
        """Flatten ``node`` and return a name or constant holding its value."""
        if isinstance(node, ast.IfExp | ast.BoolOp | ast.ListComp | ast.GeneratorExp):
            hint = "list" if isinstance(node, ast.ListComp | ast.GeneratorExp) else "choice"
            target = self.namer.fresh(hint)
            self.branchy(node, target, out)
            return B.name(target)
        simple = self.value(node, out)
        if is_atom(simple):
            return simple
        return self.name_for(simple, out)

    def name_for(self, simple: ast.expr, out: list[ast.stmt]) -> ast.Name:
        target = self.hint(simple)
        out.append(B.assign(target, simple))
        return B.name(target)

    def hint(self, v: ast.expr) -> str:
        n = self.namer
        if isinstance(v, ast.BinOp):
            return n.for_binop(v.op, v.left, v.right)
        if isinstance(v, ast.UnaryOp):
            return n.for_unaryop(v.op, v.operand)
        if isinstance(v, ast.Call):
            f = v.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                if self.scope.is_local(f.value.id):  # a method: x.sum() -> x_sum
                    return n.fresh(f"{f.value.id}_{f.attr}", short=f.attr)
            return n.for_call(f, v.args)
        if isinstance(v, ast.Subscript):
            return n.fresh(
                f"{describe(v.value)}_{describe_index(v.slice)}", short=describe(v.value)
            )
        if isinstance(v, ast.Attribute):
            return n.fresh(f"{describe(v.value)}_{v.attr}", short=v.attr)
        if isinstance(v, ast.Compare):
            return n.for_binop(v.ops[0], v.left, v.comparators[0])
        if isinstance(v, ast.List | ast.Tuple | ast.Dict | ast.Set):
            return n.fresh(type(v).__name__.lower())
        return n.fresh("t")

    def index(self, index: ast.expr, out: list[ast.stmt]) -> ast.expr:
        if isinstance(index, ast.Slice):
            parts = [
                None if p is None else self.atom(p, out)
                for p in (index.lower, index.upper, index.step)
            ]
            return ast.Slice(lower=parts[0], upper=parts[1], step=parts[2])
        if isinstance(index, ast.Tuple):
            return B.tuple_([self.index(e, out) for e in index.elts])
        if isinstance(index, ast.Constant) and index.value is Ellipsis:
            return index
        return self.atom(index, out)

    def value(self, node: ast.expr, out: list[ast.stmt]) -> ast.expr:
        """Flatten ``node``'s operands; return one operation on atoms (or an atom)."""
        if is_atom(node):
            return B.clone(node)
        if isinstance(node, ast.BinOp):
            return B.binop(self.atom(node.left, out), node.op, self.atom(node.right, out))
        if isinstance(node, ast.UnaryOp):
            return ast.UnaryOp(op=node.op, operand=self.atom(node.operand, out))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and not self.is_global(func):
                # a method of a value: flatten the receiver
                func = B.attr(self.atom(func.value, out), func.attr)
            elif isinstance(func, ast.Attribute | ast.Name):
                func = B.clone(func)
            else:
                func = self.atom(func, out)
            args = [self.atom(a, out) for a in node.args]
            keywords = [
                ast.keyword(arg=k.arg, value=self.atom(k.value, out)) for k in node.keywords
            ]
            return ast.Call(func=func, args=args, keywords=keywords)
        if isinstance(node, ast.Subscript):
            return B.subscript(self.atom(node.value, out), self.index(node.slice, out))
        if isinstance(node, ast.Attribute):
            if self.is_global(node):
                return copy.deepcopy(node)  # math.pi, module constants: not active
            return B.attr(self.atom(node.value, out), node.attr)
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            return self.chained_compare(node, out)
        if isinstance(node, ast.Compare):
            return ast.Compare(
                left=self.atom(node.left, out),
                ops=node.ops,
                comparators=[self.atom(c, out) for c in node.comparators],
            )
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            kind = type(node)
            elts = [self.atom(e, out) for e in node.elts]
            return kind(elts=elts, ctx=ast.Load()) if kind is not ast.Set else ast.Set(elts=elts)
        if isinstance(node, ast.Dict):
            return ast.Dict(
                keys=[self.atom(k, out) for k in node.keys],
                values=[self.atom(v, out) for v in node.values],
            )
        if isinstance(node, ast.IfExp | ast.BoolOp | ast.ListComp | ast.GeneratorExp):
            return self.atom(node, out)
        return copy.deepcopy(node)  # an f-string: the one kind left (see fmad.fence)

    def chained_compare(self, node: ast.Compare, out: list[ast.stmt]) -> ast.Name:
        """``a < b < c`` -> ``t = a < b; if t: t = b < c``: ``c`` is evaluated only if
        ``a < b``, and ``b`` once, as Python does."""
        left = self.atom(node.left, out)
        right = self.atom(node.comparators[0], out)
        target = self.namer.for_binop(node.ops[0], left, right)
        out.append(B.assign(target, ast.Compare(left=left, ops=[node.ops[0]], comparators=[right])))
        block = out
        for op, comparator in zip(node.ops[1:], node.comparators[1:], strict=True):
            body: list[ast.stmt] = []
            nxt = self.atom(comparator, body)
            body.append(B.assign(target, ast.Compare(left=right, ops=[op], comparators=[nxt])))
            block.append(ast.If(test=B.name(target), body=body, orelse=[]))
            block, right = body, nxt
        return B.name(target)
