"""``for`` and ``while`` loops in reverse mode, with a tape: a part of
:class:`fmad.reverse.Reverse`.

A ``for`` loop over something with no derivative (``range(n)``, a data array), or a
``while`` loop (its test has no derivative); the body may hold branches and loops
(``break``, ``continue``, ``return`` and ``else`` were made flags and guards by
:mod:`fmad.reverse_jumps`). After this pass:

- the primal: each variable the body reassigns (anywhere in it) and that was bound before
  the loop is *carried* in a name of its own (``acc_1 = acc`` before the loop; the body
  reads ``acc_1`` and ends with ``acc_1 = acc_3``), so the values bound before the loop
  stay as they were for the adjoints of the code before it. At the end of each iteration
  the body pushes onto ``tape`` (a plain list) the values of *this iteration* that its
  adjoint statements read before they assign them, and nothing else (a tuple per
  iteration; ``()`` when they read none): a branch's flag, a nested loop's own tape list,
  the operands the rules multiply by. A value bound in one branch only is set to ``None``
  at the top of the body, so the push never reads an unbound name (the adjoint reads it
  only where its branch ran). A loop a ``break`` may end then runs ``if broke: break``;
- the adjoints: ``while tape:`` pops one iteration's values, last first, and runs the
  body's adjoint statements. A carried value's adjoint passes from one iteration to the
  one before it (zeros when the body does not read it); the adjoints of values bound before
  the loop start at zeros before it and add up over the iterations.

Refused (with ``mode='forward'`` as the way out): an iterable that carries a derivative and
reading after the loop a name first bound inside it.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad import runtime_forms as fmad_forms


class ReverseLoops:
    """Needs the host's ``namer``, ``current``, ``renamed``, ``rename_block``, ``adjoint``,
    ``contribute``, ``backward_block``, ``rev``, ``active`` and ``refuse_at``."""

    def check_for(self, s: ast.For | ast.While) -> None:
        if s.orelse:  # fmad.reverse_jumps moved it after the loop
            self.refuse_at(s, "a loop with an 'else'")
        allowed = ast.Name | ast.Tuple | ast.List | ast.expr_context
        if isinstance(s, ast.For) and not all(isinstance(n, allowed) for n in ast.walk(s.target)):
            self.refuse_at(s, "a 'for' target that is not names")
        for inner in s.body:
            self.check(inner)

    def rename_for(self, s: ast.For | ast.While, bound: set[str]) -> list[ast.stmt]:
        """The statements before the loop, then the loop (see the module docstring)."""
        if isinstance(s, ast.For):
            s.iter = self.renamed(s.iter)
            targets = B.names(s.target)
        else:
            targets = []
        assigned = stored(s.body)
        carried = [n for n in dict.fromkeys(assigned) if n in bound and n not in targets]
        first = {n for n in [*assigned, *targets] if n not in bound}
        # first bound here and read after the loop or by a later iteration: carried from
        # fmad_forms.UNBOUND (Python's UnboundLocalError where a read finds it)
        later = getattr(s, "fmad_later", set()) | exposed(s.body, frozenset(targets))
        outs = [n for n in dict.fromkeys([*targets, *assigned]) if n in first and n in later]
        # a target bound before the loop and read after it: its last item, or the value
        # before the loop where no iteration ran
        carried += [n for n in targets if n in bound and n in later and n not in carried]
        pre: list[ast.stmt] = []
        loopvars = {}
        for n in carried:
            loopvars[n] = self.namer.fresh(n)
            pre.append(ast.copy_location(B.assign(loopvars[n], B.name(self.current[n])), s))
            if self.current[n] in self.maybe:
                self.maybe[loopvars[n]] = n
        for n in outs:
            loopvars[n] = self.namer.fresh(n)
            unbound = self.inject(fmad_forms.UNBOUND, "UNBOUND")
            pre.append(ast.copy_location(B.assign(loopvars[n], unbound), s))
            self.maybe[loopvars[n]] = n
        for n in targets:  # a target bound before gets a name of its own
            self.current[n] = self.namer.fresh(n) if n in bound else n
            self.branch_local.discard(n)
        if isinstance(s, ast.For):
            for node in ast.walk(s.target):
                if isinstance(node, ast.Name):
                    node.id = self.current[node.id]
        self.current.update({n: v for n, v in loopvars.items() if n not in targets})
        if isinstance(s, ast.While):  # evaluated at the top of each iteration
            s.test = self.renamed(s.test)
        checks = self.read_checks(s.test if isinstance(s, ast.While) else s.iter, s)
        inner_bound = set(bound) | set(targets) | set(outs)
        body = self.rename_block(s.body, inner_bound)
        carried += outs
        s.fmad_final = {loopvars[n]: self.current[n] for n in carried}
        for n in carried:
            body.append(ast.copy_location(B.assign(loopvars[n], B.name(self.current[n])), s))
            self.current[n] = loopvars[n]
        s.fmad_copybacks = len(carried)
        stop = getattr(s, "fmad_stop", None)
        if stop is not None:  # a break (fmad.reverse_jumps), after the copies and the push
            stop = ast.If(test=self.renamed(stop), body=[ast.Break()], orelse=[])
            body.append(ast.copy_location(stop, s))
            s.fmad_copybacks += 1
        s.body = body
        s.fmad_tape = self.namer.fresh("tape")
        pre.append(ast.copy_location(B.assign(s.fmad_tape, ast.List(elts=[], ctx=ast.Load())), s))
        for n in first - set(outs):  # bound by the loop: not read after it
            self.current.pop(n, None)
            self.branch_local.add(n)
            self.loop_local.add(n)
        bound |= set(outs)
        return [*pre, *checks, s]

    def read_checks(self, node: ast.AST | None, at: ast.stmt) -> list[ast.stmt]:
        """Before a statement whose part ``node`` reads a name that may hold
        ``fmad_forms.UNBOUND``: ``fmad_forms.bound(t_1, 't', 'file:line')`` (once per block)."""
        out = []
        for n in dict.fromkeys(B.names(node, ast.Load) if node is not None else []):
            if n in self.maybe and n not in self.checked:
                self.checked.add(n)
                where = B.const(f"{self.filename}:{at.lineno}")
                call = B.call(self.forms_("bound"), B.name(n), B.const(self.maybe[n]), where)
                out.append(ast.copy_location(ast.Expr(call), at))
        return out

    def backward_for(self, s: ast.For, out: list[ast.stmt]) -> None:
        # carried name -> its value at the end of the body (those with a derivative)
        loopvars = {v: f for v, f in s.fmad_final.items() if v in self.active}
        if not any(v in self.adjoint for v in loopvars):
            return  # nothing the loop computed reaches the output
        if isinstance(s, ast.For) and any(n in self.active for n in B.names(s.iter)):
            self.refuse_at(s, "a 'for' loop over a value that carries a derivative")
        body = s.body[: len(s.body) - s.fmad_copybacks]
        inside = set(stored(body))
        if isinstance(s, ast.For):
            inside |= set(B.names(s.target))
        outer = sorted(
            n
            for t in body
            for n in B.names(t, ast.Load)
            if n in self.active
            and n not in inside
            and n not in self.adjoint
            and n not in s.fmad_final
        )
        for n in outer:  # adjoints of values bound before the loop add up over iterations
            self.adjoint[n] = self.namer.fresh(f"d{self.output}_d{n}", limit=80)
            out.append(B.assign(self.adjoint[n], B.call(self.rev("zeros"), B.name(n))))
        for v in loopvars:
            if v not in self.adjoint:
                self.adjoint[v] = self.namer.fresh(f"d{self.output}_d{v}", limit=80)
                out.append(B.assign(self.adjoint[v], B.call(self.rev("zeros"), B.name(v))))
        carried = {v: self.adjoint.pop(v) for v in loopvars}
        inner: list[ast.stmt] = []
        for v, final in loopvars.items():  # the copy-back acc_1 = acc_3, transposed
            if final in self.active:
                self.contribute(final, B.name(carried[v]), inner)
        self.backward_block(body, inner)
        for v, name in carried.items():
            new = self.adjoint.get(v)
            if new is None:
                inner.append(B.assign(name, B.call(self.rev("zeros"), B.name(v))))
            elif new != name:
                inner.append(B.assign(name, B.name(new)))
            self.adjoint[v] = name
        for n in inside:
            self.adjoint.pop(n, None)
        # the tape: exactly the values of one iteration the adjoint statements read
        saved = sorted(exposed(inner) & (inside | set(s.fmad_final)))
        # a value bound in one branch (or a nested loop) only is None where it did not run
        # (the adjoint reads it only where it did): the push never reads an unbound name
        always = definite(body)
        unset = [n for n in saved if n in inside and n not in always]
        if isinstance(s, ast.For):
            unset = [n for n in unset if n not in B.names(s.target)]
        for n in reversed(unset):
            s.body.insert(0, ast.copy_location(B.assign(n, B.const(None)), s))
        tape = B.name(s.fmad_tape)
        values = B.tuple_([B.name(n) for n in saved])
        push = ast.Expr(B.call(B.attr(tape, "append"), values))
        s.body.insert(len(body) + len(unset), ast.copy_location(push, s))
        pop = B.call(B.attr(B.name(s.fmad_tape), "pop"))
        unpack = ast.Assign(
            targets=[ast.Tuple(elts=[B.store(n) for n in saved], ctx=ast.Store())], value=pop
        )
        if not saved:
            unpack = ast.Expr(pop)
        out.append(ast.While(test=tape, body=[unpack, *inner], orelse=[]))


def stored(body: list[ast.stmt]) -> list[str]:
    """The names ``body`` assigns, nested blocks included (loop targets too), in order."""
    found = []
    for t in B.statements(body):
        if isinstance(t, ast.Assign):
            found.extend(B.names(t.targets[0]))
        elif isinstance(t, ast.For):
            found.extend(B.names(t.target))
    return list(dict.fromkeys(found))


def definite(body: list[ast.stmt]) -> set[str]:
    """The names ``body`` assigns whichever way its branches go (not in nested loops)."""
    found: set[str] = set()
    for t in body:
        if isinstance(t, ast.Assign):
            found |= set(B.names(t.targets[0]))
        elif isinstance(t, ast.If):
            found |= definite(t.body) & definite(t.orelse)
    return found


def exposed(stmts: list[ast.stmt], defined: frozenset[str] = frozenset()) -> set[str]:
    """The names ``stmts`` read before they assign them: what one iteration of an adjoint
    loop needs from the tape (a nested loop's adjoint pops its own values)."""
    need: set[str] = set()
    done = set(defined)
    for s in stmts:
        if isinstance(s, ast.Assign):
            need |= set(B.names(s.value, ast.Load)) - done
            done |= set(B.names(s.targets[0], ast.Store))
        elif isinstance(s, ast.If):
            need |= set(B.names(s.test, ast.Load)) - done
            need |= exposed(s.body, frozenset(done)) | exposed(s.orelse, frozenset(done))
            done |= definite(s.body) & definite(s.orelse)
        elif isinstance(s, ast.While):
            need |= set(B.names(s.test, ast.Load)) - done
            need |= exposed(s.body, frozenset(done))
        elif isinstance(s, ast.For):
            need |= set(B.names(s.iter, ast.Load)) - done
            need |= exposed(s.body, frozenset(done | set(B.names(s.target))))
        else:
            need |= set(B.names(s, ast.Load)) - done
    return need


def later_reads(body: list[ast.stmt], later: set[str]) -> set[str]:
    """The names ``body`` may read before it binds them, when what runs after it reads
    ``later``; each loop and ``if`` in it gets ``fmad_later``: the names that may be read
    after it before they are bound again (by the rest of its block, after the block, or by
    a later iteration of a loop around it)."""
    live = set(later)
    for s in reversed(body):
        if isinstance(s, ast.If):
            s.fmad_later = set(live)
            live = later_reads(s.body, live) | later_reads(s.orelse, live) | reads(s.test)
        elif isinstance(s, ast.For | ast.While):
            s.fmad_later = set(live)
            head = reads(s.iter if isinstance(s, ast.For) else s.test)
            targets = set(B.names(s.target)) if isinstance(s, ast.For) else set()
            top = live | (head if isinstance(s, ast.While) else set())  # an iteration's start
            while True:
                new = top | (later_reads(s.body, top) - targets)
                if new == top:
                    break
                top = new
            live = top | head
        elif isinstance(s, ast.Assign):
            live = (live - set(B.names(s.targets[0], ast.Store))) | reads(s.value)
        else:
            live = live | reads(s)
    return live


def reads(node: ast.AST) -> set[str]:
    return set(B.names(node, ast.Load))
