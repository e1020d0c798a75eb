"""Read a function's source and parse it.

After this pass: an ``ast.FunctionDef`` for the function alone, decorators stripped, every
node's ``lineno`` pointing at the line of the user's file it came from.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
import weakref
from dataclasses import dataclass

from fmad.errors import SourceError, UnsupportedError, unsupported


@dataclass(frozen=True)
class FunctionSource:
    tree: ast.FunctionDef
    filename: str
    function: types.FunctionType


def python_function(fn: object) -> types.FunctionType:
    """The plain Python function behind ``fn`` (bound methods are unwrapped)."""
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if not isinstance(fn, types.FunctionType):
        raise SourceError(
            f"fmad can only differentiate Python functions defined with 'def'; "
            f"got {type(fn).__name__} {getattr(fn, '__name__', fn)!r}"
        )
    return fn


# The source text of each code object, found once (inspect's search is the slow part of
# reading a function; a helper is read by every variant that calls it). Keyed by the code
# object: a function defined again has a new one. Entries go with their code objects.
SOURCES: weakref.WeakKeyDictionary[types.CodeType, tuple[str, int]] = weakref.WeakKeyDictionary()


def read_function(fn: object) -> FunctionSource:
    """The function's tree, parsed afresh at each call (passes change the trees they get)."""
    fn = python_function(fn)
    filename = fn.__code__.co_filename
    if getattr(fn, "__wrapped__", None) is not None:
        # inspect would find the source of the wrapped function, not of the one called
        inner = inspect.unwrap(fn)
        code = getattr(inner, "__code__", fn.__code__)
        raise UnsupportedError(
            code.co_filename,
            code.co_firstlineno,
            f"{fn.__qualname__!r} is wrapped by a decorator; fmad reads the source of the "
            "function inside and would skip what the decorator does: differentiate the "
            "undecorated function (apply fmad.differentiate directly to the 'def')",
        )
    found = SOURCES.get(fn.__code__)
    if found is None:
        try:
            lines, first = inspect.getsourcelines(fn)
        except (OSError, TypeError) as exc:
            raise SourceError(
                f"cannot read the source of {fn.__qualname__!r} (defined in {filename}): "
                f"{exc}; fmad needs a function defined with 'def' in a file"
            ) from None
        found = SOURCES[fn.__code__] = (textwrap.dedent("".join(lines)), first)
    text, first = found
    try:
        module = ast.parse(text)
    except SyntaxError as exc:  # e.g. a lambda inside a larger expression
        raise SourceError(
            f"{filename}:{first}: cannot parse the source of {fn.__qualname__!r}: {exc.msg}"
        ) from None
    ast.increment_lineno(module, first - 1)
    node = module.body[0] if module.body else None
    if fn.__name__ == "<lambda>" or not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        raise unsupported(
            filename, node, "lambda functions are not supported by fmad; define it with 'def'"
        )
    if isinstance(node, ast.AsyncFunctionDef):
        raise unsupported(
            filename, node, "'async def' functions are not supported by fmad; use a plain 'def'"
        )
    if node.name != fn.__name__:
        raise SourceError(
            f"{filename}:{first}: the source found for {fn.__qualname__!r} "
            f"defines {node.name!r}; was the function renamed?"
        )
    node.decorator_list = []
    return FunctionSource(node, filename, fn)
