"""The tangent of one flattened operation, and statements that call list methods (a mixin
of :class:`fmad.forward.Forward`).

``z = <operation>`` reaches :meth:`Operations.value_tangent`, which finds the operation's rule
in :mod:`fmad.rules` and hands it the operands, their tangents and a
:class:`~fmad.tangent.Context`. A list carrying a derivative has a list of tangents; numpy
functions see it stacked into one array (:meth:`Operations.stacked`).
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad import composites, rules
from fmad.activity import classify
from fmad.composites import Composites, Partial
from fmad.effects import source_text
from fmad.tangent import Context, Tangent, zero


class Operations:
    """The operation part of the forward pass; ``self`` is a ``Forward``."""

    def value_tangent(self, value: ast.expr, z: ast.Name, d: str) -> Tangent | None:
        """The tangent of ``z = value`` (one flattened operation) in direction ``d``."""
        ctx = self.contexts[d]
        if isinstance(value, ast.Name | ast.Constant):
            return self.tangent(value, d)
        if self.trees:  # a part of a container parameter (fmad.trees)
            self.check_tree_operands(value, d)
            if isinstance(value, ast.Subscript):
                t = self.tree_subscript(value, d)
                if t is not None:
                    return t
        if isinstance(value, ast.List | ast.Tuple):
            # a list that becomes active later (appends) needs a list of tangents now
            ts = [self.tangent(e, d) for e in value.elts]
            elts = [t.expr if t is not None else zero() for t in ts]
            node = (
                ast.List(elts=elts, ctx=ast.Load())
                if isinstance(value, ast.List)
                else B.tuple_(elts)
            )
            return Tangent(node, full=True, container=True)
        if not self.is_active(value, d):
            return None
        short = self.composite(value, d)
        if short is not None:  # log(sigmoid(z)) and friends: the exact short form
            return ctx.scale(short.coef, self.tangent(B.name(short.base), d), full=True)
        if isinstance(value, ast.BinOp):
            rule = rules.rule_for(type(value.op))
            if rule is None:
                self.refuse(
                    f"the operator '{type(value.op).__name__}' has no derivative rule in fmad"
                )
            x, y, dx, dy = self.binop_operands(ctx, value)
            return rule(ctx, z, [x, y], [dx, dy], {})
        if isinstance(value, ast.UnaryOp):
            rule = rules.rule_for(type(value.op))
            return rule(ctx, z, [value.operand], [self.tangent(value.operand, d)], {})
        if isinstance(value, ast.Call):
            return self.call_tangent(value, z, d)
        if isinstance(value, ast.Subscript):
            t = self.tangent(value.value, d)
            return rules.RULES[ast.Subscript](ctx, z, [value.value, value.slice], [t, None], {})
        if isinstance(value, ast.Attribute):
            rule = rules.rule_for(rules.attribute(value.attr))
            if rule is None:
                self.refuse(
                    f"reading the attribute '.{value.attr}' of a value that carries a "
                    "derivative is not supported by fmad"
                )
            return rule(ctx, z, [value.value], [self.tangent(value.value, d)], {})
        if isinstance(value, ast.Dict | ast.Set):
            self.refuse(
                "dicts and sets holding values that carry a derivative are not "
                "supported by fmad; use a list or separate variables"
            )
        self.refuse(f"'{ast.unparse(value)}' cannot be differentiated by fmad")
        return None

    def composite(self, value: ast.expr, d: str) -> Partial | None:
        """The short derivative of a known composite (:mod:`fmad.composites`), if any."""
        if not composites.ENABLED or not isinstance(value, ast.BinOp | ast.Call):
            return None
        if getattr(self, "composites", None) is None:
            self.composites = Composites(self.flat, self.called_object)
        short = self.composites.partial(value, lambda n: not self.is_active(B.name(n), d))
        if short is None or d in short.members:  # a member seeds this direction itself
            return None
        return short

    def called_object(self, call: ast.Call) -> object:
        return classify(call, self.scope, self.nested).obj

    def call_tangent(self, call: ast.Call, z: ast.Name, d: str) -> Tangent | None:
        ctx = self.contexts[d]
        target = classify(call, self.scope, self.nested)
        args = call.args
        tangents = [self.tangent(a, d) for a in args]
        keywords = {k.arg: k.value for k in call.keywords}
        if target.kind == "rule":
            if target.obj not in rules.LIST_RULES:
                tangents = [self.stacked(ctx, t, a) for t, a in zip(tangents, args, strict=True)]
                if rules.is_numpy(target.obj):
                    args = [self.as_array(a) for a in args]
            return self.apply(target.rule, target.name, ctx, z, args, tangents, keywords)
        if target.kind == "zero":
            return None
        if target.kind == "method":
            receiver = call.func.value
            rule = rules.rule_for(rules.method(target.name))
            if rule is None:
                if not self.is_active(receiver, d):
                    self.unknown_call(target, call)
                self.refuse(
                    f"the method '.{target.name}()' has no derivative rule in fmad; "
                    "use the numpy function, or move it out of the differentiated "
                    "function"
                )
            receiver_t = self.tangent(receiver, d)
            operands, operand_tangents = [receiver, *args], [receiver_t, *tangents]
            label = f".{target.name}"
            return self.apply(rule, label, ctx, z, operands, operand_tangents, keywords)
        self.unknown_call(target, call)
        return None

    def apply(self, rule, label: str, ctx: Context, z, args, tangents, keywords) -> Tangent | None:
        """Run a call's rule. Rules read the tangents of positional arguments: a keyword
        argument that carries a derivative is refused unless the rule reads it itself
        (``rule.keyword_tangents``), and a call whose arguments a rule cannot take apart
        (``np.dot(x, b=y)``) is refused, never a crash inside fmad."""
        try:
            t = rule(ctx, z, args, tangents, keywords)
        except (IndexError, KeyError, TypeError) as exc:
            self.refuse(
                f"fmad's derivative rule for '{label}()' cannot take these arguments apart "
                f"({type(exc).__name__}: {exc}); pass the arrays by position, as in numpy's "
                "documentation"
            )
        d = ctx.direction.name
        if not getattr(rule, "keyword_tangents", False):
            for name, value in keywords.items():
                if name is not None and self.is_active(value, d):
                    self.refuse(
                        f"'{label}()' receives {name}= by keyword, and its value carries a "
                        f"derivative; fmad follows the derivatives of positional arguments: "
                        f"pass {name} by position"
                    )
        return t

    def as_array(self, atom: ast.expr) -> ast.expr:
        """``np.asarray(xs)`` for an argument of a numpy function that may be a list (a
        parameter, or a name bound to a list display): numpy converts it, so the factors a
        rule computes from it must too (``2 * xs`` would repeat a list)."""
        if isinstance(atom, ast.Name) and atom.id in self.maybe_lists:
            return B.call(self.contexts[self.directions[0].name].np_("asarray"), atom)
        return atom

    def binop_operands(self, ctx: Context, value: ast.BinOp) -> tuple:
        """``(x, y, dx, dy)`` for the rule of ``value``. A list or tuple carrying a derivative
        (its tangent a list of tangents) keeps it for ``+`` (concatenation, or numpy's
        addition: ``fmad_rt.concat_tangent`` decides) and for ``* n`` with a constant ``n``
        (repetition). Lists have no other arithmetic, so any other operator that runs is
        numpy's, on the arrays it makes of them: the rule sees those arrays and the tangents
        stacked. A list display times anything else is refused (repetition or numpy's
        product cannot be told apart before the code runs)."""
        x, y = value.left, value.right
        d = ctx.direction.name
        dx, dy = self.tangent(x, d), self.tangent(y, d)
        sides = [(dx, y), (dy, x)]
        if not any(t is not None and t.container for t, _ in sides) or isinstance(
            value.op, ast.Add
        ):
            return x, y, dx, dy
        if isinstance(value.op, ast.Mult):
            for t, other in sides:
                repeat = isinstance(other, ast.Constant) and type(other.value) is int
                if t is not None and t.container and t.full and not repeat:
                    self.refuse(
                        f"'{source_text(self.filename, self.node, value)}' multiplies a list "
                        "or tuple that carries a derivative by something other than a "
                        "constant integer; fmad models repetition ([w] * 3) only: convert "
                        "it to an array first (np.array(...))"
                    )
            return x, y, dx, dy
        return (
            self.as_array(x),
            self.as_array(y),
            self.stacked(ctx, dx, x),
            self.stacked(ctx, dy, y),
        )

    def stacked(self, ctx: Context, t: Tangent | None, value: ast.expr) -> Tangent | None:
        """A list's tangent (a list of tangents) as one array, for a numpy function."""
        if t is None or not t.container:
            return t
        k = [B.const(ctx.direction.k)] if ctx.vectorized else []
        # full when the list of tangents is known to be one (a display, a concatenation)
        return Tangent(B.call(ctx.rt("stack_tangents"), t.expr, value, *k), full=t.full)

    def expr_stmt(self, s: ast.Expr) -> list[ast.stmt]:
        call = s.value
        out: list[ast.stmt] = [s]
        if not isinstance(call, ast.Call):
            return out
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.attr in ("append", "extend", "insert")
        ):
            receiver = func.value.id
            for d in self.directions:
                if receiver not in self.active[d.name]:
                    continue
                targs = []
                for i, a in enumerate(call.args):
                    is_index = func.attr == "insert" and i == 0
                    t = None if is_index else self.tangent(a, d.name)
                    if is_index:
                        targs.append(a)
                    elif t is not None:
                        targs.append(
                            self.contexts[d.name].full(t, a) if func.attr == "extend" else t.expr
                        )
                    elif func.attr == "extend":
                        zeros = B.binop(
                            ast.List(elts=[zero()], ctx=ast.Load()),
                            ast.Mult(),
                            B.call(B.name("len"), a),
                        )
                        targs.append(zeros)
                    else:
                        targs.append(zero())
                tname = self.tname(receiver, d.name)
                out.append(ast.Expr(value=B.call(B.attr(tname, func.attr), *targs)))
        return out
