"""C expressions for the C export: the expression half of :class:`fmad.c_lower.Lowerer`.

Every operation keeps Python's meaning: ``/``, ``//``, ``%`` and ``**`` call the helpers of
:mod:`fmad.c_support` (which report where Python raises), ``math`` functions are libm's,
checked as CPython checks them; ``np`` functions of numbers are libm's too (numpy's own
implementations may differ from libm in the last bit; see docs/export.md).
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from fmad.c_types import MISSING, SCALARS, CType, Tup, join, refuse, value_type

# Python function -> libm function: math.* is checked as CPython checks it
MATH1 = {
    getattr(math, n): n
    for n in (
        "exp expm1 log log1p log2 log10 sqrt sin cos tan asin acos atan sinh cosh tanh "
        "asinh acosh atanh fabs"
    ).split()
}
NP1 = {
    **{
        getattr(np, n): n
        for n in "exp expm1 log log1p log2 log10 sqrt sin cos tan sinh cosh tanh cbrt".split()
    },
    **{getattr(np, f"arc{n}"): f"a{n}" for n in "sin cos tan sinh cosh tanh".split()},
    np.abs: "fabs",
    np.fabs: "fabs",
}
TO_LONG = {math.floor: "floor", math.ceil: "ceil", math.trunc: "trunc", int: "trunc"}
BINARY = {math.atan2: "atan2", np.arctan2: "atan2", math.copysign: "copysign"}
COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}


def literal(value: Any) -> str:
    if type(value) is bool or isinstance(value, np.bool_):
        return "1" if value else "0"
    if type(value) is int:
        return str(value) if -(2**31) < value < 2**31 else f"{value}L"
    value = float(value)
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


class Expressions:
    """Types and C text of expressions (state: see :class:`fmad.c_lower.Lowerer`)."""

    filename: str
    types: dict[str, CType | None]
    lengths: dict[str, list[str]]  # array name -> the C names of its lengths
    used: set[str]  # the c_support helpers called
    checked: bool  # the expression printed last calls a helper that may report an error
    resolver: Any

    def cname(self, name: str) -> str:
        raise NotImplementedError

    line: int  # the line of the statement being lowered

    def no(self, node: ast.AST, what: str, instead: str) -> Exception:
        if getattr(node, "lineno", None) is None:
            node = ast.Pass(lineno=self.line)
        return refuse(self.filename, node, what, instead)

    # -- types -------------------------------------------------------------------------------
    def etype(self, node: ast.expr) -> CType | None:
        if isinstance(node, ast.Constant):
            return value_type(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.types:
                return self.types[node.id]
            return value_type(self.resolver.name(node.id))
        if isinstance(node, ast.Attribute):
            return value_type(self.resolver.obj(node))
        if isinstance(node, ast.BinOp):
            left, right = self.etype(node.left), self.etype(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div):
                return "double"
            if isinstance(node.op, ast.Pow):
                exp = node.right
                ints = left in ("bool", "long") and right in ("bool", "long")
                const = isinstance(exp, ast.Constant) and type(exp.value) is int and exp.value >= 0
                return "long" if ints and const else "double"
            if left in SCALARS and right in SCALARS:
                return join(join(left, right), "long")
            return "double"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return "bool"
            inner = self.etype(node.operand)
            return join(inner, "long") if inner in ("bool", "long") else inner
        if isinstance(node, ast.Compare | ast.BoolOp):
            return "bool"
        if isinstance(node, ast.IfExp):
            return join(self.etype(node.body), self.etype(node.orelse))
        if isinstance(node, ast.Subscript):
            base = self.etype(node.value)
            return base.item if isinstance(base, Tup) else "double"
        if isinstance(node, ast.Tuple):
            items = [self.etype(e) for e in node.elts]
            if None in items:
                return None
            item = None
            for t in items:
                item = join(item, t)
            return Tup(len(items), item) if isinstance(item, str) else None
        if isinstance(node, ast.Call):
            return self.call_type(node)
        return None

    # -- C text ------------------------------------------------------------------------------
    def sub(self, node: ast.expr, test: bool = False) -> str:
        """``node`` as an operand: parenthesized unless it is a name or a constant."""
        text = self.expr(node, test)
        simple = isinstance(node, ast.Name | ast.Constant | ast.Call | ast.Attribute)
        return text if simple or text.startswith("(") and text.endswith(")") else f"({text})"

    def want_int(self, node: ast.expr, what: str) -> str:
        kind = self.etype(node)
        if kind not in ("long", "bool"):
            raise self.no(
                node,
                f"{what} that is a float ({ast.unparse(node)})",
                "Python needs an int there (it raises TypeError); make it an int",
            )
        return self.expr(node)

    def expr(self, node: ast.expr, test: bool = False) -> str:
        """``node`` in C; it must be a number (an array is printed only where a call
        passes it on: see Assignments.call_helper)."""
        kind = self.etype(node)
        if kind is not None and kind not in SCALARS and not isinstance(node, ast.Tuple):
            raise self.no(
                node,
                f"'{ast.unparse(node):.50}', an array or a tuple, where a number is needed",
                "index it (x[i]) or reduce it (np.sum(x), np.mean(x)); an array's truth value "
                "raises in Python",
            )
        if isinstance(node, ast.Constant):
            if value_type(node.value) not in SCALARS:
                raise self.no(node, f"the constant {node.value!r:.40}", "use numbers only")
            return literal(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.types:
                return self.cname(node.id)
            return self.constant(node, self.resolver.name(node.id))
        if isinstance(node, ast.Attribute):
            return self.constant(node, self.resolver.obj(node))
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return f"!{self.sub(node.operand, True)}"
            if isinstance(node.op, ast.USub):
                return f"-{self.sub(node.operand)}"
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
        if isinstance(node, ast.Compare):
            parts, left = [], node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                if type(op) not in COMPARE:
                    raise self.no(node, f"the comparison '{ast.unparse(node)}'", "compare numbers")
                parts.append(f"{self.sub(left)} {COMPARE[type(op)]} {self.sub(right)}")
                left = right
            return parts[0] if len(parts) == 1 else " && ".join(f"({p})" for p in parts)
        if isinstance(node, ast.BoolOp):
            if not test and any(self.etype(v) != "bool" for v in node.values):
                raise self.no(
                    node,
                    f"'and'/'or' of numbers as a value ({ast.unparse(node)})",
                    "write it with if statements",
                )
            op = " && " if isinstance(node.op, ast.And) else " || "
            return op.join(self.sub(v, test) for v in node.values)
        if isinstance(node, ast.IfExp):
            body, orelse = self.sub(node.body), self.sub(node.orelse)
            return f"{self.sub(node.test, True)} ? {body} : {orelse}"
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.no(node, f"the expression '{ast.unparse(node):.60}'", "write it with numbers")

    def constant(self, node: ast.expr, value: Any) -> str:
        kind = value_type(value)
        if kind in SCALARS:
            return literal(value)
        if value is MISSING and isinstance(node, ast.Attribute):
            raise self.no(
                node,
                f"reading the attribute '{ast.unparse(node)}'",
                "pass the number as an argument",
            )
        if value is MISSING:
            raise self.no(node, f"the name '{ast.unparse(node)}' (it is not defined)", "define it")
        raise self.no(
            node,
            f"reading '{ast.unparse(node)}', a {type(value).__name__}",
            "the C code reads numbers, tuples of numbers and the arrays it is passed; pass "
            "it as an argument",
        )

    def binop(self, node: ast.BinOp) -> str:
        left_t, right_t = self.etype(node.left), self.etype(node.right)
        if left_t not in SCALARS or right_t not in SCALARS:
            raise self.no(node, f"'{ast.unparse(node)}' on arrays or tuples", "index them")
        left, right = self.sub(node.left), self.sub(node.right)
        ints = left_t != "double" and right_t != "double"
        op = type(node.op)
        if op in ARITH:
            return f"{left} {ARITH[op]} {right}"
        if op is ast.Div:
            divisor = node.right
            if isinstance(divisor, ast.Constant) and divisor.value and value_type(divisor.value):
                cast = "(double)" if left_t != "double" else ""
                return f"{cast}{left} / {literal(float(divisor.value))}"
            return self.helper("fm_div", left, right)
        if op is ast.FloorDiv:
            return self.helper("fm_floordiv_l" if ints else "fm_floordiv", left, right)
        if op is ast.Mod:
            return self.helper("fm_mod_l" if ints else "fm_mod", left, right)
        if op is ast.Pow:
            if self.etype(node) == "long":
                self.used.add("fm_ipow")
                return f"fm_ipow({left}, {right})"
            return self.helper("fm_pow", left, right)
        raise self.no(node, f"the operator in '{ast.unparse(node)}'", "use + - * / // % **")

    def helper(self, name: str, *args: str) -> str:
        """A c_support helper that may report an error through ``fm_err``."""
        self.used.add(name)
        self.checked = True
        return f"{name}({', '.join(args)}, fm_err)"

    def index(self, node: ast.expr, length: str) -> str:
        return self.helper("fm_index", self.want_int(node, "an index"), length)

    def subscript(self, node: ast.Subscript) -> str:
        base = node.value
        kind = self.etype(base)
        if (
            not isinstance(base, ast.Name)
            or kind not in ("arr1", "arr2")
            and not isinstance(kind, Tup)
        ):
            raise self.no(node, f"the subscript '{ast.unparse(node)}'", "index an array argument")
        if base.id not in self.types:
            raise self.no(node, f"indexing the global '{base.id}'", "pass it as an argument")
        array = self.cname(base.id)
        if isinstance(kind, Tup):
            return f"{array}[{self.index(node.slice, str(kind.n))}]"
        lengths = self.lengths[base.id]
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(parts) != len(lengths) or any(isinstance(p, ast.Slice) for p in parts):
            raise self.no(
                node,
                f"the subscript '{ast.unparse(node)}' (a slice, or not one index per axis)",
                "index single elements, x[i] or X[i, j]",
            )
        if len(parts) == 1:
            return f"{array}[{self.index(parts[0], lengths[0])}]"
        row, col = (self.index(p, n) for p, n in zip(parts, lengths, strict=True))
        return f"{array}[{row} * {lengths[1]} + {col}]"
