"""Reverse mode: a primal value the adjoint reads computed again in the backward pass, so
that the primal's operation on it can be computed in place.

``pow_1 = r ** 2`` needs a new array while ``r`` stays alive for the adjoint
``dout_dr = dout_dpow_1 * (2.0 * r)``: two arrays of the data's size where the hand-written
``mean(r ** 2)`` has one, and glibc gives the second back to the system at every call and
faults it in again at the next. :func:`apply` (called by :mod:`fmad.reverse_inplace` on each
block it rewrites, after its own lines) rewrites, in the code that runs only, a one-operation
line ``z = op(r, other)`` of a block when

- ``r`` holds an array no one else can see (``holds`` of :mod:`fmad.reverse_inplace`), and
  one later line of the block (not the next) reads it: an adjoint line that
  :mod:`fmad.reverse_inplace` computes into ``r``'s buffer (so the value computed again is
  consumed there, and ``z`` needs no buffer of its own);
- ``r`` was computed by a chain of at most :data:`LIMIT` elementwise operations (``+ - * /``,
  ``** 2``, unary ``-``, the functions of one array of :data:`fmad.fresh.UNARY`; the first
  may be ``x @ p``, taken when the code runs only where ``x`` is a matrix of one column or
  of at most :data:`SMALL` elements), each of the one before and a parameter or a number
  written in the code, its names bound once in the block; each parameter it reads is read
  only by assignments of typed expressions (and ``return``), so it holds the same numbers
  when the chain runs again;

into ``z = op(r, other, out=r); r = None`` behind the test of :mod:`fmad.inplace` (a large
plain float64 array, operands that fit, the parameters plain arrays or numbers), the line as
it was otherwise; and, before the line that reads ``r``, ``if r is None:`` the chain
again into one new buffer (under ``np.errstate(all='ignore')``: its warnings were given by
the first run; a first ``x @ p`` as :mod:`fmad.columns` writes it). The same numpy
operations on the same numbers give the same bits (a test compares the passes on and off);
the primal values are untouched.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from fmad import build as B
from fmad import fresh

# False: no value is computed twice (tests compare the two)
ENABLED = True
# the most operations a value is computed again with
LIMIT = 4
# a product x @ p is computed again only where x has at most WIDEST times r's elements or
# at most SMALL elements (8 MiB of float64): measured (P2, d = 10), reading a larger matrix
# again costs more than the page faults it saves (N = 1e6: 1.25x slower), a smaller one less
# (N = 1e5: 0.56x)
WIDEST = 1
SMALL = 2**20

_OPERATORS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}


def apply(
    a: Any, block: list[ast.stmt], where: dict[str, list[int]], written: dict[int, str]
) -> None:
    """``a``: the analysis of :mod:`fmad.reverse_inplace` after its ``private`` of
    ``block``; ``where``: the lines that mention each name; ``written``: the lines whose
    adjoints it computed in place, with the buffer of each."""
    if not ENABLED:
        return
    plans = []
    taken: set[str] = set()
    for i, s in enumerate(block):
        if i in written or i not in a.ok or not fresh.assigns(s):
            continue
        for r in _sites(a, s):
            later = [j for j in where.get(r, []) if j > i]
            # read again by one adjoint line only, which computes into its buffer
            if r in taken or len(later) != 1 or written.get(later[0]) != r:
                continue
            if later[0] == i + 1 or not a.holds(block, r, where, later[0]):
                continue
            chain = _chain(a, block, r, where)
            if chain is not None:
                plans.append((i, later[0], r, chain))
                taken.add(r)
                break
    for i, k, r, chain in sorted(plans, key=lambda p: -p[1]):
        block.insert(k, _again(a, r, chain, block[k]))
        block[i] = _in_place(a, block[i], r, chain)


def _sites(a: Any, s: ast.Assign) -> list[str]:
    """The local names a one-operation line computes from (none but names and numbers)."""
    operands = _operands(a, s.value)
    target = s.targets[0].id
    if operands is None:
        return []
    if not all(type(e) is ast.Name or _number(e) for e in operands):
        return []
    names = [e.id for e in operands if type(e) is ast.Name]
    if target in names or len(set(names)) != len(names):
        return []
    return [n for n in names if n not in a.roots]


def _number(e: ast.expr) -> bool:
    return type(e) is ast.Constant and type(e.value) in (int, float)


def _chain(a: Any, block, r: str, where) -> list[tuple[ast.expr, str | None]] | None:
    """The operations that computed ``r``, first first, each with the local name it reads
    (the one before it; None for the first, of parameters and numbers only), as the block
    wrote them; None when ``r`` was not computed so (see the module docstring)."""
    chain: list[tuple[ast.expr, str | None]] = []
    name = r
    leaves: set[str] = set()
    while True:
        if len(chain) == LIMIT or a.stores[name] != 1 or name in a.roots:
            return None
        lines = where.get(name, [])
        binding = next((j for j in lines if _binds(block[j], name, a)), None)
        if binding is None or binding not in a.ok:
            return None
        value = a.origin.get(id(block[binding]), block[binding]).value
        inner, params = _operation(a, value)
        if inner is False:
            return None
        chain.append((value, inner))
        leaves |= params
        if inner is None:
            break
        name = inner
    # a product only as the first operation (it makes the new array)
    if any(type(v) is ast.BinOp and type(v.op) is ast.MatMult for v, _ in chain[:-1]):
        return None
    for p in leaves:  # read only by typed assignments (and return): the same numbers
        if p in a.hidden:  # a nested function or lambda reads it
            return None
        lines = where.get(p, [])
        statements = [a.origin.get(id(block[j]), block[j]) for j in lines]
        if sum(B.names(t).count(p) for t in statements) != a.mentions[p]:
            return None
        if not all(
            j in a.ok or type(t) is ast.Return for j, t in zip(lines, statements, strict=True)
        ):
            return None
    return chain[::-1]


def _binds(s: ast.stmt, name: str, a: Any) -> bool:
    s = a.origin.get(id(s), s)
    return fresh.assigns(s) and s.targets[0].id == name


def _operation(a: Any, v: ast.expr) -> tuple[Any, set[str]]:
    """``(inner, params)``: the one local name ``v`` reads (None: none) and the
    parameters it reads; ``inner`` False when ``v`` is not an operation of a chain."""
    operands = _operands(a, v)
    if operands is None and not (type(v) is ast.BinOp and type(v.op) is ast.MatMult):
        return False, set()
    if operands is None:
        operands = [v.left, v.right]
    inner, params = None, set()
    for e in operands:
        if type(e) is ast.Constant and type(e.value) in (int, float):
            continue
        if type(e) is not ast.Name:
            return False, set()
        if e.id in a.roots:
            params.add(e.id)
        elif inner is None:
            inner = e.id
        else:
            return False, set()  # two local operands: not a chain
    return inner, params


def _operands(a: Any, v: ast.expr) -> list[ast.expr] | None:
    """The operands of an elementwise operation this module writes in place, else None."""
    kind = type(v)
    if kind is ast.BinOp and type(v.op) is ast.Pow:
        two = type(v.right) is ast.Constant and type(v.right.value) in (int, float)
        return [v.left] if two and v.right.value == 2 else None
    if kind is ast.BinOp and type(v.op) in _OPERATORS:
        return [v.left, v.right]
    if kind is ast.UnaryOp and type(v.op) is ast.USub:
        return [v.operand]
    if kind is ast.Call and not v.keywords and len(v.args) == 1:
        f = a.function(v.func)
        return [v.args[0]] if any(f is u for u in fresh.UNARY) else None
    return None


def _into(a: Any, v: ast.expr, r: str) -> tuple[ast.expr, ast.expr]:
    """``(call, other)``: the operation ``v`` (one of whose operands is the name ``r``)
    computed into ``r``'s buffer, and its other operand (``None`` written as a constant)."""
    kind = type(v)
    if kind is ast.BinOp and type(v.op) is ast.Pow:
        ufunc, args = np.square, [B.name(r)]
    elif kind is ast.BinOp:
        ufunc, args = _OPERATORS[type(v.op)], [B.clone(v.left), B.clone(v.right)]
    elif kind is ast.UnaryOp:
        ufunc, args = np.negative, [B.name(r)]
    else:
        ufunc, args = a.function(v.func), [B.name(r)]
    others = [e for e in args if not (type(e) is ast.Name and e.id == r)]
    call = ast.Call(a.helper("np", ufunc.__name__), args, [ast.keyword("out", B.name(r))])
    return call, (others[0] if others else ast.Constant(None))


def _in_place(a: Any, s: ast.Assign, r: str, chain) -> ast.If:
    """``z = op(..., out=r); r = None`` behind the test, else ``s``. A product ``x @ p`` of
    the chain is computed again only where ``x`` has at most :data:`WIDEST` times the
    elements of ``r`` (by default a matrix of one column) or at most :data:`SMALL`: a
    larger one costs more than the memory it saves."""
    call, other = _into(a, s.value, r)
    fast = [
        ast.Assign(targets=[ast.Name(s.targets[0].id, ast.Store())], value=call),
        ast.Assign(targets=[ast.Name(r, ast.Store())], value=ast.Constant(None)),
    ]
    large = ast.Call(a.helper("large"), [B.name(r), *[B.name(p) for p in a.used]], [])
    fits = ast.Call(a.helper("fits"), [B.name(r), other], [])
    tests = [large, fits]
    for v, _ in chain:
        if type(v) is ast.BinOp and type(v.op) is ast.MatMult:
            size = ast.Call(a.helper("np", "size"), [B.clone(v.left)], [])
            bound = ast.BinOp(
                left=ast.Call(a.helper("np", "size"), [B.name(r)], []),
                op=ast.Mult(),
                right=ast.Constant(WIDEST),
            )
            narrow = ast.BoolOp(
                op=ast.Or(),
                values=[
                    ast.Compare(left=size, ops=[ast.LtE()], comparators=[bound]),
                    ast.Compare(
                        left=B.clone(size), ops=[ast.LtE()], comparators=[ast.Constant(SMALL)]
                    ),
                ],
            )
            tests.append(narrow)
    node = ast.If(test=ast.BoolOp(ast.And(), tests), body=fast, orelse=[s])
    fill(node, s)
    return node


def _again(a: Any, r: str, chain: list[tuple[ast.expr, str | None]], like: ast.stmt) -> ast.If:
    """``if r is None:`` the chain again, into one new buffer where it fits."""
    first = B.clone(chain[0][0])
    if type(first) is ast.BinOp and type(first.op) is ast.MatMult:
        # as fmad.columns writes it where it knows the shapes (the same bits as ``@``, or
        # None: then ``@`` itself)
        column = ast.NamedExpr(
            target=ast.Name(r, ast.Store()),
            value=ast.Call(a.helper("column_product"), [first.left, first.right], []),
        )
        test = ast.Compare(left=column, ops=[ast.IsNot()], comparators=[ast.Constant(None)])
        first = ast.IfExp(test=test, body=B.name(r), orelse=B.clone(first))
    steps: list[ast.stmt] = [ast.Assign(targets=[ast.Name(r, ast.Store())], value=first)]
    for v, inner in chain[1:]:
        again = _swap(v, inner, r)
        call, other = _into(a, again, r)
        test = ast.Call(a.helper("fits"), [B.name(r), other], [])
        value = ast.IfExp(test=test, body=call, orelse=again)
        steps.append(ast.Assign(targets=[ast.Name(r, ast.Store())], value=value))
    errstate = ast.Call(
        a.helper("np", "errstate"), [], [ast.keyword("all", ast.Constant("ignore"))]
    )
    quiet = ast.With(items=[ast.withitem(context_expr=errstate)], body=steps)
    test = ast.Compare(left=B.name(r), ops=[ast.Is()], comparators=[ast.Constant(None)])
    node = ast.If(test=test, body=[quiet], orelse=[])
    fill(node, like)
    return node


def _swap(e: ast.expr, old: str | None, new: str) -> ast.expr:
    """A copy of ``e`` that reads ``new`` where it read ``old``."""
    copy = B.clone(e)
    for n in ast.walk(copy):
        if type(n) is ast.Name and n.id == old:
            n.id = new
    return copy


def fill(node: ast.AST, like: ast.AST) -> None:
    """Give the nodes made here (those without a location) ``like``'s."""
    todo = [node]
    for n in todo:
        if getattr(n, "lineno", None) is None:
            if "lineno" in n._attributes:
                ast.copy_location(n, like)
            B.add_children(n, todo)
