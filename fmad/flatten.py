"""Flatten: one operation per assignment, with a readable name.

Its input has passed :mod:`fmad.fence` (``Flattener.function`` runs it first), so every
construct here is one fmad supports. After this pass, in the function body and every nested
block:

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
  which carry no derivative.

The closed grammar of a flat function (*atom*: a name, a constant, or an expression of
constants alone such as ``-2.0``; expressions "as written" are the user's, unflattened):

- ``Assign`` with one target: a name, ``atom[index]`` (index: atoms, slices of atoms, tuples
  of those, ``...``), or a tuple or list of names and subscripts as written; its value an
  atom, a tuple of atoms, or one operation on atoms: ``BinOp``, ``UnaryOp``, ``Compare``,
  ``Call`` (the callee a name, ``atom.attr`` or a dotted global such as ``np.linalg.norm``;
  atoms as arguments and as named keywords), ``Subscript``, ``Attribute``, ``Tuple``,
  ``List``, ``Set``, ``Dict``, or an f-string as written; an ``x op= v`` rewritten carries
  ``fmad_augmented`` (the original statement);
- ``Expr``: such a call, or a constant or expression as written;
- ``Return``: nothing, an atom or a tuple of atoms;
- ``If`` and ``While`` (test as written), ``For`` (target: a name or tuples of names; iterating
  an atom, or ``range``/``zip``/``enumerate``/``reversed`` of
  atoms), ``Assert`` and ``Raise`` as written, ``Pass``, ``Break``, ``Continue``;
- ``FunctionDef``: a nested helper without decorators, as written (flattened when it is
  transformed).

The primal computes exactly what the original did, operation for operation, so its value is
bit-for-bit the same.
"""

from __future__ import annotations

import ast
import copy

from fmad import build as B
from fmad import fence
from fmad.flatten_expr import ExprFlattener, is_atom

# Builtins whose call may stay inline in a 'for' header: they only arrange the iteration.
ITERATION_HELPERS = ("range", "zip", "enumerate", "reversed")


class Flattener(ExprFlattener):
    # -- statements ----------------------------------------------------------------------
    def function(self, tree: ast.FunctionDef) -> ast.FunctionDef:
        fence.check(self.filename, tree)  # from here on, the grammar is closed
        new = copy.copy(tree)  # the body is rebuilt below; the rest is shared, never mutated
        new.args = B.clone(tree.args)
        new.body = self.block(tree.body)
        return new

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            before = len(out)
            self.stmt(s, out)
            for new in out[before:]:
                ast.copy_location(new, s)
                for n in B.walk(new):
                    if isinstance(n, ast.stmt | ast.expr) and not hasattr(n, "lineno"):
                        ast.copy_location(n, s)
        return out

    def stmt(self, s: ast.stmt, out: list[ast.stmt]) -> None:
        getattr(self, f"stmt_{type(s).__name__}")(s, out)

    def stmt_Assign(self, s: ast.Assign, out: list[ast.stmt]) -> None:
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
            and not any(isinstance(e, ast.Starred) for e in target.elts)
        ):
            # a, b = b, a * b: every right-hand value first, then the parallel assignment.
            atoms = [self.atom(e, out) for e in value.elts]
            out.append(ast.Assign(targets=[self.target(target, out)], value=B.tuple_(atoms)))
        else:
            rhs = self.atom(value, out)
            out.append(ast.Assign(targets=[self.target(target, out)], value=rhs))

    def stmt_AugAssign(self, s: ast.AugAssign, out: list[ast.stmt]) -> None:
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
            self.assign(s.target, s.value, out)

    def stmt_Expr(self, s: ast.Expr, out: list[ast.stmt]) -> None:
        if isinstance(s.value, ast.Call):
            out.append(ast.Expr(value=self.value(s.value, out)))
        else:  # a docstring, a constant, or an expression left as written
            out.append(copy.deepcopy(s))

    def stmt_Return(self, s: ast.Return, out: list[ast.stmt]) -> None:
        if s.value is None:
            out.append(ast.Return(value=None))
        elif isinstance(s.value, ast.Tuple):
            out.append(ast.Return(value=B.tuple_([self.atom(e, out) for e in s.value.elts])))
        else:
            out.append(ast.Return(value=self.atom(s.value, out)))

    def stmt_If(self, s: ast.If, out: list[ast.stmt]) -> None:
        out.append(
            ast.If(test=copy.deepcopy(s.test), body=self.block(s.body), orelse=self.block(s.orelse))
        )

    def stmt_While(self, s: ast.While, out: list[ast.stmt]) -> None:
        out.append(
            ast.While(
                test=copy.deepcopy(s.test), body=self.block(s.body), orelse=self.block(s.orelse)
            )
        )

    def stmt_For(self, s: ast.For, out: list[ast.stmt]) -> None:
        it = s.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id in ITERATION_HELPERS
            and not self.scope.is_local(it.func.id)
            and all(k.arg == "strict" and it.func.id == "zip" for k in it.keywords)
        ):
            args = [self.atom(a, out) for a in it.args]
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

    def stmt_Pass(self, s: ast.stmt, out: list[ast.stmt]) -> None:
        out.append(copy.deepcopy(s))

    stmt_Assert = stmt_Raise = stmt_Break = stmt_Continue = stmt_Pass

    def stmt_FunctionDef(self, s: ast.FunctionDef, out: list[ast.stmt]) -> None:
        # Nested helpers are transformed when (and if) the function calls them with an
        # active argument; until then they stay as written.
        out.append(copy.deepcopy(s))

    # -- targets -------------------------------------------------------------------------
    def target(self, t: ast.expr, out: list[ast.stmt]) -> ast.expr:
        if isinstance(t, ast.Subscript):
            return ast.Subscript(
                value=self.atom(t.value, out), slice=self.index(t.slice, out), ctx=ast.Store()
            )
        return copy.deepcopy(t)

    def branchy(self, node: ast.expr, target: str, out: list[ast.stmt]) -> None:
        """Write ``target = node`` for a short-circuiting or looping ``node`` as statements."""
        if isinstance(node, ast.IfExp):
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
            for n in B.stored_names(gen.target):
                renames.setdefault(n, self.namer.fresh(n))
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
