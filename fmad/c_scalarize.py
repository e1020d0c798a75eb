"""Whole-array code made a plain scalar loop function, for the C export (see
:mod:`fmad.export_c`).

A loss written with arrays (``np.mean((X @ w + b - y) ** 2)``, ``w`` a parameter of fixed
size ``k``) is rewritten, before fmad differentiates it, into a function of numbers: the
parameter array becomes ``k`` number parameters (``w_0``, ``w_1``...); an array of fixed size
is a list of ``k`` expressions (unrolled); an array of run-time length (data, and what is
computed from it elementwise) is *lazy*, an expression of its element index, computed inside
the loop of the reduction that consumes it (``sum``, ``np.sum``, ``np.mean``, ``np.dot``,
``@``), so no array is ever stored. A reduction is a loop that adds the elements in order,
``((e0 + e1) + e2) + ...`` (numpy sums pairwise: the results agree to about 1e-15 relative);
``X @ w`` is ``X[i, 0] * w_0 + X[i, 1] * w_1 + ...``, left to right. fmad's forward mode
then differentiates the loop function with respect to the numbers, and the C export lowers
it as any function of numbers.

The subset: straight-line assignments (each name assigned once) and a ``return`` of a
number; ``+ - * / **`` and unary minus with broadcasting of numbers; ``@`` and ``np.dot``;
``sum``/``np.sum``/``np.mean``/``len``; ``np`` elementwise functions, ``np.maximum``,
``np.minimum``, ``np.where`` and comparisons inside it, ``abs``; ``x[i]``, ``X[i, j]``,
``w[j]`` (``j`` a constant). Anything else raises :class:`Unscalarizable` with the line.
"""

from __future__ import annotations

import ast
import copy
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fmad.c_expr import NP1

ELEMENTWISE = {*NP1, np.maximum, np.minimum, np.where, np.square, abs, np.absolute}
Elem = Callable[[ast.expr], ast.expr]


class Unscalarizable(Exception):
    def __init__(self, node: ast.AST | None, message: str) -> None:
        super().__init__(message)
        self.lineno = getattr(node, "lineno", None)


@dataclass
class Fixed:
    """An array of fixed size: one expression per element."""

    items: list[ast.expr]


@dataclass
class Lazy:
    """An array of run-time length: its length, and its element at an index."""

    length: ast.expr
    elem: Elem
    source: str  # the data array whose length it has (for the length checks)


@dataclass
class Matrix:
    name: str
    cols: int | None


Value = ast.expr | Fixed | Lazy | Matrix


def name(text: str) -> ast.Name:
    return ast.Name(text, ast.Load())


class Scalarizer:
    """``Scalarizer(tree, shapes, wrt, resolve).function()`` -> the loop function's tree and
    ``{array parameter: its number parameters}``; ``resolve(node)`` is the object a name or
    ``np.attribute`` means."""

    def __init__(
        self, tree: ast.FunctionDef, shapes: dict, wrt: tuple, resolve, globals_: dict
    ) -> None:
        self.tree = tree
        self.globals = globals_
        self.used_locals = {a.arg for a in ast.walk(tree.args) if isinstance(a, ast.arg)}
        self.used_locals |= {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        self.shapes = shapes
        self.wrt = wrt
        self.resolve = resolve
        self.used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        self.used |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
        self.values: dict[str, Value] = {}
        self.out: list[ast.stmt] = []
        self.packed: dict[str, list[str]] = {}
        self.lengths: list[tuple[str, str]] = []  # data arrays whose lengths must agree

    def fresh(self, hint: str) -> str:
        n = 1
        while f"{hint}_{n}" in self.used:
            n += 1
        self.used.add(f"{hint}_{n}")
        return f"{hint}_{n}"

    def function(self) -> tuple[ast.FunctionDef, dict[str, list[str]]]:
        args = self.tree.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
            raise Unscalarizable(self.tree, "parameters other than plain positional ones")
        params: list[ast.arg] = []
        for a in args.args:
            shape = self.shapes.get(a.arg, ())
            if a.arg in self.wrt and len(shape) == 1:
                names = [f"{a.arg}_{j}" for j in range(shape[0])]
                if any(n in self.used for n in names):
                    raise Unscalarizable(a, f"the names {a.arg}_0... (used in the function)")
                self.used |= set(names)
                self.packed[a.arg] = names
                self.values[a.arg] = Fixed([name(n) for n in names])
                params += [ast.arg(n) for n in names]
                continue
            if a.arg in self.wrt and shape:
                raise Unscalarizable(
                    a, f"differentiating with respect to the {len(shape)}-D '{a.arg}'"
                )
            if len(shape) == 1:
                x = a.arg
                self.values[x] = Lazy(length_of(x), indexer(x), x)
            elif len(shape) == 2:
                self.values[a.arg] = Matrix(a.arg, shape[1])
            elif len(shape) > 2:
                raise Unscalarizable(a, f"the {len(shape)}-D array '{a.arg}'")
            params.append(ast.arg(a.arg))
        assigned: set[str] = set()
        self.params = {a.arg for a in args.args}
        for stmt in self.tree.body:
            self.statement(stmt, assigned)
        for first, second in self.lengths:
            test = ast.Compare(length_of(first), [ast.Eq()], [length_of(second)])
            self.out.insert(0, ast.Assert(test=test, msg=None))
        new = ast.FunctionDef(
            name=self.tree.name,
            args=ast.arguments(
                posonlyargs=[], args=params, kwonlyargs=[], kw_defaults=[], defaults=[]
            ),
            body=self.out,
            decorator_list=[],
            returns=None,
            type_params=[],
        )
        return ast.fix_missing_locations(new), self.packed

    def statement(self, stmt: ast.stmt, assigned: set[str]) -> None:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            value = self.ev(stmt.value)
            if not isinstance(value, ast.expr):
                raise Unscalarizable(stmt, "returning an array (the C export exports a loss)")
            self.emit(ast.Return(value), stmt)
            return
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            raise Unscalarizable(
                stmt,
                f"the statement '{ast.unparse(stmt).splitlines()[0]:.50}' in a function of arrays",
            )
        target = stmt.targets[0].id
        if target in assigned or target in self.params:
            raise Unscalarizable(stmt, f"assigning '{target}' twice in a function of arrays")
        assigned.add(target)
        value = self.ev(stmt.value)
        if isinstance(value, Fixed):
            names = [self.fresh(f"{target}_{j}") for j in range(len(value.items))]
            for n, item in zip(names, value.items, strict=True):
                self.emit(ast.Assign([ast.Name(n, ast.Store())], item), stmt)
            self.values[target] = Fixed([name(n) for n in names])
        elif isinstance(value, Lazy | Matrix):
            self.values[target] = value  # computed where it is consumed
        else:
            self.emit(ast.Assign([ast.Name(target, ast.Store())], value), stmt)
            self.values[target] = name(target)

    def emit(self, stmt: ast.stmt, where: ast.AST) -> None:
        for node in ast.walk(stmt):
            if isinstance(node, ast.expr | ast.stmt):
                node.lineno = getattr(where, "lineno", 1)  # type: ignore[attr-defined]
        self.out.append(stmt)

    # -- expressions ---------------------------------------------------------------------------
    def ev(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, ast.Name):
            return self.values.get(node.id, node)
        if isinstance(node, ast.BinOp):
            left, right = self.ev(node.left), self.ev(node.right)
            if isinstance(node.op, ast.MatMult):
                return self.matmul(node, left, right)
            return self.broadcast(node, [left, right], lambda a, b: ast.BinOp(a, node.op, b))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return self.broadcast(node, [self.ev(node.operand)], lambda a: ast.UnaryOp(node.op, a))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            items = [self.ev(node.left), self.ev(node.comparators[0])]
            return self.broadcast(node, items, lambda a, b: ast.Compare(a, node.ops, [b]))
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise Unscalarizable(node, f"'{ast.unparse(node):.50}' in a function of arrays")

    def scalar(self, value: Value, node: ast.AST) -> ast.expr:
        if not isinstance(value, ast.expr):
            raise Unscalarizable(
                node, f"an array where a number is needed ('{ast.unparse(node):.40}')"
            )
        return value

    def broadcast(self, node: ast.AST, items: list[Value], make) -> Value:
        if any(isinstance(v, Matrix) for v in items):
            raise Unscalarizable(
                node, "an elementwise operation on a 2-D array (use X @ w or X[i, j])"
            )
        fixed = [v for v in items if isinstance(v, Fixed)]
        lazy = [v for v in items if isinstance(v, Lazy)]
        if fixed and lazy:
            raise Unscalarizable(node, "an array of parameters and an array of data together")
        if fixed:
            k = len(fixed[0].items)
            if any(len(v.items) != k for v in fixed):
                raise Unscalarizable(node, "arrays of different sizes")
            return Fixed(
                [
                    make(*[v.items[j] if isinstance(v, Fixed) else v for v in items])
                    for j in range(k)
                ]
            )
        if lazy:
            first = lazy[0]
            for other in lazy[1:]:
                if (
                    other.source != first.source
                    and (first.source, other.source) not in self.lengths
                ):
                    self.lengths.append((first.source, other.source))
            return Lazy(
                first.length,
                lambda i: make(
                    *[v.elem(i) if isinstance(v, Lazy) else copy.deepcopy(v) for v in items]
                ),
                first.source,
            )
        return make(*items)

    def matmul(self, node: ast.AST, left: Value, right: Value) -> Value:
        if isinstance(left, Matrix) and isinstance(right, Fixed):
            if left.cols != len(right.items):
                cols = f"{left.name}'s columns are not {len(right.items)} in shapes"
                raise Unscalarizable(node, f"'{ast.unparse(node)}' where {cols}")
            X, items = left.name, right.items

            def elem(i: ast.expr) -> ast.expr:
                terms = [
                    ast.BinOp(
                        ast.Subscript(
                            name(X),
                            ast.Tuple([copy.deepcopy(i), ast.Constant(j)], ast.Load()),
                            ast.Load(),
                        ),
                        ast.Mult(),
                        copy.deepcopy(w),
                    )
                    for j, w in enumerate(items)
                ]
                return total(terms)

            return Lazy(length_of(X), elem, X)
        return self.dot(node, left, right)

    def dot(self, node: ast.AST, left: Value, right: Value) -> ast.expr:
        if not (isinstance(left, Fixed | Lazy) and isinstance(right, Fixed | Lazy)):
            raise Unscalarizable(  # `@` with a number raises in numpy; np.dot multiplies
                node, f"'{ast.unparse(node):.40}' (a dot product of two 1-D arrays)"
            )
        product = self.broadcast(node, [left, right], lambda a, b: ast.BinOp(a, ast.Mult(), b))
        if not isinstance(product, Fixed | Lazy):
            raise Unscalarizable(
                node, f"'{ast.unparse(node):.40}' (a dot product of two 1-D arrays)"
            )
        return self.reduce(node, product, mean=False)

    def reduce(self, node: ast.AST, value: Value, mean: bool) -> ast.expr:
        if isinstance(value, Fixed):
            added = total(value.items)
            return ast.BinOp(added, ast.Div(), ast.Constant(len(value.items))) if mean else added
        if not isinstance(value, Lazy):
            raise Unscalarizable(node, f"'{ast.unparse(node):.40}' of a number or a 2-D array")
        acc, i = self.fresh("total"), self.fresh("i")
        self.emit(ast.Assign([ast.Name(acc, ast.Store())], ast.Constant(0.0)), node)
        body = ast.AugAssign(ast.Name(acc, ast.Store()), ast.Add(), value.elem(name(i)))
        loop = ast.For(
            ast.Name(i, ast.Store()), ast.Call(name("range"), [value.length], []), [body], []
        )
        self.emit(loop, node)
        return ast.BinOp(name(acc), ast.Div(), copy.deepcopy(value.length)) if mean else name(acc)

    def subscript(self, node: ast.Subscript) -> Value:
        base = self.ev(node.value)
        index = node.slice
        if isinstance(base, Fixed) and isinstance(index, ast.Constant) and type(index.value) is int:
            try:
                return base.items[index.value]
            except IndexError:
                raise Unscalarizable(node, f"the index {index.value} out of range") from None
        if (
            isinstance(base, Lazy)
            and isinstance(node.value, ast.Name)
            and base.source == node.value.id
        ):
            return ast.Subscript(node.value, self.scalar(self.ev(index), node), ast.Load())
        if isinstance(base, Matrix) and isinstance(index, ast.Tuple) and len(index.elts) == 2:
            parts = [self.scalar(self.ev(e), node) for e in index.elts]
            return ast.Subscript(name(base.name), ast.Tuple(parts, ast.Load()), ast.Load())
        raise Unscalarizable(
            node, f"the subscript '{ast.unparse(node):.40}' (use x[i], X[i, j], w[j])"
        )

    def inline(self, node: ast.Call, fn: types.FunctionType, args: list[Value]) -> Value:
        params, expr = one_return(node, fn, len(args))
        free = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)} - set(params)
        if free & self.used_locals:
            raise Unscalarizable(node, f"'{fn.__name__}' of arrays (it reads a name you bind)")
        saved = self.values
        self.values = {k: v for k, v in saved.items() if k not in free}
        self.values.update(zip(params, args, strict=True))
        try:
            return self.ev(expr)
        finally:
            self.values = saved

    def call(self, node: ast.Call) -> Value:
        fn = self.resolve(node.func)
        if node.keywords:
            raise Unscalarizable(node, f"keyword arguments to '{ast.unparse(node.func)}'")
        args = [self.ev(a) for a in node.args]
        if fn in (sum, np.sum, np.mean) and len(args) == 1:
            return self.reduce(node, args[0], mean=fn is np.mean)
        if fn is np.dot and len(args) == 2:
            return self.matmul(node, *args)
        if fn is len and len(args) == 1:
            value = args[0]
            if isinstance(value, Fixed):
                return ast.Constant(len(value.items))
            if isinstance(value, Lazy | Matrix):
                return (
                    copy.deepcopy(value.length)
                    if isinstance(value, Lazy)
                    else length_of(value.name)
                )
        if fn in ELEMENTWISE:
            return self.broadcast(
                node, args, lambda *a: ast.Call(copy.deepcopy(node.func), list(a), [])
            )
        if any(not isinstance(a, ast.expr) for a in args) and inlinable(fn, self.globals):
            return self.inline(node, fn, args)
        if all(isinstance(a, ast.expr) for a in args):
            return ast.Call(node.func, args, [])  # a function of numbers: the C export decides
        raise Unscalarizable(node, f"'{ast.unparse(node.func)}' of arrays")


def one_return(node: ast.Call, fn: types.FunctionType, nargs: int) -> tuple[list[str], ast.expr]:
    """The parameters and the returned expression of a helper whose body is one ``return``."""
    what = f"'{fn.__name__}' of arrays"
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        raise Unscalarizable(node, f"{what} (its source is not readable)") from None
    if not isinstance(tree, ast.FunctionDef):
        raise Unscalarizable(node, f"{what} (not defined with def)")
    body = [
        s for s in tree.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    params = [a.arg for a in tree.args.args]
    a = tree.args
    plain = not (a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or tree.decorator_list)
    last = body[0] if len(body) == 1 else None
    if not plain or len(params) != nargs or not isinstance(last, ast.Return) or not last.value:
        raise Unscalarizable(node, f"{what} (a helper other than one return)")
    return params, last.value


def length_of(x: str) -> ast.expr:
    return ast.Call(name("len"), [name(x)], [])


def indexer(x: str) -> Elem:
    return lambda i: ast.Subscript(name(x), i, ast.Load())


def total(terms: list[ast.expr]) -> ast.expr:
    """``((t0 + t1) + t2) + ...``: the order a reduction adds in."""
    result = terms[0]
    for term in terms[1:]:
        result = ast.BinOp(result, ast.Add(), term)
    return result


def inlinable(fn: object, globals_: dict) -> bool:
    """A helper of the same module without defaults or closure (see one_return)."""
    return (
        isinstance(fn, types.FunctionType)
        and fn.__globals__ is globals_
        and not fn.__closure__
        and not fn.__defaults__
        and not fn.__kwdefaults__
    )
