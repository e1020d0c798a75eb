"""Every error fmad raises on purpose derives from :class:`FmadError`.

Errors about the user's code read like a compiler's: ``file.py:57: <what>; <what to do>``.
"""

from __future__ import annotations

import ast
import types
from typing import Any

import numpy as np


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


class ExportError(UnsupportedError):
    """A construct the C export does not lower (``fmad.export(fn, lang="c")``), at the
    user's line, with what to do instead."""


class ReverseModeError(UnsupportedError):
    """Reverse mode does not handle this function (yet); forward mode may: the message
    says so (``mode='forward'``)."""


class WrtError(FmadError):
    """A ``wrt`` name that is not a parameter (or a usable local variable)."""


class ShapeError(FmadError, ValueError):
    """Operand shapes do not fit, reported at the user's line.

    It is also a ``ValueError``, the type numpy raises for it: code that catches the
    original function's shape errors catches fmad's too."""


class UnboundError(FmadError, UnboundLocalError):
    """A name read where the original function has not bound it (a name first bound in a
    loop that ran no iteration): Python's ``UnboundLocalError``, at the user's line."""


class DerivativeError(FmadError, ArithmeticError):
    """The derivative is not finite where the function is (``math.sqrt`` at 0): Python's
    float arithmetic in the derivative code raised, where numpy would give ``inf``."""


class InternalError(FmadError):
    """fmad's own generated code failed where the original function did not: a bug in fmad,
    reported at the user's line with the generated line that failed."""


class TrainingError(FmadError):
    """Training diverged (NaN or infinite loss or gradient) or was set up wrongly."""


def unsupported(filename: str, node: ast.AST | None, message: str) -> UnsupportedError:
    """Build an :class:`UnsupportedError` pointing at ``node``'s line in ``filename``."""
    return UnsupportedError(filename, getattr(node, "lineno", None), message)


def no_rule_advice(label: str, obj: Any, local: bool) -> str:
    """What to do about a call on active values to ``label`` (bound to ``obj``, or
    ``None`` when fmad cannot tell what it is at transform time), which has no rule and no
    source fmad can read."""
    if local:
        return (
            f"'{label}' is called through a variable, and fmad picks derivative rules when "
            "it transforms the function; it follows a parameter that holds a function (it "
            "transforms the function once per function passed) only if the parameter is "
            "never reassigned and the argument is a function (not None); otherwise call the "
            "function by its own name (np.tanh(x)), or bind it as a global or in a closure"
        )
    if obj is None:
        return (
            f"fmad cannot find '{label}' when it transforms the function (is it defined "
            "after the decorator runs?); define it first, or move the call out of the "
            "differentiated function"
        )
    if isinstance(obj, np.ufunc) or not is_numpy(obj):
        return (
            f"if it is elementwise, give it a derivative with fmad.register({label}, "
            f"derivative); for any other function, its forward rule with fmad.register({label}, "
            "jvp=lambda primals, tangents: ...) (the output's tangent for one direction); or "
            "compute it outside the differentiated function (its result is then a constant), "
            "or write it with operations fmad differentiates"
        )
    return (
        f"'{label}' is not elementwise, so fmad.register({label}, derivative) cannot describe "
        f"it; give its forward rule with fmad.register({label}, jvp=lambda primals, tangents: "
        "...) (the output's tangent for one direction), compute it outside the "
        "differentiated function (its result is then a constant), or write it with "
        "operations fmad differentiates (README: What is supported)"
    )


def is_numpy(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "numpy" or module.startswith("numpy.") or isinstance(obj, types.ModuleType)
