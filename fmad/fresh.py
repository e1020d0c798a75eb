"""Which local arrays no one else can see: the analysis :mod:`fmad.inplace` rests on.

In one block of a function that no loop repeats (see :class:`Analysis`):

- a name is *typed* when it is a parameter the function never binds again, or a local
  bound once, in this block, to an expression of typed names and constants made only of
  operators, indexing, ``.T`` and the numpy functions and fmad runtime helpers of
  :data:`TYPED`: when at run time every parameter the block's typed code reads is a plain
  ``np.ndarray`` or a number (checked by the code that relies on it), evaluating it runs
  numpy's code only, never the user's, and gives plain arrays and numbers;
- a typed local is *fresh* when it is bound to an arithmetic operation (``+ - * / // % **
  @``, unary ``-``/``+``) or an elementwise numpy function (``np.exp``...): numpy made a
  new array for it;
- a fresh local is *private* when every statement that mentions it is in this block and
  assigns (to a name) a typed expression in which it is only an operand of an operator or
  an argument of a function that keeps no reference to it (a ufunc, ``np.sum``,
  ``np.size``, ``mean_product``...): it is never returned, stored in a container, copied
  to another name, indexed, viewed or passed to a function that could keep it.

All of it is decided from the code alone, never from reference counts.
"""

from __future__ import annotations

import ast
import types
from collections import Counter
from typing import Any

import numpy as np

from fmad import build as B
from fmad import runtime, runtime_seed

ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult)
# elementwise functions of one array: each returns a new array, and computes the same bits
# into its argument's buffer (tests/test_inplace.py checks each)
UNARY = frozenset(
    {np.exp, np.log, np.tanh, np.sqrt, np.sin, np.cos, np.square, np.absolute, np.negative}
    | {np.expm1, np.log1p}
)
# functions that keep no reference to their arguments (and return a new array or a number)
READERS = frozenset(
    {np.sum, np.mean, np.size, np.shape, np.ndim, runtime.mean_product, runtime.sum_product}
    | {runtime_seed.seed_sum, runtime_seed.seed_mean, runtime_seed.on_seed}
)
# attributes and methods of a plain array (or number) that give one, and run no other code
_ATTRIBUTES = frozenset({"T", "shape", "ndim", "size", "dtype", "real", "imag"})
_METHODS = frozenset({"reshape", "sum", "mean", "copy", "transpose", "ravel"})
# numpy's functions (besides its ufuncs) and fmad's runtime helpers that, given plain arrays
# and numbers, run numpy's code only and give plain arrays, numbers, tuples or lists of them
_NUMPY = {"sum", "mean", "size", "shape", "ndim", "eye", "asarray", "moveaxis", "reshape"}
_NUMPY |= {"dot", "matmul", "where", "zeros", "ones", "zeros_like", "ones_like", "outer"}
_NUMPY |= {"broadcast_to", "transpose", "expand_dims", "squeeze", "swapaxes", "max", "min"}
_NUMPY |= {"prod", "var", "std", "stack", "concatenate", "full", "full_like"}
TYPED = frozenset(getattr(np, n) for n in _NUMPY) | frozenset(
    f
    for f in vars(runtime).values()
    if isinstance(f, types.FunctionType) and f.__module__ == runtime.__name__
)


def _typed_function(f: Any) -> bool:
    try:
        return f in TYPED
    except TypeError:  # an unhashable object
        return False


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_NESTED += (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_NESTED_KINDS = frozenset(_NESTED)


def assigns(s: ast.stmt) -> bool:
    return type(s) is ast.Assign and len(s.targets) == 1 and type(s.targets[0]) is ast.Name


class Analysis:
    """The names of one function (``fn``; the functions defined in it are analysed on
    their own): :meth:`private` finds those of a block. ``lookup(name)``: the object a free
    name refers to (None: unknown)."""

    def __init__(self, fn: ast.FunctionDef, lookup) -> None:
        self.fn = fn
        self.lookup = lookup
        a = fn.args
        params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
        params |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
        self.stores: Counter[str] = Counter()
        self.mentions: Counter[str] = Counter()  # loads and stores, del lines left out
        hidden: set[str] = set()
        todo: list[ast.AST] = list(fn.body)
        for node in todo:  # grows while it is read
            kind = type(node)
            if kind is ast.Name:
                self.mentions[node.id] += 1
                if type(node.ctx) is not ast.Load:
                    self.stores[node.id] += 1
            elif kind in _NESTED_KINDS:
                hidden.update(B.names(node))
            elif kind is not ast.Delete:
                B.add_children(node, todo)
        self.hidden = hidden
        self.roots = params - set(self.stores) - hidden
        self.resolved: dict[int, Any] = {}
        self.names: dict[int, list[str]] = {}  # the names each statement mentions
        self.origin: dict[int, ast.stmt] = {}  # a statement written in place -> as it was

    # -- what the code refers to -----------------------------------------------------------
    def function(self, node: ast.expr) -> Any:
        """The object ``node`` (``np.exp``, ``fmad_rt.mean_product``) refers to, or None."""
        key = id(node)
        if key not in self.resolved:
            found = None
            if isinstance(node, ast.Name) and node.id not in self.stores:
                found = self.lookup(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                base = node.value.id
                owner = None if base in self.stores else self.lookup(base)
                if owner is np or owner is runtime:
                    found = getattr(owner, node.attr, None)
            self.resolved[key] = found
        return self.resolved[key]

    # -- typed, fresh and private names -----------------------------------------------------
    def typed(self, e: ast.expr | None, typed: set[str]) -> bool:
        """Evaluating ``e`` runs numpy's code only, and gives a plain array, a number, or a
        tuple or list of them (when every parameter it reads is a plain array or a number):
        constants, typed names, operators, ``.T``, indexing, and the functions of
        :data:`TYPED` (never with ``out=``)."""
        if e is None or isinstance(e, ast.Constant):
            return True
        kind = type(e)
        if kind is ast.Name:
            return e.id in typed or e.id in self.roots
        if kind is ast.BinOp:
            return self.typed(e.left, typed) and self.typed(e.right, typed)
        if kind is ast.UnaryOp:
            return self.typed(e.operand, typed)
        if kind is ast.Compare:
            return self.typed(e.left, typed) and all(self.typed(c, typed) for c in e.comparators)
        if kind is ast.Attribute:
            return e.attr in _ATTRIBUTES and self.typed(e.value, typed)
        if kind is ast.Subscript:
            return self.typed(e.value, typed) and self.typed(e.slice, typed)
        if kind is ast.Slice:
            return all(self.typed(x, typed) for x in (e.lower, e.upper, e.step))
        if kind is ast.Tuple or kind is ast.List:
            return all(self.typed(x, typed) for x in e.elts)
        if kind is ast.Call:
            if any(k.arg in (None, "out") or not self.typed(k.value, typed) for k in e.keywords):
                return False
            if not all(self.typed(a, typed) for a in e.args):
                return False
            func = e.func
            if type(func) is ast.Attribute and func.attr in _METHODS:
                if self.typed(func.value, typed):
                    return True
            f = self.function(func)
            return isinstance(f, np.ufunc) or _typed_function(f)
        return False

    def reads_only(self, e: ast.expr, r: str) -> bool:
        """Every mention of ``r`` in ``e`` is an operand of an operator or an argument of a
        function that keeps no reference to it (and ``e`` is not ``r`` itself)."""
        if type(e) is ast.Name:
            return e.id != r
        todo: list[ast.AST] = [e]
        for node in todo:  # grows while it is read
            kind = type(node)
            if kind is ast.Name:
                continue
            children: list[ast.AST] = []
            B.add_children(node, children)
            todo += children
            if kind is ast.BinOp or kind is ast.Compare or kind is ast.UnaryOp:
                continue  # its operands are read
            if kind is ast.Call:
                f = self.function(node.func)
                if f in READERS or (isinstance(f, np.ufunc) and not node.keywords):
                    continue
            if any(type(c) is ast.Name and c.id == r for c in children):
                return False
        return True

    def producer(self, e: ast.expr, typed: set[str]) -> bool:
        """An operation whose result is a new array (or a number), of typed operands."""
        atom = (ast.Name, ast.Constant)
        if isinstance(e, ast.BinOp):
            return (
                isinstance(e.left, atom)
                and isinstance(e.right, atom)
                and isinstance(e.op, ARITH)
                and self.typed(e, typed)
            )
        if isinstance(e, ast.UnaryOp):
            return (
                isinstance(e.op, ast.USub | ast.UAdd)
                and isinstance(e.operand, atom)
                and self.typed(e, typed)
            )
        if isinstance(e, ast.Call) and not e.keywords and len(e.args) == 1:
            return (
                self.function(e.func) in UNARY
                and isinstance(e.args[0], atom)
                and self.typed(e.args[0], typed)
            )
        return False

    def private(self, block: list[ast.stmt]) -> tuple[set[str], dict[str, list[int]]]:
        """The private names of ``block`` and, for each, the indices of the statements
        that mention it (del lines left out)."""
        typed: set[str] = set()
        fresh: set[str] = set()
        where: dict[str, list[int]] = {}
        counts: Counter[str] = Counter()
        used: set[str] = set()
        ok: set[int] = set()  # the assignments of typed expressions
        for i, s in enumerate(block):
            if type(s) is ast.Delete:
                continue
            s = self.origin.get(id(s), s)  # what it computes is what it did
            names = self.names.get(id(s))
            if names is None:
                names = self.names[id(s)] = B.names(s)
            counts.update(names)
            for n in dict.fromkeys(names):
                where.setdefault(n, []).append(i)
            if assigns(s) and self.typed(s.value, typed):
                ok.add(i)
                used.update(n for n in names if n in self.roots)
                target = s.targets[0].id
                if self.stores[target] == 1 and target not in self.hidden:
                    typed.add(target)
                    if self.producer(s.value, typed):
                        fresh.add(target)
        self.used = sorted(used)
        self.typed_names = typed
        self.ok = ok
        self.fresh_names = fresh
        private = {
            name
            for name in fresh
            if name not in self.roots
            and counts[name] == self.mentions[name]
            and all(
                j in ok and self.reads_only(self.origin.get(id(block[j]), block[j]).value, name)
                for j in where[name]
            )
        }
        return private, where
