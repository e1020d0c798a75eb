"""Reverse mode: the flattened primal forward, then the adjoint statements in reverse order.

A sibling of the forward emitter (:mod:`fmad.forward`), sharing the passes before it
(source, fence, flatten, naming, activity) and after it (compile, printing with ``# line N:``
comments). After this pass, for a straight-line function with one scalar output:

- the primal statements run first, as flattened, so the value is the original's bit for bit;
  a name assigned twice gets a fresh name at its second assignment (``h`` then ``h_1``), so
  every value the adjoint statements read is still there when they run (no tape);
- then ``dloss_dloss = fmad_rev.seed(loss)`` (1.0, or an error for an output that is not a
  real scalar), and for each assignment ``z = f(x, y)``, last first, whose ``z`` has an
  adjoint, one statement per active operand from the transpose table
  (:mod:`fmad.adjoints`): the first contribution to ``dloss_dx`` assigns it, later ones add
  (``dloss_dx = dloss_dx + ...``, never in place: an adjoint may be a primal array);
- the unit returns ``(value, *gradients)`` in ``wrt`` order, each gradient in its
  parameter's shape (zeros for a parameter the output does not depend on).

Everything else is refused with a :class:`~fmad.errors.ReverseModeError` at the user's line
that says to use ``mode='forward'``: the control flow :mod:`fmad.reverse_branches` and
:mod:`fmad.reverse_loops` do not handle (after :mod:`fmad.reverse_jumps` made ``break``,
``continue`` and early returns flags and guards), helper calls that neither
:mod:`fmad.reverse_calls` (a forward and an adjoint function per helper) nor
:mod:`fmad.reverse_inline` (and for nested functions :mod:`fmad.reverse_nested`) handle,
in-place changes other than
the forms of :mod:`fmad.reverse_forms` (``x += e``, appends), operations on lists and
tuples other than those of :mod:`fmad.reverse_containers`, and operations without a
transpose rule.
"""

from __future__ import annotations

import ast
import copy
import types

from fmad import adjoints, adjoints_helpers, adjoints_linalg, composites, effects, rules  # noqa: F401
from fmad import build as B
from fmad import runtime_reverse as fmad_rev
from fmad.activity import Activity, classify
from fmad.adjoints_rows import finite_masks, finite_only
from fmad.composites import Composites
from fmad.errors import ReverseModeError
from fmad.naming import names_in
from fmad.reverse_branches import ReverseBranches
from fmad.reverse_calls import Calls, Fallback, backward_call, gradients, rewrite_calls
from fmad.reverse_containers import check_operands, containers, parameter_parts
from fmad.reverse_forms import ReverseForms, appends_to
from fmad.reverse_inline import inline_helpers
from fmad.reverse_jumps import without_jumps
from fmad.reverse_loops import ReverseLoops
from fmad.reverse_nested import inline_nested
from fmad.reverse_rename import ReverseRename
from fmad.reverse_select import select_masks, selected_only
from fmad.rules.base import attribute, method
from fmad.transform import Unit, prepare

ADVICE = "use mode='forward' (or mode='auto', which falls back to it)"
# statement kinds with their refusal (the rest of a flat function's grammar)
STATEMENTS = {
    ast.FunctionDef: "a nested 'def'",
    ast.Raise: "'raise'",
    ast.Break: "'break'",
    ast.Continue: "'continue'",
}


class Reverse(ReverseRename, ReverseBranches, ReverseLoops, ReverseForms):
    """Builds the reverse-mode unit of ``fn`` with respect to the parameters ``wrt``."""

    def __init__(
        self, fn: types.FunctionType, wrt: tuple[str, ...], calls=None, output=None
    ) -> None:
        # calls: shared with the helpers' passes (fmad.reverse_calls); output: set for a
        # helper's pass, whose adjoint function receives the adjoint of its result (dout)
        self.calls = calls if calls is not None else Calls()
        self.dout: str | None = None
        src, scope, namer, flat = prepare(fn)
        self.filename = src.filename
        self.scope = scope
        self.namer = namer
        self.flat = flat
        self.wrt = wrt
        self.unit = Unit(src.function, src.filename, namer, scope, flat=flat)
        self.unit.injected.update(scope.injected)
        self.nested = B.nested_functions(flat)
        params = B.parameters(flat.args)
        for w in wrt:
            if w not in params:
                self.refuse_at(flat, f"differentiating with respect to '{w}', not a parameter")
        self.params = params
        self.adjoint: dict[str, str] = {}  # primal name -> its adjoint's name
        self.output = output or "out"
        self.helper = output is not None
        self.user_names = names_in(src.tree)  # an output named by flatten is called 'out'

    # -- helpers the rules use ---------------------------------------------------------------
    def refuse_at(self, node: ast.AST, what: str):
        raise ReverseModeError(
            self.filename,
            getattr(node, "lineno", None),
            f"{what}: reverse mode does not support this yet; {ADVICE}",
        )

    def np_(self, *attrs: str) -> ast.expr:
        return B.attr(self.unit.module("numpy"), *attrs) if attrs else self.unit.module("numpy")

    def module(self, which: str) -> ast.expr:
        return self.unit.module(which)

    def inject(self, obj, hint: str) -> ast.expr:
        return B.name(self.unit.inject(obj, hint))

    def rev(self, attr: str) -> ast.expr:
        return B.attr(B.name(self.unit.inject(fmad_rev, "fmad_rev")), attr)

    # -- the passes ------------------------------------------------------------------------
    def function(self) -> Unit:
        tree, primal, backward, ret = self.parts()
        loops = any(isinstance(t, ast.For | ast.While) for t in B.statements(primal))
        if isinstance(ret.value, ast.Name) and loops:
            # the adjoints of a loop restore its names from the tape: keep the value first
            kept = self.namer.fresh("result")
            backward.insert(0, ast.copy_location(B.assign(kept, ret.value), ret))
            ret.value = B.name(kept)
        out = ast.Return(value=B.tuple_([ret.value, *gradients(self)]))
        ast.copy_location(out, ret)
        tree.body = primal + backward + [out]
        tree.name = self.namer.fresh(f"{self.flat.name}_rev")
        tree.decorator_list = []
        tree.returns = None
        ast.fix_missing_locations(tree)
        self.unit.tree = tree
        self.unit.tangents = frozenset(self.adjoint.values())
        return self.unit

    def parts(self):
        """The primal tree, its statements, the adjoint statements and the final return."""
        body = without_jumps(self.flat.body, self.namer.fresh, self.refuse_at)
        returns = [t for t in B.statements(self.flat.body) if isinstance(t, ast.Return)]
        if returns and returns != [self.flat.body[-1]]:  # `result = v` for each return
            for t in B.statements(body[2:-1]):  # (after `returned = False; result = None`)
                if isinstance(t, ast.Assign) and B.names(t.targets[0]) == B.names(body[-1]):
                    t.fmad_return = True
        if not body or not isinstance(body[-1], ast.Return):
            self.refuse_at(body[-1] if body else self.flat, "a function without a final 'return'")
        inlined = inline_helpers(self, inline_nested(self, body[:-1]), prepare)
        checked = self.forms([self.check(s) for s in inlined])
        primal = self.rename(checked, B.names(body[-1], ast.Load))
        # lists and tuples (fmad.reverse_containers), and the lists splits return
        self.containers = containers(primal, self.function_of)
        self.parameter_parts = parameter_parts(primal, self.wrt, self.function_of)
        ret = B.clone(body[-1])
        ret.value = self.renamed(ret.value)
        primal.extend(self.read_checks(ret.value, ret))
        if not isinstance(ret.value, ast.Name | ast.Constant) and B.names(ret.value):
            self.refuse_at(ret, "returning several values (reverse mode needs one scalar output)")
        tree = copy.copy(self.flat)
        tree.body = primal
        self.primal = tree  # the primal the adjoints read (helpers inlined, names renamed)
        self.unit.primal = tree  # (its names are the user's: fmad.trace)
        active = Activity(tree, self.scope).active(set(self.wrt))
        self.active = active
        self.finite = finite_masks([*primal, ret], self.function_of, active)  # np.nan_to_num
        self.selected = select_masks(self, [*primal, ret], active)  # np.where's branches
        value = ret.value
        if not self.helper and isinstance(value, ast.Name) and value.id in active:
            self.output = value.id if value.id in self.user_names else "out"
        # known composites (fmad.composites) read the helper calls before they are rewritten
        if composites.ENABLED:
            snapshot = copy.copy(tree)
            snapshot.body = [copy.copy(s) for s in primal]
            self.composites = Composites(snapshot, self.function_of, True, top_only=True)
        rewrite_calls(self, primal)  # helper calls: their forward functions
        return tree, primal, self.backward(primal, ret), ret

    def check(self, s: ast.stmt) -> ast.stmt:
        """``s`` if reverse mode handles its kind, else the refusal."""
        for kind, what in STATEMENTS.items():
            if isinstance(s, kind):
                self.refuse_at(s, what)
        if isinstance(s, ast.Return):
            self.refuse_at(s, "a 'return' before the end of the function")
        if isinstance(s, ast.Assign):
            if not isinstance(s.targets[0], ast.Name | ast.Tuple | ast.List):
                self.refuse_at(s, "assigning to an item or an attribute")
            self.check_calls(s.value, s)
            return s
        if isinstance(s, ast.Expr):
            call = s.value
            if isinstance(call, ast.Constant):
                return s
            if isinstance(call, ast.Call) and effects.effect_free(self.scope.lookup(call.func)):
                return s
            if appends_to(s, self.scope) is not None:  # xs.append(v): fmad.reverse_forms
                return s
            self.refuse_at(s, "a call whose result is dropped (it may change a value in place)")
        if isinstance(s, ast.Assert | ast.Pass):
            return s
        if isinstance(s, ast.If):
            for inner in [*s.body, *s.orelse]:
                self.check(inner)
            return s
        if isinstance(s, ast.For | ast.While):
            self.check_for(s)
            return s
        self.refuse_at(s, f"the statement '{ast.unparse(s).splitlines()[0]}'")

    def check_calls(self, value: ast.expr, s: ast.stmt) -> None:
        why = refused_call(value, self.scope, self.nested)
        if why is not None:
            self.refuse_at(s, why)

    # -- the adjoint statements ------------------------------------------------------------
    def backward(self, primal: list[ast.stmt], ret: ast.Return) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        value = ret.value
        if self.helper:  # a helper's adjoint function: its result's adjoint is passed in
            self.dout = self.namer.fresh(f"d{self.output}_d{self.unit.function.__name__}")
            if isinstance(value, ast.Name) and value.id in self.active:
                self.adjoint[value.id] = self.dout
            self.backward_block(primal, out)
            return out
        if isinstance(value, ast.Name) and value.id in self.active:
            seed = self.namer.fresh(f"d{self.output}_d{value.id}", limit=80)
            self.adjoint[value.id] = seed
            out.append(B.assign(seed, B.call(self.rev("seed"), value)))
        else:
            out.append(ast.Expr(B.call(self.rev("seed"), value)))
        ast.copy_location(out[-1], ret)
        self.backward_block(primal, out)
        return out

    def backward_block(self, stmts: list[ast.stmt], out: list[ast.stmt]) -> None:
        for s in reversed(stmts):
            before = len(out)
            if getattr(s, "fmad_pair", None) is not None:  # z, saved = helper_fwd(...)
                backward_call(self, s, out)
            elif isinstance(s, ast.If):
                self.backward_if(s, out)
            elif isinstance(s, ast.For | ast.While):
                self.backward_for(s, out)
            elif isinstance(s, ast.Assign) and s.targets[0].id in self.adjoint:
                self.transpose(s, out)
            for new in out[before:]:
                ast.copy_location(new, s)

    def transpose(self, s: ast.Assign, out: list[ast.stmt]) -> None:
        z = s.targets[0].id
        g = B.name(self.adjoint[z])
        value = s.value
        if z not in self.active:  # a value with no derivative (a comparison, np.floor...)
            return None
        if isinstance(value, ast.Name):
            if value.id in self.active:
                self.contribute(value.id, g, out)
            return None
        if isinstance(value, ast.Constant):  # one branch binds a number: no operand
            return None
        if self.composite(value, g, out):  # log(sigmoid(z)) and friends: fmad.composites
            return None
        key, args, keywords = self.operation(value, s)
        active = [isinstance(a, ast.Name) and a.id in self.active for a in args]
        if isinstance(value, ast.Subscript):
            active[1] = any(n in self.active for n in B.names(args[1]))
        rule = adjoints.adjoint_for(key)
        # a rule that takes keywords with a derivative (np.average's weights=) gives their
        # adjoints under the keyword's name
        by_keyword = getattr(rule, "keyword_adjoints", False)
        kw_active = any(n in self.active for k in keywords.values() for n in B.names(k))
        if kw_active and not by_keyword:
            self.refuse_at(s, f"'{ast.unparse(value)}' with a differentiated keyword argument")
        check_operands(self, key, s, args, active)
        if not (any(active) or kw_active):  # something fed it: refuse, never drop it
            self.refuse_at(s, f"'{ast.unparse(value)}' on a differentiated value")
        if rule is None:
            self.refuse_at(s, f"'{ast.unparse(value)}' (no transpose rule yet)")
        self.node = s
        out += self.selected.statements(z)  # masks of np.where's branches (reverse_select)
        for i, expr in rule(self, g, z, args, keywords, active):
            if z in self.finite:
                expr = finite_only(self, expr, z, self.finite[z])
            if z in self.selected.wrapped or z in self.selected.checked:
                expr = selected_only(self, expr, z)
            self.contribute((keywords[i] if isinstance(i, str) else args[i]).id, expr, out)
        return None

    def composite(self, value: ast.expr, g: ast.expr, out: list[ast.stmt]) -> bool:
        """The adjoint of a known composite's value, straight to the name it is a function
        of (``dout_dz = dout_dS * (y - p)``), when :mod:`fmad.composites` knows one."""
        if not composites.ENABLED or not isinstance(value, ast.BinOp | ast.Call):
            return False
        if getattr(self, "composites", None) is None:
            self.composites = Composites(self.primal, self.function_of, True, top_only=True)
        short = self.composites.partial(value, lambda n: n not in self.active)
        if short is None or short.base not in self.active:
            return False
        self.contribute(short.base, composites.adjoint(short, g), out)
        return True

    def operation(self, value: ast.expr, s: ast.stmt):
        """The rule key, operands and keywords of the operation ``value``."""
        if isinstance(value, ast.BinOp):
            return type(value.op), [value.left, value.right], {}
        if isinstance(value, ast.UnaryOp):
            return type(value.op), [value.operand], {}
        if isinstance(value, ast.Subscript):
            return ast.Subscript, [value.value, value.slice], {}
        if isinstance(value, ast.Attribute):
            return attribute(value.attr), [value.value], {}
        if isinstance(value, ast.List | ast.Tuple) and not any(
            isinstance(e, ast.Starred) for e in value.elts
        ):  # a list display: its items' adjoints (fmad.adjoints_arrays)
            return type(value), list(value.elts), {}
        if isinstance(value, ast.Call):
            keywords = {k.arg: k.value for k in value.keywords}
            target = classify(value, self.scope, self.nested)
            if target.kind == "method":
                return method(target.name), [value.func.value, *value.args], keywords
            if any(isinstance(a, ast.Starred) for a in value.args):
                self.refuse_at(s, "a call with *args")
            return target.obj, list(value.args), keywords
        return self.refuse_at(s, f"'{ast.unparse(value)}' on a differentiated value")

    def function_of(self, call: ast.Call):
        """The function object a call calls (None for a method or an unknown name)."""
        return classify(call, self.scope, self.nested).obj

    def refuse(self, what: str):
        """What a transpose rule calls (``ctx.refuse``): refused at the current line."""
        self.refuse_at(self.node, what)

    def contribute(self, name: str, expr: ast.expr, out: list[ast.stmt]) -> None:
        """The first contribution to ``name``'s adjoint assigns it, later ones add."""
        existing = self.adjoint.get(name)
        if existing is None:
            self.adjoint[name] = self.namer.fresh(f"d{self.output}_d{name}", limit=80)
            out.append(B.assign(self.adjoint[name], expr))
        else:
            out.append(B.assign(existing, B.binop(B.name(existing), ast.Add(), expr)))


def refused_call(value: ast.expr, scope, nested) -> str | None:
    """Why reverse mode refuses the call ``value`` (None: it lets it through). Every call it
    lets through leaves its arguments as they were: the adjoint statements read the primal
    values after the whole primal has run."""
    if not isinstance(value, ast.Call) or getattr(value, "fmad_helper", None) is not None:
        return None  # a helper kept as a call: its own pass checks it (fmad.reverse_calls)
    if any(k.arg is None or k.arg == "out" for k in value.keywords):
        return "a call with 'out=' or '**kwargs'"
    target = classify(value, scope, nested)
    if target.kind == "method":
        name = target.name
        if effects.mutating_method(name) or not (
            name in rules.METHOD_RULES or name in rules.ZERO_METHODS
        ):
            return f"the method call '.{name}()'"
        return None
    if target.kind in ("rule", "zero"):
        mutates = rules.hashable(target.obj) and target.obj in effects.MUTATING_FUNCTIONS
        if mutates or effects.out_arguments(target.obj, value, None):
            return "a call that writes into an argument"
        return None
    what = "a call to the helper" if target.kind in ("user", "nested") else "a call to"
    return f"{what} '{target.name}'"


def reverse_unit(fn: types.FunctionType, wrt: tuple[str, ...], everything=False) -> Unit:
    """The reverse-mode unit of ``fn`` (see the module's docstring); each helper it calls
    gets a forward and an adjoint function (:mod:`fmad.reverse_calls`) where that serves,
    else (or with ``everything``) is inlined. ``unit.helpers``: the helpers' units."""
    inline: set = set()
    while True:
        calls = Calls(inline, everything)
        try:
            unit = Reverse(fn, wrt, calls).function()
        except Fallback as fallback:  # this helper's function form cannot serve: inline it
            if fallback.helper in inline:
                everything = True
            inline.add(fallback.helper)
            continue
        unit.helpers = calls.units
        return unit
