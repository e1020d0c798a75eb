"""Random loop programs for reverse mode (issue 12): ``loop_programs`` writes the source of
``def program(xs, w, b, n)`` (a loop over ``range`` with steps, ``reversed``, data,
``enumerate``, ``zip`` with a parameter, a parameter array, or a ``while``; nested loops,
accumulators, a helper called in the loop, lists appended to and read after the loop,
list comprehensions, ``break``/``continue``, names first bound in the loop or in one branch
and read after it), and ``judge`` compares reverse mode with the original, forward mode
and central differences. ``python -m tests.loop_hunt N [SEED]`` runs N programs and counts them.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

import fmad
from tests.fdcheck import central_fd
from tests.reverse_check import check_refusal

HEADERS = [
    ("for i in range(n):", "x = xs[i]"),
    ("for i in range(1, n, 2):", "x = xs[i]"),
    ("for i in reversed(range(n)):", "x = xs[i]"),
    ("for x in xs:", None),
    ("for i, x in enumerate(xs):", None),
    ("for x, c in zip(xs, b):", None),
    ("for c in b:", "x = c * 0.5"),
    ("for i, (x, y) in enumerate(zip(xs, xs)):", None),
    ("while k < n:", "x = xs[k]\nk = k + 1"),
]
TERMS = [
    "w * x",
    "np.sin(w * x) + acc * 0.5",
    "h(x, w) * acc",
    "np.tanh(acc + w * x)",
    "x * x * w - acc",
    "np.sum(b * x) * w",
    "b[0] * x + w",
]
HELPER = "def h(u, v):\n    if u > 0.2:\n        return u * v\n    return v * v - u\n\n\n"


@st.composite
def loop_programs(draw) -> str:
    """The source of one module with a helper ``h`` and ``program``."""

    def pick(options):
        return draw(st.sampled_from(options))

    lines = ["def program(xs, w, b, n):", "    acc = 0.0"]
    appends = draw(st.booleans())
    if appends:
        lines.append("    ys = []")

    def loop(indent: str, depth: int, outer_c: bool) -> list[str]:
        header, first = pick(HEADERS)
        out = []
        if header.startswith("while"):
            out.append(f"{indent}k = 0")
        out.append(indent + header)
        inner = indent + "    "
        if first:
            out += [inner + part for part in first.split("\n")]
        has_c = "c" in header.split(" in ")[0] or outer_c
        for _ in range(draw(st.integers(1, 4))):
            kind = pick(["term", "acc", "acc", "jump", "branch", "append", "nested"])
            term = pick(TERMS)
            if "c" in term.split() and not has_c:
                term = term.replace("c", "x")
            if kind == "term":
                out.append(f"{inner}t = {term}")
            elif kind == "acc":
                out.append(f"{inner}acc = acc + {pick(['t', term])}")
            elif kind == "jump":
                out += [
                    f"{inner}if x > {pick(['0.1', '0.6'])}:",
                    f"{inner}    {pick(['break', 'continue'])}",
                ]
            elif kind == "branch":
                out += [f"{inner}if x < 0.4:", f"{inner}    u = {term}", f"{inner}acc = acc + u"]
            elif kind == "append" and appends:
                out.append(f"{inner}ys.append({pick(['t', term])})")
            elif kind == "nested" and depth < 2:
                out += loop(inner, depth + 1, has_c)
            else:
                out.append(f"{inner}acc = acc * 0.5 + {term}")
        if "k = k + 1" in (first or "") and any(x.strip() in ("continue",) for x in out):
            out = [x.replace("continue", "break") for x in out]  # a while's counter first
        return out

    lines += loop("    ", 1, False)
    tail = ["acc", "acc + t * w", "acc * w"]
    if appends:
        tail += ["acc + sum(ys)", "acc + ys[-1] * ys[0]", "np.sum(np.array(ys)) + acc"]
        if draw(st.booleans()):
            lines.append("    zs = [y * w for y in ys]")
            tail.append("acc + sum(zs)")
    lines.append(f"    return {pick(tail)}")
    return HELPER + "\n".join(lines) + "\n"


@st.composite
def loop_arguments(draw) -> dict:
    xs = draw(st.lists(st.sampled_from([-0.7, 0.05, 0.3, 0.5, 0.9, 1.3]), min_size=0, max_size=4))
    w = draw(st.sampled_from([0.4, -0.8, 1.1]))
    b = np.array(draw(st.lists(st.sampled_from([0.2, -0.5, 0.7]), min_size=4, max_size=4)))
    n = draw(st.integers(0, len(xs)))
    return {"xs": np.array(xs), "w": w, "b": b, "n": n}


ARRAY_HEADERS = [
    ("for i in range(n):", "r = W[i]"),
    ("for r in W:", None),
    ("for i, r in enumerate(W):", None),
    ("for r, q in zip(W, X):", None),
    ("for i in range(n - 1, -1, -1):", "r = W[i] * X[i]"),
    ("for q in X:", "r = q * v"),
]
ARRAY_TERMS = [
    "np.tanh(h * r + v)",
    "h * 0.5 + r * v",
    "np.sin(r) * h",
    "r * np.sum(h * v)",
    "g(r, h)",
]
ARRAY_HELPER = (
    "def g(a, c):\n    s = 0.0\n    for e in a:\n        s = s + e * e\n    return c * s\n\n\n"
)


@st.composite
def array_loop_programs(draw) -> str:
    """The source of ``program(W, X, v, n)``: a recurrence ``h`` over the rows of the
    parameter ``W`` (shape (3, 2)) or the data ``X``, with arrays appended, stacked and
    read after the loop, and a helper ``g`` that loops over an array."""

    def pick(options):
        return draw(st.sampled_from(options))

    header, first = pick(ARRAY_HEADERS)
    lines = ["def program(W, X, v, n):", "    h = v * 1.0", "    hs = []", f"    {header}"]
    if first:
        lines.append(f"        {first}")
    for _ in range(draw(st.integers(1, 3))):
        kind = pick(["h", "t", "append", "nested"])
        term = pick(ARRAY_TERMS)
        if kind == "h":
            lines.append(f"        h = {term}")
        elif kind == "t":
            lines.append(f"        t = {term}")
        elif kind == "append":
            lines.append(f"        hs.append({pick(['h', term])})")
        else:
            other = pick(["v", "h"])
            lines += ["        for j in range(2):", f"            h = h + r[j] * {other}"]
    tails = ["np.sum(h)", "np.sum(h * t)", "np.sum(np.stack(hs)) + np.sum(h)"]
    tails += ["np.sum(hs[-1] * hs[0])", "sum(np.sum(e) for e in hs)", "np.sum(r * h)"]
    lines.append(f"    return {pick(tails)}")
    return ARRAY_HELPER + "\n".join(lines) + "\n"


@st.composite
def array_loop_arguments(draw) -> dict:
    W = np.array(draw(st.lists(st.sampled_from([-0.6, 0.2, 0.5, 0.9]), min_size=6, max_size=6)))
    X = np.array(draw(st.lists(st.sampled_from([-0.4, 0.3, 0.8]), min_size=6, max_size=6)))
    v = np.array(draw(st.lists(st.sampled_from([0.1, -0.7, 0.4]), min_size=2, max_size=2)))
    return {"W": W.reshape(3, 2), "X": X.reshape(3, 2), "v": v, "n": draw(st.integers(0, 3))}


_LOADED: dict[str, object] = {}
_DIR = Path(tempfile.mkdtemp(prefix="fmad_loop_hunt_"))


def load(source: str):
    if source not in _LOADED:
        name = f"fmad_loop_{len(_LOADED)}"
        path = _DIR / f"{name}.py"
        path.write_text("import numpy as np\n\n\n" + source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _LOADED[source] = module.program
    return _LOADED[source]


def judge(source: str, args: dict, wrt: tuple[str, ...] = ("w", "b")) -> str:
    """What reverse mode did with this program: ``"same"``, ``"refused"``, ``"raised"``
    (as the original did) or ``"skipped"`` (not finite); raises AssertionError otherwise."""
    fn = load(source)
    wrt = list(wrt)
    try:
        with np.errstate(all="ignore"):
            expected = fn(**args)
    except Exception as error:  # the original fails: reverse mode fails the same way
        kind = type(error)
        try:
            dfn = fmad.differentiate(fn, wrt=wrt, mode="reverse")
            dfn(**args)
        except fmad.ReverseModeError as refusal:
            check_refusal(refusal, fn)
            return "refused"
        except Exception as other:
            assert isinstance(other, kind), (source, args, error, other)
            assert not isinstance(other, fmad.InternalError), (source, other)
            return "raised"
        message = f"the original raised {error!r}; reverse mode did not\n{source}"
        raise AssertionError(message) from None
    if not (np.all(np.isfinite(expected)) and np.all(np.abs(expected) < 1e6)):
        return "skipped"
    try:
        dfn = fmad.differentiate(fn, wrt=wrt, mode="reverse")
        value, grads = dfn(**args)
    except fmad.ReverseModeError as refusal:
        check_refusal(refusal, fn)
        REFUSALS[str(refusal).split(": ", 1)[1][:70]] += 1
        return "refused"
    assert value == expected or (np.shape(value) == () and math.isnan(expected)), (source, args)
    try:
        forward = fmad.differentiate(fn, wrt=wrt)(**args)[1]
    except fmad.UnsupportedError:
        forward = None
    for name in wrt:
        got = np.asarray(grads[name], dtype=float)
        if forward is not None:
            np.testing.assert_allclose(got, forward[name], rtol=1e-9, atol=1e-9, err_msg=source)
        fd = central_fd(fn, args, name)
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6, err_msg=f"fd {name}\n{source}")
    return "same"


def main(count: int, seed: int = 0) -> Counter:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as seeded

    counts: Counter = Counter()

    @seeded(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=seed == 0,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data):
        if data.draw(st.booleans()):
            source, args, wrt = data.draw(loop_programs()), data.draw(loop_arguments()), "wb"
        else:
            source, args = data.draw(array_loop_programs()), data.draw(array_loop_arguments())
            wrt = "Wv"
        try:
            counts[judge(source, args, tuple(wrt))] += 1
        except Exception as error:  # noqa: BLE001 - counted and shown
            counts["FAILED"] += 1
            FAILURES.append((source, args, error))

    run()
    return counts


FAILURES: list = []
REFUSALS: Counter = Counter()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print(main(count, seed))
    print(REFUSALS)
    seen = set()
    for source, args, error in FAILURES:
        key = str(error)[:120]
        if key not in seen:
            seen.add(key)
            print("=" * 70, "\n", source, args, "\n", repr(error)[:1500])
