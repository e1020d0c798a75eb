"""Fence: refuse every construct fmad never supports, wherever it stands, before flattening.

A refusal is *syntactic* when the construct alone decides it (a ``try``, a lambda whose value
is computed, ``f(*args)``); refusals that depend on activity or shapes come later. Every
syntactic refusal is one entry of :data:`REFUSED`, and :class:`Fence` checks them all in one
walk over the function as written, meeting the constructs in the order the flattening pass
visits them: statement by statement, a statement's targets (their shape), its right side
operand by operand, a subscript target's index, then its blocks. The first construct met is
the one reported.

After this pass the function is in the grammar :mod:`fmad.flatten` handles (listed in its
docstring), or :class:`fmad.UnsupportedError` was raised at the construct's line. A nested
``def``'s body is fenced when the helper is transformed (its decorators here).
"""

from __future__ import annotations

import ast

from fmad.errors import unsupported

# What fmad refuses, keyed by the node class or, for a node that is refused in one position
# only, by a short name. ``{code}`` stands for the construct's own text.
REFUSED: dict[type | str, str] = {
    # -- statements
    ast.Try: "'try' statements are not supported by fmad; move the try outside the "
    "differentiated function",
    ast.With: "'with' statements are not supported by fmad; move the with block outside the "
    "differentiated function",
    ast.AsyncWith: "'async with' is not supported by fmad; move it outside the "
    "differentiated function",
    ast.AsyncFor: "'async for' is not supported by fmad; use a plain 'for' loop",
    ast.AsyncFunctionDef: "'async def' is not supported by fmad; use a plain 'def'",
    ast.ClassDef: "class definitions are not supported inside a differentiated function; "
    "define the class at module level",
    ast.Delete: "'del' statements are not supported by fmad; let the variable go out of scope "
    "or reassign it",
    ast.Import: "'import' inside a differentiated function is not supported by fmad; "
    "import at module level",
    ast.ImportFrom: "'import' inside a differentiated function is not supported by fmad; "
    "import at module level",
    ast.Global: "'global' declarations are not supported by fmad; pass the value in as an "
    "argument and return the result instead of writing a global",
    ast.Nonlocal: "'nonlocal' declarations are not supported by fmad; pass the value in as an "
    "argument and return the result instead",
    ast.Match: "'match' statements are not supported by fmad; use if/elif",
    "statement": "'{code}' statements are not supported by fmad",  # any other kind
    "decorated def": "decorated nested functions are not supported by fmad; "
    "define the helper without decorators",
    # -- assignment and loop targets
    "starred target": "starred targets other than one '*name' among plain names in an "
    "assignment ('a, *rest = xs') are not supported by fmad; index the sequence instead",
    "attribute target": "assigning to an attribute ('obj.x = ...') is not supported by fmad; "
    "keep the value in a local variable",
    "target": "this assignment target ({code}) is not supported by fmad; assign to a plain name",
    # -- expressions whose value is computed (the first five also in a test left as written)
    ast.Yield: "'yield' is not supported by fmad (a generator has no derivative); return a "
    "value instead",
    ast.YieldFrom: "'yield from' is not supported by fmad (a generator has no derivative); "
    "return a value instead",
    ast.Await: "'await' is not supported by fmad; differentiate a plain synchronous function",
    ast.NamedExpr: "assignment expressions (':=') are not supported by fmad; assign in a "
    "statement of its own",
    ast.Lambda: "lambda expressions are not supported by fmad; define the function with 'def' "
    "(at module level or inside this function)",
    ast.DictComp: "dict comprehensions are not supported by fmad; build the dict with a loop",
    ast.SetComp: "set comprehensions are not supported by fmad; use a list",
    "async comprehension": "async comprehensions are not supported by fmad",
    "starred argument": "starred arguments ('f(*args)') are not supported by fmad; "
    "pass the arguments one by one",
    "keyword unpacking": "keyword unpacking ('f(**kwargs)') is not supported by "
    "fmad; pass the keyword arguments one by one",
    "starred item": "starred items ('[*xs]') are not supported by fmad; "
    "build the sequence with + or a loop",
    "dict unpacking": "dict unpacking ('{**d}') is not supported by fmad",
    "expression": "the expression '{code}' is not supported by fmad",  # any other kind
}
if hasattr(ast, "TryStar"):
    REFUSED[ast.TryStar] = REFUSED[ast.Try]

# Refused even in a test left as written (if, while, assert): they would change what the
# test does. A lambda or a dict or set comprehension there runs as Python runs it.
REFUSED_IN_TESTS = (ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr)

# Statement kinds the flattening pass handles (the others are refused).
SUPPORTED_STATEMENTS = (
    *(ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.If, ast.While),
    *(ast.For, ast.Assert, ast.Raise, ast.Pass, ast.Break, ast.Continue, ast.FunctionDef),
)


def check(filename: str, tree: ast.FunctionDef) -> None:
    """Raise :class:`fmad.UnsupportedError` at the first construct of ``tree``'s body that
    fmad never supports."""
    Fence(filename).block(tree.body)


class Fence:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def refuse(self, node: ast.AST, what: type | str, code: str = "") -> None:
        raise unsupported(self.filename, node, REFUSED[what].replace("{code}", code))

    # -- statements ----------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        kind = type(s)
        if kind in REFUSED:
            self.refuse(s, kind)
        if not isinstance(s, SUPPORTED_STATEMENTS):
            self.refuse(s, "statement", kind.__name__)
        if isinstance(s, ast.Assign):
            for t in s.targets:
                self.target(t)
            self.assign(s.targets, s.value)
        elif isinstance(s, ast.AugAssign):  # x[i] += v reads x[i] before it computes v
            self.target(s.target)
            self.subscripts([s.target])
            self.expr(s.value)
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.target(s.target)
            self.assign([s.target], s.value)
        elif isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Call):
                self.expr(s.value)
            elif not isinstance(s.value, ast.Constant):
                self.test(s.value)  # left as written
        elif isinstance(s, ast.Return) and s.value is not None:
            self.expr(s.value)
        elif isinstance(s, ast.If | ast.While):
            self.test(s.test)
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, ast.For):
            self.target(s.target, loop=True)
            self.expr(s.iter)
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, ast.Assert):
            self.test(s.test)
        elif isinstance(s, ast.FunctionDef) and s.decorator_list:
            self.refuse(s, "decorated def")

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        self.expr(value)  # the right side first, then the targets
        self.subscripts(targets)

    def subscripts(self, targets: list[ast.expr]) -> None:
        """The container and index of each subscript target (in a tuple target they stay
        as written)."""
        for t in targets:
            if isinstance(t, ast.Subscript):
                self.expr(t.value)
                self.index(t.slice)

    def target(self, t: ast.expr, loop: bool = False) -> None:
        if isinstance(t, ast.Name):
            return
        if isinstance(t, ast.Tuple | ast.List):
            for e in t.elts:
                if isinstance(e, ast.Starred):
                    # one '*rest' name in an assignment: 'hidden, *rest = layers'
                    if loop or not isinstance(e.value, ast.Name) or not nested_ok(t):
                        self.refuse(e, "starred target")
                    continue
                self.target(e, loop)
            return
        if isinstance(t, ast.Attribute):
            self.refuse(t, "attribute target")
        if not (isinstance(t, ast.Subscript) and not loop):
            self.refuse(t, "target", ast.unparse(t))

    # -- expressions ---------------------------------------------------------------------
    def test(self, node: ast.expr) -> None:
        """A test left as written (of an if, a while, an assert): it runs as Python runs it."""
        for n in ast.walk(node):
            if isinstance(n, REFUSED_IN_TESTS):
                self.refuse(n, type(n))

    def expr(self, node: ast.expr) -> None:
        """An expression whose value the flattening pass computes, operand by operand."""
        kind = type(node)
        if kind in REFUSED:
            self.refuse(node, kind)
        if isinstance(node, ast.Name | ast.Constant | ast.JoinedStr | ast.FormattedValue):
            return
        if isinstance(node, ast.BinOp):
            self.exprs([node.left, node.right])
        elif isinstance(node, ast.UnaryOp):
            self.expr(node.operand)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Subscript):
            self.expr(node.value)
            self.index(node.slice)
        elif isinstance(node, ast.Attribute):
            self.expr(node.value)
        elif isinstance(node, ast.Compare):
            self.exprs([node.left, *node.comparators])
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    self.refuse(e, "starred item")
            self.exprs(node.elts)
        elif isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                self.refuse(node, "dict unpacking")
            self.exprs([*node.keys, *node.values])
        elif isinstance(node, ast.IfExp):
            self.test(node.test)
            self.exprs([node.body, node.orelse])
        elif isinstance(node, ast.BoolOp):
            self.exprs(node.values)
        elif isinstance(node, ast.ListComp | ast.GeneratorExp):
            self.comprehension(node)
        else:
            self.refuse(node, "expression", ast.unparse(node))

    def exprs(self, nodes: list[ast.expr]) -> None:
        for node in nodes:
            self.expr(node)

    def call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            self.expr(node.func.value if isinstance(node.func, ast.Attribute) else node.func)
        for a in node.args:
            if isinstance(a, ast.Starred):
                self.refuse(a, "starred argument")
        for k in node.keywords:
            if k.arg is None:
                self.refuse(k.value, "keyword unpacking")
        self.exprs([*node.args, *(k.value for k in node.keywords)])

    def index(self, index: ast.expr) -> None:
        if isinstance(index, ast.Slice):
            self.exprs([p for p in (index.lower, index.upper, index.step) if p is not None])
        elif isinstance(index, ast.Tuple):
            for e in index.elts:
                self.index(e)
        else:
            self.expr(index)

    def comprehension(self, node: ast.ListComp | ast.GeneratorExp) -> None:
        """Checked as the loops it becomes: each generator's target, iterable and
        conditions (tests left as written), then the item appended."""
        if any(gen.is_async for gen in node.generators):
            self.refuse(node, "async comprehension")
        for gen in node.generators:
            self.target(gen.target, loop=True)
            self.expr(gen.iter)
            for cond in gen.ifs:
                self.test(cond)
        self.expr(node.elt)


def nested_ok(t: ast.Tuple | ast.List) -> bool:
    """An assignment target with one starred name, and only names beside it."""
    starred = [e for e in t.elts if isinstance(e, ast.Starred)]
    return len(starred) == 1 and all(
        isinstance(e, ast.Name) or (isinstance(e, ast.Starred) and isinstance(e.value, ast.Name))
        for e in t.elts
    )
