"""Calls in C for the C export (a part of :class:`fmad.c_lower.Lowerer`): libm functions
for ``math.*`` (checked as CPython checks them) and for ``np.*`` of numbers, the builtins
``abs``, ``len``, ``int``, ``float``, ``round``, ``pow``, and numpy's ``sign``, ``maximum``,
``minimum``, ``where``, ``clip``, ``square``, ``divide``, ``power``, ``floor``, ``ceil``.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from fmad import runtime
from fmad.c_expr import BINARY, MATH1, NP1, TO_LONG, Expressions
from fmad.c_types import SCALARS, CType, Tup, join


class Calls(Expressions):
    """(the calls of :class:`fmad.c_expr.Expressions`)"""

    def call_type(self, node: ast.Call) -> CType | None:
        fn = self.callable(node)
        if fn in TO_LONG or fn is len or fn is round:
            return "long"
        if fn in (abs, min, max):
            items = [self.etype(a) for a in node.args]
            if None in items:
                return None
            if any(t not in SCALARS for t in items):
                return "double"  # refused when printed
            result = None
            for t in items:
                result = join(result, t)
            return join(result, "long") if fn is abs and result == "bool" else result
        if fn is np.asarray and node.args:
            return self.etype(node.args[0])
        if fn is float or fn in MATH1 or fn in NP1 or fn in BINARY:
            return "double"
        if fn is runtime.real_values and node.args:
            return self.etype(node.args[0])
        if fn is np.where and len(node.args) == 3:
            return join(join(self.etype(node.args[1]), self.etype(node.args[2])), "double")
        return "double"

    def callable(self, node: ast.Call) -> Any:
        """The function a call reaches (None when it is not a hashable function)."""
        fn = self.resolver.obj(node.func)
        try:
            hash(fn)
        except TypeError:
            return None
        return fn

    def call(self, node: ast.Call) -> str:
        fn = self.callable(node)
        label = ast.unparse(node.func)
        if node.keywords and fn is not runtime.real_values:
            raise self.no(node, f"keyword arguments to {label}", "pass them by position")
        args = node.args
        if fn is runtime.real_values or fn is np.asarray and len(args) == 1:
            return self.expr(args[0])
        if fn is len and len(args) == 1:
            kind = self.etype(args[0])
            if isinstance(kind, Tup):
                return str(kind.n)
            if kind in ("arr1", "arr2") and isinstance(args[0], ast.Name):
                return f"(long){self.lengths[args[0].id][0]}"
            raise self.no(node, f"len of '{ast.unparse(args[0])}'", "take len of an array")
        if any(self.etype(a) not in SCALARS for a in args):
            raise self.no(node, f"{label} of an array or a tuple", "call it on numbers")
        text = [self.expr(a) for a in args]
        if fn in MATH1 and len(args) == 1:
            return self.helper("fm_math", f"{MATH1[fn]}({text[0]})", text[0])
        if fn in NP1 and len(args) == 1:
            return f"{NP1[fn]}({text[0]})"
        if fn in TO_LONG and len(args) == 1:
            if self.etype(args[0]) != "double":
                return f"(long){self.sub(args[0])}"
            return self.helper("fm_to_long", f"{TO_LONG[fn]}({text[0]})")
        if fn is round and len(args) == 1:
            if self.etype(args[0]) != "double":
                return f"(long){self.sub(args[0])}"
            self.used.add("fm_round")
            return self.helper("fm_to_long", f"fm_round({text[0]})")
        if fn is float and len(args) == 1:
            return f"(double){self.sub(args[0])}"
        if fn is abs and len(args) == 1:
            kind = self.etype(args[0])
            return f"fabs({text[0]})" if kind == "double" else f"labs({text[0]})"
        if fn in BINARY and len(args) == 2:
            return f"{BINARY[fn]}({text[0]}, {text[1]})"
        if fn is np.divide and len(args) == 2:  # numpy: no error, IEEE's infinities
            return f"(double){self.sub(args[0])} / {self.sub(args[1])}"
        if fn is np.power and len(args) == 2:
            return f"pow({text[0]}, {text[1]})"
        if (fn is np.floor or fn is np.ceil) and len(args) == 1:
            return f"{fn.__name__}({text[0]})"
        if fn is np.clip and len(args) == 3:
            self.used |= {"fm_maximum", "fm_minimum"}
            return f"fm_minimum(fm_maximum({text[0]}, {text[1]}), {text[2]})"
        if (fn is math.pow or fn is pow) and len(args) == 2:
            return self.helper("fm_pow", *text)
        if fn is np.sign and len(args) == 1:
            self.used.add("fm_sign")
            return f"fm_sign({text[0]})"
        if (fn is np.maximum or fn is np.minimum) and len(args) == 2:
            name = "fm_maximum" if fn is np.maximum else "fm_minimum"
            self.used.add(name)
            return f"{name}({text[0]}, {text[1]})"
        if fn is np.square and len(args) == 1:
            return f"{self.sub(args[0])} * {self.sub(args[0])}"
        if fn is np.where and len(args) == 3:
            return f"{self.sub(args[0], True)} ? {self.sub(args[1])} : {self.sub(args[2])}"
        raise self.no(
            node,
            f"a call of '{label}' here",
            "the C subset calls libm functions (math.*, np.* of numbers), abs, min, max, "
            "len, int, float, round and helper functions of your code; write it with those",
        )
