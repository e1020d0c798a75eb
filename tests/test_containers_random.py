"""Random parameter trees and random functions of them: the value is the original's bit for
bit and every leaf's gradient matches central differences (see tests/test_containers.py).

Each case builds a random tree (dicts, lists and tuples, nested up to three deep; leaves
numbers or small arrays), then writes a function that reaches every leaf its own way (a
path of constant keys and indices, unpacking a tuple, a loop over a list, a helper that
returns a part) and combines them with nonlinear terms, some crossing leaves. The source is
written to a file and imported, as fmad needs.
"""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

from tests.test_containers import check

CASES = 40


def random_tree(rng: random.Random, depth: int, top: bool = False):
    if depth == 0 or (not top and rng.random() < 0.3):
        if rng.random() < 0.35:
            return round(rng.uniform(-1, 1), 3)
        shape = rng.choice([(2,), (3,), (2, 2), (1,)])
        return np.round(np.array([rng.uniform(-1, 1) for _ in range(int(np.prod(shape)))]), 3)
    kind = rng.choice(["dict", "list", "tuple"])
    n = rng.randint(1, 3)
    items = [random_tree(rng, depth - 1) for _ in range(n)]
    if kind == "dict":
        return {f"k{i}": v for i, v in enumerate(items)}
    return items if kind == "list" else tuple(items)


def reads(rng: random.Random, tree, path: str, lines: list[str], helpers: list[str]) -> list:
    """Statements that bind a name to each leaf below ``path``; return those names."""
    fresh = f"v{len(lines)}_{rng.randrange(10**6)}"
    if not isinstance(tree, dict | list | tuple):
        lines.append(f"{fresh} = {path}")
        return [fresh]
    leaves_only = all(not isinstance(v, dict | list | tuple) for v in (tree.values() if
                      isinstance(tree, dict) else tree))  # fmt: skip
    choice = rng.random()
    if isinstance(tree, list | tuple) and leaves_only and choice < 0.35:
        # a loop over the items: a running sum of a nonlinear function of each
        acc = f"acc_{fresh}"
        lines += [
            f"{acc} = 0.0",
            f"for item in {path}:",
            f"    {acc} = {acc} + np.sum(np.sin(item))",
        ]
        return [acc]
    if isinstance(tree, tuple) and choice < 0.6:
        names = [f"{fresh}_{i}" for i in range(len(tree))]
        lines.append(f"{', '.join(names)}{',' if len(names) == 1 else ''} = {path}")
        found = []
        for name, item in zip(names, tree, strict=True):
            found += reads(rng, item, name, lines, helpers)
        return found
    if choice < 0.75 and path == "p":
        helper = f"part_{len(helpers)}"
        key = next(iter(tree)) if isinstance(tree, dict) else 0
        helpers.append(f"def {helper}(q):\n    return q[{key!r}]\n")
        lines.append(f"{fresh} = {helper}({path})")
        item = tree[key]
        found = reads(rng, item, fresh, lines, helpers)
        rest = [k for k in (tree if isinstance(tree, dict) else range(len(tree))) if k != key]
        for k in rest:
            found += reads(rng, tree[k], f"{path}[{k!r}]", lines, helpers)
        return found
    keys = list(tree) if isinstance(tree, dict) else range(len(tree))
    found = []
    for k in keys:
        found += reads(rng, tree[k], f"{path}[{k!r}]", lines, helpers)
    return found


def program(seed: int):
    rng = random.Random(seed)
    tree = random_tree(rng, 3, top=True)
    while not isinstance(tree, dict | list | tuple) or not any(
        isinstance(v, dict | np.ndarray)
        for v in (tree.values() if isinstance(tree, dict) else tree)
    ):
        tree = {"k0": tree, "k1": np.array([0.5, -0.25])}
    lines: list[str] = []
    helpers: list[str] = []
    names = reads(rng, tree, "p", lines, helpers)
    terms = []
    for i, name in enumerate(names):
        f = rng.choice(["np.sum(np.tanh({0} * x))", "np.sum({0} ** 2) * x", "np.sum(np.exp({0}))"])
        terms.append(f.format(name))
        if i and rng.random() < 0.4:
            terms.append(f"np.sum({name}) * np.sum({names[i - 1]})")
    body = "\n".join(f"    {line}" for line in lines)
    source = (
        "import numpy as np\n\n\n"
        + "\n\n".join(helpers)
        + "\n\ndef f(p, x):\n"
        + body
        + f"\n    return {' + '.join(terms)}\n"
    )
    return tree, source


@pytest.mark.parametrize("seed", range(CASES))
def test_random_trees(seed, tmp_path):
    tree, source = program(seed)
    path = tmp_path / f"tree_program_{seed}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"tree_program_{seed}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check(module.f, {"p": tree, "x": 0.7}, "p", h=1e-6, tol=1e-5)
