"""Every error fmad raises on purpose derives from :class:`FmadError`.

Errors about the user's code read like a compiler's: ``file.py:57: <what>; <what to do>``.
"""

from __future__ import annotations

import ast


class FmadError(Exception):
    """Base class of every error fmad raises on purpose."""


class SourceError(FmadError):
    """The function's source cannot be read (built-in, made by ``exec``, a lambda...)."""


class UnsupportedError(FmadError):
    """The function uses a construct fmad cannot differentiate."""

    def __init__(self, filename: str, lineno: int | None, message: str) -> None:
        self.filename = filename
        self.lineno = lineno
        self.message = message
        where = f"{filename}:{lineno}" if lineno else filename
        super().__init__(f"{where}: {message}")


class WrtError(FmadError):
    """A ``wrt`` name that is not a parameter (or a usable local variable)."""


class ShapeError(FmadError):
    """Operand shapes do not fit, reported at the user's line."""


class TrainingError(FmadError):
    """Training diverged (NaN or infinite loss or gradient) or was set up wrongly."""


def unsupported(filename: str, node: ast.AST | None, message: str) -> UnsupportedError:
    """Build an :class:`UnsupportedError` pointing at ``node``'s line in ``filename``."""
    return UnsupportedError(filename, getattr(node, "lineno", None), message)
