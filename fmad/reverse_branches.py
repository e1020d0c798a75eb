"""``if`` statements in reverse mode: a part of :class:`fmad.reverse.Reverse`.

After this pass each ``if`` of the primal records the branch that ran (``branch = True`` at
the top of the ``if`` branch, ``False`` at the top of the other), and a name both branches
bind gets one merged name after it (``z_2 = z_1`` in one, ``z_2 = z`` in the other). The
adjoints of the ``if`` run in the branch its flag names; an adjoint one branch starts (of
a name bound before the ``if``) is zeros in the other, so it exists whichever branch ran.
A name bound in one branch only may not be read after the ``if`` (refused).
"""

from __future__ import annotations

import ast
import copy

from fmad import build as B
from fmad import runtime_forms as fmad_forms


class ReverseBranches:
    """Needs the host's ``namer``, ``current``, ``branch_local``, ``renamed``,
    ``rename_block``, ``adjoint``, ``backward_block`` and ``rev``."""

    def rename_if(self, s: ast.If, bound: set[str]) -> ast.If:
        s.test = self.renamed(s.test)
        flag = self.namer.fresh("branch")
        before = dict(self.current)
        bound_then, bound_else = set(bound), set(bound)
        s.body = self.rename_block(s.body, bound_then)
        after_then, self.current = self.current, dict(before)
        s.orelse = self.rename_block(s.orelse, bound_else)
        after_else, self.current = self.current, dict(before)
        for name in sorted((bound_then | bound_else) - bound):
            self.current.pop(name, None)
        for name in sorted(set(after_then) | set(after_else)):
            then_name, else_name = after_then.get(name), after_else.get(name)
            if then_name == else_name:
                if name in bound_then and name in bound_else and name not in bound:
                    self.current[name] = then_name  # first bound in both, the same name
                    bound.add(name)
                continue
            both = name in bound_then and name in bound_else  # bound whichever branch ran
            if both or name in getattr(s, "fmad_later", ()):  # else UNBOUND where it did not
                merged = self.namer.fresh(name)
                unbound = self.inject(fmad_forms.UNBOUND, "UNBOUND")
                then_value = B.name(then_name) if name in bound_then else unbound
                else_value = B.name(else_name) if name in bound_else else copy.copy(unbound)
                s.body.append(ast.copy_location(B.assign(merged, then_value), s))
                s.orelse.append(ast.copy_location(B.assign(merged, else_value), s))
                if not both or then_name in self.maybe or else_name in self.maybe:
                    self.maybe[merged] = name
                self.current[name] = merged
                bound.add(name)
            else:
                self.branch_local.add(name)
        s.body.insert(0, ast.copy_location(B.assign(flag, B.const(True)), s))
        s.orelse.insert(0, ast.copy_location(B.assign(flag, B.const(False)), s))
        return s

    def backward_if(self, s: ast.If, out: list[ast.stmt]) -> None:
        """The adjoints of the branch that ran (its flag says which). An adjoint the branches
        start (of a name bound before the ``if``) exists after it whichever ran: zeros where
        the other branch gave it nothing."""
        before = dict(self.adjoint)
        then_out: list[ast.stmt] = []
        self.backward_block(s.body, then_out)
        after_then, self.adjoint = self.adjoint, dict(before)
        else_out: list[ast.stmt] = []
        self.backward_block(s.orelse, else_out)
        after_else, self.adjoint = self.adjoint, dict(before)
        inside = {
            n
            for t in B.statements([*s.body, *s.orelse])
            if isinstance(t, ast.Assign)
            for n in B.names(t.targets[0])  # z, saved = helper_fwd(...): both
        }
        for name in sorted((set(after_then) | set(after_else)) - set(before) - inside):
            then_name, else_name = after_then.get(name), after_else.get(name)
            final = then_name or else_name
            zeros = B.call(self.rev("zeros"), B.name(name))
            if then_name is None:
                then_out.append(B.assign(final, zeros))
            elif else_name is None:
                else_out.append(B.assign(final, zeros))
            elif then_name != else_name:
                else_out.append(B.assign(final, B.name(else_name)))
            self.adjoint[name] = final
        if then_out or else_out:
            flag = s.body[0].targets[0].id
            out.append(ast.If(test=B.name(flag), body=then_out or [ast.Pass()], orelse=else_out))
