"""Readable, deterministic, collision-free names for flattened values and tangents.

After a :class:`Namer` is built from a function, every name it hands out is new: it differs
from every name the function binds or reads (parameters, locals, globals, builtins) and from
every name handed out before. Names depend only on the source, so the transformed code is
identical from run to run (golden tests rely on it).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re

# One short word per operator; shared with fmad.Variable so both name things alike.
OP_NAMES: dict[type, str] = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mult",
    ast.Div: "div",
    ast.FloorDiv: "floordiv",
    ast.Mod: "mod",
    ast.Pow: "pow",
    ast.MatMult: "matmul",
    ast.USub: "neg",
    ast.UAdd: "pos",
    ast.Not: "not",
    ast.Invert: "invert",
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Is: "is",
    ast.IsNot: "isnot",
    ast.In: "in",
    ast.NotIn: "notin",
    ast.And: "and",
    ast.Or: "or",
    ast.BitAnd: "bitand",
    ast.BitOr: "bitor",
    ast.BitXor: "bitxor",
    ast.LShift: "lshift",
    ast.RShift: "rshift",
}

# Longer candidates are replaced by "<target>_<op>" inside an assignment to a name
# (``acc = acc + scaled(x, w)`` names its sum ``acc_add``), else by "<op>_<n>".
MAX_NAME_LENGTH = 24


def names_in(tree: ast.AST) -> set[str]:
    """Every identifier that appears in ``tree``: bound, read, attribute or argument."""
    found: set[str] = set()
    nodes = [tree]
    for node in nodes:  # ast.walk's nodes, without its generators (it grows while read)
        for field_name in node._fields:
            value = getattr(node, field_name, None)
            if type(value) is list:
                nodes.extend([v for v in value if isinstance(v, ast.AST)])
            elif isinstance(value, ast.AST):
                nodes.append(value)
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.alias):
            found.add((node.asname or node.name).split(".")[0])
    return found


def describe(node: ast.AST) -> str:
    """A short identifier-safe description of an operand, for building names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        text = repr(node.value)
        text = text.replace("-", "neg").replace(".", "p").replace("+", "")
        text = re.sub(r"\W", "", text)
        return text or "c"
    if isinstance(node, ast.Attribute):
        return f"{describe(node.value)}_{node.attr}"
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return f"neg{describe(node.operand)}" if isinstance(node.op, ast.USub) else "c"
    return "t"


class Namer:
    """Hands out fresh names; one per transform, seeded with every name the code uses."""

    def __init__(self, reserved: set[str] = frozenset()) -> None:  # noqa: B006
        # builtins too: a generated name must never shadow one the generated code calls
        self._taken: set[str] = set(reserved) | set(keyword.kwlist) | set(dir(builtins))
        self._counters: dict[str, int] = {}
        # the target of the assignment being flattened: names too long to describe their
        # operands are named after it (set by fmad.flatten)
        self.stem: str | None = None
        # the tangent names of an earlier pass, when this pass transforms fmad's own output
        # (second derivatives): their tangents are named d2<value>_d<a>_d<b>
        self.earlier: frozenset[str] = frozenset()

    def copy(self) -> Namer:
        """A namer that avoids every name this one has handed out or reserved."""
        other = Namer()
        other._taken = set(self._taken)
        return other

    def reserve(self, name: str) -> None:
        self._taken.add(name)

    def is_taken(self, name: str) -> bool:
        return name in self._taken

    def fresh(self, hint: str, short: str | None = None, limit: int = MAX_NAME_LENGTH) -> str:
        """A new name close to ``hint``: the hint itself, or ``hint_1``, ``hint_2``, ...

        A hint longer than ``MAX_NAME_LENGTH`` is replaced by ``stem_short`` (``stem``: the
        target being assigned, see :attr:`stem`), or else by ``short_1``, ``short_2``...
        (``short`` defaults to the hint's first word).
        """
        hint = re.sub(r"\W", "_", hint).strip("_") or "t"
        if hint[0].isdigit():
            hint = f"c{hint}"
        if len(hint) > limit:
            word = re.sub(r"\W", "_", short or hint.split("_")[0])[:MAX_NAME_LENGTH] or "t"
            named = f"{self.stem}_{word}"
            hint = named if self.stem and len(named) <= limit else self._next(word)
        candidate = hint
        while candidate in self._taken:
            candidate = self._next(hint)
        self._taken.add(candidate)
        return candidate

    def _next(self, stem: str) -> str:
        n = self._counters.get(stem, 0) + 1
        self._counters[stem] = n
        return f"{stem}_{n}"

    # Names for the values the flattening pass creates.
    def for_binop(self, op: ast.operator, left: ast.AST, right: ast.AST) -> str:
        word = OP_NAMES[type(op)]
        return self.fresh(f"{describe(left)}_{word}_{describe(right)}", short=word)

    def for_unaryop(self, op: ast.unaryop, operand: ast.AST) -> str:
        word = OP_NAMES[type(op)]
        return self.fresh(f"{word}_{describe(operand)}", short=word)

    def for_call(self, func: ast.AST, args: list[ast.AST]) -> str:
        fname = func.attr if isinstance(func, ast.Attribute) else describe(func)
        parts = [fname, *(describe(a) for a in args[:2])]
        return self.fresh("_".join(parts), short=fname)

    def tangent(self, value: str, param: str) -> str:
        """The tangent of ``value`` with respect to ``param``: ``dvalue_dparam``; of an
        earlier pass's tangent ``dloss_dw``, the second derivative ``d2loss_dw_dparam``."""
        if value in self.earlier and value.startswith("d"):
            hint = f"d2{value[1:]}_d{param}"
            return self.fresh(hint, limit=len(hint))
        # value names are already short, so the tangent's name is kept whole
        return self.fresh(f"d{value}_d{param}", limit=MAX_NAME_LENGTH + len(param) + 4)
