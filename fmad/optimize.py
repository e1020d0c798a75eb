"""Optimize the tangent statements; the primal statements compute what they did.

After this pass: no tangent term is multiplied by a known zero or one, no ``+ 0``, ``- 0``,
``/ 1`` or ``** 1`` remains in a tangent expression, constant-only subexpressions are folded,
a primal factor that several directions' tangents share (``2.0 * r`` in ``dloss_dw`` and
``dloss_db``) is computed once, into ``<value>_partial``, and no tangent assignment survives
that nothing reads (the identity seed of an array parameter included, when every use of it
was folded away), and a top-level statement that computes again what an earlier one
computed (the same arithmetic on names bound once) is a copy of it: a primal statement may
become one, holding the very same bits (this is what a second pass, transforming fmad's own
output, gains from).
"""

from __future__ import annotations

import ast
import collections
import copy

from fmad import build as B
from fmad.naming import Namer


def optimize(
    tree: ast.FunctionDef, tangent_names: set[str], namer: Namer, keep: set[str] = frozenset()
) -> ast.FunctionDef:
    """Simplify tangent expressions, share common factors, drop unread tangents.
    ``keep``: never drop these."""
    # ``tree`` is the forward pass's fresh output: simplified in place
    tangent_names = set(tangent_names)
    for node in B.walk(tree):  # each tangent assignment and each return
        if type(node) is ast.Assign and is_tangent_stmt(node, tangent_names):
            node.value = simplify_all(node.value)
        elif type(node) is ast.Return and node.value is not None:
            node.value = simplify_all(node.value)
    for body, _ in list(blocks(tree.body)):
        share_common_factors(body, tangent_names, namer)
    reuse_values(tree)
    drop_dead_tangents(tree, tangent_names, keep)
    return tree  # printed, then parsed again to compile: no locations needed


def share_common_factors(body: list[ast.stmt], tangent_names: set[str], namer: Namer) -> None:
    """In each run of tangent statements, compute a repeated primal expression once."""
    i = 0
    while i < len(body):
        if not is_tangent_stmt(body[i], tangent_names):
            i += 1
            continue
        j = i
        while j < len(body) and is_tangent_stmt(body[j], tangent_names):
            j += 1
        run = body[i:j]
        hoisted = hoist(run, tangent_names, namer, body[i - 1] if i else None)
        body[i:j] = hoisted + run
        i = j + len(hoisted)


def hoist(
    run: list[ast.stmt], tangent_names: set[str], namer: Namer, primal: ast.stmt | None
) -> list[ast.stmt]:
    counts: dict[tuple, list[ast.expr]] = {}
    memo: dict[int, tuple] = {}  # no node changes while they are counted
    for s in run:
        nodes = B.walk(s.value if isinstance(s, ast.Assign) else s)
        tangent = reads_tangents(nodes, tangent_names)
        for node in nodes:
            if (
                isinstance(node, ast.BinOp | ast.Call | ast.UnaryOp)
                and not tangent[id(node)]
                and B.constant_value(node) is None
            ):
                counts.setdefault(B.structure(node, memo), []).append(node)
    shared = [nodes for nodes in counts.values() if len(nodes) > 1]
    if not shared:
        return []
    # the biggest repeated expression first; its parts go with it
    shared.sort(key=lambda nodes: -len(ast.dump(nodes[0])))
    target = B.stored_names(primal.targets[0])[0] if isinstance(primal, ast.Assign) else "t"
    out: list[ast.stmt] = []
    for nodes in shared:
        key = B.structure(nodes[0])
        memo = {}  # the run as it is now (Replace changed it)
        present = [n for s in run for n in B.walk(s) if B.structure(n, memo) == key]
        if len(present) < 2:
            continue
        # an assignment of exactly this expression already names it: reuse that name
        owner = next(
            (
                s
                for s in run
                if isinstance(s, ast.Assign)
                and isinstance(s.targets[0], ast.Name)
                and B.structure(s.value, memo) == key
            ),
            None,
        )
        first = next(s for s in run if any(B.structure(n, memo) == key for n in B.walk(s)))
        if owner is not None and owner is first:
            replace = Replace(key, owner.targets[0].id)
            replace.visit_all([s for s in run if s is not owner])
            continue
        name = namer.fresh(f"{target}_partial", limit=40)
        tangent_names.add(name)
        out.append(ast.copy_location(B.assign(name, copy.deepcopy(nodes[0])), first))
        Replace(key, name).visit_all(run)
    return out


def reads_tangents(nodes: list[ast.AST], tangent_names: set[str]) -> dict[int, bool]:
    """For each node of ``nodes`` (a :func:`fmad.build.walk`), whether it reads a name of
    ``tangent_names``: its parts first, each node once."""
    found: dict[int, bool] = {}
    children: list[ast.AST] = []
    for node in reversed(nodes):  # a node's parts come after it in a walk
        if type(node) is ast.Name:
            found[id(node)] = node.id in tangent_names and type(node.ctx) is ast.Load
            continue
        children.clear()
        B.add_children(node, children)
        found[id(node)] = any(found[id(c)] for c in children)
    return found


class Replace(ast.NodeTransformer):
    def __init__(self, key: tuple, name: str) -> None:
        self.key = key
        self.name = name
        self.memo: dict[int, tuple] = {}  # each node's key is read before any part changes

    def visit_all(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.visit(s)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.expr) and B.structure(node, self.memo) == self.key:
            return B.name(self.name)
        return super().generic_visit(node)


def reuse_values(tree: ast.FunctionDef) -> None:
    """A statement of the function's top level that computes again what an earlier one
    computed (the same arithmetic on the same values: names bound once) becomes a copy of it.
    This matters when fmad transforms its own output (second derivatives): the second pass
    recomputes the first pass's partials (``p_partial_3 = p * exp_neg_z_partial_1`` is
    ``p_partial``). The copy holds the very same bits, so values stay exact."""
    bound = collections.Counter(B.names(tree, ast.Store))
    once = {n for n, count in bound.items() if count == 1} - set(B.parameters(tree.args))
    alias: dict[str, str] = {}  # a name bound once to another: the name it copies
    seen: dict[tuple, str] = {}  # the structure of a computation (aliases resolved) -> its name

    def resolve(node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Name):
            return ast.Name(id=alias.get(node.id, node.id), ctx=ast.Load())
        if isinstance(node, ast.BinOp):
            return ast.BinOp(left=resolve(node.left), op=node.op, right=resolve(node.right))
        if isinstance(node, ast.UnaryOp):
            return ast.UnaryOp(op=node.op, operand=resolve(node.operand))
        return node

    for s in tree.body:
        if not (
            isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and s.targets[0].id in once
        ):
            continue
        target, value = s.targets[0].id, s.value
        if isinstance(value, ast.Name) and value.id in once:
            alias[target] = alias.get(value.id, value.id)
            continue
        if not (isinstance(value, ast.BinOp | ast.UnaryOp) and pure(value, once)):
            continue
        key = B.structure(resolve(value))
        if key in seen:
            s.value = B.name(seen[key])
            alias[target] = seen[key]
        else:
            seen[key] = target


def pure(node: ast.expr, once: set[str]) -> bool:
    """Arithmetic on constants and names bound once (a value that never changes)."""
    if isinstance(node, ast.Name):
        return node.id in once
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.BinOp):
        return pure(node.left, once) and pure(node.right, once)
    if isinstance(node, ast.UnaryOp):
        return pure(node.operand, once)
    return False


def is_tangent_stmt(s: ast.stmt, tangent_names: set[str]) -> bool:
    if isinstance(s, ast.Assign):
        stored = [n for t in s.targets for n in B.stored_names(t)]
        return bool(stored) and all(n in tangent_names for n in stored)
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
        f = s.value.func
        return (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and f.value.id in tangent_names
        )
    return False


def simplify(node: ast.expr) -> ast.expr:
    """Algebraic identities on one expression, bottom up."""
    if isinstance(node, ast.BinOp):
        left, right = simplify(node.left), simplify(node.right)
        lv, rv = B.constant_value(left), B.constant_value(right)
        op = node.op
        if lv is not None and rv is not None and isinstance(op, ast.Add | ast.Sub | ast.Mult):
            value = {ast.Add: lv + rv, ast.Sub: lv - rv, ast.Mult: lv * rv}[type(op)]
            return B.const(value)
        if isinstance(op, ast.Mult):
            for one, other in ((lv, right), (rv, left)):
                if one == 1:
                    return other
            for one, other in ((lv, right), (rv, left)):
                if one == -1:
                    return B.neg(other)
        if isinstance(op, ast.Add):
            if lv == 0:
                return right
            if rv == 0:
                return left
        if isinstance(op, ast.Sub):
            if rv == 0:
                return left
            if lv == 0:
                return B.neg(right)
        if isinstance(op, ast.Div) and rv == 1:
            return left
        if isinstance(op, ast.Pow) and rv == 1:
            return left
        return ast.BinOp(left=left, op=op, right=right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = simplify(node.operand)
        return B.neg(inner)
    return node


def simplify_all(node: ast.AST) -> ast.AST:
    """:func:`simplify` at every operation of ``node``, its parts first."""
    for field_name in node._fields:
        value = getattr(node, field_name, None)
        if type(value) is list:
            value[:] = [simplify_all(v) if isinstance(v, ast.AST) else v for v in value]
        elif isinstance(value, ast.AST):
            setattr(node, field_name, simplify_all(value))
    if type(node) is ast.BinOp or type(node) is ast.UnaryOp:
        return simplify(node)
    return node


def blocks(body: list[ast.stmt], required: bool = True):
    """Every statement list in ``body``, with whether it may not be empty."""
    yield body, required
    for s in body:
        if isinstance(s, ast.If | ast.For | ast.While):
            yield from blocks(s.body, True)
            yield from blocks(s.orelse, False)


def drop_dead_tangents(tree: ast.FunctionDef, tangent_names: set[str], keep: set[str]) -> None:
    """Remove tangent statements whose targets nothing (transitively) needs."""
    all_stmts = [s for body, _ in blocks(tree.body) for s in body]
    # what each tangent statement defines and reads, computed once (a worklist, not a
    # fixed point over the whole function: transform time stays linear in its size)
    defines: dict[str, list[set[str]]] = {}
    dead: set[int] = set()
    live: set[str] = set(keep)
    for s in all_stmts:
        if is_tangent_stmt(s, tangent_names):
            dead.add(id(s))
            reads = stmt_reads(s)
            for target in tangent_targets(s):
                defines.setdefault(target, []).append(reads)
        else:
            live |= stmt_reads(s)
    work = list(live)
    while work:
        name = work.pop()
        for reads in defines.pop(name, ()):
            for read in reads - live:
                live.add(read)
                work.append(read)
    for body, required in blocks(tree.body):
        body[:] = [s for s in body if id(s) not in dead or set(tangent_targets(s)) & live]
        if required and not body:
            body.append(ast.Pass())


def tangent_targets(s: ast.stmt) -> list[str]:
    if isinstance(s, ast.Assign):
        return [n for t in s.targets for n in B.stored_names(t)]
    return [s.value.func.value.id]


def stmt_reads(s: ast.stmt) -> set[str]:
    """Names a statement reads (for compound statements: their headers only)."""
    if isinstance(s, ast.If | ast.While):
        return B.read_names(s.test)
    if isinstance(s, ast.For):
        return B.read_names(s.iter)
    return B.read_names(s)
