"""Reverse mode's adjoint lines computed into the buffer of an operand read by no later line.

The adjoint lines of reverse mode read the primal values they multiply by, and each makes a
new array: ``dout_dr = dout_dpow_1 * (2.0 * r)`` makes two (``2.0 * r``, then the product)
while ``r`` is still alive, three arrays of the size of the data at once. :func:`apply`
rewrites the tree of the code that runs of a reverse-mode unit (after :mod:`fmad.liveness`,
before :mod:`fmad.inplace`; never what ``show``, ``.source`` or the golden files print) so
that such a line computes into the buffer of an operand ``r`` when

- ``r`` is *private* (:mod:`fmad.fresh`: a local array numpy made in this block, or handed
  on by a copy that is its source's last use, every other mention of it a plain read
  (``r.sum()`` too) in a typed statement of the block: never a parameter, a
  closure value or a global, never returned, stored, saved on a loop's tape, copied to
  another name, indexed, viewed (``r[1:]``, ``r.T``, ``r.reshape``) or passed to a function
  that may keep it), with reverse mode's own helpers that give plain arrays or numbers
  (``fmad_rev.seed``, ``unbroadcast``, the adjoints of sums, means and ``@``) counted as
  typed and any arithmetic operation of typed operands as making a new array;
- no later statement of the block mentions ``r`` (its ``del`` line follows), and the line
  mentions it once;
- every operation from ``r`` up to the line's result is an elementwise one the pass knows
  (``+ - * /``, ``** 2``, unary ``-``, ``np.add``/``subtract``/``multiply``/``divide`` and
  the functions of one array of :data:`fmad.fresh.UNARY`), and its other operand is a name
  or a number written in the code.

Then each of those operations writes into ``r``'s buffer, in the order the line computes
them, behind one test: ``r`` a plain float64 array of at least
``runtime_arrays.LARGE`` elements that owns its buffer, each other operand a number or a
float64 array that neither widens nor grows the result (``fits``), and every parameter the
typed code reads a plain array or a number; else the line as it was. Nothing moves: the same
numpy loops run on the same numbers in the same order, so every value is bit for bit what it
was, and a floating-point warning or error comes from the same operation.

The flattened primal is one operation per line, which :mod:`fmad.inplace` takes; this pass
takes the lines with nested operations (the adjoints) and the one-operation lines whose
operand one of its own lines computed or a copy handed on (which :mod:`fmad.inplace` cannot
see as fresh). Last, :mod:`fmad.reverse_remat` computes again, in such an adjoint line's
block, a value it reads that the primal could then have computed over in place.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from fmad import build as B
from fmad import fresh, inplace, reverse_remat, runtime_arrays, runtime_reverse

# False: reverse mode's adjoint lines make new arrays (tests compare the two)
ENABLED = True

_OPERATORS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
_BINARY_UFUNCS = frozenset(_OPERATORS.values())
# reverse mode's helpers that, given plain arrays and numbers, run numpy's code only and give
# plain arrays or numbers (or raise): typed, in the sense of fmad.fresh
_R = runtime_reverse
TYPED = frozenset(
    {_R.seed, _R.unbroadcast, _R.sum_adjoint, _R.mean_adjoint, _R.matmul_left, _R.matmul_right}
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
    nodes: list[ast.AST] = [fn]
    for n in nodes:  # grows while it is read
        B.add_children(n, nodes)
    if not any(_nested(n) for n in nodes if type(n) is ast.Assign):
        return  # no line with nested operations: nothing to take
    local = {n.id for n in nodes if type(n) is ast.Name and type(n.ctx) is not ast.Load}
    local |= {a.arg for a in nodes if type(a) is ast.arg}

    def outside(name: str) -> Any:
        return None if name in local else lookup(name)

    for f in [n for n in nodes if type(n) is ast.FunctionDef]:  # each function once
        _Adjoints(f, outside, inject).walk()


def _nested(s: ast.Assign) -> bool:
    """``s`` computes an operation of an operation (an adjoint line's form)."""
    v = s.value
    if type(v) is ast.BinOp:
        return type(v.left) in _OPERATION_KINDS or type(v.right) in _OPERATION_KINDS
    if type(v) is ast.UnaryOp:
        return type(v.operand) in _OPERATION_KINDS
    if type(v) is ast.Call:
        if _reader(v):
            return type(v.func.value) in _OPERATION_KINDS
        return any(type(a) in _OPERATION_KINDS for a in v.args)
    return False


def _reader(v: ast.expr) -> bool:
    """``e.sum(...)`` (keywords of constants only): it reads ``e`` and keeps nothing."""
    return (
        type(v) is ast.Call
        and type(v.func) is ast.Attribute
        and v.func.attr in _READ_METHODS
        and not v.args
        and all(k.arg is not None and type(k.value) is ast.Constant for k in v.keywords)
    )


_OPERATION_KINDS = frozenset({ast.BinOp, ast.UnaryOp, ast.Call})
_READ_METHODS = frozenset({"sum"})


class _Adjoints(fresh.Analysis):
    def __init__(self, fn: ast.FunctionDef, lookup, inject) -> None:
        super().__init__(fn, lookup)
        self.inject = inject

    # -- the analysis of fmad.fresh, with reverse mode's helpers -----------------------------
    def function(self, node: ast.expr) -> Any:
        found = super().function(node)
        if found is None and type(node) is ast.Attribute and type(node.value) is ast.Name:
            base = node.value.id
            if base not in self.stores and self.lookup(base) is runtime_reverse:
                f = getattr(runtime_reverse, node.attr, None)
                if _one_of(f, TYPED):
                    self.resolved[id(node)] = found = f
        return found

    def typed(self, e: ast.expr | None, typed: set[str]) -> bool:
        if type(e) is ast.Call and (_one_of(self.function(e.func), TYPED) or self._float64(e.func)):
            keywords = all(
                k.arg not in (None, "out") and self.typed(k.value, typed) for k in e.keywords
            )
            return keywords and all(self.typed(a, typed) for a in e.args)
        return super().typed(e, typed)

    def private(self, block: list[ast.stmt]) -> tuple[set[str], dict[str, list[int]]]:
        """As :meth:`fmad.fresh.Analysis.private`, a name the block binds several times
        (an adjoint that adds up: ``dout_dt = dout_dt + ...``) counted as typed when each of
        its bindings is an assignment of a typed expression in this block (then it holds a
        plain array or a number wherever the block reads it); never as fresh."""
        bindings: dict[str, list[int]] = {}
        for i, s in enumerate(block):
            s = self.origin.get(id(s), s)
            if fresh.assigns(s):
                bindings.setdefault(s.targets[0].id, []).append(i)
        several = {
            n
            for n, lines in bindings.items()
            if len(lines) > 1 and self.stores[n] == len(lines) and n not in self.hidden
        }
        stores = self.stores
        try:
            while True:
                self.stores = Counter(stores)
                for n in several:
                    self.stores[n] = 1
                found = super().private(block)
                bad = {n for n in several if any(j not in self.ok for j in bindings[n])}
                if not bad:
                    break
                several -= bad
        finally:
            self.stores = stores
        self.fresh_names = self.fresh_names - several
        return found

    def reads_only(self, e: ast.expr, r: str) -> bool:
        """As :meth:`fmad.fresh.Analysis.reads_only`, and ``r.sum(...)`` reads ``r``."""
        if _reader(e) and type(e.func.value) is ast.Name and e.func.value.id == r:
            return True
        return super().reads_only(e, r)

    def _float64(self, func: ast.expr) -> bool:
        """``np.float64``: given a typed argument, a number or a plain array."""
        if type(func) is ast.Attribute and type(func.value) is ast.Name:
            base = func.value.id
            return base not in self.stores and self.lookup(base) is np and func.attr == "float64"
        return False

    def producer(self, e: ast.expr, typed: set[str]) -> bool:
        """An operation that makes a new array (or a number), nested or not, of typed
        operands."""
        kind = type(e)
        if kind is ast.BinOp:
            return isinstance(e.op, fresh.ARITH) and self.typed(e, typed)
        if kind is ast.UnaryOp:
            return isinstance(e.op, ast.USub | ast.UAdd) and self.typed(e, typed)
        if kind is ast.Call and not e.keywords:
            f = self.function(e.func)
            known = (_one_of(f, fresh.UNARY) and len(e.args) == 1) or (
                _one_of(f, _BINARY_UFUNCS) and len(e.args) == 2
            )
            return known and self.typed(e, typed)
        return False

    # -- the rewrite ---------------------------------------------------------------------------
    def walk(self) -> None:
        blocks = [self.fn.body]
        while blocks:
            block = blocks.pop()
            for s in block:
                if type(s) is ast.If:
                    blocks += [s.body, s.orelse]
                elif type(s) is ast.Try:
                    blocks.append(s.body)
            self.block(block)

    def block(self, block: list[ast.stmt]) -> None:
        if not any(type(s) is ast.Assign and _nested(s) for s in block):
            return
        _, where = self.private(block)  # the typed, fresh and ok statements of the block
        ours: set[str] = set()  # the names this pass's lines computed in place
        written: dict[int, str] = {}  # and the lines, with the buffer each writes
        for i, s in enumerate(block):
            if not fresh.assigns(s):
                continue
            site = self.site(block, i, where, ours)
            if site is None:
                continue
            r, path = site
            new = ast.Assign(targets=s.targets, value=self.rewrite(s.value, r, path))
            ast.copy_location(new, s)
            reverse_remat.fill(new.value, s.value)
            self.origin[id(new)] = s
            block[i] = new
            ours.add(s.targets[0].id)
            written[i] = r
        reverse_remat.apply(self, block, where, written)  # inserts lines: the last step

    def site(self, block, i, where, ours) -> tuple[str, list[ast.expr]] | None:
        """The operand whose buffer ``block[i]`` computes into, and the operations from it
        up to the value (innermost first); None when there is none."""
        s = block[i]
        target = s.targets[0].id
        best = None
        for leaf, path in _leaves(s.value):
            r = leaf.id
            if not path or r == target or not self.holds(block, r, where, i):
                continue
            if sum(type(n) is ast.Name and n.id == r for n in ast.walk(s.value)) != 1:
                continue
            if not all(self.known(op, child) for op, child in path):
                continue
            if len(path) == 1 and not _nested(s) and r not in ours and r in self.fresh_names:
                continue  # one operation on an operand fmad.inplace sees: its to take
            if best is None or len(path) > len(best[1]):  # the deepest: most likely an array
                best = (r, path)
        if best is None:
            return None
        return best[0], [op for op, _ in best[1]]

    def holds(self, block, r: str, where, last: int, exempt: bool = True) -> bool:
        """``r`` holds an array no one else can see, and ``block[last]`` is the last
        statement that mentions it: ``r`` is bound once, in the block, to a fresh array
        (:mod:`fmad.fresh`) or to a name holding one whose last mention this is (a copy,
        ``dout_dx = dout_dz``: the adjoint of ``+``); every other statement that mentions
        it is in the block and assigns a typed expression that only reads it. ``exempt``:
        ``block[last]`` need not (it reads ``r`` through operations whose other operands the
        code checks when it runs)."""
        if r in self.roots or r in self.hidden or self.stores[r] != 1:
            return False
        lines = where.get(r, [])
        if not lines or lines[-1] != last:
            return False
        statements = [self.origin.get(id(block[j]), block[j]) for j in lines]
        if sum(B.names(t).count(r) for t in statements) != self.mentions[r]:
            return False  # mentioned outside the block
        first = statements[0]
        if not (fresh.assigns(first) and first.targets[0].id == r and lines[0] in self.ok):
            return False
        for j, t in zip(lines[1:], statements[1:], strict=True):
            if not ((j == last and exempt) or (j in self.ok and self.reads_only(t.value, r))):
                return False
        if r in self.fresh_names:
            return True
        source = first.value
        return type(source) is ast.Name and self.holds(block, source.id, where, lines[0], True)

    def known(self, op: ast.expr, child: ast.expr) -> bool:
        """``op`` is an elementwise operation the pass writes in place, and its operands
        other than ``child`` (the one on the way from the buffer) are names or numbers."""
        kind = type(op)
        if _reader(op):
            return op.func.value is child  # reads the buffer, writes nothing
        if kind is ast.BinOp:
            if type(op.op) is ast.Pow:
                right = op.right
                two = type(right) is ast.Constant and type(right.value) in (int, float)
                return two and right.value == 2 and op.left is child
            others = [op.right if op.left is child else op.left]
            ok = type(op.op) in _OPERATORS
        elif kind is ast.UnaryOp:
            others, ok = [], type(op.op) is ast.USub
        elif kind is ast.Call and not op.keywords:
            f = self.function(op.func)
            others = [a for a in op.args if a is not child]
            ok = (_one_of(f, fresh.UNARY) and len(op.args) == 1) or (
                _one_of(f, _BINARY_UFUNCS) and len(op.args) == 2
            )
        else:
            return False
        return ok and all(_operand(o) for o in others)

    def rewrite(self, value: ast.expr, r: str, path: list[ast.expr]) -> ast.expr:
        """``fast if test else value``: each operation of ``path`` written into ``r``."""
        on_path = {id(op) for op in path}
        others: list[str] = []

        def fast(e: ast.expr) -> ast.expr:
            if id(e) not in on_path:
                if type(e) is ast.Name and e.id != r:
                    others.append(e.id)
                return B.clone(e)
            kind = type(e)
            if _reader(e):
                method = ast.Attribute(value=fast(e.func.value), attr=e.func.attr, ctx=ast.Load())
                return ast.Call(method, [], [B.clone(k) for k in e.keywords])
            if kind is ast.BinOp and type(e.op) is ast.Pow:
                ufunc, args = np.square, [fast(e.left)]
            elif kind is ast.BinOp:
                ufunc, args = _OPERATORS[type(e.op)], [fast(e.left), fast(e.right)]
            elif kind is ast.UnaryOp:
                ufunc, args = np.negative, [fast(e.operand)]
            else:
                ufunc, args = self.function(e.func), [fast(a) for a in e.args]
            out = ast.keyword(arg="out", value=B.name(r))
            return ast.Call(self.helper("np", ufunc.__name__), args, [out])

        body = fast(value)
        tests = [ast.Call(self.helper("large"), [B.name(r), *[B.name(p) for p in self.used]], [])]
        checked = [B.name(o) for o in dict.fromkeys(others)] or [ast.Constant(None)]
        tests += [ast.Call(self.helper("fits"), [B.name(r), o], []) for o in checked]
        test = tests[0] if len(tests) == 1 else ast.BoolOp(op=ast.And(), values=tests)
        return ast.IfExp(test=test, body=body, orelse=value)

    def helper(self, *attrs: str) -> ast.expr:
        """``fmad_ip.<attrs>``: what the code reads from :mod:`fmad.runtime_arrays`."""
        node: ast.expr = B.name(self.inject(runtime_arrays, "fmad_ip"))
        for attr in attrs:
            node = ast.Attribute(value=node, attr=attr, ctx=ast.Load())
        return node


def _leaves(e: ast.expr) -> list[tuple[ast.Name, list[tuple[ast.expr, ast.expr]]]]:
    """Each name ``e`` reads as an operand, with the operations from it up to ``e``
    (innermost first, each with its operand on the way); the names inside anything else
    (a subscript, an attribute, a keyword) are not operands."""
    found: list[tuple[ast.Name, list[tuple[ast.expr, ast.expr]]]] = []

    def visit(node: ast.expr, path: list[tuple[ast.expr, ast.expr]]) -> None:
        kind = type(node)
        if kind is ast.Name:
            found.append((node, path))
        elif kind is ast.BinOp:
            visit(node.left, [(node, node.left), *path])
            visit(node.right, [(node, node.right), *path])
        elif kind is ast.UnaryOp:
            visit(node.operand, [(node, node.operand), *path])
        elif not path and _reader(node):  # the value only: the sum of what is written
            visit(node.func.value, [(node, node.func.value)])
        elif kind is ast.Call and not node.keywords:
            for a in node.args:
                visit(a, [(node, a), *path])

    visit(e, [])
    return found


def _one_of(f: Any, group: frozenset) -> bool:
    """``f`` is one of ``group`` (by identity: ``f`` may be any object, unhashable too)."""
    return any(f is g for g in group)


def _operand(e: ast.expr) -> bool:
    """A name, or a real number written in the code (``fits`` holds for it)."""
    if type(e) is ast.Name:
        return True
    return type(e) is ast.Constant and type(e.value) in (int, float)


def both(fn: ast.FunctionDef, unit: Any, free_object: Callable[[Any, str], Any]) -> None:
    """Large arrays computed into buffers no one else sees: a reverse-mode unit's adjoint
    lines (this module), then the one-operation lines (fmad.inplace). ``free_object(unit,
    name)``: the object a free name of the unit's code refers to."""
    lookup = functools.partial(free_object, unit)
    if unit.primal is not None:  # a reverse-mode unit
        apply(fn, lookup, unit.inject)
    inplace.apply(fn, lookup, unit.inject)
