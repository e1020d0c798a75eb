"""Parameters in containers in the forward pass (a mixin of :class:`fmad.forward.Forward`).

The tangent of a tree parameter (a dict, list or tuple of arrays, see :mod:`fmad.pytree`) is
the same container of tangents, seeded on entry (``dparams_dparams = tree_seed(params, k)``).
A name bound to a part of it (``W = params["W1"]``, ``W, b = layers[0]``, ``for W, b in
layers``) gets the same part of the tangent, known to be a container or a leaf from the
structure the variant was compiled for (:func:`fmad.pytree.structures`), so rules treat a
leaf as the array it is and a list part as a list. What fmad does not model on a dict (or on
a name that holds parts of different structures) is refused: iterating it, its methods
(``.items()``), unpacking it, numpy functions of it, putting it in a list; a dict is indexed
with constant keys only.
"""

from __future__ import annotations

import ast

from fmad import build as B
from fmad import pytree
from fmad.tangent import Tangent

DICT_USES = (
    "a dict that carries a derivative may only be indexed with a constant key "
    "(params['W1']), passed to a helper function, or measured with len()"
)


class Trees:
    """The tree part of the forward pass; ``self`` is a ``Forward``."""

    def tree_seeds(self, roots: dict) -> None:
        """Seed each tree parameter's direction with the same container of identity blocks."""
        helper = self.unit.inject(pytree.seed, "tree_seed")
        for d in self.directions:
            if d.name not in roots:
                continue
            name = self.tname(d.name, d.name)
            call = B.call(B.name(helper), B.name(d.name), B.const(d.k))
            self.prelude.append(B.assign(name, call))
            self.seeds[d.name][d.name] = Tangent(B.name(name), full=True, container=True)
            self.known.mark(d.name, d.name, full=True, container=True)

    def tree(self, atom: ast.expr | None):
        """The structure a name holds when it is a part of a tree parameter, else None."""
        if isinstance(atom, ast.Name):
            return self.trees.get(atom.id)
        return None

    def refuse_tree(self, atom: ast.expr, what: str) -> None:
        """Refuse ``what`` (an operation on ``atom``) when ``atom`` is a dict part of a tree
        parameter or a name fmad cannot tell the structure of."""
        node = self.tree(atom)
        if isinstance(node, pytree.Map):
            self.refuse(f"{what} '{atom.id}', a dict that carries a derivative; {DICT_USES}")
        if node is pytree.ANY:
            self.refuse(
                f"{what} '{atom.id}', which holds parts of a container parameter of "
                "different kinds (arrays in one place, lists or dicts in another); fmad "
                "cannot tell which: use separate names"
            )

    def check_tree_operands(self, value: ast.expr, d: str) -> None:
        """Refuse an operation on a dict part of a tree parameter (see refuse_tree)."""
        if isinstance(value, ast.Subscript):
            node = self.tree(value.value)
            if node is pytree.ANY:
                self.refuse_tree(value.value, "indexing")
            if isinstance(node, pytree.Map) and (pytree.key_of(value.slice) is None):
                self.refuse(
                    f"'{ast.unparse(value)}' indexes the dict '{value.value.id}', which "
                    f"carries a derivative, with a key that is not a constant; {DICT_USES}"
                )
            return
        for atom in ast.walk(value):
            if isinstance(atom, ast.Name) and self.is_active(atom, d):
                self.refuse_tree(atom, "this operation uses")

    def tree_subscript(self, value: ast.Subscript, d: str) -> Tangent | None:
        """``z = p[key]`` on a container part: the same part of its tangent (None: not a
        container part, the usual rule applies)."""
        node = self.tree(value.value)
        if not pytree.is_container(node):
            return None
        t = self.tangent(value.value, d)
        if t is None:
            return None
        part = pytree.child(node, value.slice)
        return Tangent(
            B.subscript(t.expr, value.slice), full=False, container=pytree.is_container(part)
        )

    def mark_tree_parts(self, names: list[str], d: str) -> None:
        """Names just bound to parts of a tree's tangent (unpacking, a loop): containers or
        leaves, as the structure says."""
        for n in names:
            node = self.trees.get(n)
            if node is not None:
                self.known.mark(n, d, full=False, container=pytree.is_container(node))
