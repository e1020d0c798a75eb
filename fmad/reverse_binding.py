"""Reverse mode: a called function's body made statements of its caller (what
:mod:`fmad.reverse_inline`, for a module's helpers, and :mod:`fmad.reverse_nested`, for
nested ``def``\\ s, share).

``z = f(a, b)`` (its arguments names or constants after flattening) with ``f``'s flattened
body, its early returns, ``break`` and ``continue`` made flags and guards
(:mod:`fmad.reverse_jumps`), becomes: each parameter bound to its argument (the caller's
name itself when the body never assigns the parameter, else ``x_1 = a``), each other name
the body binds renamed to a fresh name of the caller, and the final ``return v`` turned into
``z = v``. The statements keep the function's line numbers, so the printed adjoint quotes
its lines (``# line N:``) and a refusal inside it names its line.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable

from fmad import build as B

CONSTANTS = (bool, int, float, complex, str, type(None))
SCOPED = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def constant(value: object) -> bool:
    """A number, a string, None or a tuple of those (a default the calls may share)."""
    if isinstance(value, tuple):
        return all(constant(v) for v in value)
    return type(value) in CONSTANTS


def returning_body(body: list[ast.stmt], flat: ast.FunctionDef, refuse, what: str, at):
    """``body`` (``flat``'s, without jumps: :mod:`fmad.reverse_jumps`), checked: it ends with
    ``return value`` and holds no lambda or comprehension (else refused)."""
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        refuse(at, f"{what}, which does not end with 'return value'")
    for node in ast.walk(flat):
        if isinstance(node, SCOPED):
            refuse(node, f"{what}: a lambda or comprehension in it")
    return body


def bind(
    s: ast.Assign,
    params: list[str],
    arguments: dict[str, ast.expr],
    body: list[ast.stmt],
    bound: set[str],
    fresh: Callable[[str], str],
) -> tuple[list[ast.stmt], list[ast.stmt], dict[str, str]]:
    """The assignments binding ``params`` to ``arguments`` (at ``s``'s line), ``body``
    renamed into the caller's names (``bound``: the names the function binds), and the
    mapping of the function's names to the caller's."""
    stored = {
        n.id
        for t in body
        for n in ast.walk(t)
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    mapping: dict[str, str] = {}
    out: list[ast.stmt] = []
    for p in params:
        arg = arguments[p]
        if isinstance(arg, ast.Name) and p not in stored:
            mapping[p] = arg.id
        else:
            mapping[p] = fresh(p)
            out.append(ast.copy_location(B.assign(mapping[p], copy.deepcopy(arg)), s))
    for name in sorted(bound - set(params)):
        mapping[name] = fresh(name)
    renamed = [Rename(mapping).visit(copy.deepcopy(t)) for t in body]
    return out, renamed, mapping


class Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, n: ast.Name) -> ast.Name:
        if n.id in self.mapping:
            return ast.copy_location(ast.Name(id=self.mapping[n.id], ctx=n.ctx), n)
        return n


def keep_call(s: ast.Assign, helper) -> list[ast.stmt]:
    """``s`` (``z = helper(...)``, whose arguments bind to the helper's signature) kept as a
    call, marked for :func:`fmad.reverse_calls.rewrite_calls`."""
    s.value.fmad_helper = helper
    return [s]
