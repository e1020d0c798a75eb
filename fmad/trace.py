"""Where an exception raised while running generated code comes from.

Generated functions are compiled with the user's file name and the user's line numbers
(:mod:`fmad.compile`), so tracebacks and numpy warnings point at the line the user wrote.
This module remembers, for every generated code object, the printed text it was compiled
from. When an exception escapes generated code, :func:`check` finds the generated statement
that raised it and decides whose it is:

- a *primal* statement (every name it reads or writes is one of the user's or of the
  flattened primal's): the user's own operation failed, as it would without fmad, and the
  exception keeps its type (a numpy shape error gains the operands' shapes as a
  :class:`~fmad.errors.ShapeError`, which is still a ``ValueError``);
- any other statement (a tangent line, a runtime helper, a call to a generated helper):
  fmad's own code failed, which is a bug in fmad. It is raised again as an
  :class:`~fmad.errors.InternalError` naming the user's line, never as a bare ``NameError``
  or ``TypeError`` from code the user did not write.
"""

from __future__ import annotations

import ast
import re
import types
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmad import build as B
from fmad.errors import DerivativeError, FmadError, InternalError, ShapeError
from fmad.naming import names_in

FMAD_DIR = str(Path(__file__).resolve().parent)
NUMPY_DIR = str(Path(np.__file__).resolve().parent)
SHAPE_WORDS = re.compile(r"shape|broadcast|mismatch|dimension|size")
# resource exhaustion is nobody's bug in particular: it keeps its type
PASSED_THROUGH = (FmadError, MemoryError, RecursionError)


@dataclass
class Origin:
    """What one generated code object was compiled from."""

    text: str  # the printed function (generated line numbers)
    build: Any  # () -> the module code again, each column holding its generated line
    path: tuple[int, ...]  # where this code object sits among the module's nested code
    user_names: Any  # () -> names of the user's code and of the flattened primal
    source_names: Any  # () -> names written in the user's own source
    cache: dict[str, Any] = field(default_factory=dict)

    def generated_line(self, code: types.CodeType, lasti: int) -> int | None:
        """The generated line of the instruction at ``lasti``: the twin is the same code
        with the generated line of each instruction in its column."""
        twin = self.cache.get("twin")
        if twin is None:
            twin = self.cache["twin"] = nested_code(self.build(), self.path)
        if twin is None or twin.co_code != code.co_code:
            return None
        positions = list(twin.co_positions())
        index = lasti // 2
        return positions[index][2] if 0 <= index < len(positions) else None

    def statement(self, line: int) -> ast.stmt | None:
        """The innermost generated statement on ``line``."""
        tree = self.cache.get("tree")
        if tree is None:
            tree = self.cache["tree"] = ast.parse(self.text)
        best = None
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or 0):
                if best is None or node.lineno >= best.lineno:
                    best = node
        return best


REGISTRY: weakref.WeakKeyDictionary[types.CodeType, Origin] = weakref.WeakKeyDictionary()


def register(code: types.CodeType, origin_for: Any, path: tuple[int, ...] = ()) -> None:
    """Register ``code`` and every code object nested in it (``origin_for(path)``)."""
    REGISTRY[code] = origin_for(path)
    for i, const in enumerate(code.co_consts):
        if isinstance(const, types.CodeType):
            register(const, origin_for, (*path, i))


def nested_code(code: types.CodeType, path: tuple[int, ...]) -> types.CodeType | None:
    for i in path:
        if i >= len(code.co_consts) or not isinstance(code.co_consts[i], types.CodeType):
            return None
        code = code.co_consts[i]
    return code


@dataclass
class Where:
    """The generated frame an exception escaped from."""

    frame: types.FrameType
    line: int  # the user's line
    statement: ast.stmt | None  # the generated statement, when it can be found
    own: bool  # raised by fmad's own code, not by the user's operation


def locate(exc: BaseException) -> Where | None:
    """The innermost generated frame in ``exc``'s traceback, and whose line raised it."""
    tbs = []
    tb = exc.__traceback__
    while tb is not None:
        tbs.append(tb)
        tb = tb.tb_next
    for depth in range(len(tbs) - 1, -1, -1):
        tb = tbs[depth]
        origin = REGISTRY.get(tb.tb_frame.f_code)
        if origin is None:
            continue
        line = origin.generated_line(tb.tb_frame.f_code, tb.tb_lasti)
        stmt = origin.statement(line) if line is not None else None
        below = [t.tb_frame.f_code.co_filename for t in tbs[depth + 1 :]]
        if any(not f.startswith((FMAD_DIR, NUMPY_DIR)) for f in below):
            # the user's own Python code (a derivative given to fmad.register, a function
            # called on inactive values) raised it: the user's exception
            own = False
        else:
            # fmad's runtime helpers called from this line, or the line itself
            below_fmad = any(f.startswith(FMAD_DIR) for f in below)
            own = below_fmad or stmt is None or not is_primal(stmt, origin.user_names())
        if not own and isinstance(exc, NameError) and exc.name is not None:
            # a name the user never wrote (a flattened temporary) is fmad's
            own = exc.name not in origin.source_names()
        elif type(exc) is NameError and not below and exc.name in origin.source_names():
            own = False  # a global the user's code reads and no one defined (never a local)
        return Where(tb.tb_frame, tb.tb_lineno, stmt, own)
    return None


def is_primal(stmt: ast.stmt, user_names: set[str]) -> bool:
    """True if ``stmt`` is the user's operation: every name in it (its header, for a
    compound statement) belongs to the user's code or the flattened primal."""
    if isinstance(stmt, ast.If | ast.While):
        parts: list[ast.AST] = [stmt.test]
    elif isinstance(stmt, ast.For):
        parts = [stmt.target, stmt.iter]
    elif isinstance(stmt, ast.Return | ast.Try):
        return False  # returns carry tangents; try blocks are fmad's guards
    elif isinstance(stmt, ast.FunctionDef):
        parts = [*stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d is not None)]
    else:
        parts = [stmt]
    return all(n in user_names for part in parts for n in B.names(part))


def check(exc: BaseException) -> None:
    """Called with an exception escaping generated code: raise it again as what it is.

    Returns normally when ``exc`` should propagate unchanged (the caller re-raises it).
    """
    if getattr(exc, "unlocated", False):  # a helper's DerivativeError: add the user's line
        where = locate(exc)
        if where is not None:
            filename = where.frame.f_code.co_filename
            raise DerivativeError(f"{filename}:{where.line}: {exc}") from None
    if isinstance(exc, PASSED_THROUGH):
        return
    where = locate(exc)
    if where is None:
        return
    filename = where.frame.f_code.co_filename
    message = f"{type(exc).__name__}: {exc}"
    if where.own and isinstance(exc, ArithmeticError):
        raise DerivativeError(
            f"{filename}:{where.line}: the derivative of this line is not finite at these "
            f"arguments ({message} in the derivative code); the function has no finite "
            "derivative here (as math.sqrt at 0). Keep the arguments away from this point, or "
            "use the numpy function (np.sqrt), whose derivative is inf there"
        ) from exc
    if where.own:
        generated = ast.unparse(where.statement).splitlines()[0] if where.statement else "?"
        raise InternalError(
            f"{filename}:{where.line}: internal error in fmad: the derivative code generated "
            f"for this line raised {message} (generated line: `{generated}`). This is a bug in "
            "fmad, not in your code; please report it with the function, the arguments' "
            "shapes and this message. `fmad.differentiate(...).source` shows the generated "
            "code."
        ) from exc
    if isinstance(exc, ValueError) and SHAPE_WORDS.search(str(exc)):
        shapes = operand_shapes(where)
        raise ShapeError(f"{filename}:{where.line}: {exc}{shapes}") from exc


def operand_shapes(where: Where) -> str:
    """`` (operands: X (100, 3), w (2,))`` for the names the failing statement reads."""
    if where.statement is None:
        return ""
    names = B.names(where.statement, ast.Load)
    local = where.frame.f_locals
    parts = [
        f"{n} {np.shape(local[n])}"
        for n in dict.fromkeys(names)
        if n in local and not isinstance(local[n], types.ModuleType | types.FunctionType)
    ]
    return f" (operands: {', '.join(parts)})" if parts else ""


def user_names_of(trees: list[ast.AST]) -> set[str]:
    names: set[str] = set()
    for tree in trees:
        names |= names_in(tree)
    return names
