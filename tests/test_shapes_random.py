"""Random programs whose tangents change shape in loops (issue 14, item 12 class).

Accumulators start as constants (``acc = 0.0``, ``1.0``, ``0``) and become arrays; loops run
over ranges, rows of a matrix, items of a vector or of a list parameter (plain, with
``enumerate`` or ``zip``), reset their accumulator in a branch or break early, and the values
meet reductions, indexing, builtins and numpy functions of lists. Every program must give the
original value bit for bit and gradients equal to central finite differences, or an
``FmadError``. Deterministic: each program comes from its own seed.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
from fdcheck import central_fd, same_value

import fmad

SEEDS = range(int(__import__("os").environ.get("FMAD_SHAPES_EXAMPLES", "160")))


class Program:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.vecs = ["w", "v"]  # (3,)
        self.scalars = ["b", "c"]
        self.lists = ["zs"]
        self.lines: list[str] = []
        self.n = 0

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def vec(self) -> str:
        a, s = self.rng.choice(self.vecs), self.rng.choice(self.scalars)
        return self.rng.choice(
            [
                f"{a} * {s}",
                f"np.tanh({a})",
                f"{a} + {s}",
                f"np.clip({a}, -0.5, 0.5)",
                f"np.maximum({a}, {s})",
                f"X[{self.rng.randrange(4)}] * {a}",
                f"np.where({a} > 0.1, {a}, {s})",
                f"np.sum(X * {a}, axis=0)",
                f"-{a}",
                f"{a}[::-1]",
                f"np.concatenate([{a}[:1], {a}[1:] * {s}])",
                f"X.T @ (X @ {a})",
                f"np.exp(-{a} * {a})",
            ]
        )

    def scalar(self) -> str:
        a, s = self.rng.choice(self.vecs), self.rng.choice(self.scalars)
        xs = self.rng.choice(self.lists)
        return self.rng.choice(
            [
                f"np.sum({a})",
                f"{a}[{self.rng.randrange(3)}]",
                f"np.max({a})",
                f"{s} * {s}",
                f"np.mean({a} ** 2)",
                f"{a} @ {self.rng.choice(self.vecs)}",
                f"max({a})",
                f"sum({a})",
                f"min({xs})",
                f"sum({xs})",
                f"np.sum({xs}) * {s}",
                f"np.max([{s}, 1.0, {a}[0]])",
                f"np.sin({s})",
                f"np.prod({a})",
                f"{xs}[-1] * {s}",
            ]
        )

    def loop(self) -> None:
        acc = self.fresh("acc")
        self.lines.append(f"    {acc} = {self.rng.choice(['0.0', '1.0', '0', 'b'])}")
        u = self.fresh("u")
        kind = self.rng.randrange(6)
        xs = self.rng.choice(self.lists)
        header = [
            f"for {u} in range({self.rng.randint(0, 3)}):",
            "for {u} in X:",
            f"for {u} in {self.rng.choice(self.vecs)}:",
            f"for {u} in {xs}:",
            f"for _i, {u} in enumerate({xs}):",
            f"for {u}, _y in zip({xs}, {self.rng.choice(self.lists)}, strict=False):",
        ][kind].format(u=u)
        self.lines.append(f"    {header}")
        if kind >= 3:
            self.scalars.append(u)
        op = self.rng.choice(["+", "*"])
        if self.rng.random() < 0.5:
            self.lines.append(f"        {acc} = {acc} {op} {self.vec()}")
            test = f"np.sum({acc})"
            self.vecs.append(acc)
        else:
            self.lines.append(f"        {acc} = {acc} {op} {self.scalar()}")
            test = acc
            self.scalars.append(acc)
        if self.rng.random() < 0.4:
            self.lines.append(f"        if {test} > {round(self.rng.uniform(-1, 3), 2)}:")
            self.lines.append(f"            {acc} = {self.rng.choice(['0.0', 'b', '1.0'])}")
            if self.rng.random() < 0.3:
                self.lines.append("            break")
        if kind >= 3:
            self.scalars.remove(u)

    def source(self) -> str:
        for _ in range(self.rng.randint(2, 6)):
            r = self.rng.random()
            if r < 0.4:
                self.loop()
            elif r < 0.55:
                v = self.fresh("v")
                self.lines.append(f"    {v} = {self.vec()}")
                self.vecs.append(v)
            elif r < 0.7:
                s = self.fresh("s")
                self.lines.append(f"    {s} = {self.scalar()}")
                self.scalars.append(s)
            elif r < 0.85:
                xs = self.fresh("xs")
                self.lines.append(f"    {xs} = [{self.scalar()}, 0.5, {self.scalar()}]")
                self.lists.append(xs)
            else:
                t = self.fresh("t")
                self.lines.append(f"    {t} = {self.rng.choice(['0.0', '1.0'])}")
                self.lines.append(f"    if {self.rng.choice(self.scalars)} > 0.1:")
                self.lines.append(f"        {t} = {self.vec()}")
                self.vecs.append(t)
        a, b = self.rng.choice(self.vecs), self.rng.choice(self.scalars)
        self.lines.append(f"    return np.sum({a}) * {b} + {self.scalar()}")
        return "def f(X, w, v, b, c, zs):\n" + "\n".join(self.lines) + "\n"


def one_sided_agree(f, args, name, h=1e-6) -> bool:
    """Forward and backward differences agree for every element of ``name``: no kink here
    (central differences alone average the two sides of a kink, e.g. a tie in np.max)."""
    base = np.asarray(f(**copy.deepcopy(args)), dtype=float)
    param = np.asarray(args[name], dtype=float)
    for index in np.ndindex(param.shape):
        sides = []
        for step in (h, -h):
            moved = param.copy()
            moved[index] += step
            new = copy.deepcopy(args)
            value = moved if param.ndim else float(moved)
            new[name] = value.tolist() if isinstance(args[name], list) else value
            sides.append((np.asarray(f(**new), dtype=float) - base) / step)
        if not np.allclose(sides[0], sides[1], rtol=1e-3, atol=1e-4):
            return False
    return True


WRTS = [["w"], ["w", "b"], ["b"], ["b", "c", "w", "v"], ["X"], ["zs"], ["zs", "w", "c"]]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_shape_changing_loop(seed, tmp_path):
    rng = random.Random(seed)
    source = Program(rng).source()
    path = tmp_path / f"shapes_{seed}.py"
    path.write_text(source)
    namespace = {"np": np}
    exec(compile(source, str(path), "exec"), namespace)
    f = namespace["f"]

    def r(n=None):
        return round(rng.uniform(-1, 1), 2) if n is None else [r() for _ in range(n)]

    args = {
        "X": np.array([r(3) for _ in range(4)]),
        "w": np.array(r(3)),
        "v": np.array(r(3)),
        "b": r(),
        "c": r(),
        "zs": r(rng.randint(1, 3)),
    }
    wrt = rng.choice(WRTS)
    try:
        with np.errstate(all="ignore"):
            reference = f(**copy.deepcopy(args))
            fd = {k: central_fd(f, args, k) for k in wrt}
            fd2 = {k: central_fd(f, args, k, h=1e-5) for k in wrt}
            smooth = all(one_sided_agree(f, args, k) for k in wrt)
    except (ValueError, IndexError, TypeError, ZeroDivisionError):
        pytest.skip("the original function fails here")
    if (
        not smooth
        or not np.all(np.isfinite(reference))
        or any(not np.allclose(fd[k], fd2[k], rtol=1e-4, atol=1e-5) for k in wrt)
    ):
        pytest.skip("at a kink: finite differences are not a reference")
    try:
        value, grads = fmad.differentiate(f, wrt=wrt)(**copy.deepcopy(args))
    except fmad.FmadError:
        return  # a clear refusal keeps the contract
    assert same_value(value, reference), source
    for k in wrt:
        assert np.shape(grads[k]) == np.shape(fd[k]), (k, source)
        np.testing.assert_allclose(grads[k], fd[k], rtol=1e-5, atol=1e-6, err_msg=source)
