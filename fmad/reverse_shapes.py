"""Reverse-mode variants: the generic reverse code, specialised to the kinds and shapes of the
arguments of a call.

The generic code (:mod:`fmad.reverse`) serves every call: its runtime helpers
(``fmad_rev.unbroadcast``, ``seed``, ``matmul_left``...) read the shapes of their operands
when they run. Once the arguments of a call are known (each a Python float, an int, another
number, a numpy array of a given shape, or anything else), most of that work is known too.
:func:`specialize` walks the generic function in the order it runs and gives each name
bound outside any ``if`` or loop what is known of its latest value (:data:`Info`: its kind
and shape, from the arguments' through the operations whose result shape follows from their
operands': arithmetic, numpy's ufuncs, ``@``, ``np.dot``, the reductions, ``.T``, the math
functions, and the runtime helpers by their contracts); any other value is unknown. Then it
rewrites the helper calls whose work that settles:

- ``unbroadcast(g, x)``: ``g`` when both have the same shape; ``g.sum()`` when ``x`` is a
  number; ``g.sum(axis=...)`` when ``x`` lacks only leading axes of ``g`` (with
  ``keepdims=True`` when it has them all, of length 1 where ``g``'s are summed): the
  method is ``np.sum``'s reduction without its Python-level wrapper;
- ``seed(loss)``: ``1.0`` for a Python float or int;
- ``zeros(w)``: ``0.0`` for a number parameter;
- ``sum_adjoint``/``mean_adjoint`` of a number: ``g``; over a whole array, for a Python
  float ``g``: ``np.full(shape, g)`` and ``np.full(shape, np.divide(g, size))``;
- ``matmul_left``/``matmul_right``/``dot_left``/``dot_right`` of matrices and vectors:
  ``g @ b.T``, ``a.T @ g``, ``np.multiply.outer(g, b)``, ``g * a``;
- ``np.divide(g, x)`` (the adjoint of ``np.log``...) of an array: ``g / x``.

Then :func:`fmad.reverse_signs.fold_signs` folds the negations of adjoints into the
operations that read them. Each rewrite computes what the helper computes, bit for bit, for
every call with arguments of these kinds and shapes; the public wrapper
(:mod:`fmad.reverse_api`) runs a variant only for calls whose key (:func:`key_of`) is the
one it was made for. A name the walk cannot follow (bound in a loop or a branch, or a value
of a kind it does not know) keeps the generic helper call.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
from typing import Any

import numpy as np

from fmad import build as B
from fmad import runtime_reverse as fmad_rev
from fmad.reverse_kinds import (
    NUMBERS,
    PYTHON,
    Info,
    broadcast,
    matmul_shape,
    python_arithmetic,
    reduced,
    scalar_or_array,
)
from fmad.reverse_signs import fold_signs
from fmad.rules.elementwise import elementwise_functions

# numpy's promotion rules where a numpy float64 counts as a float64 array does (NEP 50)
NEP50 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
MATH = frozenset(f for f, _, module in elementwise_functions() if module == "math")
REDUCTIONS = {np.sum, np.mean, np.max, np.min, np.amax, np.amin}
REDUCTION_METHODS = ("sum", "mean", "max", "min")
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.FloorDiv, ast.Mod)
# the runtime helpers followed, with the position of the operand whose shape their result
# has (seed: the output; zeros: the parameter)
HELPERS = {"seed": 0, "zeros": 0, "unbroadcast": 1, "sum_adjoint": 1, "mean_adjoint": 1}
HELPERS |= {"extreme_adjoint": 1, "index_adjoint": 1, "reshape_adjoint": 1, "where_adjoint": 2}
PRODUCTS = {"matmul_left": 1, "dot_left": 1, "matmul_right": 2, "dot_right": 2}
HELPERS |= PRODUCTS
LIMIT = 16  # variants per function; calls of further kinds run the generic code


def lazy_binop(op: ast.operator, a: Info | None, b: Info | None) -> Info | None:
    """``a op b`` with a lazy operand (a number for a whole array of shape ``S``): lazy
    with a lazy operand of the same shape, the array when the other is an array of shape
    ``S``; None where the lazy operand must be made an array first."""
    if not isinstance(op, ast.Add | ast.Sub | ast.Mult | ast.Div) or a is None or b is None:
        return None
    if a[0] == b[0] == "lazy":
        return a if a[1] == b[1] else None
    lazy, other = (a, b) if a[0] == "lazy" else (b, a)
    return ("array", lazy[1]) if other == ("array", lazy[1]) else None


class Specializer:
    """Walks one generic reverse unit with what is known of its parameters."""

    def __init__(self, unit: Any, params: dict[str, Info | None]) -> None:
        self.unit = unit
        self.scope = unit.scope
        self.rev = {n for n, v in unit.injected.items() if v is fmad_rev}
        # names bound in a block (an if, a loop, a nested def) are not followed: elsewhere
        # the walk is in the order the statements run, so a name's latest binding is known
        self.blocked: set[str] = set()
        for s in unit.tree.body:
            for node in ast.walk(s.value if isinstance(s, ast.Assign) else s):
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    self.blocked.add(node.id)
        self.env = {n: i for n, i in params.items() if i is not None and n not in self.blocked}
        self.rewrites = 0

    # -- the walk --------------------------------------------------------------------------
    def function(self) -> ast.FunctionDef:
        tree = B.clone(self.unit.tree)
        tree.body = [new for s in tree.body for new in self.statement(s)]
        return tree

    def statement(self, s: ast.stmt) -> list[ast.stmt]:
        if isinstance(s, ast.Assign) and len(s.targets) == 1:
            s.value, info = self.expr(s.value)
            target = s.targets[0]
            followed = isinstance(target, ast.Name) and target.id not in self.blocked
            if not followed:
                s.value, info = self.full(s.value, info)
            for name in B.stored_names(target):
                self.env.pop(name, None)
            if followed and info:
                self.env[target.id] = info
            return [s]
        if isinstance(s, ast.Return | ast.Expr) and s.value is not None:
            s.value = self.full(*self.expr(s.value))[0]
            return [s]
        # a block or a nested def: every adjoint standing for a whole array made one first
        out = []
        for name, info in list(self.env.items()):
            if info[0] == "lazy":
                value, self.env[name] = self.full(B.name(name), info)
                out.append(ast.copy_location(B.assign(name, value), s))
        if isinstance(s, B.DEFINITIONS):
            return [*out, s]  # a scope of its own: its names are not the function's
        for field in ("body", "orelse"):  # blocks: their helper calls, with what is known
            if isinstance(getattr(s, field, None), list):
                inner = [new for old in getattr(s, field) for new in self.statement(old)]
                setattr(s, field, inner)
        return [*out, s]

    def full(self, node: ast.expr, info: Info | None) -> tuple[ast.expr, Info | None]:
        """``node`` as the array it stands for, when it is a number standing for a whole
        array (kind ``"lazy"``, see :meth:`reduction_adjoint`): ``np.full(shape, node)``."""
        if info is None or info[0] != "lazy":
            return node, info
        shape = B.tuple_([B.const(n) for n in info[1]])
        return B.call(self.np_("full"), shape, node), ("array", info[1])

    def plain(self, node: ast.expr) -> ast.expr:
        """``node`` visited, with every lazy name in it made an array."""
        lazy = {n: i for n, i in self.env.items() if i[0] == "lazy"}
        full = self.full

        class Arrays(ast.NodeTransformer):
            def visit_Name(self, n: ast.Name) -> ast.expr:
                if isinstance(n.ctx, ast.Load) and n.id in lazy:
                    return full(n, lazy[n.id])[0]
                return n

        return Arrays().visit(node)

    def expr(self, node: ast.expr) -> tuple[ast.expr, Info | None]:
        if isinstance(node, ast.Name):
            return node, self.env.get(node.id)
        if isinstance(node, ast.Constant):
            value = node.value
            if type(value) in PYTHON:
                return node, (PYTHON[type(value)], ())
            return node, ("number", ()) if isinstance(value, NUMBERS) else None
        if isinstance(node, ast.UnaryOp):
            node.operand, info = self.expr(node.operand)
            if isinstance(node.op, ast.USub | ast.UAdd) and info is not None:
                return node, info if info[0] != "number" else ("number", ())
            node.operand, _ = self.full(node.operand, info)
            return node, None
        if isinstance(node, ast.BinOp):
            node.left, a = self.expr(node.left)
            node.right, b = self.expr(node.right)
            if "lazy" in (a and a[0], b and b[0]):
                both = lazy_binop(node.op, a, b)
                if both is not None:
                    return node, both
                (node.left, a), (node.right, b) = self.full(node.left, a), self.full(node.right, b)
            return node, self.binop(node, a, b)
        if isinstance(node, ast.Attribute):
            node.value, base = self.full(*self.expr(node.value))
            if node.attr == "T" and base is not None and base[0] == "array":
                return node, ("array", base[1][::-1])
            return node, None
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Tuple):
            node.elts = [self.full(*self.expr(e))[0] for e in node.elts]
            return node, None
        return self.plain(node), None  # anything else: not followed

    def binop(self, node: ast.BinOp, a: Info | None, b: Info | None) -> Info | None:
        if a is None or b is None:
            return None
        if isinstance(node.op, ast.MatMult):
            return matmul_shape(a, b)
        if not isinstance(node.op, ARITHMETIC):
            return None
        if a[0] in PYTHON.values() and b[0] in PYTHON.values():
            return python_arithmetic(node.op, a, b, node.right)
        return broadcast(a, b)

    def call(self, node: ast.Call) -> tuple[ast.expr, Info | None]:
        func = node.func
        if isinstance(func, ast.Attribute):  # a method of a lazy value: of the array
            func.value = self.full(*self.expr(func.value))[0]
        visited = [self.expr(a) for a in node.args]
        if (  # unbroadcast(g, x) of a lazy g to x of its shape: g, still lazy
            len(visited) == 2
            and visited[0][1] is not None
            and visited[0][1][0] == "lazy"
            and visited[1][1] is not None
            and visited[0][1][1] == visited[1][1][1]
            and isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.rev
            and func.attr == "unbroadcast"
        ):
            return self.done(*visited[0])
        visited = [self.full(*v) for v in visited]
        node.args = [a for a, _ in visited]
        infos = [info for _, info in visited]
        for k in node.keywords:
            k.value = self.full(*self.expr(k.value))[0]
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in self.rev:
                return self.helper(node, func.attr, infos)
            base = self.env.get(func.value.id)
            if (
                base is not None
                and base[0] in ("array", "number")
                and func.attr in REDUCTION_METHODS
            ):
                return node, self.reduction(node, [base, *infos], node.args)
        if any(isinstance(a, ast.Starred) for a in node.args):
            return node, None
        obj = self.scope.lookup(func)
        if obj in MATH:
            return node, ("float", ())
        if obj is float and len(node.args) == 1 and not node.keywords:
            return node, ("float", ())
        if node.keywords and obj not in REDUCTIONS:
            return node, None
        if isinstance(obj, np.ufunc) and obj.nout == 1 and len(infos) == obj.nin:
            if obj is np.divide and any(i is not None and i[0] == "array" for i in infos):
                # an array's `/` is np.divide, without the lookup of np.divide
                return self.done(
                    B.binop(*node.args[:1], ast.Div(), node.args[1]), broadcast(*infos)
                )
            return node, broadcast(*infos)
        if obj in (np.matmul, np.dot) and len(infos) == 2:
            if obj is np.dot and any(i is not None and len(i[1]) > 2 for i in infos):
                return node, None
            return node, matmul_shape(*infos)
        if obj in REDUCTIONS and infos:
            return node, self.reduction(node, infos, node.args[1:])
        return node, None

    def reduction(self, node: ast.Call, infos: list, rest: list[ast.expr]) -> Info | None:
        """``np.sum(x, axis, keepdims=...)`` or ``x.sum(axis, keepdims=...)``."""
        x = infos[0]
        options = {k.arg: k.value for k in node.keywords}
        if x is None or set(options) - {"axis", "keepdims"} or len(rest) > 1:
            return None
        if x[0] != "array":
            return ("number", ()) if not rest and not options else None
        axis = rest[0] if rest else options.get("axis", ast.Constant(None))
        return reduced(x, axis, options.get("keepdims", ast.Constant(False)))

    def info_of(self, node: ast.expr) -> Info | None:
        """What the walk knows of ``node`` (a name, a constant, ``-name``) where it ended."""
        return self.expr(copy.deepcopy(node))[1]

    # -- the runtime helpers ---------------------------------------------------------------
    def np_(self, *attrs: str) -> ast.expr:
        return B.attr(self.unit.module("numpy"), *attrs)

    def done(self, new: ast.expr, info: Info | None) -> tuple[ast.expr, Info | None]:
        self.rewrites += 1
        return new, info

    def helper(self, node: ast.Call, name: str, infos: list) -> tuple[ast.expr, Info | None]:
        """A call ``fmad_rev.<name>(...)``: rewritten where its work is known; its result's
        kind and shape by the helper's contract (the operand's shape)."""
        args = node.args
        first = infos[0] if infos and not node.keywords else None
        operand = HELPERS.get(name)
        if first is None or operand is None or len(infos) <= operand:
            return node, None
        if name == "seed":
            if first[0] in ("float", "int"):
                return self.done(ast.Constant(1.0), ("float", ()))
            return node, ("float", ()) if first[0] == "number" else None
        x = infos[operand]
        if x is None:
            return node, None
        if name == "zeros":
            if x[0] != "array":
                return self.done(ast.Constant(0.0), ("float", ()))
            return node, scalar_or_array(x[1])
        if name == "unbroadcast":
            return self.unbroadcast(node, first, x)
        if name in ("sum_adjoint", "mean_adjoint") and not x[1]:
            return self.done(args[0], first)  # the reduction of a number: g itself
        if name in ("sum_adjoint", "mean_adjoint") and self.whole(args, first):
            return self.done(*self.reduction_adjoint(name, args[0], x[1]))
        if name in PRODUCTS:
            return self.product(node, name, infos)
        return node, scalar_or_array(x[1])

    def reduction_adjoint(self, name: str, g: ast.expr, shape: tuple) -> tuple[ast.expr, Info]:
        """The adjoint of a sum (a mean) of a whole array, ``g`` a Python float: ``g`` (``g /
        size``) in each element. It stays a number of kind ``"lazy"`` (a numpy float64,
        which takes part in numpy's operations as the helper's float64 array does: NEP 50)
        where it meets arrays of its shape in ``+ - * /`` (each element gets the same
        operation on the same numbers) or an ``unbroadcast`` to that shape; anywhere else
        it is made the array (:meth:`full`)."""
        if name == "mean_adjoint":
            fill = B.call(self.np_("divide"), g, B.const(int(np.prod(shape))))
        else:
            fill = B.call(self.np_("float64"), g)
        if not NEP50:
            return self.full(fill, ("lazy", shape))
        return fill, ("lazy", shape)

    @staticmethod
    def whole(args: list[ast.expr], g: Info) -> bool:
        """A reduction's adjoint ``(g, x, None, False)``: over all axes, ``g`` a float."""
        axis, keepdims = args[2:4] if len(args) == 4 else (None, None)
        return (
            g[0] == "float"
            and isinstance(axis, ast.Constant)
            and axis.value is None
            and isinstance(keepdims, ast.Constant)
            and keepdims.value is False
        )

    def unbroadcast(self, node: ast.Call, g: Info, x: Info) -> tuple[ast.expr, Info | None]:
        gshape, xshape = g[1], x[1]
        expr = node.args[0]
        if gshape == xshape:
            return self.done(expr, g)
        if not xshape:
            return self.done(B.call(B.attr(expr, "sum")), ("number", ()))
        lead = len(gshape) - len(xshape)
        if not gshape or lead < 0:
            return node, ("array", xshape)
        inner = [i for i, n in enumerate(xshape) if n == 1 and gshape[lead + i] != 1]
        if any(n != 1 and gshape[lead + i] != n for i, n in enumerate(xshape)):
            return node, None  # the primal raised (shapes that do not broadcast)
        if lead and inner:
            return node, ("array", xshape)
        axes = [lead + i for i in inner] if inner else list(range(lead))
        axis = B.const(axes[0]) if len(axes) == 1 else B.tuple_([B.const(a) for a in axes])
        keywords = {"axis": axis}
        if inner:
            keywords["keepdims"] = ast.Constant(True)
        return self.done(B.call(B.attr(expr, "sum"), **keywords), ("array", xshape))

    def product(self, node: ast.Call, name: str, infos: list) -> tuple[ast.expr, Info | None]:
        """The adjoints of ``a @ b`` (and ``np.dot``) for vectors and matrices."""
        g, a, b = infos
        ga, aa, ba = node.args
        if a[0] != "array" or b[0] != "array" or not 1 <= len(a[1]) <= 2 >= len(b[1]) >= 1:
            return node, None
        if matmul_shape(a, b) is None:
            return node, None
        left = name.endswith("left")
        result = a if left else b
        if len(a[1]) == 1 and len(b[1]) == 1:  # a scalar adjoint times the other vector
            return self.done(B.binop(ga, ast.Mult(), ba if left else aa), result)
        if g[0] != "array":
            return node, result
        if left and len(b[1]) == 1:  # a (n, k), b (k,): g (n,) outer b
            return self.done(B.call(self.np_("multiply", "outer"), ga, ba), result)
        if left and len(a[1]) == 2:  # a (n, k), b (k, m): g @ b.T
            return self.done(B.binop(ga, ast.MatMult(), B.attr(ba, "T")), result)
        if not left and len(a[1]) == 2:  # a (n, k): a.T @ g
            return self.done(B.binop(B.attr(aa, "T"), ast.MatMult(), ga), result)
        return node, result


def specialized(unit: Any, params: dict[str, Info | None]) -> tuple[Any, Specializer]:
    """A copy of the generic reverse ``unit`` specialised to what is known of its parameters
    (see the module's docstring; ``unit`` itself is unchanged), and the walk that made it
    (:meth:`Specializer.info_of` tells what it knows at the end of the function)."""
    variant = dataclasses.replace(unit, text=None, injected=dict(unit.injected))
    walker = Specializer(variant, params)
    variant.tree = walker.function()
    fold_signs(variant)
    return variant, walker


def specialize(unit: Any, params: dict[str, Info | None]) -> Any:
    return specialized(unit, params)[0]
