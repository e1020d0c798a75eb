"""What reverse-mode code calls for unpacking and containers (``fmad_forms`` in the printed
code): see :mod:`fmad.reverse_forms` and :mod:`fmad.reverse_containers`.

The adjoint of a list or tuple of values is an :class:`Adjoints`: a list with one adjoint
per item (zeros where nothing reached the item), added item by item. None of these helpers
changes its arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmad import runtime_reverse as fmad_rev
from fmad.errors import ShapeError, UnboundError


class Zero:
    """The adjoint of an item nothing reached yet (its shape unknown here): adds as
    nothing; :func:`part` turns it into zeros of the item's shape."""

    __slots__ = ()
    __array_ufunc__ = None  # `array + ZERO` is ZERO.__radd__

    def __add__(self, other: Any) -> Any:
        return other

    __radd__ = __add__

    def __repr__(self) -> str:
        return "ZERO"


ZERO = Zero()


class Adjoints(list):
    """The adjoint of a list or tuple: one adjoint per item; ``+`` adds item by item (a
    plain list of adjoints, such as ``fmad_rev.zeros`` of a list, adds the same way)."""

    __array_ufunc__ = None  # `array + Adjoints` is Adjoints.__radd__, never numpy's

    def __add__(self, other: Any) -> Any:
        if other is ZERO:
            return self
        if isinstance(other, Item | Acc):
            return other + self
        if not isinstance(other, list | tuple | np.ndarray) or len(other) != len(self):
            raise fmad_rev.Refused("adding the adjoints of containers of different lengths")
        return Adjoints(a + b for a, b in zip(self, other, strict=True))

    __radd__ = __add__


class Item:
    """The adjoint of ``xs`` in ``xs[k]``: ``value`` at ``index``, nothing elsewhere (added
    to a list's adjoint: an :class:`Acc`, a copy of the list made once, to which the next
    items add in O(1))."""

    __slots__ = ("size", "index", "value")
    __array_ufunc__ = None

    def __init__(self, size: int, index: int, value: Any) -> None:
        self.size, self.index, self.value = size, index, value

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.dense()[i]
        return self.value if range(self.size)[i] == self.index else ZERO

    def dense(self) -> Adjoints:
        out = Adjoints([ZERO] * self.size)
        out[self.index] = self.value
        return out

    def __add__(self, other: Any) -> Any:
        if other is ZERO:
            return self
        if isinstance(other, Acc):
            return other + self
        if isinstance(other, Item):
            other = other.dense()
        if not isinstance(other, list | tuple | np.ndarray) or len(other) != self.size:
            raise fmad_rev.Refused("adding the adjoints of containers of different lengths")
        if isinstance(other, list | tuple):  # copied once; the next items add in O(1)
            return Acc(list(other)).add_item(self.index, self.value)
        out = Adjoints(other)
        out[self.index] = out[self.index] + self.value
        return out

    __radd__ = __add__


class Acc:
    """The adjoint of a list built by adding items one by one (``d = d + Item``, a loop
    reading ``xs[i]``): a persistent array (Baker's version trees). The newest version holds
    the list; each older version holds the one change that leads to its successor, so
    adding an item to the newest version costs O(1), not a copy of the list, and reading an
    older version (still exact) first moves the list back to it."""

    __slots__ = ("data", "diff")
    __array_ufunc__ = None

    def __init__(self, data: list) -> None:
        self.data: list | None = data
        self.diff: tuple | None = None  # (successor, index, this version's item)

    def root(self) -> list:
        """The list of this version (moved here from the newest one)."""
        path = []
        node = self
        while node.data is None:
            path.append(node)
            node = node.diff[0]
        for older in reversed(path):  # node holds the list; older changes one item of it
            newer, index, item = older.diff
            data = newer.data
            newer.diff = (older, index, data[index])
            newer.data = None
            data[index] = item
            older.data, older.diff = data, None
        return self.data

    def add_item(self, index: int, value: Any) -> Acc:
        data = self.root()
        old = data[index]
        data[index] = value if old is ZERO else old + value
        new = Acc(data)
        self.data, self.diff = None, (new, index, old)
        return new

    def dense(self) -> Adjoints:
        return Adjoints(self.root())

    def __len__(self) -> int:
        return len(self.root())

    def __getitem__(self, i: Any) -> Any:
        data = self.root()
        return Adjoints(data[i]) if isinstance(i, slice) else data[i]

    def __iter__(self):
        return iter(list(self.root()))

    def __add__(self, other: Any) -> Any:
        if other is ZERO:
            return self
        if isinstance(other, Item):
            if len(other) != len(self):
                raise fmad_rev.Refused("adding the adjoints of containers of different lengths")
            return self.add_item(other.index, other.value)
        return self.dense() + other

    __radd__ = __add__

    def __repr__(self) -> str:
        return f"Acc({self.root()!r})"


def part(g: Any, i: int, x: Any) -> Any:
    """Item ``i`` of the container adjoint ``g``, in the shape of ``x`` (the item)."""
    gi = g[i]
    if gi is ZERO:
        return zeros(x)
    return gi


def unpack(value: Any, n: int, where: str) -> None:
    """Python's check of ``p, q, ... = value`` (``n`` names, at ``where``: ``file:line``)
    for the values reverse mode unpacks by index: a list, a tuple or an array of ``n``
    items. A wrong length is Python's ``ValueError`` (a :class:`~fmad.errors.ShapeError`)."""
    if not isinstance(value, list | tuple | np.ndarray) or (
        isinstance(value, np.ndarray) and value.ndim == 0
    ):
        raise fmad_rev.Refused(f"unpacking {fmad_rev.describe(value)}")
    if len(value) != n:
        few = len(value) < n
        raise ShapeError(
            f"{where}: not enough values to unpack (expected {n}, got {len(value)})"
            if few
            else f"{where}: too many values to unpack (expected {n})"
        )


def zeros(x: Any) -> Any:
    """Zeros in the shape of ``x``: an :class:`Adjoints` of zeros for a list or tuple."""
    return Adjoints(fmad_rev.zeros(x)) if isinstance(x, list | tuple) else fmad_rev.zeros(x)


def item_adjoint(g: Any, x: list | tuple, index: Any) -> Any:
    """The adjoint of the list or tuple ``x`` in ``x[index]`` (an integer or a slice)."""
    if isinstance(index, slice):
        positions = range(len(x))[index]
        if not isinstance(g, list | tuple | Item | Acc) or len(g) != len(positions):
            raise fmad_rev.Refused("a slice of a list whose adjoint is not a list")
        out = Adjoints([ZERO] * len(x))
        for i, gi in zip(positions, g, strict=True):
            out[i] = out[i] + gi
        return out
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise fmad_rev.Refused(f"indexing a list or tuple with a {type(index).__name__}")
    return Item(len(x), range(len(x))[index], g)


def sum_adjoint(g: Any, x: Any) -> Any:
    """The adjoint of ``x`` in the builtin ``sum(x)``: ``g`` for each item, summed back to
    the item's shape (a list or tuple), or repeated along the first axis (an array)."""
    if isinstance(x, list | tuple):
        return Adjoints(fmad_rev.unbroadcast(g, item) for item in x)
    if isinstance(x, np.ndarray) and x.ndim > 0:
        out = np.empty(x.shape, dtype=np.result_type(g, float))
        out[...] = g
        return out
    raise fmad_rev.Refused(f"the builtin sum() of a {type(x).__name__}")


def items_adjoint(g: Any, x: Any) -> Any:
    """The adjoint of the list or tuple ``x`` in ``np.array(x)``: one item of ``g`` per
    item of ``x``, in its shape (``g`` itself when ``x`` is an array)."""
    if not isinstance(x, list | tuple):
        return g
    if len(x) != len(g):
        raise fmad_rev.Refused("np.array of a ragged list")
    out = Adjoints()
    for item, gi in zip(x, g, strict=True):
        if isinstance(item, list | tuple):
            out.append(items_adjoint(gi, item))
        else:
            out.append(np.reshape(gi, np.shape(item)) if np.ndim(item) else gi[()])
    return out


def real_adjoint(g: Any, x: Any) -> Any:
    """The adjoint of ``x`` in ``x.real`` (a real ``x``: reverse mode is for real code)."""
    if np.iscomplexobj(x):
        raise fmad_rev.Refused("'.real' of a complex value")
    return g


def imag_adjoint(g: Any, x: Any) -> Any:
    """The adjoint of ``x`` in ``x.imag``: zeros for a real ``x``."""
    if np.iscomplexobj(x):
        raise fmad_rev.Refused("'.imag' of a complex value")
    return fmad_rev.zeros(x)


def appended(items: list, value: Any, position: int) -> list:
    """``items.append(value)`` (``position`` is ``len(items)`` before it, which the adjoint
    reads: the adjoint of ``value`` is item ``position`` of the list's adjoint); returns
    ``items``, the same list."""
    items.append(value)
    return items


class DictAdjoints(dict):
    """The adjoint of a dict (a parameter): one adjoint per key reached; ``+`` merges."""

    __array_ufunc__ = None

    def __add__(self, other: Any) -> Any:
        if other is ZERO or (type(other) is float and other == 0.0):  # fmad_rev.zeros(dict)
            return self
        if not isinstance(other, dict):
            raise fmad_rev.Refused("adding the adjoint of a dict to something else")
        out = DictAdjoints(self)
        for key, value in other.items():
            out[key] = out[key] + value if key in out else value
        return out

    __radd__ = __add__


def index_any(g: Any, x: Any, index: Any) -> Any:
    """The adjoint of ``x`` in ``x[index]`` where ``x`` may be a parameter's list, tuple or
    dict (or an item of one), or an array."""
    if isinstance(x, dict):
        return DictAdjoints({index: g})
    if isinstance(x, list | tuple):
        return item_adjoint(g, x, index)
    return fmad_rev.index_adjoint(g, x, index)


def is_tree(value: Any) -> bool:
    """A list, tuple or dict whose leaves are real numbers or real arrays (a parameter
    reverse mode gives a gradient of the same structure)."""
    if isinstance(value, dict):
        return all(is_tree(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(is_tree(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def structured(g: Any, value: Any, leaf: Any) -> Any:
    """The gradient ``g`` of the parameter ``value`` (a list, tuple or dict) in its
    structure, each leaf made by ``leaf(g, value)``; None when ``g`` does not fit it."""
    if isinstance(value, dict):
        if g is ZERO or (type(g) is float and g == 0.0):  # fmad_rev.zeros of a dict
            g = {}
        if not isinstance(g, dict) or set(g) - set(value):
            return None
        out = {}
        for key, item in value.items():
            part_g = structured_item(g.get(key, ZERO), item, leaf)
            if part_g is None:
                return None
            out[key] = part_g
        return out
    if g is ZERO:
        g = [ZERO] * len(value)
    if isinstance(g, Item | Acc):
        g = g.dense()
    if not isinstance(g, list | tuple) or len(g) != len(value):
        return None
    items = [structured_item(gi, item, leaf) for gi, item in zip(g, value, strict=True)]
    if any(i is None for i in items):
        return None
    return type(value)(items) if type(value) in (list, tuple) else items


def structured_item(g: Any, item: Any, leaf: Any) -> Any:
    if isinstance(item, list | tuple | dict):
        return structured(g, item, leaf)
    return leaf(zeros(item) if g is ZERO else g, item)


def sequence(strict: bool, where: str, *sequences: Any) -> None:
    """Before a loop that reverse mode runs by index (``range(len(xs))``, ``range(min(...))``
    for ``zip``): each of ``sequences`` is a list, a tuple or an array of at least one
    dimension, and, for ``zip(..., strict=True)``, they have one length (Python's
    ``ValueError`` at ``where``, ``file:line``, otherwise)."""
    for items in sequences:
        if not (isinstance(items, list | tuple) or (isinstance(items, np.ndarray) and items.ndim)):
            raise fmad_rev.Refused(f"a loop over {fmad_rev.describe(items)} with a derivative")
    lengths = [len(items) for items in sequences]
    if strict and len(set(lengths)) > 1:
        first = lengths[0]
        i = next(i for i, n in enumerate(lengths) if n != first)
        how = "shorter" if lengths[i] < first else "longer"
        what = "argument 1" if i == 1 else f"arguments 1-{i}"
        raise ShapeError(f"{where}: zip() argument {i + 1} is {how} than {what}")


def split_adjoint(g: Any, pieces: list, x: Any, axis: Any) -> Any:
    """The adjoint of ``x`` in ``pieces = np.split(x, ...)`` (and its kin) from the list
    adjoint ``g`` of the pieces: each piece's adjoint (zeros where it has none) joined back
    along the split's axis (``"h"``: ``np.hsplit``'s, the second axis, the first of 1-D)."""
    if axis == "h":
        axis = 1 if np.ndim(x) > 1 else 0
    parts = [part(g, i, piece) for i, piece in enumerate(pieces)]
    out = np.concatenate(
        [np.broadcast_to(p, np.shape(q)) for p, q in zip(parts, pieces, strict=True)], axis=axis
    )
    return out.reshape(np.shape(x))


class Unbound:
    """What reverse mode's renamed name holds where the original's name is not bound yet
    (before a loop that first binds it, in the branch of an ``if`` that does not): only
    copied (a carried value, a branch's merge) until :func:`bound` checks a read of it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNBOUND"


UNBOUND = Unbound()


def bound(value: Any, name: str, where: str) -> None:
    """Python's check of a read of the local ``name`` (at ``where``: ``file:line``), whose
    renamed value is ``value``: ``UnboundLocalError`` (an :class:`~fmad.errors.UnboundError`)
    where the original has not bound it."""
    if value is UNBOUND:
        raise UnboundError(
            f"{where}: cannot access local variable '{name}' where it is not associated with "
            "a value"
        )
