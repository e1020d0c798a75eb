"""In place: a large array computed into the buffer of an operand that no one else can see.

:func:`apply` rewrites the tree of the code that runs (after :mod:`fmad.liveness` and
:func:`fmad.compile.relocate`); ``show``, ``.source``, the golden files and the readable code
of a second pass stay without it. In each function (each nested ``def`` on its own), in each
block that no loop repeats (the body, the branches of an ``if``, the body of a ``try``), with
the *private* names of :mod:`fmad.fresh` (arrays numpy made in this block that no one else
can see, decided from the code alone, never from reference counts):

- ``z = r + s`` (``- * /``, ``** 2``, unary ``-``, an elementwise numpy function) where
  ``r`` is private and read by no later statement becomes
  ``z = np.add(r, s, out=r) if fits(r, s) else r + s`` (``r`` a plain float64 array that
  owns its buffer, ``s`` neither widens nor grows the result): the same numpy loop, the
  same bits, no new buffer (what numpy's own elision of temporaries does for ``a + b + c``);
- where later statements still read ``r`` (the derivative lines read the operand of the
  line they follow), and they and the statements between are assignments of typed
  expressions, they run first (and what they need), then the operation in place, behind
  ``fits`` (and no ``np.seterr`` that raises, whose error would come from another line);
  reading ``z`` only for its shape (``np.size(z)``, ``mean_product``'s ``x``) they read
  ``r``, of the same shape; else the original statements run, unchanged;
- each run of simple statements holding such operations runs, from the first one on,
  behind one test: its operand is not a float, and (one call) a plain array of at least
  ``runtime_arrays.LARGE`` elements, and every parameter the typed code reads is a plain
  array or a number; else the statements as they were. Code for numbers pays one type
  test per run and one closure cell (``fmad_ip``), nothing per operation.

The values computed are bit for bit the same: only where a result is written changes.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from fmad import build as B
from fmad import fresh, runtime, runtime_arrays, runtime_seed

# False: the code that runs computes every value into a new buffer (tests compare the two)
ENABLED = True

_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide}
# the argument positions that each of these reads only for its shape
_SHAPE_ONLY = {np.size: 0, np.shape: 0, np.ndim: 0, runtime.mean_product: 2}
_SHAPE_ONLY[runtime.sum_product] = _SHAPE_ONLY[runtime_seed.seed_sum] = 2
_SHAPE_ONLY[runtime_seed.seed_mean] = 2
_COMPOUND = frozenset(
    {ast.If, ast.For, ast.While, ast.Try, ast.With, ast.FunctionDef, ast.ClassDef, ast.Match}
    | {ast.AsyncFor, ast.AsyncWith, ast.AsyncFunctionDef, ast.TryStar}
)


def apply(
    fn: ast.FunctionDef,
    lookup: Callable[[str], Any],
    inject: Callable[[Any, str], str],
) -> None:
    """Rewrite ``fn`` (and the functions defined in it) as the module docstring says.
    ``lookup(name)``: the object a free name of the code refers to (or None);
    ``inject(obj, hint)``: a name under which the code may read ``obj``."""
    if not ENABLED:
        return
    # a name bound anywhere in the code never refers to a module or a function of numpy
    nodes: list[ast.AST] = [fn]
    for n in nodes:  # grows while it is read
        B.add_children(n, nodes)
    local = {n.id for n in nodes if type(n) is ast.Name and type(n.ctx) is not ast.Load}
    local |= {a.arg for a in nodes if type(a) is ast.arg}

    def outside(name: str) -> Any:
        return None if name in local else lookup(name)

    for f in [n for n in nodes if type(n) is ast.FunctionDef]:  # each function once
        _Function(f, outside, inject).walk()


class _Function(fresh.Analysis):
    def __init__(self, fn: ast.FunctionDef, lookup, inject) -> None:
        super().__init__(fn, lookup)
        self.inject = inject

    def walk(self) -> None:
        blocks = [self.fn.body]
        while blocks:
            block = blocks.pop()
            for s in block:
                if isinstance(s, ast.If):
                    blocks += [s.body, s.orelse]
                elif isinstance(s, ast.Try):
                    blocks.append(s.body)
            self.block(block)

    def block(self, block: list[ast.stmt]) -> None:
        if not any(_shaped(s) for s in block):  # no operation to take: no analysis
            return
        private, where = self.private(block)
        if not private:
            return
        runs, start = [], 0  # the runs of simple statements, [start, end)
        for i, s in enumerate([*block, None]):
            if s is None or type(s) in _COMPOUND:
                if i > start:
                    runs.append((start, i))
                start = i + 1
        size = len(block)
        for a, b in reversed(runs):  # the last first: indices stay valid
            if len(block) != size or any(type(block[i]) is ast.If for i in range(b, size)):
                private, where = self.private(block)  # a later run changed
                size = len(block)
            self.run(block, a, b, private, where)

    def run(self, block: list[ast.stmt], a: int, b: int, private, where) -> None:
        """The operations of ``block[a:b]`` (simple statements) in place, from the first
        one on behind one test of its operand: a large plain array, and the parameters
        plain arrays or numbers; else the statements as they were."""
        original = block[a:b]
        first = None
        end = shrunk = 0  # after the last statement changed; the statements moved into ifs
        i = a
        while i < b:
            site = _site(block[i], private, self)
            if site is not None:
                r, other = site
                later = [j for j in where[r] if j > i]
                if any(j >= b for j in later):
                    pass  # read after a compound statement: left alone
                elif not later:
                    new = copy.copy(block[i])
                    new.value = self.in_place(new.value, r, other, guarded=True)
                    self.origin[id(new)] = block[i]
                    block[i] = new
                    first, end = first or (i, r), i + 1
                elif self.reorder(block, i, r, other, later):
                    # block[i] is now the ``if``: the statements after it moved up
                    b -= max(later) - i
                    shrunk += max(later) - i
                    first, end = first or (i, r), i + 1
                    private, where = self.private(block)
            i += 1
        if first is None:
            return
        i0, r0 = first
        # numbers (the common small case) pay one type test with names the public function
        # already holds; the rest is checked by one call
        not_float = ast.Compare(
            left=_call(self.inject(type, "fmad_type"), [_name(r0)]),
            ops=[ast.IsNot()],
            comparators=[_name(self.inject(float, "fmad_float"))],
        )
        large = ast.Call(self.helper("large"), [_name(r0), *[_name(p) for p in self.used]], [])
        test = ast.BoolOp(op=ast.And(), values=[not_float, large])
        branch = ast.If(test=test, body=block[i0:end], orelse=original[i0 - a : end - a + shrunk])
        _fill(branch, original[i0 - a])
        block[i0:end] = [branch]

    def helper(self, *attrs: str) -> ast.expr:
        """``fmad_ip.<attrs>``: what the code reads from :mod:`fmad.runtime_arrays` (one
        closure cell for all: each costs every call its copy into the frame)."""
        node: ast.expr = _name(self.inject(runtime_arrays, "fmad_ip"))
        for attr in attrs:
            node = ast.Attribute(value=node, attr=attr, ctx=ast.Load())
        return node

    def guard(self, r: str, other: ast.expr | None) -> ast.expr:
        """``fits(r, other)``."""
        rest = [other if other is not None else ast.Constant(None)]
        return ast.Call(self.helper("fits"), [_name(r), *rest], [])

    def in_place(self, value: ast.expr, r: str, other, guarded: bool) -> ast.expr:
        """``value`` computed into ``r``'s buffer (behind the guard: an ``IfExp``)."""
        if isinstance(value, ast.BinOp):
            if isinstance(value.op, ast.Pow):
                ufunc, args = np.square, [_name(r)]
            else:
                ufunc = _BINARY[type(value.op)]
                args = [B.clone(value.left), B.clone(value.right)]
        elif isinstance(value, ast.UnaryOp):
            ufunc, args = np.negative, [_name(r)]
        else:
            ufunc, args = self.function(value.func), [_name(r)]
        call = ast.Call(
            func=self.helper("np", ufunc.__name__),
            args=args,
            keywords=[ast.keyword(arg="out", value=_name(r))],
        )
        node = ast.IfExp(test=self.guard(r, other), body=call, orelse=value) if guarded else call
        _fill(node, value)
        return node

    def reorder(self, block, i, r, other, later) -> bool:
        """Run the statements after ``block[i]`` that read ``r`` (and those they need)
        before it, then ``block[i]`` in place; behind the guard, else the block as it was."""
        site = block[i]
        z = site.targets[0].id
        last = max(later)
        for j in range(i + 1, last + 1):
            s = block[j]
            if type(s) is not ast.Delete and (
                j not in self.ok or self.stores[s.targets[0].id] != 1
            ):
                return False
        moved = set(later)
        span = range(i + 1, last + 1)
        bound = {j: block[j].targets[0].id for j in span if fresh.assigns(block[j])}
        grew = True
        while grew:
            grew = False
            for j in sorted(moved):
                reads = {n.id for n in ast.walk(block[j].value) if isinstance(n, ast.Name)}
                for q, target in bound.items():
                    if q not in moved and q < j and target in reads:
                        moved.add(q)
                        grew = True
        rewritten = []
        for j in sorted(moved):
            s = block[j]
            if z in (self.names.get(id(s)) or B.names(s)):  # a copy: reading z's shape, r's
                s = B.clone(s)
                if not self.shape_reads(s.value, z, r):
                    return False
            rewritten.append(s)
        done = B.clone(site)
        done.value = self.in_place(done.value, r, other, guarded=False)
        # the other statements are the same nodes in both branches (they are not changed)
        rest = [block[q] for q in range(i + 1, last + 1) if q not in moved]
        fast = rewritten + [done] + rest
        # moved, the derivative lines run before the operation: only where numpy raises no
        # floating-point error (np.seterr), which would come from another line
        quiet_ = ast.Call(self.helper("quiet"), [], [])
        test = ast.BoolOp(op=ast.And(), values=[self.guard(r, other), quiet_])
        branch = ast.If(test=test, body=fast, orelse=block[i : last + 1])
        ast.copy_location(branch, site)
        _fill(test, site)
        block[i : last + 1] = [branch]
        return True

    def shape_reads(self, e: ast.expr, z: str, r: str) -> bool:
        """Replace each read of ``z`` in ``e`` that only asks for its shape by ``r``;
        False if ``e`` reads ``z`` otherwise."""
        for node in ast.walk(e):
            if isinstance(node, ast.Call):
                position = _SHAPE_ONLY.get(self.function(node.func))
                if position is not None and position < len(node.args):
                    arg = node.args[position]
                    if isinstance(arg, ast.Name) and arg.id == z:
                        node.args[position] = ast.copy_location(_name(r), arg)
        return not any(isinstance(n, ast.Name) and n.id == z for n in ast.walk(e))


def _site(s: ast.stmt, private: set[str], f: _Function) -> tuple[str, ast.expr | None] | None:
    """``(r, other)`` when ``s`` may compute its value into the private ``r``'s buffer."""
    if not fresh.assigns(s):
        return None
    v = s.value
    if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Pow):
        two = isinstance(v.right, ast.Constant) and type(v.right.value) in (int, float)
        operands = [v.left] if two and v.right.value == 2 else []
    elif isinstance(v, ast.BinOp) and type(v.op) in _BINARY:
        operands = [v.left, v.right]
    elif isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.USub):
        operands = [v.operand]
    elif isinstance(v, ast.Call) and not v.keywords and len(v.args) == 1:
        operands = [v.args[0]] if f.function(v.func) in fresh.UNARY else []
    else:
        return None
    for k, e in enumerate(operands):
        if isinstance(e, ast.Name) and e.id in private and e.id != s.targets[0].id:
            return e.id, (operands[1 - k] if len(operands) == 2 else None)
    return None


def _shaped(s: ast.stmt) -> bool:
    """``s`` has the form of an operation :func:`_site` may take (before any analysis)."""
    if type(s) is not ast.Assign:
        return False
    v = s.value
    kind = type(v)
    if kind is ast.BinOp:
        return type(v.left) is ast.Name or type(v.right) is ast.Name
    if kind is ast.UnaryOp:
        return type(v.operand) is ast.Name
    return kind is ast.Call and len(v.args) == 1 and type(v.args[0]) is ast.Name


def _name(n: str) -> ast.Name:
    return ast.Name(id=n, ctx=ast.Load())


def _call(f: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=_name(f), args=args, keywords=[])


_LOCATION = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def _fill(node: ast.AST, like: ast.AST) -> None:
    """Give the nodes fmad made in ``node`` (those without a location) ``like``'s; a node
    with one is a part of the code, located with all it holds."""
    where = [(a, getattr(like, a)) for a in _LOCATION if hasattr(like, a)]
    where = [(a, v) for a, v in where if v is not None or a.startswith("end_")]
    todo = [node]
    for n in todo:
        if getattr(n, "lineno", None) is None:
            if "lineno" in n._attributes:  # ast.copy_location(n, like), once for all
                for a, v in where:
                    setattr(n, a, v)
            B.add_children(n, todo)
