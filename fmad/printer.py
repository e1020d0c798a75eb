"""Source text of a tree: ``ast.unparse`` by default, astor when installed and asked for.

With the user's source lines, each run of generated statements that comes from one line of
the user's code is preceded by a comment quoting it (``# line 12: loss = (y_pred - y) ** 2``),
so a reader can map every primal and tangent line back to the code it differentiates.
Comments do not change the code: the printed text parses to the same tree.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence

PRINTERS = ("ast", "astor")

# a statement the printer turns into a comment: ``__fmad_line__(12)``
_MARKER = "__fmad_line__"
_MARKED = re.compile(rf"^( *){_MARKER}\((\d+)\)$", re.MULTILINE)


def to_source(tree: ast.AST, printer: str = "ast", lines: Sequence[str] | None = None) -> str:
    """Python source for ``tree``, ending with a newline. ``lines``: the user's source
    lines (of the file the tree's line numbers refer to), for ``# line N:`` comments."""
    if printer not in PRINTERS:
        raise ValueError(f"unknown printer {printer!r}; choose one of {', '.join(PRINTERS)}")
    if not lines:
        return _print(tree, printer)
    undo = _mark_lines(tree)
    try:
        text = _print(tree, printer)
    finally:
        undo()

    def comment(match: re.Match) -> str:
        n = int(match.group(2))
        quoted = lines[n - 1].strip() if 0 < n <= len(lines) else ""
        return f"{match.group(1)}# line {n}: {quoted}".rstrip()

    return _MARKED.sub(comment, text)


def _print(tree: ast.AST, printer: str) -> str:
    if printer == "astor":
        try:
            import astor
        except ImportError:
            warnings.warn(
                "astor is not installed (pip install 'fmad[astor]'); using ast.unparse",
                stacklevel=3,
            )
        else:
            return astor.to_source(tree)
    try:
        return ast.unparse(tree) + "\n"
    except AttributeError:  # ast.unparse reads some statements' line numbers
        return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _mark_lines(tree: ast.AST):
    """Put a marker before each statement that starts a new user line, in printing order;
    return the function that takes them out again (the tree is shared, not copied)."""
    changed: list[tuple[list, list]] = []
    last = getattr(tree, "lineno", 0)

    def visit(body: list[ast.stmt]) -> None:
        nonlocal last
        marked: list[ast.stmt] = []
        for s in body:
            line = getattr(s, "lineno", None)
            if line is not None and line != last:
                call = ast.Call(func=ast.Name(id=_MARKER), args=[ast.Constant(line)], keywords=[])
                marked.append(ast.Expr(value=call))
                last = line
            marked.append(s)
            for field in ("body", "orelse"):
                inner = getattr(s, field, None)
                if not isinstance(inner, list) or not inner:
                    continue
                if field == "orelse" and isinstance(s, ast.If) and _is_elif(s):
                    visit_elif(inner[0])
                else:
                    visit(inner)
        if len(marked) != len(body):
            changed.append((body, body[:]))
            body[:] = marked

    def visit_elif(s: ast.If) -> None:  # printed as 'elif': no marker may come before it
        visit(s.body)
        if _is_elif(s):
            visit_elif(s.orelse[0])
        elif s.orelse:
            visit(s.orelse)

    if isinstance(tree, ast.FunctionDef | ast.Module):
        visit(tree.body)

    def undo() -> None:
        for body, original in changed:
            body[:] = original

    return undo


def _is_elif(s: ast.If) -> bool:
    return len(s.orelse) == 1 and isinstance(s.orelse[0], ast.If)
