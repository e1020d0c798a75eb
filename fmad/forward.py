"""Forward mode: after each primal statement, its tangent statements.

After this pass, every assignment to a name ``z`` that is active with respect to a direction
``w`` is followed by ``dz_dw = <chain rule>``; loops, branches and early returns keep their
meaning because each tangent sits right after the statement it belongs to. Terms known to be
zero are never emitted. ``return v`` becomes ``return v, {"w": dv_dw, ...}``; a helper
function called with active arguments is transformed too and called as
``v, dv_dw = helper_fwd(x, dx_dw=...)``.

:class:`Forward` walks the statements (one method per statement kind): assignments and
returns are in :mod:`fmad.statements`, the tangent of one operation comes from
:mod:`fmad.operations` and the rule table, loops from :mod:`fmad.loops`, helper calls from
:mod:`fmad.calls`. What is known about each
variable's tangent lives in :class:`fmad.known.Known`; the tangent algebra and layout in
:mod:`fmad.tangent`. Helper variants come from the driver through the small
:class:`fmad.calls.Callees` protocol: this module never imports the driver.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field
from typing import Any, NoReturn

from fmad import build as B
from fmad import pytree
from fmad.activity import Activity, may_be_lists, rebound_defs
from fmad.build import lexical_bound
from fmad.calls import Callees, HelperCalls, signature_of
from fmad.errors import unsupported
from fmad.known import Known
from fmad.loops import Loops
from fmad.naming import MAX_NAME_LENGTH, Namer
from fmad.operations import Operations
from fmad.resolve import Scope
from fmad.statements import Statements
from fmad.tangent import Context, Direction, Tangent, zero
from fmad.trees import Trees


@dataclass
class CalleeInfo:
    """A transformed helper: how to call it and what it returns."""

    name: str
    inputs: dict[tuple[str, str], str]  # (parameter, direction) -> keyword of its tangent
    directions: tuple[str, ...]  # directions whose tangents it returns, in order
    result_full: dict[str, bool] = field(default_factory=dict)
    result_zero: frozenset[str] = frozenset()  # directions whose returned tangent is always 0
    # directions whose returned tangent may be a list of tangents (the helper returns a list)
    result_container: frozenset[str] = frozenset()


class Forward(Statements, HelperCalls, Operations, Loops, Trees):
    def __init__(
        self,
        callees: Callees,
        unit: Any,
        flat: ast.FunctionDef,
        scope: Scope,
        directions: list[Direction],
        *,
        seeds: dict[str, dict[str, Tangent]],
        seed_points: set[str] = frozenset(),
        top: bool = True,
        numbers: frozenset[str] = frozenset(),
        inputs: tuple[tuple[str, str, bool], ...] = (),
        lexical: tuple[Forward, dict[str, Any]] | None = None,
        bundle: tuple[str, ...] = (),
        trees: dict[str, Any] | None = None,
    ) -> None:
        """``seeds[d][name]``: the tangent ``name`` starts with for direction ``d``.

        ``seed_points``: local names whose assignment seeds their own direction
        (differentiating with respect to an intermediate value). ``numbers``: parameters
        known to be numbers in this variant (scalar ``wrt`` parameters), never lists.
        ``inputs`` (a helper): ``(parameter, direction, full)`` for each tangent passed in
        as a keyword argument. ``lexical`` (a nested helper): its owner and outer bindings
        (see :meth:`HelperCalls.inherit`). ``bundle``: the scalar parameters that travel
        together as the columns of the one direction (see :meth:`bundle_seeds`). ``trees``:
        the structure of each parameter that is a container (see :mod:`fmad.trees`).
        """
        self.session = callees
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
        self.contexts = {d.name: Context(self, d) for d in directions}
        self.known = Known(self.namer, self.stable, self.binds)
        self.prelude: list[ast.stmt] = []  # seed assignments made on entry
        self.assign_counts = self.count_assignments()
        # the parts of container parameters each name may hold (fmad.pytree.structures)
        roots = dict(trees or {})
        roots.update({p: rest[0] for p, _, _, *rest in inputs if rest and rest[0] is not None})
        self.trees = pytree.structures(flat, roots) if roots else {}
        lists = {n for n, t in self.trees.items() if isinstance(t, pytree.Seq)}
        self.maybe_lists = may_be_lists(flat, (self.params - numbers) | lists)
        self.result_full: dict[str, bool] = {d.name: True for d in directions}
        self.result_zero: set[str] = {d.name for d in directions}
        self.result_container: set[str] = set()
        self.node: ast.AST | None = None
        self.nested_variants: dict[int, list[ast.stmt]] = {}  # id(def) -> its variants
        # primal factors of the statement being differentiated, computed once for every
        # direction: ``pow_1_partial = 2.0 * r`` (the local partial derivative)
        self.target = "t"
        self.partials: dict[tuple, str] = {}
        self.pending: list[ast.stmt] = []
        self.partial_names: set[str] = set()
        if lexical is not None:
            self.inherit(*lexical)
        self.inputs: dict[tuple[str, str], str] = {}
        for pname, dname, full, *_ in inputs:
            kw = self.tname(pname, dname)
            self.inputs[(pname, dname)] = kw
            container = pytree.is_container(self.trees.get(pname))
            seeds[dname][pname] = Tangent(B.name(kw), full=full, container=container)
        if bundle:
            self.bundle_seeds(bundle)
        if trees:
            self.tree_seeds(trees)
        points = set() if bundle else set(seed_points)
        self.active = {
            d.name: self.activity.active(set(seeds[d.name]) | ({d.name} & points))
            for d in directions
        }

    def bundle_seeds(self, params: tuple[str, ...]) -> None:
        """Seed the one direction whose column ``i`` is scalar parameter ``i``."""
        (d,) = self.directions
        rows = self.namer.fresh(f"{d.name}_seeds")  # row i: the direction of parameter i
        self.partial_names.add(rows)  # derivative code: dropped when no row is read
        eye = B.call(B.attr(self.unit.module("numpy"), "eye"), B.const(len(params)))
        self.prelude.append(B.assign(rows, eye))
        for i, p in enumerate(params):
            name = self.tname(p, d.name)
            self.prelude.append(B.assign(name, B.subscript(B.name(rows), B.const(i))))
            self.seeds[d.name][p] = Tangent(B.name(name), full=True, row=i)

    # what the tangent algebra asks of the emitter (fmad.tangent.Emitter)
    def module(self, which: str) -> ast.expr:
        return self.unit.module(which)

    def inject(self, obj: Any, hint: str) -> str:
        return self.unit.inject(obj, hint)

    def is_partial(self, name: str) -> bool:
        return name in self.partial_names

    # -- helpers ---------------------------------------------------------------------------
    def refuse(self, message: str, node: ast.AST | None = None) -> NoReturn:
        raise unsupported(self.filename, node or self.node, message)

    def partial(self, coef: ast.expr) -> ast.expr:
        """A compound primal factor, named once per statement and shared by all directions."""
        if (
            isinstance(coef, ast.Name)
            or B.constant_value(coef) is not None
            or isinstance(coef, ast.Compare | ast.BoolOp)
        ):
            return coef
        key = B.structure(coef)
        if key not in self.partials:
            name = self.namer.fresh(f"{self.target}_partial", limit=MAX_NAME_LENGTH + 8)
            self.partials[key] = name
            self.partial_names.add(name)
            self.pending.append(B.assign(name, coef))
        return B.name(self.partials[key])

    def binds(self, name: str) -> bool:
        """A name this function binds: a parameter, an assignment or a partial."""
        return name in self.partial_names or self.assign_counts.get(name, 0) >= 1

    def stable(self, name: str) -> bool:
        """Assigned at most once (so a later read sees the value an earlier rule saw)."""
        return self.assign_counts.get(self.known.owners.get(name, name), 0) <= 1

    def tangent_names(self) -> set[str]:
        """Every name this pass created for derivative code (for the optimizer)."""
        return self.known.tangent_names() | self.partial_names

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
        loops = [n for n in B.walk(self.flat) if isinstance(n, ast.For)]
        # a loop target is bound many times: it counts once more
        bindings = B.names(self.flat, ast.Store) + [n for s in loops for n in B.names(s.target)]
        for name in bindings:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def tname(self, var: str, d: str) -> str:
        return self.known.name(var, d)

    def is_active(self, node: ast.expr, d: str) -> bool:
        return self.activity.expr_active(node, self.active[d])

    def tangent(self, atom: ast.expr | None, d: str) -> Tangent | None:
        """The tangent of an operand (a name or a constant), or None when it is zero."""
        if atom is None or not isinstance(atom, ast.Name) or atom.id not in self.active[d]:
            return None
        seed = self.seeds[d].get(atom.id)
        if seed is not None and not self.reassigned(atom.id):
            if seed.seed:  # the identity lives in a variable; rules may fold it away
                return Tangent(B.name(self.tname(atom.id, d)), full=True, seed=True)
            return seed
        return self.known.read(atom.id, d)

    def single(self, var: str, d: str) -> bool:
        """Assigned once, and not seeded: what its tangent is set to holds everywhere."""
        return self.assign_counts.get(var, 0) <= 1 and var not in self.seeds[d]

    def set_tangent(self, var: str, d: str, t: Tangent | None) -> ast.stmt:
        self.known.record(var, d, t, self.single(var, d))
        return B.assign(self.tname(var, d), t.expr if t is not None else self.zero(var, d))

    def zero(self, var: str, d: str) -> ast.expr:
        """The zero tangent of ``var``. A variable assigned more than once in a vectorized
        direction gets ``np.zeros(k)``: its other assignments' rules may count on the
        trailing direction axis (a scalar ``0.0`` would lack it), while a once-assigned zero
        is skipped by every rule and stays ``0.0``."""
        direction = self.contexts[d].direction
        if not direction.vectorized or self.single(var, d):
            return zero()
        return B.call(self.contexts[d].np_("zeros"), B.const(direction.k))

    # -- the function ----------------------------------------------------------------------
    def function(self) -> ast.FunctionDef:
        out = copy.copy(self.flat)  # a new body below; arguments copied, the rest shared
        out.args = B.clone(self.flat.args)
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
                    self.known.mark(name, d.name, full=seed.full)
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
        if isinstance(s, ast.If | ast.While):  # the tests compute booleans: no tangent
            body = self.block(s.body) or [ast.Pass()]
            return [type(s)(test=s.test, body=body, orelse=self.block(s.orelse))]
        if isinstance(s, ast.For):
            return self.for_(s)
        if isinstance(s, ast.FunctionDef):
            return [s, _Placeholder(s)]
        return [s]

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

    def add_nested_variant(self, node: ast.FunctionDef, variant: ast.FunctionDef) -> None:
        """A transformed version of the nested ``def node``, placed right after it."""
        self.nested_variants.setdefault(id(node), []).append(variant)


class _Placeholder(ast.Pass):
    """Where the transformed versions of a nested helper go (right after its def)."""

    def __init__(self, node: ast.FunctionDef) -> None:
        super().__init__()
        self.node = node


__all__ = ["CalleeInfo", "Context", "Direction", "Forward", "Tangent"]
