"""Which local names a unit may read before assigning them, for the C export.

Python raises ``UnboundLocalError`` there; C would read the zero the declaration gave. For
each such name the C keeps a flag (``fm_set_y``), set where the name is assigned and checked
before each statement that reads it (see :class:`fmad.c_lower.Lowerer`). A name is *surely
assigned* after a statement if every path through it assigns it (a path that returns,
breaks or continues does not reach the next statement; a loop's body may not run).
"""

from __future__ import annotations

import ast

ALL = None  # after return, break or continue: no path reaches the next statement


def loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def stores(node: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def maybe_unbound(tree: ast.FunctionDef, locals_: set[str]) -> set[str]:
    """The locals some statement of ``tree`` may read before they are assigned."""
    found: set[str] = set()

    def check(node: ast.AST | None, assigned: set[str]) -> None:
        if node is not None:
            found.update((loads(node) & locals_) - assigned)

    def block(stmts: list[ast.stmt], assigned: set[str] | None) -> set[str] | None:
        for stmt in stmts:
            if assigned is ALL:
                return ALL
            assigned = statement(stmt, assigned)
        return assigned

    def both(a: set[str] | None, b: set[str] | None) -> set[str] | None:
        if a is ALL:
            return b
        if b is ALL:
            return a
        return a & b

    def statement(stmt: ast.stmt, assigned: set[str]) -> set[str] | None:
        if isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign):
            check(stmt, assigned)
            if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                check(ast.Name(stmt.target.id, ast.Load()), assigned)  # x += 1 reads x
            return assigned | stores(stmt)
        if isinstance(stmt, ast.Return):
            check(stmt.value, assigned)
            return ALL
        if isinstance(stmt, ast.Break | ast.Continue):
            return ALL
        if isinstance(stmt, ast.If):
            check(stmt.test, assigned)
            return both(block(stmt.body, set(assigned)), block(stmt.orelse, set(assigned)))
        if isinstance(stmt, ast.For):
            check(stmt.iter, assigned)
            block(stmt.body, assigned | stores(stmt.target))
            block(stmt.orelse, set(assigned))
            return assigned
        if isinstance(stmt, ast.While):
            check(stmt.test, assigned)
            block(stmt.body, set(assigned))
            block(stmt.orelse, set(assigned))
            return assigned
        check(stmt, assigned)
        return assigned

    params = {a.arg for a in ast.walk(tree.args) if isinstance(a, ast.arg)}
    block(tree.body, params)
    return found
