"""Flatten: one operation per assignment, with a readable name.

After this pass, in the function body and every nested block:

- every BinOp, UnaryOp, call, subscript, attribute read, comparison and container literal
  that computes a value sits alone on the right of an assignment to a name, and its operands
  are names or constants (``w_mult_X = w * X``);
- an assignment whose right side reads its own target goes through a fresh name first
  (``x = x * y`` becomes ``x_mult_y = x * y; x = x_mult_y``), so a tangent rule emitted after
  the statement still sees the operand's old value;
- augmented assignments are plain ones; chained assignments are one per target;
- ``a if c else b``, ``and``/``or`` in value positions are ``if`` statements (short-circuit
  kept); list comprehensions and generator expressions are ``for`` loops that ``append``;
- the tests of ``if``, ``while`` and ``assert`` are left as written: they compute booleans,
  which carry no derivative;
- anything fmad cannot differentiate has raised :class:`fmad.UnsupportedError`.

The primal computes exactly what the original did, operation for operation, so its value is
bit-for-bit the same.
"""

from __future__ import annotations

import ast
import copy

from fmad import build as B
from fmad.errors import unsupported
from fmad.naming import Namer, describe
from fmad.resolve import Scope

REFUSED_STATEMENTS = {
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
}
if hasattr(ast, "TryStar"):
    REFUSED_STATEMENTS[ast.TryStar] = REFUSED_STATEMENTS[ast.Try]

REFUSED_EXPRESSIONS = {
    ast.Lambda: "lambda expressions are not supported by fmad; define the function with 'def' "
    "(at module level or inside this function)",
    ast.Yield: "'yield' is not supported by fmad (a generator has no derivative); return a "
    "value instead",
    ast.YieldFrom: "'yield from' is not supported by fmad (a generator has no derivative); "
    "return a value instead",
    ast.Await: "'await' is not supported by fmad; differentiate a plain synchronous function",
    ast.NamedExpr: "assignment expressions (':=') are not supported by fmad; assign in a "
    "statement of its own",
    ast.DictComp: "dict comprehensions are not supported by fmad; build the dict with a loop",
    ast.SetComp: "set comprehensions are not supported by fmad; use a list",
}

# Builtins whose call may stay inline in a 'for' header: they only arrange the iteration.
ITERATION_HELPERS = ("range", "zip", "enumerate", "reversed")


def is_atom(node: ast.expr) -> bool:
    """A name, a constant, or an expression of constants alone (``-2.0``, ``1 / 3``)."""
    if isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp | ast.BinOp):
        return all(
            isinstance(n, ast.Constant | ast.UnaryOp | ast.BinOp | ast.operator | ast.unaryop)
            for n in ast.walk(node)
        )
    return False


class Flattener:
    def __init__(self, filename: str, namer: Namer, scope: Scope) -> None:
        self.filename = filename
        self.namer = namer
        self.scope = scope

    def refuse(self, node: ast.AST, message: str) -> None:
        raise unsupported(self.filename, node, message)

    # -- statements ----------------------------------------------------------------------
    def function(self, tree: ast.FunctionDef) -> ast.FunctionDef:
        new = copy.copy(tree)  # the body is rebuilt below; the rest is shared, never mutated
        new.args = copy.deepcopy(tree.args)
        new.body = self.block(tree.body)
        return new

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            before = len(out)
            self.stmt(s, out)
            for new in out[before:]:
                ast.copy_location(new, s)
                for n in ast.walk(new):
                    if isinstance(n, ast.stmt | ast.expr) and not hasattr(n, "lineno"):
                        ast.copy_location(n, s)
        return out

    def stmt(self, s: ast.stmt, out: list[ast.stmt]) -> None:
        for kind, message in REFUSED_STATEMENTS.items():
            if isinstance(s, kind):
                self.refuse(s, message)
        method = getattr(self, f"stmt_{type(s).__name__}", None)
        if method is None:
            self.refuse(s, f"'{type(s).__name__}' statements are not supported by fmad")
        method(s, out)

    def stmt_Assign(self, s: ast.Assign, out: list[ast.stmt]) -> None:
        for t in s.targets:
            self.check_target(t)
        if len(s.targets) == 1:
            self.assign(s.targets[0], s.value, out)
            return
        rhs = self.atom(s.value, out)
        for t in s.targets:
            out.append(ast.Assign(targets=[self.target(t, out)], value=copy.deepcopy(rhs)))

    def assign(self, target: ast.expr, value: ast.expr, out: list[ast.stmt]) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, ast.IfExp | ast.BoolOp):
                self.branchy(value, target.id, out)
                return
            stem, self.namer.stem = self.namer.stem, target.id  # long names: target_op
            try:
                simple = self.value(value, out)
                if not is_atom(simple) and target.id in B.read_names(simple):
                    simple = self.name_for(simple, out)
            finally:
                self.namer.stem = stem
            out.append(ast.Assign(targets=[B.store(target.id)], value=simple))
        elif (
            isinstance(target, ast.Tuple | ast.List)
            and isinstance(value, ast.Tuple | ast.List)
            and len(target.elts) == len(value.elts)
            and not any(isinstance(e, ast.Starred) for e in value.elts)
        ):
            # a, b = b, a * b: every right-hand value first, then the parallel assignment.
            atoms = [self.atom(e, out) for e in value.elts]
            out.append(ast.Assign(targets=[self.target(target, out)], value=B.tuple_(atoms)))
        else:
            rhs = self.atom(value, out)
            out.append(ast.Assign(targets=[self.target(target, out)], value=rhs))

    def stmt_AugAssign(self, s: ast.AugAssign, out: list[ast.stmt]) -> None:
        self.check_target(s.target)
        if isinstance(s.target, ast.Name):
            value = B.binop(B.name(s.target.id), s.op, s.value)
            ast.copy_location(value, s)
            self.assign(s.target, value, out)
            out[-1].fmad_augmented = s  # checked by fmad.mutation: x may be shared
            return
        # x[i] += v  ->  old = x[i]; new = old + v; x[i] = new
        target = self.target(s.target, out)
        old = self.name_for(B.subscript(target.value, target.slice), out)
        new = self.atom(B.binop(old, s.op, s.value), out)
        out.append(ast.Assign(targets=[target], value=new))

    def stmt_AnnAssign(self, s: ast.AnnAssign, out: list[ast.stmt]) -> None:
        if s.value is not None:
            self.check_target(s.target)
            self.assign(s.target, s.value, out)

    def stmt_Expr(self, s: ast.Expr, out: list[ast.stmt]) -> None:
        if isinstance(s.value, ast.Constant):  # docstring or a bare constant
            out.append(copy.deepcopy(s))
        elif isinstance(s.value, ast.Call):
            out.append(ast.Expr(value=self.value(s.value, out)))
        else:
            self.check_expr(s.value)
            out.append(copy.deepcopy(s))

    def stmt_Return(self, s: ast.Return, out: list[ast.stmt]) -> None:
        if s.value is None:
            out.append(ast.Return(value=None))
        elif isinstance(s.value, ast.Tuple) and not any(
            isinstance(e, ast.Starred) for e in s.value.elts
        ):
            out.append(ast.Return(value=B.tuple_([self.atom(e, out) for e in s.value.elts])))
        else:
            out.append(ast.Return(value=self.atom(s.value, out)))

    def stmt_If(self, s: ast.If, out: list[ast.stmt]) -> None:
        self.check_expr(s.test)
        out.append(
            ast.If(test=copy.deepcopy(s.test), body=self.block(s.body), orelse=self.block(s.orelse))
        )

    def stmt_While(self, s: ast.While, out: list[ast.stmt]) -> None:
        self.check_expr(s.test)
        out.append(
            ast.While(
                test=copy.deepcopy(s.test), body=self.block(s.body), orelse=self.block(s.orelse)
            )
        )

    def stmt_For(self, s: ast.For, out: list[ast.stmt]) -> None:
        self.check_target(s.target, loop=True)
        it = s.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id in ITERATION_HELPERS
            and not self.scope.is_local(it.func.id)
            and all(k.arg == "strict" and it.func.id == "zip" for k in it.keywords)
        ):
            args = [self.atom(a, out) for a in self.positional(it)]
            keywords = [ast.keyword(arg=k.arg, value=self.atom(k.value, out)) for k in it.keywords]
            it = ast.Call(func=B.name(it.func.id), args=args, keywords=keywords)
        else:
            it = self.atom(it, out)
        out.append(
            ast.For(
                target=copy.deepcopy(s.target),
                iter=it,
                body=self.block(s.body),
                orelse=self.block(s.orelse),
                type_comment=None,
            )
        )

    def stmt_Assert(self, s: ast.Assert, out: list[ast.stmt]) -> None:
        self.check_expr(s.test)
        out.append(copy.deepcopy(s))

    def stmt_Raise(self, s: ast.Raise, out: list[ast.stmt]) -> None:
        out.append(copy.deepcopy(s))

    def stmt_Pass(self, s: ast.stmt, out: list[ast.stmt]) -> None:
        out.append(copy.deepcopy(s))

    stmt_Break = stmt_Continue = stmt_Pass

    def stmt_FunctionDef(self, s: ast.FunctionDef, out: list[ast.stmt]) -> None:
        # Nested helpers are transformed when (and if) the function calls them with an
        # active argument; until then they stay as written.
        if s.decorator_list:
            self.refuse(
                s,
                "decorated nested functions are not supported by fmad; "
                "define the helper without decorators",
            )
        out.append(copy.deepcopy(s))

    # -- targets -------------------------------------------------------------------------
    def check_target(self, t: ast.expr, loop: bool = False) -> None:
        if isinstance(t, ast.Name):
            return
        if isinstance(t, ast.Tuple | ast.List):
            for e in t.elts:
                if isinstance(e, ast.Starred):
                    self.refuse(
                        e,
                        "starred assignment targets ('a, *rest = ...') are not "
                        "supported by fmad; index the sequence instead",
                    )
                self.check_target(e, loop)
            return
        if isinstance(t, ast.Attribute):
            self.refuse(
                t,
                "assigning to an attribute ('obj.x = ...') is not supported by fmad; "
                "keep the value in a local variable",
            )
        if isinstance(t, ast.Subscript) and not loop:
            return
        self.refuse(
            t,
            f"this assignment target ({ast.unparse(t)}) is not supported by fmad; "
            "assign to a plain name",
        )

    def target(self, t: ast.expr, out: list[ast.stmt]) -> ast.expr:
        if isinstance(t, ast.Subscript):
            return ast.Subscript(
                value=self.atom(t.value, out), slice=self.index(t.slice, out), ctx=ast.Store()
            )
        return copy.deepcopy(t)

    # -- expressions ---------------------------------------------------------------------
    def check_expr(self, node: ast.expr) -> None:
        """Refuse what cannot run even when left as written (a test, an assert)."""
        for n in ast.walk(node):
            for kind, message in REFUSED_EXPRESSIONS.items():
                if isinstance(n, kind) and kind not in (ast.Lambda, ast.DictComp, ast.SetComp):
                    self.refuse(n, message)

    def atom(self, node: ast.expr, out: list[ast.stmt]) -> ast.expr:
        """Flatten ``node`` and return a name or constant holding its value."""
        if isinstance(node, ast.IfExp | ast.BoolOp | ast.ListComp | ast.GeneratorExp):
            hint = "list" if isinstance(node, ast.ListComp | ast.GeneratorExp) else "choice"
            target = self.namer.fresh(hint)
            self.branchy(node, target, out)
            return B.name(target)
        simple = self.value(node, out)
        if is_atom(simple):
            return simple
        return self.name_for(simple, out)

    def name_for(self, simple: ast.expr, out: list[ast.stmt]) -> ast.Name:
        target = self.hint(simple)
        out.append(B.assign(target, simple))
        return B.name(target)

    def hint(self, v: ast.expr) -> str:
        n = self.namer
        if isinstance(v, ast.BinOp):
            return n.for_binop(v.op, v.left, v.right)
        if isinstance(v, ast.UnaryOp):
            return n.for_unaryop(v.op, v.operand)
        if isinstance(v, ast.Call):
            f = v.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                if self.scope.is_local(f.value.id):  # a method: x.sum() -> x_sum
                    return n.fresh(f"{f.value.id}_{f.attr}", short=f.attr)
            return n.for_call(f, v.args)
        if isinstance(v, ast.Subscript):
            return n.fresh(
                f"{describe(v.value)}_{self.describe_index(v.slice)}", short=describe(v.value)
            )
        if isinstance(v, ast.Attribute):
            return n.fresh(f"{describe(v.value)}_{v.attr}", short=v.attr)
        if isinstance(v, ast.Compare):
            return n.for_binop(v.ops[0], v.left, v.comparators[0])
        if isinstance(v, ast.List | ast.Tuple | ast.Dict | ast.Set):
            return n.fresh(type(v).__name__.lower())
        return n.fresh("t")

    @staticmethod
    def describe_index(index: ast.expr) -> str:
        if isinstance(index, ast.Tuple):
            return "_".join(Flattener.describe_index(e) for e in index.elts)
        if isinstance(index, ast.Slice):
            parts = [describe(p) if p is not None else "" for p in (index.lower, index.upper)]
            return "to".join(parts) if any(parts) else "all"
        return describe(index)

    def positional(self, call: ast.Call) -> list[ast.expr]:
        for a in call.args:
            if isinstance(a, ast.Starred):
                self.refuse(
                    a,
                    "starred arguments ('f(*args)') are not supported by fmad; "
                    "pass the arguments one by one",
                )
        for k in call.keywords:
            if k.arg is None:
                self.refuse(
                    k.value,
                    "keyword unpacking ('f(**kwargs)') is not supported by "
                    "fmad; pass the keyword arguments one by one",
                )
        return call.args

    def index(self, index: ast.expr, out: list[ast.stmt]) -> ast.expr:
        if isinstance(index, ast.Slice):
            parts = [
                None if p is None else self.atom(p, out)
                for p in (index.lower, index.upper, index.step)
            ]
            return ast.Slice(lower=parts[0], upper=parts[1], step=parts[2])
        if isinstance(index, ast.Tuple):
            return B.tuple_([self.index(e, out) for e in index.elts])
        if isinstance(index, ast.Constant) and index.value is Ellipsis:
            return index
        return self.atom(index, out)

    def value(self, node: ast.expr, out: list[ast.stmt]) -> ast.expr:
        """Flatten ``node``'s operands; return one operation on atoms (or an atom)."""
        for kind, message in REFUSED_EXPRESSIONS.items():
            if isinstance(node, kind):
                self.refuse(node, message)
        if is_atom(node):
            return copy.deepcopy(node)
        if isinstance(node, ast.BinOp):
            return B.binop(self.atom(node.left, out), node.op, self.atom(node.right, out))
        if isinstance(node, ast.UnaryOp):
            return ast.UnaryOp(op=node.op, operand=self.atom(node.operand, out))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                root = func
                while isinstance(root, ast.Attribute):
                    root = root.value
                if not (isinstance(root, ast.Name) and not self.scope.is_local(root.id)):
                    # a method of a value: flatten the receiver
                    func = B.attr(self.atom(func.value, out), func.attr)
                else:
                    func = copy.deepcopy(func)
            elif isinstance(func, ast.Name):
                func = copy.deepcopy(func)
            else:
                func = self.atom(func, out)
            args = [self.atom(a, out) for a in self.positional(node)]
            keywords = [
                ast.keyword(arg=k.arg, value=self.atom(k.value, out)) for k in node.keywords
            ]
            return ast.Call(func=func, args=args, keywords=keywords)
        if isinstance(node, ast.Subscript):
            return B.subscript(self.atom(node.value, out), self.index(node.slice, out))
        if isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and not self.scope.is_local(root.id):
                return copy.deepcopy(node)  # math.pi, module constants: not active
            return B.attr(self.atom(node.value, out), node.attr)
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            return self.chained_compare(node, out)
        if isinstance(node, ast.Compare):
            return ast.Compare(
                left=self.atom(node.left, out),
                ops=node.ops,
                comparators=[self.atom(c, out) for c in node.comparators],
            )
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    self.refuse(
                        e,
                        "starred items ('[*xs]') are not supported by fmad; "
                        "build the sequence with + or a loop",
                    )
            kind = type(node)
            elts = [self.atom(e, out) for e in node.elts]
            return kind(elts=elts, ctx=ast.Load()) if kind is not ast.Set else ast.Set(elts=elts)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                self.refuse(node, "dict unpacking ('{**d}') is not supported by fmad")
            return ast.Dict(
                keys=[self.atom(k, out) for k in node.keys],
                values=[self.atom(v, out) for v in node.values],
            )
        if isinstance(node, ast.IfExp | ast.BoolOp | ast.ListComp | ast.GeneratorExp):
            return self.atom(node, out)
        if isinstance(node, ast.JoinedStr | ast.FormattedValue):
            return copy.deepcopy(node)
        self.refuse(node, f"the expression '{ast.unparse(node)}' is not supported by fmad")
        raise AssertionError("unreachable")

    def chained_compare(self, node: ast.Compare, out: list[ast.stmt]) -> ast.Name:
        """``a < b < c`` -> ``t = a < b; if t: t = b < c``: ``c`` is evaluated only if
        ``a < b``, and ``b`` once, as Python does."""
        left = self.atom(node.left, out)
        right = self.atom(node.comparators[0], out)
        target = self.namer.for_binop(node.ops[0], left, right)
        out.append(B.assign(target, ast.Compare(left=left, ops=[node.ops[0]], comparators=[right])))
        block = out
        for op, comparator in zip(node.ops[1:], node.comparators[1:], strict=True):
            body: list[ast.stmt] = []
            nxt = self.atom(comparator, body)
            body.append(B.assign(target, ast.Compare(left=right, ops=[op], comparators=[nxt])))
            block.append(ast.If(test=B.name(target), body=body, orelse=[]))
            block, right = body, nxt
        return B.name(target)

    def branchy(self, node: ast.expr, target: str, out: list[ast.stmt]) -> None:
        """Write ``target = node`` for a short-circuiting or looping ``node`` as statements."""
        if isinstance(node, ast.IfExp):
            self.check_expr(node.test)
            body: list[ast.stmt] = []
            orelse: list[ast.stmt] = []
            self.assign(B.store(target), node.body, body)
            self.assign(B.store(target), node.orelse, orelse)
            out.append(ast.If(test=copy.deepcopy(node.test), body=body, orelse=orelse))
        elif isinstance(node, ast.BoolOp):
            # a and b  ->  t = a; if t: t = b        a or b  ->  t = a; if not t: t = b
            self.assign(B.store(target), node.values[0], out)
            for operand in node.values[1:]:
                body = []
                self.assign(B.store(target), operand, body)
                test: ast.expr = B.name(target)
                if isinstance(node.op, ast.Or):
                    test = ast.UnaryOp(op=ast.Not(), operand=test)
                out.append(ast.If(test=test, body=body, orelse=[]))
                out = body  # the next operand runs only if this one did
        else:
            self.comprehension(node, target, out)

    def comprehension(
        self, node: ast.ListComp | ast.GeneratorExp, target: str, out: list[ast.stmt]
    ) -> None:
        """``[f(x) for x in xs if c]`` -> ``t = []; for x_1 in xs: if c: t.append(f(x_1))``.

        The loop variables get fresh names: a comprehension's variables are its own in
        Python 3, and must not overwrite the function's variables of the same name.
        """
        renames: dict[str, str] = {}
        for gen in node.generators:
            if gen.is_async:
                self.refuse(node, "async comprehensions are not supported by fmad")
            for n in ast.walk(gen.target):
                if isinstance(n, ast.Name):
                    renames.setdefault(n.id, self.namer.fresh(n.id))
        for name_ in renames.values():
            self.scope.local_names.add(name_)

        class Rename(ast.NodeTransformer):
            def visit_Name(self, n: ast.Name) -> ast.Name:
                return ast.copy_location(ast.Name(id=renames.get(n.id, n.id), ctx=n.ctx), n)

        node = Rename().visit(copy.deepcopy(node))
        out.append(B.assign(target, ast.List(elts=[], ctx=ast.Load())))
        append = ast.Expr(value=B.call(B.attr(target, "append"), node.elt))
        inner: ast.stmt = append
        for gen in reversed(node.generators):
            for cond in reversed(gen.ifs):
                inner = ast.If(test=cond, body=[inner], orelse=[])
            inner = ast.For(
                target=gen.target, iter=gen.iter, body=[inner], orelse=[], type_comment=None
            )
        ast.copy_location(inner, node)
        ast.fix_missing_locations(inner)
        self.stmt(inner, out)
