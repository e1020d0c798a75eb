"""Which ``return`` statements of a function surely return a plain ``float`` as their value,
given that some of its parameters are floats (the public dispatcher's guard tested them):
there the dispatcher needs no test of the result's type (:func:`fmad.dispatch.dispatcher`).

A small abstract interpretation of straight-line arithmetic and ``if`` statements. Each name
is a ``float``, an ``int`` (a Python ``int`` or ``bool``) or unknown. Only what Python itself
guarantees counts: ``+ - * / // %`` of a float and a float or an int is a float (or raises);
``/`` of two ints is a float; ``x ** n`` of a float or an int by a constant integral
exponent with one float is a float (a negative base with a fractional exponent would be
complex, so any other power is unknown); unary ``-`` and ``+`` keep the kind. Every other
node, a name not bound here (a global, a data parameter, whose type no guard tested), a
statement other than an assignment to one name, an ``if``, a ``return`` or ``pass``, makes
what it touches unknown, and a function containing anything else (a loop, a nested
function) has no such return.
"""

from __future__ import annotations

import ast

FLOAT = "float"
INT = "int"

# operators that give a float from a float and a float or an int
FLOAT_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
# the same with two ints give an int (``/``: a float)
INT_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)
STATEMENTS = (ast.Assign, ast.If, ast.Return, ast.Pass)


def float_returns(tree: ast.FunctionDef, floats: set[str]) -> set[int]:
    """The ``id`` of each ``return v, ...`` (or ``return v``) of ``tree`` whose ``v`` is a
    Python float whenever the parameters ``floats`` are (empty where ``tree`` holds a
    statement this does not model)."""
    found: set[int] = set()
    if any(isinstance(node, ast.NamedExpr) for node in ast.walk(tree)):
        return found  # a name bound inside an expression
    params = {p.arg for p in (*tree.args.posonlyargs, *tree.args.args, *tree.args.kwonlyargs)}
    env = {name: FLOAT for name in floats & params}
    if not block(tree.body, env, found):
        return set()
    return found


def block(body: list[ast.stmt], env: dict[str, str | None], found: set[int]) -> bool:
    """Interpret ``body`` in ``env`` (changed in place), adding surely-float returns to
    ``found``; False when it holds a statement not modelled."""
    for s in body:
        if not isinstance(s, STATEMENTS):
            return False
        if isinstance(s, ast.Assign):
            kind_of = kind(s.value, env)
            for target in s.targets:
                if isinstance(target, ast.Name):
                    env[target.id] = kind_of
                else:  # unpacking, subscripts: whatever they bind is unknown
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            env[node.id] = None
        elif isinstance(s, ast.Return):
            value = s.value.elts[0] if isinstance(s.value, ast.Tuple) and s.value.elts else s.value
            if value is not None and kind(value, env) == FLOAT:
                found.add(id(s))
        elif isinstance(s, ast.If):
            sides = []
            for branch in (s.body, s.orelse):
                inner = dict(env)
                if not block(branch, inner, found):
                    return False
                sides.append(inner)
            then, other = sides
            for name in then.keys() | other.keys():
                env[name] = then.get(name) if then.get(name) == other.get(name) else None
    return True


def kind(node: ast.expr, env: dict[str, str | None]) -> str | None:
    """``FLOAT``, ``INT`` or None (unknown) for the value of ``node``."""
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.Constant):
        if type(node.value) is float:
            return FLOAT
        return INT if type(node.value) in (int, bool) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return kind(node.operand, env)
    if not isinstance(node, ast.BinOp):
        return None
    left, right = kind(node.left, env), kind(node.right, env)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Pow):
        exponent = node.right
        integral = isinstance(exponent, ast.Constant) and (
            type(exponent.value) is int
            or (type(exponent.value) is float and exponent.value.is_integer())
        )
        return FLOAT if integral and FLOAT in (left, right) else None
    if FLOAT in (left, right):
        return FLOAT if isinstance(node.op, FLOAT_OPS) else None
    if isinstance(node.op, ast.Div):
        return FLOAT
    return INT if isinstance(node.op, INT_OPS) else None
