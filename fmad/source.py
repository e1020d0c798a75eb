"""Read a function's source and parse it.

After this pass: an ``ast.FunctionDef`` for the function alone, decorators stripped, every
node's ``lineno`` pointing at the line of the user's file it came from.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
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


def read_function(fn: object) -> FunctionSource:
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
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise SourceError(
            f"cannot read the source of {fn.__qualname__!r} (defined in {filename}): {exc}; "
            "fmad needs a function defined with 'def' in a file"
        ) from None
    text = textwrap.dedent("".join(lines))
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
