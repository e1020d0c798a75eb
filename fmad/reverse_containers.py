"""Lists and tuples of values with a derivative in reverse mode: their transposes.

A name is a *container* (:func:`containers`) when the primal binds it to a display
``[a, b]`` or ``(a, b)`` (after flattening: of names and numbers), or copies one. Its
adjoint is a :class:`fmad.runtime_forms.Adjoints`, one adjoint per item. The transposes
(registered in the table of :mod:`fmad.adjoints`):

- the display ``t = (a, b, c)``: the adjoint of ``a`` gets ``dt[0]`` and so on;
- ``t[i]`` (an integer, or a slice) of a container: ``fmad_forms.item_adjoint(g, t, i)``,
  zeros but for item ``i``;
- the builtin ``sum(t)`` (and ``sum(t, start)``): ``g`` for each item, summed back to its
  shape (``sum`` of an array: ``g`` repeated along its first axis);
- ``np.array(t)``/``np.asarray(t)``: the items of ``g``, in the shapes of ``t``'s items;
- ``x.real`` of a real ``x`` passes ``g`` on (``x.imag`` of a real ``x`` is 0).

A ``wrt`` parameter may be a list, a tuple or a dict of arrays (:func:`parameter_parts`):
an item read of it, of a copy or of an item of it takes its adjoint through
``fmad_forms.index_any``, which looks at the value when the code runs.

Any other operation on a container with a derivative (``t + (w,)``, ``np.sum(t)``, ``t * 2``)
is refused (:func:`check_operands`): its transpose would treat the container as an array.
"""

from __future__ import annotations

import ast
import builtins

import numpy as np

from fmad import adjoints, rules
from fmad import build as B
from fmad import runtime_forms as fmad_forms
from fmad import runtime_linalg as la
from fmad.adjoints import index_value
from fmad.rules.base import attribute
from fmad.rules.decompositions import RESULT_FIELDS

# what may read a container with a derivative (the rest is refused)
READERS = {
    ast.Tuple,
    ast.List,
    ast.Subscript,
    builtins.sum,
    np.array,
    np.asarray,
    fmad_forms.appended,
    # joins: their transposes (fmad.adjoints_arrays) give a list one adjoint per item
    np.concatenate,
    np.stack,
    np.hstack,
    np.vstack,
    np.dstack,
    np.column_stack,
    # and these, whose transposes give a list operand a list of adjoints too
    builtins.max,
    builtins.min,
    np.polyval,
    # the named fields of np.linalg's results (fmad.adjoints_linalg)
    *(attribute(name) for name in RESULT_FIELDS),
}


def parameter_parts(primal: list[ast.stmt], wrt: tuple[str, ...], function_of=None) -> set[str]:
    """The ``wrt`` parameters (a list, tuple or dict of arrays, or an array: known when
    called), the results of ``np.gradient`` (a list for several axes, an array for one),
    their copies and their items (``W = params[0]``, ``W, b = params``): their items'
    adjoints are made by ``fmad_forms.index_any``, which looks at the value."""
    found = set(wrt)
    for s in B.statements(primal):
        if (
            function_of is not None
            and isinstance(s, ast.Assign)
            and isinstance(s.targets[0], ast.Name)
            and isinstance(s.value, ast.Call)
            and function_of(s.value) is np.gradient
        ):
            found.add(s.targets[0].id)
    size = -1
    while size != len(found):
        size = len(found)
        for s in B.statements(primal):
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
                value = s.value
                if isinstance(value, ast.Subscript):
                    value = value.value
                if isinstance(value, ast.Name) and value.id in found:
                    found.add(s.targets[0].id)
    return found


# functions returning a list of arrays (their items' adjoints join back: split_adjoint)
SPLITS = {np.split: None, np.array_split: None, np.hsplit: "h", np.vsplit: 0, np.dsplit: 2}


# functions returning a tuple of arrays (fmad.adjoints_linalg): function -> None, or the
# (position, keyword, constant values) of the option that makes it return one array
SEVERAL = {
    np.linalg.slogdet: None,
    np.linalg.eigh: None,
    np.linalg.lstsq: None,
    np.linalg.qr: (1, "mode", ("r",)),
    np.linalg.svd: (2, "compute_uv", (False,)),
    la.eigh_tangent: (5, "vectors", (False,)),
    la.qr_tangent: (4, "mode", ("r",)),
    la.svd_tangent: None,
    la.lstsq_tangent: None,
}


def returns_several(function, call: ast.Call) -> bool:
    """Whether ``call`` (of ``function``) returns a tuple of arrays: unless an argument
    written as a constant says it returns one array (``mode='r'``, ``compute_uv=False``)."""
    if function not in SEVERAL:
        return False
    option = SEVERAL[function]
    if option is None:
        return True
    position, keyword, single = option
    node = call.args[position] if len(call.args) > position else None
    for k in call.keywords:
        if k.arg == keyword:
            node = k.value
    return not (isinstance(node, ast.Constant) and node.value in single)


def containers(primal: list[ast.stmt], function_of=None) -> set[str]:
    """The names bound to a list or tuple display, or to a copy of one (see above), or to
    the list a split returns or the tuple of ``np.linalg.eigh``, ``svd``... (``function_of(call)``:
    the function a call calls)."""
    found: set[str] = set()
    if function_of is not None:
        for s in B.statements(primal):
            if (
                isinstance(s, ast.Assign)
                and isinstance(s.targets[0], ast.Name)
                and isinstance(s.value, ast.Call)
                and rules.hashable(function_of(s.value))
                and (
                    function_of(s.value) in SPLITS or returns_several(function_of(s.value), s.value)
                )
            ):
                found.add(s.targets[0].id)
    size = -1
    while size != len(found):  # a loop's copies can come before the display they copy
        size = len(found)
        for s in B.statements(primal):
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
                value = s.value
                if (
                    isinstance(value, ast.Tuple | ast.List)
                    or (isinstance(value, ast.Name) and value.id in found)
                    or getattr(s, "fmad_appended", False)
                ):
                    found.add(s.targets[0].id)
    return found


def check_operands(ctx, key, s: ast.Assign, args: list, active: list) -> None:
    """Refuse an operation on a container with a derivative that has no transpose here."""
    if rules.hashable(key) and key in READERS:
        return
    for a, is_active in zip(args, active, strict=False):
        if is_active and isinstance(a, ast.Name) and a.id in ctx.containers:
            ctx.refuse_at(
                s,
                f"'{ast.unparse(s.value)}' on the list or tuple '{a.id}' of values with a "
                "derivative (reverse mode reads items, sum() and np.array() of one)",
            )


def forms(ctx, attr: str) -> ast.expr:
    return ctx.forms_(attr)


def display_adjoint(ctx, g, z, args, keywords, active):
    if any(isinstance(a, ast.Starred) for a in args):
        ctx.refuse("a display with '*'")
    return [
        (i, B.call(forms(ctx, "part"), g, B.const(i), args[i]))
        for i in range(len(args))
        if active[i]
    ]


def _subscript(previous):
    def subscript_adjoint(ctx, g, z, args, keywords, active):
        x = args[0]
        helper = "item_adjoint"
        if isinstance(x, ast.Name) and x.id in ctx.parameter_parts:
            helper = "index_any"  # a parameter may be a list, a tuple or a dict of arrays
        elif not (isinstance(x, ast.Name) and x.id in ctx.containers):
            return previous(ctx, g, z, args, keywords, active)
        if active[1]:
            ctx.refuse("an index computed from a differentiated value")
        return [(0, B.call(forms(ctx, helper), g, x, index_value(args[1])))]

    return subscript_adjoint


def _sum(previous):
    def builtin_sum_adjoint(ctx, g, z, args, keywords, active):
        x = args[0] if args else None
        if previous is not None and not (isinstance(x, ast.Name) and x.id in ctx.containers):
            return previous(ctx, g, z, args, keywords, active)
        return sum_adjoint(ctx, g, z, args, keywords, active)

    return builtin_sum_adjoint


def sum_adjoint(ctx, g, z, args, keywords, active):
    if keywords or len(args) not in (1, 2):
        ctx.refuse("sum() with keyword arguments")
    out = []
    if active[0]:
        out.append((0, B.call(forms(ctx, "sum_adjoint"), g, args[0])))
    if len(args) > 1 and active[1]:
        out.append((1, B.call(ctx.rev("unbroadcast"), g, args[1])))
    return out


def _items(previous):
    def items_adjoint(ctx, g, z, args, keywords, active):
        x = args[0]
        if not (isinstance(x, ast.Name) and x.id in ctx.containers | ctx.parameter_parts):
            return previous(ctx, g, z, args, keywords, active)
        if len(args) != 1 or keywords:
            if x.id in ctx.containers:
                ctx.refuse("np.array() of a list with options")
            return previous(ctx, g, z, args, keywords, active)
        return [(0, B.call(forms(ctx, "items_adjoint"), g, x))]

    return items_adjoint


def real_adjoint(ctx, g, z, args, keywords, active):
    return [(0, B.call(forms(ctx, "real_adjoint"), g, args[0]))]


def imag_adjoint(ctx, g, z, args, keywords, active):
    return [(0, B.call(forms(ctx, "imag_adjoint"), g, args[0]))]


def appended_adjoint(ctx, g, z, args, keywords, active):
    """``xs_1 = fmad_forms.appended(xs, v, k)``: the list's adjoint passes on whole (its
    items past ``k`` are read by no one before), ``v``'s is its item ``k``."""
    out = [(0, g)] if active[0] else []
    if active[1]:
        out.append((1, B.call(forms(ctx, "part"), g, args[2], args[1])))
    return out


def _split(axis):
    def split_adjoint(ctx, g, z, args, keywords, active):
        if not active[0] or any(active[1:]):
            ctx.refuse("a split whose sections carry a derivative")
        extra = set(keywords) - ({"axis"} if axis is None else set())
        if extra or (axis is not None and len(args) > 2) or len(args) > 3:
            ctx.refuse("this split with other arguments")
        where = args[2] if len(args) > 2 else keywords.get("axis", B.const(0))
        if axis is not None:
            where = B.const(axis)
        return [(0, B.call(forms(ctx, "split_adjoint"), g, B.name(z), args[0], where))]

    return split_adjoint


def register() -> None:
    table = adjoints.ADJOINTS
    for function, axis in SPLITS.items():
        table[function] = _split(axis)
    table[ast.Tuple] = table[ast.List] = display_adjoint
    table[ast.Subscript] = _subscript(table[ast.Subscript])
    table[builtins.sum] = _sum(table.get(builtins.sum))
    for key in (np.array, np.asarray):
        table[key] = _items(table[key])
    table[fmad_forms.appended] = appended_adjoint
    table.setdefault(attribute("real"), real_adjoint)
    table.setdefault(attribute("imag"), imag_adjoint)


register()
