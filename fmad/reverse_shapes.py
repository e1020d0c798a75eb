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

- ``unbroadcast(g, x)``: ``g`` when both have the same shape; ``np.sum(g)`` when ``x`` is a
  number; ``np.sum(g, axis=...)`` when ``x`` lacks only leading axes of ``g`` (with
  ``keepdims=True`` when it has them all, of length 1 where ``g``'s are summed);
- ``seed(loss)``: ``1.0`` for a Python float or int;
- ``zeros(w)``: ``0.0`` for a number parameter;
- ``sum_adjoint``/``mean_adjoint`` of a number: ``g``; over a whole array, for a Python
  float ``g``: ``np.full(shape, g)`` and ``np.full(shape, np.divide(g, size))``;
- ``matmul_left``/``matmul_right``/``dot_left``/``dot_right`` of matrices and vectors:
  ``g @ b.T``, ``a.T @ g``, ``np.multiply.outer(g, b)``, ``g * a``.

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
from fmad.reverse_signs import fold_signs
from fmad.rules.elementwise import elementwise_functions

# what is known of a value: (kind, shape); kinds: "float" and "int" (Python's), "number"
# (another number: a numpy scalar, a bool, a complex; shape ()), "array" (an np.ndarray)
Info = tuple[str, tuple[int, ...]]
PYTHON = {float: "float", int: "int"}
NUMBERS = (bool, complex, np.number, np.bool_)
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


def key_of(value: Any) -> Any:
    """The part of a variant's key one argument gives: its shape and dtype for an array,
    else its type (a number's type says its kind; any other type makes it unknown)."""
    return (value.shape, value.dtype) if type(value) is np.ndarray else type(value)


def info_of_key(key: Any) -> Info | None:
    if isinstance(key, tuple):
        return ("array", key[0])
    if key in PYTHON:
        return (PYTHON[key], ())
    if isinstance(key, type) and issubclass(key, NUMBERS):
        return ("number", ())
    return None


def scalar_or_array(shape: tuple[int, ...]) -> Info:
    """numpy's result of that shape: a numpy scalar for shape (), else an array."""
    return ("array", shape) if shape else ("number", ())


def broadcast(*infos: Info | None) -> Info | None:
    if any(i is None for i in infos):
        return None
    try:
        shape = np.broadcast_shapes(*(i[1] for i in infos))
    except ValueError:  # the primal raises there
        return None
    return scalar_or_array(shape)


def matmul_shape(a: Info | None, b: Info | None) -> Info | None:
    """``a @ b`` for arrays of at least one dimension (numpy's rules), else unknown."""
    if a is None or b is None or a[0] != "array" or b[0] != "array":
        return None
    sa, sb = a[1], b[1]
    if not sa or not sb:
        return None
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        return None
    if len(sa) == 1 and len(sb) == 1:
        return ("number", ())
    if len(sb) == 1:
        return ("array", sa[:-1])
    if len(sa) == 1:
        return ("array", sb[:-2] + sb[-1:])
    try:
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        return None
    return ("array", (*batch, sa[-2], sb[-1]))


def python_arithmetic(op: ast.operator, a: Info, b: Info, right: ast.expr) -> Info | None:
    """Python numbers: an int or a float for the operators whose result type is certain."""
    both_int = a[0] == b[0] == "int"
    if isinstance(op, ast.Add | ast.Sub | ast.Mult | ast.FloorDiv | ast.Mod):
        return ("int" if both_int else "float", ())
    if isinstance(op, ast.Div):
        return ("float", ())
    n = B.constant_value(right)
    if isinstance(op, ast.Pow) and type(n) is int:  # float ** int is a float, never complex
        return ("int" if a[0] == "int" and n >= 0 else "float", ())
    return ("number", ())


def reduced(x: Info | None, axis: ast.expr, keepdims: ast.expr) -> Info | None:
    """The result of summing (or averaging, max, min) ``x`` over ``axis``."""
    if x is None or not isinstance(keepdims, ast.Constant) or keepdims.value not in (0, 1):
        return None
    keep = bool(keepdims.value)
    shape = x[1]
    if isinstance(axis, ast.Constant) and axis.value is None:
        axes = tuple(range(len(shape)))
    else:
        a = B.constant_value(axis)
        if type(a) is not int or not -len(shape) <= a < len(shape):
            return None
        axes = (a % len(shape),)
    if keep:
        return scalar_or_array(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return scalar_or_array(tuple(n for i, n in enumerate(shape) if i not in axes))


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
        tree = copy.deepcopy(self.unit.tree)
        tree.body = [self.statement(s) for s in tree.body]
        return tree

    def statement(self, s: ast.stmt) -> ast.stmt:
        if isinstance(s, ast.Assign) and len(s.targets) == 1:
            s.value, info = self.expr(s.value)
            for name in B.stored_names(s.targets[0]):
                self.env.pop(name, None)
            target = s.targets[0]
            if isinstance(target, ast.Name) and target.id not in self.blocked and info:
                self.env[target.id] = info
            return s
        if isinstance(s, ast.Return | ast.Expr) and s.value is not None:
            s.value, _ = self.expr(s.value)
            return s
        if isinstance(s, B.DEFINITIONS):
            return s  # a scope of its own: its names are not the function's
        for field in ("body", "orelse"):  # blocks: their helper calls, with what is known
            if isinstance(getattr(s, field, None), list):
                setattr(s, field, [self.statement(inner) for inner in getattr(s, field)])
        return s

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
            return node, None
        if isinstance(node, ast.BinOp):
            node.left, a = self.expr(node.left)
            node.right, b = self.expr(node.right)
            return node, self.binop(node, a, b)
        if isinstance(node, ast.Attribute):
            node.value, base = self.expr(node.value)
            if node.attr == "T" and base is not None and base[0] == "array":
                return node, ("array", base[1][::-1])
            return node, None
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Tuple):
            node.elts = [self.expr(e)[0] for e in node.elts]
            return node, None
        return node, None  # anything else: not followed (its helper calls kept as they are)

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
        visited = [self.expr(a) for a in node.args]
        node.args = [a for a, _ in visited]
        infos = [info for _, info in visited]
        for k in node.keywords:
            k.value = self.expr(k.value)[0]
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in self.rev:
                return self.helper(node, func.attr, infos)
            base = self.env.get(func.value.id)
            if base is not None and base[0] == "array" and func.attr in REDUCTION_METHODS:
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
            # g (a Python float) over every element: the helper's float64 array, in one call
            fill = args[0]
            if name == "mean_adjoint":
                fill = B.call(self.np_("divide"), fill, B.const(int(np.prod(x[1]))))
            shape = B.tuple_([B.const(n) for n in x[1]])
            return self.done(B.call(self.np_("full"), shape, fill), ("array", x[1]))
        if name in PRODUCTS:
            return self.product(node, name, infos)
        return node, scalar_or_array(x[1])

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
            return self.done(B.call(self.np_("sum"), expr), ("number", ()))
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
        return self.done(B.call(self.np_("sum"), expr, **keywords), ("array", xshape))

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
