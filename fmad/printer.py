"""Source text of a tree: ``ast.unparse`` by default, astor when installed and asked for."""

from __future__ import annotations

import ast
import warnings

PRINTERS = ("ast", "astor")


def to_source(tree: ast.AST, printer: str = "ast") -> str:
    """Python source for ``tree``, ending with a newline."""
    if printer not in PRINTERS:
        raise ValueError(f"unknown printer {printer!r}; choose one of {', '.join(PRINTERS)}")
    if printer == "astor":
        try:
            import astor
        except ImportError:
            warnings.warn(
                "astor is not installed (pip install 'fmad[astor]'); using ast.unparse",
                stacklevel=2,
            )
        else:
            return astor.to_source(tree)
    try:
        return ast.unparse(tree) + "\n"
    except AttributeError:  # ast.unparse reads some statements' line numbers
        return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
