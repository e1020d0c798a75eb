"""Parameters in containers (JAX calls them pytrees): their structure, seeds and gradients.

A ``wrt`` argument that is a dict, list or tuple holding arrays or dicts (nested to any
depth, its leaves numbers or numeric arrays) is a *tree*. Its structure (:func:`structure`:
the kinds, the dict keys, the leaf shapes) is part of the variant's spec. All its leaves
travel as one vectorized direction of ``k`` columns (``k`` the number of leaf elements):
leaf ``i`` is seeded with its block of rows of the identity, laid out as the leaf's shape
``+ (k,)`` (:func:`seed`, called by the generated code), so the tangent of the parameter is
the same container of tangents. The gradient handed to the user has the same structure
again (:func:`gradient`). Dict keys are visited in sorted order (strings before numbers),
so the leaves have one deterministic order (:func:`leaves`).

A list or tuple of plain numbers (evenly nested) is not a tree: it stays what it was, an
array parameter (see ``fmad.api``).

At transform time (:func:`structures`) the emitter follows which local names hold a part of
a tree parameter (``W = params["W1"]``, ``W, b = layers[0]``, ``for W, b in layers``), so
that each part's tangent is known to be a container or a leaf.
"""

from __future__ import annotations

import ast
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmad import build as B

NUMERIC_KINDS = frozenset("biufc")


@dataclass(frozen=True)
class Leaf:
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Seq:
    kind: type  # list or tuple
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Map:
    keys: tuple[Any, ...]  # in sorted order (see dict_keys)
    items: tuple[Any, ...]


class _Any:
    """A name bound to parts of different structures: fmad cannot tell what it holds."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
# the part a constant index names where the container has none: the user's line raises
# (KeyError, IndexError) before any derivative code runs, so it binds nothing
NOWHERE = _Any()
Node = Leaf | Seq | Map


class NotATree(Exception):
    """The argument is a container fmad cannot take as a tree (the message says why)."""


def is_container(node: Any) -> bool:
    return isinstance(node, Seq | Map) or node is ANY


def dict_keys(d: dict) -> list:
    """A dict's keys in the one order fmad visits them: sorted, strings before numbers."""
    for key in d:
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise NotATree(
                f"a dict with the key {key!r}; the dicts fmad differentiates with respect "
                "to have string or integer keys"
            )
    return sorted(d, key=lambda key: (not isinstance(key, str), key))


def is_tree(value: Any) -> bool:
    """A dict, or a list or tuple that holds a dict, an array or a nested container of
    uneven lengths: not the evenly nested list of numbers fmad takes as an array."""
    if isinstance(value, dict):
        return True
    if not isinstance(value, list | tuple):
        return False
    if any(isinstance(v, dict | np.ndarray) or is_tree(v) for v in value):
        return True
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged
        return True
    return array.dtype == object


def structure(value: Any) -> Node:
    """The structure of a tree argument; NotATree for a leaf or container fmad does not
    take (a set, an object, a string, an empty container...)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in NUMERIC_KINDS:
            raise NotATree(f"an array of dtype {value.dtype}")
        return Leaf(value.shape)
    if isinstance(value, numbers.Number | np.bool_):
        return Leaf(())
    if isinstance(value, dict):
        keys = dict_keys(value)
        node: Node = Map(tuple(keys), tuple(structure(value[key]) for key in keys))
    elif type(value) in (list, tuple):
        node = Seq(type(value), tuple(structure(v) for v in value))
    else:
        raise NotATree(f"an object of type '{type(value).__name__}'")
    if not node.items:
        raise NotATree(f"an empty {type(value).__name__}")
    return node


def leaves(node: Node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    return [leaf for item in node.items for leaf in leaves(item)]


def size(node: Node) -> int:
    return sum(math.prod(leaf.shape) for leaf in leaves(node))


def describe(node: Node) -> str:
    if isinstance(node, Leaf):
        return "x".join(map(str, node.shape)) if node.shape else "number"
    if isinstance(node, Map):
        pairs = zip(node.keys, node.items, strict=True)
        inner = ", ".join(f"{k!r}: {describe(v)}" for k, v in pairs)
        return "{" + inner + "}"
    inner = ", ".join(describe(v) for v in node.items)
    return f"[{inner}]" if node.kind is list else f"({inner}{',' if len(node.items) == 1 else ''})"


# -- run time ------------------------------------------------------------------------------
def seed(value: Any, k: int) -> Any:
    """The tangent of the tree ``value`` with respect to itself: the same container, leaf
    ``i`` holding its rows of the ``k x k`` identity, shaped ``shape(leaf) + (k,)``."""
    eye = np.eye(k)
    offset = 0

    def walk(v: Any) -> Any:
        nonlocal offset
        if isinstance(v, dict):
            return {key: walk(v[key]) for key in dict_keys(v)}
        if type(v) in (list, tuple):
            return type(v)(walk(item) for item in v)
        shape = np.shape(v)
        n = math.prod(shape)
        block = eye[offset : offset + n].reshape(shape + (k,))
        offset += n
        return block

    return walk(value)


def unflatten(node: Node, g: np.ndarray, scalar: bool) -> Any:
    """The gradient ``g`` (shape ``lead + (k,)``) split into the leaves of ``node``, each
    shaped ``lead + shape(leaf)``; ``scalar``: a scalar loss, whose number leaves get
    floats."""
    lead = g.shape[:-1]
    offset = 0

    def build(n: Node) -> Any:
        nonlocal offset
        if isinstance(n, Leaf):
            count = math.prod(n.shape)
            block = g[..., offset : offset + count]
            offset += count
            if scalar and not n.shape:
                return block.item()
            return block.reshape(lead + n.shape).copy()
        parts = [build(item) for item in n.items]
        if isinstance(n, Map):
            return dict(zip(n.keys, parts, strict=True))
        return n.kind(parts)

    return build(node)


def gradient(node: Node, t: Any, value: Any) -> Any:
    """The gradient of ``value`` (raw tangent ``t``, its shape ``shape(value) + (k,)`` or
    one that broadcasts to it) with respect to a tree parameter, in the tree's structure."""
    if isinstance(value, tuple) or (
        isinstance(value, list) and isinstance(t, list) and len(t) == len(value)
    ):  # a tuple of results, or a list the function built: item by item
        return type(value)(gradient(node, ti, vi) for ti, vi in zip(t, value, strict=True))
    k = size(node)
    vshape = np.shape(value)
    scalar = math.prod(vshape) == 1
    g = np.broadcast_to(np.asarray(t, dtype=float) if np.ndim(t) == 0 else t, vshape + (k,))
    g = g.reshape((k,)) if scalar else g
    return unflatten(node, np.asarray(g), scalar)


def step(value: Any, grad: Any, lr: float) -> Any:
    """``value - lr * grad`` leaf by leaf, in ``value``'s structure (``fmad.train``); new
    containers and arrays, nothing changed in place."""
    if isinstance(value, dict):
        return {key: step(v, grad[key], lr) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(step(v, g, lr) for v, g in zip(value, grad, strict=True))
    return value - lr * grad


def flatten(value: Any, lead: tuple[int, ...] = ()) -> np.ndarray:
    """The leaves of a tree (a tree of gradients: each leaf ``lead + shape``) as one float
    array ``lead + (k,)``, in the order of :func:`leaves` (``fmad.Objective.pack``)."""
    parts: list[np.ndarray] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for key in dict_keys(v):
                walk(v[key])
        elif type(v) in (list, tuple):
            for item in v:
                walk(item)
        else:
            parts.append(np.reshape(np.asarray(v, dtype=float), lead + (-1,)))

    walk(value)
    return np.concatenate(parts, axis=-1)


# -- transform time ------------------------------------------------------------------------
def erase(node: Any) -> Any:
    """The structure with the leaf shapes forgotten (what the emitted code depends on)."""
    if isinstance(node, Leaf) or node is ANY:
        return Leaf() if isinstance(node, Leaf) else ANY
    return type(node)(*((node.kind,) if isinstance(node, Seq) else (node.keys,)),
                      tuple(erase(i) for i in node.items))  # fmt: skip


def join(a: Any, b: Any) -> Any:
    """What a name bound to ``a`` in one place and ``b`` in another holds."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, Seq) and isinstance(b, Seq) and a.kind is b.kind:
        if len(a.items) == len(b.items):
            return Seq(a.kind, tuple(join(x, y) for x, y in zip(a.items, b.items, strict=True)))
    if isinstance(a, Map) and isinstance(b, Map) and a.keys == b.keys:
        return Map(a.keys, tuple(join(x, y) for x, y in zip(a.items, b.items, strict=True)))
    return ANY


def item(node: Any) -> Any:
    """Any one item of a list or tuple (an index not known before the code runs)."""
    if not isinstance(node, Seq):
        return ANY
    found = None
    for i in node.items:
        found = join(found, i)
    return found if found is not None else ANY


def key_of(index: ast.expr) -> Any:
    """A constant index or dict key (``'W1'``, ``0``, ``-1``), or None."""
    if isinstance(index, ast.Constant) and isinstance(index.value, str | int):
        return None if isinstance(index.value, bool) else index.value
    value = B.constant_value(index)
    return value if isinstance(value, int) else None


def child(node: Any, index: ast.expr) -> Any:
    """``node[index]``; ANY where it cannot be told (the emitter refuses what it must)."""
    if isinstance(node, Map):
        key = key_of(index)
        return node.items[node.keys.index(key)] if key in node.keys else NOWHERE
    if not isinstance(node, Seq):
        return ANY
    if isinstance(index, ast.Slice):
        bounds = [B.constant_value(b) if b is not None else None for b in
                  (index.lower, index.upper, index.step)]  # fmt: skip
        given = [b for b in (index.lower, index.upper, index.step) if b is not None]
        if all(isinstance(B.constant_value(b), int) for b in given):
            return Seq(node.kind, node.items[slice(*bounds)])
        return ANY
    position = key_of(index)
    if isinstance(position, int):
        if -len(node.items) <= position < len(node.items):
            return node.items[position]
        return NOWHERE
    if isinstance(index, ast.Constant):  # a list indexed by a string: a TypeError
        return NOWHERE
    return item(node)


def structures(flat: ast.FunctionDef, roots: dict[str, Any]) -> dict[str, Any]:
    """The structure each name of the flattened function may hold when it is bound from a
    part of a tree (``roots``: the tree parameters), joined over all its bindings (flow
    insensitive, to a fixed point). A name also bound from anything else is a leaf when
    every tree part it gets is one (an array either way), else ANY."""
    found: dict[str, Any] = {n: erase(t) for n, t in roots.items()}
    other: set[str] = set()  # names bound from something that is not a tree part

    def bind(target: ast.expr, node: Any) -> bool:
        if node is NOWHERE:
            return False
        if isinstance(target, ast.Name):
            if node is None:
                if target.id in other:
                    return False
                other.add(target.id)
                return True
            new = join(found.get(target.id), node)
            if new != found.get(target.id):
                found[target.id] = new
                return True
            return False
        if isinstance(target, ast.Tuple | ast.List):
            if node is None:
                return any([bind(e, None) for e in target.elts])
            parts = unpacked(target, node)
            return any([bind(e, p) for e, p in zip(target.elts, parts, strict=True)])
        if isinstance(target, ast.Starred):
            return bind(target.value, node)
        return False

    def unpacked(target: ast.Tuple | ast.List, node: Any) -> list:
        """The part each element of the target gets (``*rest``: a list of the middle)."""
        n = len(target.elts)
        stars = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Starred)]
        if not isinstance(node, Seq):
            return [ANY] * n
        items = node.items
        if not stars:
            return list(items) if len(items) == n else [ANY] * n
        s = stars[0]
        after = n - 1 - s
        if len(items) < n - 1:
            return [NOWHERE] * n  # the user's line raises (not enough values)
        middle = Seq(list, tuple(items[s : len(items) - after]))
        return [*items[:s], middle, *items[len(items) - after :]]

    def of(value: ast.expr) -> Any:
        if isinstance(value, ast.Name):
            return found.get(value.id)
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
            base = found.get(value.value.id)
            if base is None or isinstance(base, Leaf):
                return None  # not a part of a tree, or an element of a leaf array
            return child(base, value.slice)
        return None

    def iterated(s: ast.For) -> list[tuple[ast.expr, Any]]:
        it, target = s.iter, s.target
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name):
            if it.func.id == "enumerate" and len(it.args) == 1 and isinstance(target, ast.Tuple):
                if len(target.elts) == 2:
                    inner = of(it.args[0])
                    return [(target.elts[0], None), (target.elts[1], item_of(inner))]
            if it.func.id == "zip" and isinstance(target, ast.Tuple):
                if len(target.elts) == len(it.args):
                    return [(t, item_of(of(a))) for t, a in zip(target.elts, it.args, strict=True)]
        return [(target, item_of(of(it)))]

    def item_of(node: Any) -> Any:
        return None if node is None else item(node)

    statements = list(B.statements(flat.body))
    changed = True
    while changed:
        changed = False
        for s in statements:
            if isinstance(s, ast.Assign):
                for target in s.targets:
                    changed |= bind(target, of(s.value))
            elif isinstance(s, ast.For):
                for target, node in iterated(s):
                    changed |= bind(target, node)
    for name in other & set(found):
        if is_container(found[name]):
            found[name] = ANY
        else:
            del found[name]  # a leaf part or an array: the same to every rule
    return found
