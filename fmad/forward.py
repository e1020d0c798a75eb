"""Forward mode: after each primal statement, its tangent statements.

After this pass, every assignment to a name ``z`` that is active with respect to a direction
``w`` is followed by ``dz_dw = <chain rule>``; loops, branches and early returns keep their
meaning because each tangent sits right after the statement it belongs to. Terms known to be
zero are never emitted. ``return v`` becomes ``return v, {"w": dv_dw, ...}``; a helper
function called with active arguments is transformed too and called as
``v, dv_dw = helper_fwd(x, dx_dw=...)``.

Tangent layout: for a scalar parameter a tangent has the shape of its value, or any shape
that broadcasts to it (``1.0`` for ``d(x + b)/db``). For an array parameter of shape ``S``
with ``k`` elements, all ``k`` directions travel together on a *trailing* axis: the tangent of
a value of shape ``V`` has shape ``V + (k,)`` (or one that broadcasts to it). Numpy aligns
shapes from the right, so ``dx * y[..., None]`` is right whatever the ranks are, and the
gradient of a value comes out as ``V + S``, the Jacobian's usual layout.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmad import build as B
from fmad import rules
from fmad.activity import Activity, classify, may_be_lists, rebound_defs
from fmad.build import lexical_bound
from fmad.calls import HelperCalls, signature_of
from fmad.effects import source_text
from fmad.errors import unsupported
from fmad.naming import MAX_NAME_LENGTH, Namer
from fmad.resolve import Scope
from fmad.tangent import Direction, Tangent

if TYPE_CHECKING:
    from fmad.transform import Session, Unit


def _zero() -> ast.expr:
    return ast.Constant(0.0)


def product(a: ast.expr, b: ast.expr) -> ast.expr:
    """``a * b`` with the constants 1 and -1 folded."""
    for x, y in ((a, b), (b, a)):
        if B.is_const(x, 1):
            return y
        if B.is_const(x, -1):
            return B.neg(y)
    return B.binop(a, ast.Mult(), b)


class Context:
    """What a rule sees: emits tangent expressions for one direction."""

    def __init__(self, fwd: Forward, direction: Direction) -> None:
        self.fwd = fwd
        self.direction = direction
        self.vectorized = direction.vectorized

    # modules and helpers the generated code reads
    def module(self, which: str) -> ast.expr:
        return self.fwd.unit.module(which)

    def np_(self, *attrs: str) -> ast.expr:
        return B.attr(self.module("numpy"), *attrs) if attrs else self.module("numpy")

    def rt(self, attr: str) -> ast.expr:
        return B.attr(self.module("fmad.runtime"), attr)

    def inject(self, obj: Any, hint: str) -> ast.expr:
        return B.name(self.fwd.unit.inject(obj, hint))

    # tangent algebra
    def expand(self, primal: ast.expr) -> ast.expr:
        """A primal factor in the tangent's layout (a trailing axis for vectorized ones)."""
        if not self.vectorized or B.constant_value(primal) is not None:
            return primal
        # np.asarray(c)[..., None]: c with a trailing axis (np.expand_dims is ~10x slower)
        return B.subscript(
            B.call(self.np_("asarray"), primal),
            B.tuple_([ast.Constant(Ellipsis), ast.Constant(None)]),
        )

    # A tangent is kept as ``coef * base``: ``coef`` a primal value (a named partial
    # derivative), ``base`` a tangent. A chain of scalings multiplies coefficients only:
    # ``c2 * (c1 * T)`` is ``(c2 * c1) * T``, computed on the value's size and, because each
    # partial is named once per statement (``Forward.partial``), shared by every direction.
    # For an array parameter, ``T`` is often the folded seed (``X`` for ``X @ w``): a
    # reduction of ``c * X`` is then one matrix-vector product (``c @ X``), and the
    # ``(N, k)`` products nobody reads are dropped by the optimizer. That is how forward mode
    # gets backprop's cost on a loss like ``mean(f(X @ w + b))``. For a scalar parameter only
    # pure coefficients (``base`` 1) are tracked, so its code keeps the readable chain-rule
    # form ``dloss_dw = loss_partial * dr_dw``.
    def split(self, t: Tangent) -> tuple[ast.expr, ast.expr]:
        """``t`` as ``(coef, base)``."""
        if t.factors is not None:
            return t.factors
        if not self.vectorized and B.constant_value(t.expr) is not None:
            return t.expr, B.const(1.0)
        return B.const(1), t.expr

    def factored(self, coef: ast.expr, base: ast.expr, full: bool) -> Tangent:
        """The tangent ``coef * base``, remembering its factors where they are useful."""
        if not self.vectorized:
            if B.is_const(base, 1):
                keep = B.constant_value(coef) is not None or (
                    isinstance(coef, ast.Name) and coef.id in self.fwd.partial_names
                )
                return Tangent(coef, full=full, factors=(coef, base) if keep else None)
            expr = product(coef, base)
            parts = (coef, base) if isinstance(expr, ast.BinOp) else None
            return Tangent(expr, full=full, product=parts)
        if B.is_const(coef, 1):
            expr = base
        elif B.is_const(coef, -1):
            expr = B.neg(base)
        else:
            expr = B.binop(self.expand(coef), ast.Mult(), base)
        return Tangent(expr, full=full, factors=(coef, base))

    def scale(self, coef: ast.expr, t: Tangent | None, full: bool = False) -> Tangent | None:
        """``coef * t``, where ``coef`` is a primal value broadcasting to the result.

        ``full=True``: ``coef`` has the result's whole shape, so the product has it too.
        """
        if t is None or B.is_const(coef, 0):
            return None
        if B.is_const(coef, 1):
            return t
        c0, base = self.split(t)
        return self.factored(self.fwd.partial(product(coef, c0)), base, t.full or full)

    def divide(
        self, t: Tangent | None, den: ast.expr, full: bool = False, numpy: bool = False
    ) -> Tangent | None:
        """``t / den``; ``full=True``: ``den`` has the result's whole shape; ``numpy=True``:
        a constant divided the numpy way (1/0 is inf, as numpy's own functions give)."""
        if t is None:
            return None
        if B.is_const(den, 1):
            return t
        c0, base = self.split(t)
        den = self.fwd.partial(den)
        if numpy and B.constant_value(c0) is not None:
            coef = B.call(self.np_("divide"), c0, den)
        else:
            coef = B.binop(c0, ast.Div(), den)
        return self.factored(self.fwd.partial(coef), base, t.full or full)

    def negate(self, t: Tangent | None) -> Tangent | None:
        if t is None:
            return None
        return (
            self.scale(B.const(-1), t, t.full)
            if self.vectorized or t.factors or B.constant_value(t.expr) is not None
            else Tangent(B.neg(t.expr), full=t.full)
        )

    def add(self, *terms: Tangent | None) -> Tangent | None:
        present = [t for t in terms if t is not None]
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        full = all(t.full for t in present)
        parts = [self.split(t) for t in present]
        if len({ast.dump(base) for _, base in parts}) == 1 and (
            self.vectorized or all(t.factors for t in present)
        ):
            # c1 * T + c2 * T = (c1 + c2) * T: still one base
            coef = parts[0][0]
            for c, _ in parts[1:]:
                coef = B.binop(coef, ast.Add(), c)
            return self.factored(self.fwd.partial(coef), parts[0][1], full)
        expr = present[0].expr
        for t in present[1:]:
            if isinstance(t.expr, ast.UnaryOp) and isinstance(t.expr.op, ast.USub):
                expr = B.binop(expr, ast.Sub(), t.expr.operand)
            elif B.constant_value(t.expr) is not None and B.constant_value(t.expr) < 0:
                expr = B.binop(expr, ast.Sub(), B.const(-B.constant_value(t.expr)))
            else:
                expr = B.binop(expr, ast.Add(), t.expr)
        return Tangent(expr, full=full)

    def broadcast(self, t: Tangent | None, other: ast.expr) -> Tangent | None:
        """``t`` as a term of ``x (+) other``: ``other`` may make the result bigger than x."""
        if t is None:
            return None
        keeps_shape = B.constant_value(other) is not None
        return Tangent(
            t.expr, full=t.full and keeps_shape, seed=t.seed and keeps_shape, factors=t.factors
        )

    def full(self, t: Tangent, value: ast.expr) -> ast.expr:
        """``t`` broadcast to its value's full shape (a no-op when known to be full)."""
        if t.full and B.constant_value(t.expr) is None:
            return t.expr
        args = [t.expr, value]
        if self.vectorized:
            args.append(B.const(self.direction.k))
        return B.call(self.rt("full"), *args)

    def where(self, cond, da, db, z) -> Tangent:
        a = da.expr if da is not None else _zero()
        b = db.expr if db is not None else _zero()
        return Tangent(B.call(self.np_("where"), self.expand(cond), a, b), full=False)

    def reduce_builtin(self, name, z, args, tangents, keywords) -> Tangent | None:
        """The builtins ``sum(xs)``, ``max(xs)``, ``max(a, b, c)`` (ties share evenly)."""
        if keywords:
            self.fwd.refuse(
                f"{name}() with keyword arguments is not supported by fmad when "
                "its arguments carry derivatives"
            )
        k = [B.const(self.direction.k)] if self.vectorized else []
        if len(args) > 1:
            if name == "sum":  # sum(xs, start)
                return self.add(
                    None
                    if tangents[0] is None
                    else Tangent(B.call(self.rt("builtin_sum"), tangents[0].expr, args[0], *k)),
                    tangents[1],
                )
            elts = [t.expr if t is not None else _zero() for t in tangents]
            call = B.call(
                self.rt("builtin_extreme"),
                ast.List(elts=elts, ctx=ast.Load()),
                ast.List(elts=list(args), ctx=ast.Load()),
                z,
            )
            return Tangent(call, full=False)
        if tangents[0] is None:
            return None
        helper = "builtin_sum" if name == "sum" else "builtin_extreme"
        call_args = [tangents[0].expr, args[0]] + ([z] if name != "sum" else [])
        return Tangent(B.call(self.rt(helper), *call_args, *k), full=False)


@dataclass
class CalleeInfo:
    """A transformed helper: how to call it and what it returns."""

    name: str
    inputs: dict[tuple[str, str], str]  # (parameter, direction) -> keyword of its tangent
    directions: tuple[str, ...]  # directions whose tangents it returns, in order
    result_full: dict[str, bool] = field(default_factory=dict)
    result_zero: frozenset[str] = frozenset()  # directions whose returned tangent is always 0


class Forward(HelperCalls):
    def __init__(
        self,
        session: Session,
        unit: Unit,
        flat: ast.FunctionDef,
        scope: Scope,
        directions: list[Direction],
        *,
        seeds: dict[str, dict[str, Tangent]],
        seed_points: set[str] = frozenset(),
        top: bool = True,
        numbers: frozenset[str] = frozenset(),
    ) -> None:
        """``seeds[d][name]``: the tangent ``name`` starts with for direction ``d``.

        ``seed_points``: local names whose assignment seeds their own direction
        (differentiating with respect to an intermediate value). ``numbers``: parameters
        known to be numbers in this variant (scalar ``wrt`` parameters), never lists.
        """
        self.session = session
        self.unit = unit
        self.namer: Namer = unit.namer
        self.flat = flat
        self.scope = scope
        self.filename = unit.filename
        self.directions = directions
        self.seeds = seeds
        self.seed_points = seed_points
        self.top = top
        self.activity = Activity(flat, scope)
        self.nested = self.activity.nested
        # the Forward whose body defines each nested function visible here (see inherit)
        self.owners: dict[str, Forward] = dict.fromkeys(self.nested, self)
        self.bound = lexical_bound(flat)  # the names this function's own scope binds
        self.lexical_parent: Forward | None = None  # for a nested helper: its owner
        self.outer: dict[str, Forward] = {}  # see HelperCalls.inherit
        self.rebound = rebound_defs(flat)
        self.active = {
            d.name: self.activity.active(
                set(seeds[d.name]) | ({d.name} if d.name in seed_points else set())
            )
            for d in directions
        }
        self.contexts = {d.name: Context(self, d) for d in directions}
        self.tnames: dict[tuple[str, str], str] = {}
        self.full_flags: dict[tuple[str, str], bool] = {}
        self.constants: dict[tuple[str, str], Tangent] = {}
        self.zeros: set[tuple[str, str]] = set()
        self.prelude: list[ast.stmt] = []  # seed assignments made by the caller
        self.containers: set[tuple[str, str]] = set()
        self.products: dict[tuple[str, str], tuple[ast.expr, ast.expr]] = {}
        self.factors: dict[tuple[str, str], tuple[ast.expr, ast.expr]] = {}
        self.assign_counts = self.count_assignments()
        self.maybe_lists = may_be_lists(flat, self.params - numbers)
        self.result_full: dict[str, bool] = {d.name: True for d in directions}
        self.result_zero: set[str] = {d.name for d in directions}
        self.node: ast.AST | None = None
        self.nested_variants: dict[int, list[ast.stmt]] = {}  # id(def) -> its variants
        # primal factors of the statement being differentiated, computed once for every
        # direction: ``pow_1_partial = 2.0 * r`` (the local partial derivative)
        self.target = "t"
        self.partials: dict[str, str] = {}
        self.pending: list[ast.stmt] = []
        self.partial_names: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------
    def refuse(self, message: str, node: ast.AST | None = None) -> None:
        raise unsupported(self.filename, node or self.node, message)

    def partial(self, coef: ast.expr) -> ast.expr:
        """A compound primal factor, named once per statement and shared by all directions."""
        if (
            isinstance(coef, ast.Name)
            or B.constant_value(coef) is not None
            or isinstance(coef, ast.Compare | ast.BoolOp)
        ):
            return coef
        key = ast.dump(coef)
        if key not in self.partials:
            name = self.namer.fresh(f"{self.target}_partial", limit=MAX_NAME_LENGTH + 8)
            self.partials[key] = name
            self.partial_names.add(name)
            self.pending.append(B.assign(name, coef))
        return B.name(self.partials[key])

    def stable(self, name: str) -> bool:
        """Assigned at most once (so a later read sees the value an earlier rule saw)."""
        for (var, _), tname in self.tnames.items():
            if tname == name:
                return self.assign_counts.get(var, 0) <= 1
        return self.assign_counts.get(name, 0) <= 1

    def tangent_names(self) -> set[str]:
        """Every name this pass created for derivative code (for the optimizer)."""
        return set(self.tnames.values()) | self.partial_names

    def flush(self, out: list[ast.stmt]) -> None:
        """Emit the partials the last rule asked for, before its tangent statement."""
        out.extend(self.pending)
        self.pending = []

    def reassigned(self, name: str) -> bool:
        """Bound in the body (beyond a parameter's binding on entry)."""
        entry = 1 if name in self.params else 0
        return self.assign_counts.get(name, 0) > entry

    def count_assignments(self) -> dict[str, int]:
        # a parameter is bound once on entry: reassigning it makes two bindings
        self.params = set(signature_of(self.flat).parameters)
        counts: dict[str, int] = dict.fromkeys(self.params, 1)
        for node in ast.walk(self.flat):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                counts[node.id] = counts.get(node.id, 0) + 1
            elif isinstance(node, ast.For):  # a loop target is bound many times
                for n in ast.walk(node.target):
                    if isinstance(n, ast.Name):
                        counts[n.id] = counts.get(n.id, 0) + 1
        return counts

    def tname(self, var: str, d: str) -> str:
        key = (var, d)
        if key not in self.tnames:
            self.tnames[key] = self.namer.tangent(var, d)
        return self.tnames[key]

    def is_active(self, node: ast.expr, d: str) -> bool:
        return self.activity.expr_active(node, self.active[d])

    def tangent(self, atom: ast.expr | None, d: str) -> Tangent | None:
        """The tangent of an operand (a name or a constant), or None when it is zero."""
        if atom is None or not isinstance(atom, ast.Name) or atom.id not in self.active[d]:
            return None
        seed = self.seeds[d].get(atom.id)
        if (atom.id, d) in self.zeros:
            return None
        if (atom.id, d) in self.constants:
            return self.constants[(atom.id, d)]
        if seed is not None and not self.reassigned(atom.id):
            if seed.seed:  # the identity lives in a variable; rules may fold it away
                return Tangent(B.name(self.tname(atom.id, d)), full=True, seed=True)
            return seed
        return Tangent(
            B.name(self.tname(atom.id, d)),
            full=self.full_flags.get((atom.id, d), False),
            factors=self.factors.get((atom.id, d)),
            container=(atom.id, d) in self.containers,
            product=self.products.get((atom.id, d)),
        )

    def single(self, var: str, d: str) -> bool:
        """Assigned once, and not seeded: what its tangent is set to holds everywhere."""
        return self.assign_counts.get(var, 0) <= 1 and var not in self.seeds[d]

    def set_tangent(self, var: str, d: str, t: Tangent | None) -> ast.stmt:
        single = self.single(var, d)
        self.full_flags[(var, d)] = bool(t is not None and t.full and single)
        if t is not None and t.container:
            self.containers.add((var, d))
        if single and t is None:
            self.zeros.add((var, d))  # always zero: later rules skip its terms
        if single and t is not None and B.constant_value(t.expr) is not None:
            # assigned once, to a constant: later rules fold it (``X * 1.0`` -> ``X``)
            self.constants[(var, d)] = t
        if (
            single
            and t is not None
            and t.factors is not None
            and all(self.stable(n) for f in t.factors for n in B.read_names(f))
        ):
            self.factors[(var, d)] = t.factors
        if (
            single
            and t is not None
            and t.product is not None
            and all(self.stable(n) for f in t.product for n in B.read_names(f))
        ):
            self.products[(var, d)] = t.product
        return B.assign(self.tname(var, d), t.expr if t is not None else self.zero(var, d))

    def zero(self, var: str, d: str) -> ast.expr:
        """The zero tangent of ``var``. A variable assigned more than once in a vectorized
        direction gets ``np.zeros(k)``: its other assignments' rules may count on the
        trailing direction axis (a scalar ``0.0`` would lack it), while a once-assigned zero
        is skipped by every rule and stays ``0.0``."""
        direction = self.contexts[d].direction
        if not direction.vectorized or self.single(var, d):
            return _zero()
        return B.call(self.contexts[d].np_("zeros"), B.const(direction.k))

    # -- the function ----------------------------------------------------------------------
    def function(self) -> ast.FunctionDef:
        out = copy.copy(self.flat)  # a new body below; arguments copied, the rest shared
        out.args = copy.deepcopy(self.flat.args)
        entry: list[ast.stmt] = list(self.prelude)
        params = set(signature_of(self.flat).parameters)
        for d in self.directions:
            for name in sorted(params - set(self.seeds[d.name])):
                if name in self.active[d.name] and self.reassigned(name):
                    # a parameter that becomes active only later: its tangent starts at zero
                    entry.append(self.set_tangent(name, d.name, None))
            for name, seed in self.seeds[d.name].items():
                if isinstance(seed.expr, ast.Name) and seed.expr.id == self.tname(name, d.name):
                    continue  # a helper's tangent argument: already in place
                if self.reassigned(name) or seed.seed:
                    # a reassigned parameter needs a tangent variable; so does an array seed
                    entry.append(B.assign(self.tname(name, d.name), self.seed_value(seed, d)))
                    self.full_flags[(name, d.name)] = seed.full
        body = self.block(self.flat.body)
        if not (body and isinstance(body[-1], ast.Return)):
            body.append(self.make_return(None))  # falling off the end returns None
        out.body = entry + body
        self.fill_nested(out)
        return out

    def seed_value(self, seed: Tangent, d: Direction) -> ast.expr:
        if not seed.seed:
            return seed.expr
        # the identity, laid out as shape S + (k,); folded away where it meets a linear op
        eye = B.call(self.contexts[d.name].np_("eye"), B.const(d.k))
        shape = B.tuple_([B.const(n) for n in (*d.shape, d.k)])
        return B.call(B.attr(eye, "reshape"), shape)

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            self.node = s
            new = self.stmt(s)
            for n in new:
                if not hasattr(n, "lineno"):
                    ast.copy_location(n, s)
            out.extend(new)
        return out

    def stmt(self, s: ast.stmt) -> list[ast.stmt]:
        if isinstance(s, ast.Assign):
            return self.assign(s)
        if isinstance(s, ast.Expr):
            return self.expr_stmt(s)
        if isinstance(s, ast.Return):
            return [self.make_return(s.value)]
        if isinstance(s, ast.If):
            return [
                ast.If(
                    test=s.test,
                    body=self.block(s.body) or [ast.Pass()],
                    orelse=self.block(s.orelse),
                )
            ]
        if isinstance(s, ast.While):
            return [
                ast.While(
                    test=s.test,
                    body=self.block(s.body) or [ast.Pass()],
                    orelse=self.block(s.orelse),
                )
            ]
        if isinstance(s, ast.For):
            return self.for_(s)
        if isinstance(s, ast.FunctionDef):
            return [s, _Placeholder(s)]
        return [s]

    # -- assignments -----------------------------------------------------------------------
    def assign(self, s: ast.Assign) -> list[ast.stmt]:
        target = s.targets[0]
        value = s.value
        if isinstance(value, ast.Call):
            call_target = classify(value, self.scope, self.nested)
            if call_target.kind in ("user", "nested") and any(
                self.is_active(value, d.name) for d in self.directions
            ):
                return self.call_helper(s, call_target)
        out: list[ast.stmt] = [s]
        self.partials = {}
        if isinstance(target, ast.Name):
            z = target.id
            self.target = z
            for d in self.directions:
                if z not in self.active[d.name]:
                    continue
                if z in self.seed_points and z == d.name:
                    seed = B.call(
                        self.contexts[d.name].rt("scalar_seed"), B.name(z), ast.Constant(z)
                    )
                    out.append(B.assign(self.tname(z, d.name), seed))
                    self.full_flags[(z, d.name)] = True
                    continue
                t = self.value_tangent(value, B.name(z), d.name)
                self.flush(out)
                out.append(self.set_tangent(z, d.name, t))
        elif isinstance(target, ast.Tuple | ast.List):
            out.extend(self.unpack(target, value))
        elif isinstance(target, ast.Subscript):
            if any(
                self.is_active(value, d.name) or self.is_active(target.value, d.name)
                for d in self.directions
            ):
                self.refuse(
                    "item assignment into a list or array that carries a derivative "
                    f"('{ast.unparse(target)} = ...') is not supported by fmad; build a new "
                    "list (append) and convert it with np.array, or use np.where"
                )
        return out

    def unpack(self, target: ast.Tuple | ast.List, value: ast.expr) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        names = B.stored_names(target)
        for d in self.directions:
            active = [n for n in names if n in self.active[d.name]]
            if not active:
                continue
            if isinstance(value, ast.Tuple | ast.List):
                # a, b = b, a * b: the tangents move in parallel too
                pairs = [
                    (t, self.tangent(v, d.name))
                    for t, v in zip(target.elts, value.elts, strict=True)
                ]
                pairs = [
                    (t, tv)
                    for t, tv in pairs
                    if isinstance(t, ast.Name) and t.id in self.active[d.name]
                ]
                exprs = [tv.expr if tv is not None else self.zero(t.id, d.name) for t, tv in pairs]
                stores = [B.store(self.tname(t.id, d.name)) for t, _ in pairs]
                for t, tv in pairs:
                    self.full_flags[(t.id, d.name)] = False
                    if tv is None and self.single(t.id, d.name):
                        self.zeros.add((t.id, d.name))  # always zero: later rules skip it
                out.append(
                    ast.Assign(
                        targets=[ast.Tuple(elts=stores, ctx=ast.Store())], value=B.tuple_(exprs)
                    )
                )
                continue
            t = self.tangent(value, d.name)
            if t is None:
                out.extend(B.assign(self.tname(n, d.name), self.zero(n, d.name)) for n in active)
                for n in active:
                    self.full_flags[(n, d.name)] = False
                    if self.single(n, d.name):
                        self.zeros.add((n, d.name))
                continue
            source = self.contexts[d.name].full(t, value)
            out.append(ast.Assign(targets=[self.tangent_target(target, d.name)], value=source))
            for n in active:
                self.full_flags[(n, d.name)] = False
        return out

    def tangent_target(self, target: ast.expr, d: str) -> ast.expr:
        """The same structure as ``target`` with tangent names (``_`` for inactive ones)."""
        if isinstance(target, ast.Name):
            if target.id in self.active[d]:
                return B.store(self.tname(target.id, d))
            return B.store(self.namer.fresh("unused"))
        return ast.Tuple(elts=[self.tangent_target(e, d) for e in target.elts], ctx=ast.Store())

    def value_tangent(self, value: ast.expr, z: ast.Name, d: str) -> Tangent | None:
        """The tangent of ``z = value`` (one flattened operation) in direction ``d``."""
        ctx = self.contexts[d]
        if isinstance(value, ast.Name | ast.Constant):
            return self.tangent(value, d)
        if isinstance(value, ast.List | ast.Tuple):
            # a list that becomes active later (appends) needs a list of tangents now
            ts = [self.tangent(e, d) for e in value.elts]
            elts = [t.expr if t is not None else _zero() for t in ts]
            node = (
                ast.List(elts=elts, ctx=ast.Load())
                if isinstance(value, ast.List)
                else B.tuple_(elts)
            )
            return Tangent(node, full=True, container=True)
        if not self.is_active(value, d):
            return None
        if isinstance(value, ast.BinOp):
            rule = rules.rule_for(type(value.op))
            if rule is None:
                self.refuse(
                    f"the operator '{type(value.op).__name__}' has no derivative rule in fmad"
                )
            operands = self.binop_operands(ctx, value)
            return rule(ctx, z, *operands)
        if isinstance(value, ast.UnaryOp):
            rule = rules.rule_for(type(value.op))
            return rule(ctx, z, value.operand, self.tangent(value.operand, d))
        if isinstance(value, ast.Call):
            return self.call_tangent(value, z, d)
        if isinstance(value, ast.Subscript):
            t = self.tangent(value.value, d)
            return rules.index_rule(ctx, z, value.value, value.slice, t)
        if isinstance(value, ast.Attribute):
            rule = rules.ATTRIBUTE_RULES.get(value.attr)
            if rule is None:
                self.refuse(
                    f"reading the attribute '.{value.attr}' of a value that carries a "
                    "derivative is not supported by fmad"
                )
            return rule(ctx, z, value.value, self.tangent(value.value, d))
        if isinstance(value, ast.Dict | ast.Set):
            self.refuse(
                "dicts and sets holding values that carry a derivative are not "
                "supported by fmad; use a list or separate variables"
            )
        self.refuse(f"'{ast.unparse(value)}' cannot be differentiated by fmad")
        return None

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
            return target.rule(ctx, z, args, tangents, keywords)
        if target.kind == "zero":
            return None
        if target.kind == "method":
            receiver = call.func.value
            rule = rules.METHOD_RULES.get(target.name)
            if rule is None:
                if not self.is_active(receiver, d):
                    self.unknown_call(target, call)
                self.refuse(
                    f"the method '.{target.name}()' has no derivative rule in fmad; "
                    "use the numpy function, or move it out of the differentiated "
                    "function"
                )
            return rule(ctx, z, receiver, self.tangent(receiver, d), args, tangents, keywords)
        self.unknown_call(target, call)
        return None

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

    # -- statements with calls ---------------------------------------------------------------
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
                            ast.List(elts=[_zero()], ctx=ast.Load()),
                            ast.Mult(),
                            B.call(B.name("len"), a),
                        )
                        targs.append(zeros)
                    else:
                        targs.append(_zero())
                tname = self.tname(receiver, d.name)
                out.append(ast.Expr(value=B.call(B.attr(tname, func.attr), *targs)))
        return out

    # -- loops -----------------------------------------------------------------------------
    def for_(self, s: ast.For) -> list[ast.stmt]:
        active_dirs = [d for d in self.directions if self.is_active(s.iter, d.name)]
        targets = B.stored_names(s.target)
        prologue: list[ast.stmt] = []
        for d in self.directions:
            if d in active_dirs:
                continue
            for n in targets:
                if n in self.active[d.name]:
                    prologue.append(self.set_tangent(n, d.name, None))
        target, it = s.target, s.iter
        if active_dirs:
            index = self.namer.fresh("i")
            is_call = isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
            if is_call and it.func.id == "reversed":
                self.refuse(
                    "iterating with reversed() over values that carry a derivative is "
                    "not supported by fmad; loop over an index range instead",
                    s,
                )
            if is_call and it.func.id == "enumerate":
                if (
                    not (isinstance(target, ast.Tuple) and len(target.elts) == 2)
                    or it.keywords
                    or len(it.args) != 1
                ):
                    self.refuse("use 'for i, x in enumerate(xs)' when xs carries a derivative", s)
                index_node = target.elts[0]
                if not isinstance(index_node, ast.Name):
                    self.refuse("the index of enumerate() must be a plain name", s)
                index = index_node.id
                parts = [(target.elts[1], it.args[0])]
            elif is_call and it.func.id == "zip":
                if not (isinstance(target, ast.Tuple) and len(target.elts) == len(it.args)):
                    self.refuse(
                        "unpack zip() into as many names as it has arguments when its "
                        "arguments carry derivatives",
                        s,
                    )
                parts = list(zip(target.elts, it.args, strict=True))
                target = ast.Tuple(elts=[B.store(index), target], ctx=ast.Store())
                it = B.call(B.name("enumerate"), it)
            else:
                parts = [(target, it)]
                target = ast.Tuple(elts=[B.store(index), target], ctx=ast.Store())
                it = B.call(B.name("enumerate"), it)
            for d in active_dirs:
                ctx = self.contexts[d.name]
                bound = {n for part_target, _ in parts for n in B.stored_names(part_target)}
                for n in targets:  # bound from no item (an enumerate index): no derivative
                    if n in self.active[d.name] and n not in bound:
                        prologue.append(self.set_tangent(n, d.name, None))
                for part_target, source in parts:
                    names = [n for n in B.stored_names(part_target) if n in self.active[d.name]]
                    if not names:
                        continue
                    t = self.tangent(source, d.name)
                    if t is None:
                        prologue.extend(self.set_tangent(n, d.name, None) for n in names)
                        continue
                    element = B.subscript(ctx.full(t, source), B.name(index))
                    prologue.append(
                        ast.Assign(
                            targets=[self.tangent_target(part_target, d.name)], value=element
                        )
                    )
                    for n in names:
                        self.full_flags[(n, d.name)] = False
        body = prologue + self.block(s.body)
        return [
            ast.For(
                target=target,
                iter=it,
                body=body or [ast.Pass()],
                orelse=self.block(s.orelse),
                type_comment=None,
            )
        ]

    # -- returns ---------------------------------------------------------------------------
    def make_return(self, value: ast.expr | None) -> ast.Return:
        if self.top:
            grads = [self.gradient(value, d) for d in self.directions]
            keys = [ast.Constant(d.name) for d in self.directions]
            result = value if value is not None else ast.Constant(None)
            return ast.Return(value=B.tuple_([result, ast.Dict(keys=keys, values=grads)]))
        tangents: list[ast.expr] = []
        for d in self.directions:
            t = self.tangent_of_result(value, d.name)
            self.result_full[d.name] = self.result_full[d.name] and t is not None and t.full
            if t is not None:
                self.result_zero.discard(d.name)
            tangents.append(t.expr if t is not None else _zero())
        return ast.Return(value=B.tuple_([value or ast.Constant(None), *tangents]))

    def tangent_of_result(self, value: ast.expr | None, d: str) -> Tangent | None:
        if isinstance(value, ast.Tuple):
            ts = [self.tangent(e, d) for e in value.elts]
            if all(t is None for t in ts):
                return None
            return Tangent(B.tuple_([t.expr if t is not None else _zero() for t in ts]))
        return self.tangent(value, d)

    def gradient(self, value: ast.expr | None, d: Direction) -> ast.expr:
        """The raw tangent of the returned value; the caller shapes it (see fmad.api)."""
        if value is None:
            return ast.Constant(None)
        if isinstance(value, ast.Tuple):
            return B.tuple_([self.gradient(e, d) for e in value.elts])
        t = self.tangent(value, d.name)
        return t.expr if t is not None else _zero()

    # -- nested helpers --------------------------------------------------------------------
    def fill_nested(self, tree: ast.FunctionDef) -> None:
        """Put each nested helper's transformed versions where its placeholder stands."""

        def fill(stmts: list[ast.stmt]) -> list[ast.stmt]:
            out: list[ast.stmt] = []
            for st in stmts:
                if isinstance(st, _Placeholder):
                    out.extend(self.nested_variants.get(id(st.node), []))
                    continue
                if isinstance(st, ast.If | ast.For | ast.While):
                    st.body, st.orelse = fill(st.body), fill(st.orelse)
                out.append(st)
            return out

        tree.body = fill(tree.body)


class _Placeholder(ast.Pass):
    """Where the transformed versions of a nested helper go (right after its def)."""

    def __init__(self, node: ast.FunctionDef) -> None:
        super().__init__()
        self.node = node


__all__ = ["Context", "Direction", "Forward", "Tangent"]
