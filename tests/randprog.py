"""Random Python programs for hunting silent wrong answers and internal crashes in fmad.

Each generator kind is a hypothesis strategy that writes the source of a small module
(helpers, then ``def f(...)``) and draws the arguments and the ``wrt`` names. Every choice
is a hypothesis draw, simplest option first, so failing programs shrink well.

The oracle that judges them is tests/randoracle.py.

Kinds: ``helpers``, ``lists``, ``loops``, ``views``, ``arrays`` (see each strategy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

Shape = tuple[int, ...]

# ----------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class Program:
    kind: str
    source: str
    args: tuple[tuple[str, Any], ...]
    wrt: tuple[str, ...]

    def arguments(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.args))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_show(v)}" for k, v in self.args)
        return f"\n{self.source}\n# call: f({args})  wrt={list(self.wrt)}  kind={self.kind}\n"


def _show(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()!r})"
    return repr(v)


class Chooser:
    """Hypothesis draws with short names; the first option of a pick is what shrinking seeks."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def pick(self, options: list) -> Any:
        return self.draw(st.sampled_from(options))

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def coin(self) -> bool:
        return self.draw(st.booleans())

    def value(self) -> float:
        # Off the grid of the constants used in comparisons and clips (kinks).
        return round(self.draw(st.integers(-19, 19)) * 0.1 + 0.037, 3)

    def array(self, shape: Shape) -> np.ndarray:
        return np.array([self.value() for _ in range(int(np.prod(shape)))]).reshape(shape)

    def subset(self, names: list[str]) -> tuple[str, ...]:
        """A non-empty subset of ``names`` (order kept)."""
        chosen = tuple(n for n in names if self.coin())
        return chosen or (names[0],)


CONSTANTS = ["0.5", "1.5", "2.0", "0.25", "(-0.75)", "3.0"]
SCALAR_UNARY = [
    "np.sin({0})",
    "np.tanh({0})",
    "({0} * {0})",
    "math.cos({0})",
    "np.exp(np.tanh({0}))",
    "np.log(1.0 + {0} * {0})",
    "np.sqrt(1.0 + {0} * {0})",
    "math.sin({0})",
    "(-{0})",
    "(1.0 - np.clip({0}, -1.0, 1.0))",
]
ARRAY_UNARY = [
    "np.sin({0})",
    "np.tanh({0})",
    "({0} * {0})",
    "np.exp(np.tanh({0}))",
    "np.log(1.0 + {0} * {0})",
    "np.cos({0})",
    "(-{0})",
    "(-np.clip({0}, -1.0, 1.0))",
]


class Writer:
    """Typed expressions over the names in scope. A type is a shape: ``()`` for a scalar."""

    def __init__(self, c: Chooser) -> None:
        self.c = c
        self.env: dict[str, Shape] = {}
        self.no_index: set[str] = set()  # shape may still be () at run time (loop carried)
        self.lists: dict[str, int] = {}  # lists of scalars, read by indexing only
        self.counter = 0

    def fresh(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def names(self, shape: Shape) -> list[str]:
        return [n for n, s in self.env.items() if s == shape]

    def leaf(self, shape: Shape) -> str:
        names = self.names(shape)
        if shape == ():
            if names and not self.c.coin():
                return self.c.pick(list(reversed(names)))
            return self.c.pick([*CONSTANTS, *reversed(names)])
        if not names:
            return f"np.full({shape}, {self.c.pick(CONSTANTS)})"
        return self.c.pick(list(reversed(names)))

    def expr(self, shape: Shape, depth: int | None = None) -> str:
        if depth is None:
            depth = self.c.pick([1, 2])
        if depth <= 0:
            return self.leaf(shape)
        kinds = ["leaf", "binop", "unary", "div", "clip", "abs", "power", "minmax", "cond"]
        if shape == ():
            kinds += ["reduce", "index"]
        kind = self.c.pick(kinds)
        d = depth - 1
        if kind == "binop":
            other = shape if self.c.coin() else ()
            a, b = self.expr(shape, d), self.expr(other, d)
            if self.c.coin():
                a, b = b, a
            return f"({a} {self.c.pick(['+', '-', '*'])} {b})"
        if kind == "unary":
            table = SCALAR_UNARY if shape == () else ARRAY_UNARY
            return self.c.pick(table).format(self.expr(shape, d))
        if kind == "div":
            b = self.expr(shape if self.c.coin() else (), d)
            return f"({self.expr(shape, d)} / (1.0 + {b} * {b}))"
        if kind == "clip":
            return f"np.clip({self.expr(shape, d)}, -1.0, 0.5)"
        if kind == "abs":
            return f"abs({self.expr(shape, d)})"
        if kind == "power":
            if self.c.coin():
                return f"({self.expr(shape, d)} ** {self.c.pick(['2', '3'])})"
            return f"((abs({self.expr(shape, d)}) + 0.3) ** 2.5)"
        if kind == "minmax":
            a, b = self.expr(shape, d), self.expr(shape if self.c.coin() else (), d)
            if shape == ():
                return f"{self.c.pick(['min', 'max'])}({a}, {b})"
            return f"np.{self.c.pick(['maximum', 'minimum'])}({a}, {b})"
        if kind == "cond":
            if shape == ():
                a, b = self.expr((), d), self.expr((), d)
                if self.c.coin():
                    return f"({a} if {self.c.pick(['1.5', '0.0', 'True'])} else {b})"
                x, y = self.expr((), d), self.leaf(())
                return f"({a} if {x} > {y} else {b})"
            x = self.expr(shape, d)
            return f"np.where({x} > {self.c.pick(CONSTANTS)}, {x}, {self.expr((), d)})"
        if kind == "reduce":
            shapes = sorted({s for s in self.env.values() if s != ()})
            if not shapes:
                return self.leaf(())
            inner = self.expr(self.c.pick(shapes), d)
            return self.c.pick(
                ["np.sum({0})", "np.mean({0})", "np.max({0})", "np.min({0})"]
            ).format(inner)
        if kind == "index":
            lengths = {n: s[0] for n, s in self.env.items() if len(s) == 1}
            lengths = {n: k for n, k in lengths.items() if n not in self.no_index}
            lengths.update(self.lists)
            if not lengths:
                return self.leaf(())
            name = self.c.pick(list(lengths))
            return f"{name}[{self.c.int(-lengths[name], lengths[name] - 1)}]"
        return self.leaf(shape)


def module_source(parts: list[str]) -> str:
    header = "import functools\nimport math\n\nimport numpy as np\n"
    return "\n\n".join([header, *[p.rstrip("\n") + "\n" for p in parts]])


def function_source(name: str, params: list[str], body: list[str], indent: str = "") -> str:
    lines = [f"{indent}def {name}({', '.join(params)}):"]
    lines += [f"{indent}    {line}" for line in body]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- helpers


DECORATOR = """def doubled(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return 2.0 * fn(*args, **kwargs)

    return wrapper


def unchanged(fn):
    return fn
"""


@dataclass
class Helper:
    name: str
    params: list[tuple[str, Shape, str | None]]  # name, shape, default
    result: Shape


@st.composite
def helper_programs(draw: st.DrawFn) -> Program:
    """Module helpers calling helpers, keywords, defaults, several activity patterns per
    helper, decorated helpers, nested defs calling module helpers and reading locals."""
    c = Chooser(draw)
    n = c.int(2, 3)
    use_array = c.coin()
    helpers: list[Helper] = []
    parts: list[str] = []
    decorated = False
    for k in range(c.int(1, 3)):
        w = Writer(c)
        params = []
        for i in range(c.int(1, 3)):
            shape: Shape = c.pick([(), (n,), (n + 1,)]) if use_array else ()
            default = c.pick(CONSTANTS) if shape == () and c.coin() else None
            params.append((f"a{i}", shape, default))
        # parameters with defaults come last
        params.sort(key=lambda p: p[2] is not None)
        for name, shape, _ in params:
            w.env[name] = shape
        body = []
        for _ in range(c.int(0, 2)):
            if helpers and c.coin():
                text, shape = call_text(c, w, c.pick(helpers))
            else:
                shape = c.pick(sorted(set(w.env.values())))
                text = w.expr(shape)
            t = w.fresh("t")
            body.append(f"{t} = {text}")
            w.env[t] = shape
        result: Shape = c.pick(sorted(set(w.env.values())))
        used = [t for t, s in w.env.items() if t.startswith("t") and s in ((), result)]
        body.append(f"return {' + '.join([w.expr(result), *used])}")
        signature = [p if d is None else f"{p}={d}" for p, _, d in params]
        source = function_source(f"h{k}", signature, body)
        decorator = c.pick(["", "", "", "@unchanged\n", "@doubled\n"])
        decorated = decorated or bool(decorator)
        parts.append(decorator + source)
        helpers.append(Helper(f"h{k}", params, result))
    if decorated:
        parts.insert(0, DECORATOR)

    w = Writer(c)
    scalars = [f"p{i}" for i in range(c.int(1, 3))]
    args: dict[str, Any] = {p: c.value() for p in scalars}
    for p in scalars:
        w.env[p] = ()
    if use_array:
        args["w"] = c.array((n,))
        w.env["w"] = (n,)
        args["y"] = c.array((n + 1,))
        w.env["y"] = (n + 1,)
    args["d0"] = c.value()
    w.env["d0"] = ()
    wrt = c.subset([p for p in args if p not in ("d0", "y")])
    body = []
    results: list[str] = []
    callables = list(helpers)
    for _ in range(c.int(1, 4)):
        choice = c.pick(["call", "call", "expr", "nested", "tuple"])
        v = w.fresh()
        if choice == "nested":
            body += nested_def(c, w, callables, v)
            results.append(v)
            continue
        if choice == "tuple":
            u = w.fresh()
            first, second = c.pick(sorted(set(w.env.values()))), c.pick([(), ()])
            body.append(f"{v}, {u} = ({w.expr(first, 1)}, {w.expr(second, 1)})")
            w.env[v], w.env[u] = first, second
            if c.coin():
                body.append(f"{v}, {u} = ({u}, {v})")
                w.env[v], w.env[u] = second, first
            results.append(v)
            continue
        if choice == "call":
            text, shape = call_text(c, w, c.pick(callables))
        else:
            shape = c.pick(sorted(set(w.env.values())))
            text = w.expr(shape)
        body.append(f"{v} = {text}")
        w.env[v] = shape
        results.append(v)
    total = " + ".join(r if w.env[r] == () else f"np.sum({r})" for r in results)
    body.append(f"return {total}")
    parts.append(function_source("f", list(args), body))
    return Program("helpers", module_source(parts), tuple(args.items()), wrt)


def call_text(c: Chooser, w: Writer, h: Helper) -> tuple[str, Shape]:
    """A call of ``h`` with arguments of the right shapes: constants, data or active
    values, positional or by keyword, defaults sometimes left out."""
    pieces = []
    keyword = False
    for name, shape, default in h.params:
        if default is not None and c.coin():
            keyword = True  # skipped: later ones must be keywords
            continue
        value = w.expr(shape, c.int(0, 1))
        keyword = keyword or c.coin()
        pieces.append(f"{name}={value}" if keyword else value)
    return f"{h.name}({', '.join(pieces)})", h.result


def nested_def(c: Chooser, w: Writer, helpers: list[Helper], v: str) -> list[str]:
    """A nested def that reads enclosing names and calls module helpers (or an earlier
    nested def), called twice; it joins ``helpers`` for later calls."""
    inner = w.fresh("inner")
    iw = Writer(c)
    iw.env = dict(w.env)
    iw.counter = w.counter + 100
    params = [("q0", (), None)]
    if c.coin():
        params.append(("q1", (), c.pick(CONSTANTS)))
    for name, shape, _ in params:
        iw.env[name] = shape
    if helpers and c.coin():
        text, shape = call_text(c, iw, c.pick(helpers))
        text = text if shape == () else f"np.sum({text})"
    else:
        text = iw.expr(())
    body = [f"return {text} + q0"]
    signature = [p if d is None else f"{p}={d}" for p, _, d in params]
    lines = function_source(inner, signature, body).splitlines()
    first = call_text(c, w, Helper(inner, params, ()))[0]
    second = call_text(c, w, Helper(inner, params, ()))[0]
    w.env[v] = ()
    helpers.append(Helper(inner, params, ()))
    return [*lines, f"{v} = {first} + {second}"]


# ----------------------------------------------------------------------------- lists


PUSH = """def push(lst, v):
    lst.append(v)
"""


@dataclass
class ListBox:
    length: int


@st.composite
def list_programs(draw: st.DrawFn) -> Program:
    """Lists: literals mixing constants and active values, append in loops, concatenation,
    indexing, enumerate/zip, sum/min/max, mutating methods, item assignment, a helper
    that appends to the list it is passed, aliasing."""
    c = Chooser(draw)
    w = Writer(c)
    n = c.int(2, 4)
    args: dict[str, Any] = {"p0": c.value(), "p1": c.value(), "xs": [c.value() for _ in range(n)]}
    w.env.update(p0=(), p1=())
    if c.coin():
        args["v"] = c.array((n,))  # an array read by indexing, as in x[0] * x[1]
        w.env["v"] = (n,)
    lists: dict[str, ListBox] = {"xs": ListBox(n)}
    wrt = c.subset(list(args))
    body: list[str] = []
    uses_push = False
    scalars: list[str] = []

    def some_list(min_length: int = 0) -> str | None:
        names = [k for k, b in lists.items() if b.length >= min_length]
        return c.pick(list(reversed(names))) if names else None

    for _ in range(c.int(1, 6)):
        op = c.pick(
            [
                "literal", "index", "sum", "enumerate", "append_loop", "concat", "zip",
                "reverse", "sort", "insert", "pop", "extend", "remove", "setitem", "push",
                "alias", "minmax",
            ]
        )  # fmt: skip
        name = some_list(1)
        if op == "literal" or name is None:
            new = w.fresh("L")
            items = [w.expr((), 1) for _ in range(c.int(1, 3))]
            body.append(f"{new} = [{', '.join(items)}]")
            lists[new] = ListBox(len(items))
        elif op == "index":
            v = w.fresh()
            body.append(f"{v} = {name}[{c.int(-lists[name].length, lists[name].length - 1)}]")
            w.env[v] = ()
            scalars.append(v)
        elif op in ("sum", "minmax"):
            v = w.fresh()
            fn = "sum" if op == "sum" else c.pick(["min", "max"])
            body.append(f"{v} = {fn}({name})")
            w.env[v] = ()
            scalars.append(v)
        elif op == "enumerate":
            acc, i, u = w.fresh("acc"), w.fresh("i"), w.fresh("u")
            body.append(f"{acc} = 0.0")
            body.append(f"for {i}, {u} in enumerate({name}):")
            w.env[u] = ()
            w.env[acc] = ()
            body.append(f"    {acc} = {acc} + {w.expr((), 1)} * {u}")
            del w.env[u]
            scalars.append(acc)
        elif op == "zip":
            other = some_list(1)
            acc, a, b = w.fresh("acc"), w.fresh("a"), w.fresh("b")
            body.append(f"{acc} = 0.0")
            body.append(f"for {a}, {b} in zip({name}, {other}):")
            body.append(f"    {acc} = {acc} + {a} * {b}")
            w.env[acc] = ()
            scalars.append(acc)
        elif op == "append_loop":
            new, i = w.fresh("L"), w.fresh("i")
            m = c.int(1, 3)
            body.append(f"{new} = []")
            body.append(f"for {i} in range({m}):")
            w.env[i] = ()
            body.append(f"    {new}.append({w.expr((), 1)})")
            del w.env[i]
            lists[new] = ListBox(m)
        elif op == "concat":
            other = some_list(1)
            new = w.fresh("L")
            if c.coin():
                body.append(f"{new} = {name} + {other}")
                lists[new] = ListBox(lists[name].length + lists[other].length)
            else:
                body.append(f"{new} = {name} + [{w.expr((), 1)}]")
                lists[new] = ListBox(lists[name].length + 1)
        elif op in ("reverse", "sort"):
            body.append(f"{name}.{op}()")
        elif op == "insert":
            body.append(f"{name}.insert({c.int(0, lists[name].length)}, {w.expr((), 1)})")
            lists[name].length += 1
        elif op == "pop":
            if lists[name].length < 2:
                continue
            v = w.fresh()
            index = c.pick(["", "0", "-1", "1"])
            body.append(f"{v} = {name}.pop({index})")
            lists[name].length -= 1
            w.env[v] = ()
            scalars.append(v)
        elif op == "extend":
            other = some_list(1)
            body.append(f"{name}.extend({other})")
            lists[name].length += lists[other].length
        elif op == "remove":
            if lists[name].length < 2:
                continue
            body.append(f"{name}.remove({name}[{c.int(0, lists[name].length - 1)}])")
            lists[name].length -= 1
        elif op == "setitem":
            body.append(f"{name}[{c.int(0, lists[name].length - 1)}] = {w.expr((), 1)}")
        elif op == "push":
            uses_push = True
            body.append(f"push({name}, {w.expr((), 1)})")
            lists[name].length += 1
        elif op == "alias":
            new = w.fresh("T")
            body.append(f"{new} = {name}")
            lists[new] = lists[name]  # the same box: the same list
            body.append(f"{new}.append({w.expr((), 1)})")
            lists[name].length += 1
    last = some_list(1) or "xs"
    ending = c.pick([f"sum({last})", f"{last}[0] * 2.0 + {last}[-1]", f"np.sum({last})"])
    total = " + ".join([*scalars, ending])
    body.append(f"return {total}")
    parts = [PUSH] if uses_push else []
    parts.append(function_source("f", list(args), body))
    return Program("lists", module_source(parts), tuple(args.items()), wrt)


# ----------------------------------------------------------------------------- loops


@st.composite
def loop_programs(draw: st.DrawFn) -> Program:
    """Loops whose carried value starts as a constant and may become an array, early
    return, break and continue, while loops, conditional expressions, clip, abs, min/max,
    iteration over list and array parameters, and a parameter reassigned after the loop."""
    c = Chooser(draw)
    w = Writer(c)
    n = c.int(2, 4)
    args: dict[str, Any] = {"p0": c.value(), "p1": c.value()}
    w.env.update(p0=(), p1=())
    if c.coin():
        args["zs"] = [c.value() for _ in range(n)]
        w.lists["zs"] = n
    if c.coin():
        args["w"] = c.array((n,))
        w.env["w"] = (n,)
    args["k"] = c.int(0, 3)
    wrt = c.subset([p for p in args if p != "k"])
    body: list[str] = []
    for _ in range(c.int(1, 2)):
        body += one_loop(c, w, args, n)
    result = c.pick(sorted(set(w.env.values())))
    text = " + ".join([w.expr(result), *[f"np.sum({v})" for v in w.env if v.startswith("acc")]])
    if c.coin() and result == ():
        body.append(f"p0 = p0 + {text}")
        text = "p0"
    body.append(f"return {text}")
    parts = [function_source("f", list(args), body)]
    return Program("loops", module_source(parts), tuple(args.items()), wrt)


def one_loop(c: Chooser, w: Writer, args: dict[str, Any], n: int) -> list[str]:
    acc = w.fresh("acc")
    # the carried value: a constant first, an array after the first iteration, perhaps
    grows = "w" in w.env and c.coin()
    start = c.pick(["0.0", "1.0", w.expr((), 1)])
    lines = [f"{acc} = {start}"]
    header_kind = c.pick(["range", "range_k", "enumerate", "array", "zip", "while", "built"])
    element: str | None = None
    extra: list[str] = []
    if header_kind == "range":
        header = f"for i in range({c.int(1, 4)}):"
    elif header_kind == "range_k":
        header = "for i in range(k):"
    elif header_kind == "enumerate" and "zs" in args:
        element = w.fresh("u")
        header = f"for j, {element} in enumerate(zs):"
    elif header_kind == "array" and "w" in w.env:
        element = w.fresh("u")
        header = f"for {element} in w:"
    elif header_kind == "zip" and "zs" in args and "w" in w.env:
        element = w.fresh("u")
        other = w.fresh("u")
        header = f"for {element}, {other} in zip(zs, w):"
        extra.append(other)
    elif header_kind == "built":
        xs = w.fresh("xs")
        lines.append(f"{xs} = [{w.expr((), 1)}, {w.expr((), 1)}]")
        w.lists[xs] = 2
        element = w.fresh("u")
        header = f"for {element} in {xs}:"
    else:
        counter = w.fresh("m")
        lines.append(f"{counter} = 0")
        header = f"while {counter} < {c.int(1, 4)}:"
        extra_line = f"    {counter} = {counter} + 1"
        lines.append(header)
        lines.append(extra_line)
        header = ""
    if header:
        lines.append(header)
    for name in [element, *extra]:
        if name is not None:
            w.env[name] = ()
    carried: Shape = (n,) if grows else ()
    w.env[acc] = carried
    if grows:
        w.no_index.add(acc)
    inner: list[str] = []
    for _ in range(c.int(1, 2)):
        kind = c.pick(["update", "update", "return", "break", "continue", "cond_update"])
        if kind == "update":
            e = w.expr(carried)
            u = element or c.pick(["1.0", "i" if "range" in header_kind else "0.5"])
            template = c.pick(
                [
                    "{acc} + {e}",
                    "{acc} + ({e} - 0.899 * {acc})",
                    "{acc} + {e} * {u}",
                    "{acc} * np.clip({u}, -2.0, 0.5) + {e}",
                    "{e} * {acc} + {u}",
                    "max({acc}, {u}) + {e}" if not grows else "np.maximum({acc}, {u}) + {e}",
                ]
            )
            inner.append(f"{acc} = " + template.format(acc=acc, e=e, u=u))
        elif kind == "cond_update":
            inner.append(f"{acc} = {acc} * 0.5 if {w.expr((), 1)} > 0.2 else {w.expr(carried)}")
        else:
            scalar = f"np.sum({acc})" if grows else acc
            inner.append(f"if {scalar} > {c.pick(['0.5', '1.0', '(-0.5)', '2.0'])}:")
            if kind == "return":
                inner.append(f"    return {w.expr(c.pick(sorted(set(w.env.values()))))}")
            else:
                inner.append(f"    {kind}")
    lines += [f"    {line}" for line in inner]
    for name in [element, *extra]:
        if name is not None:
            del w.env[name]
    return lines


# ----------------------------------------------------------------------------- views


@st.composite
def view_programs(draw: st.DrawFn) -> Program:
    """numpy views and in-place updates: augmented assignment through a slice, ``out=``,
    in-place methods (fill, sort), aliasing, item assignment, the input itself mutated."""
    c = Chooser(draw)
    w = Writer(c)
    n = c.int(3, 4)
    args: dict[str, Any] = {"state": c.array((n,)), "b": c.value()}
    if c.coin():
        args["w"] = c.array((2,))
    wrt = c.subset(list(args))
    w.env.update(state=(n,), b=())
    body: list[str] = []
    s = c.pick(["state * 1.0", "state.copy()", "state", "np.tanh(state)"])
    body.append(f"s = {s}")
    w.env["s"] = (n,)
    small = "w" if "w" in args else "b"
    for _ in range(c.int(1, 4)):
        op = c.pick(
            [
                "slice_iadd", "setslice_iadd", "setitem", "out_unary", "out_binary", "fill",
                "sort", "alias_iadd", "reverse_view", "copy_then", "method_out",
            ]
        )  # fmt: skip
        if op == "slice_iadd":
            body.append("pos = s[0:2]")
            body.append(f"pos {c.pick(['+=', '*=', '-='])} {c.pick(CONSTANTS)} * {small}")
        elif op == "setslice_iadd":
            body.append(f"s[1:3] += {small} * {w.expr((), 1)}")
        elif op == "setitem":
            body.append(f"s[{c.int(0, n - 1)}] = {w.expr((), 1)}")
        elif op == "out_unary":
            fn = c.pick(["np.exp", "np.tanh", "np.sin", "np.negative"])
            body.append(c.pick([f"{fn}(s, out=s)", f"{fn}(s, s)"]))
        elif op == "out_binary":
            fn = c.pick(["np.add", "np.multiply", "np.subtract"])
            body.append(f"{fn}(s, {w.expr((), 1)}, out=s)")
        elif op == "fill":
            body.append(f"s.fill({w.expr((), 1)})")
        elif op == "sort":
            body.append("s.sort()")
        elif op == "alias_iadd":
            t = w.fresh("t")
            body.append(f"{t} = s")
            body.append(f"{t} += {w.expr((), 1)}")
        elif op == "reverse_view":
            t = w.fresh("t")
            body.append(f"{t} = s[::-1]")
            body.append(f"{t} *= {w.expr((), 1)}")
        elif op == "copy_then":
            t = w.fresh("h")
            body.append(f"{t} = s * 1.0")
            body.append(f"g = {t}")
            body.append(f"{t} += {w.expr((), 1)}")
            body.append("s = g")
        elif op == "method_out":
            body.append("s.clip(-1.0, 0.5, out=s)")
    ending = c.pick(["np.sum(s * s)", "s", "np.sum(s) + b", "s[0] * b + s[-1]"])
    body.append(f"return {ending}")
    parts = [function_source("f", list(args), body)]
    return Program("views", module_source(parts), tuple(args.items()), wrt)


# ----------------------------------------------------------------------------- arrays


@st.composite
def array_programs(draw: st.DrawFn) -> Program:
    """Array and scalar parameters, three or more scalar parameters with array data (the
    bundled variant), reductions with keywords (axis, keepdims, where=, dtype=, initial=)."""
    c = Chooser(draw)
    w = Writer(c)
    n, m = c.int(2, 3), c.int(2, 3)
    args: dict[str, Any] = {"X": c.array((n, m))}
    w.env["X"] = (n, m)
    scalars = [f"a{i}" for i in range(c.pick([3, 1, 2, 4]))]
    for p in scalars:
        args[p] = c.value()
        w.env[p] = ()
    if c.coin():
        args["W"] = c.array((m,))
        w.env["W"] = (m,)
    wrt = c.subset([p for p in args if p != "X"])
    body: list[str] = []
    shapes = [(), (n,), (m,), (n, m)]
    for _ in range(c.int(1, 4)):
        v = w.fresh()
        op = c.pick(["expr", "reduce_kw", "matmul", "reduce_kw"])
        if op == "matmul" and "W" in w.env:
            body.append(f"{v} = X @ {w.expr((m,), 1)}")
            w.env[v] = (n,)
            continue
        if op == "reduce_kw":
            inner = w.expr((n, m), 1)
            fn = c.pick(["np.sum", "np.mean", "np.max", "np.min", "np.prod"])
            kw = c.pick(["axis", "axis_keep", "where", "dtype", "initial", "method"])
            if kw == "axis":
                axis = c.pick([0, 1, -1])
                body.append(f"{v} = {fn}({inner}, axis={axis})")
                w.env[v] = (m,) if axis == 0 else (n,)
            elif kw == "axis_keep":
                body.append(f"{v} = np.sum({fn}({inner}, axis=0, keepdims=True))")
                w.env[v] = ()
            elif kw == "where":
                fn = c.pick(["np.sum", "np.mean"])
                body.append(f"{v} = {fn}({inner}, where=X > 0.0)" if fn == "np.sum" else
                            f"{v} = np.mean({inner} ** 2, where=np.abs(X) > 0.2)")  # fmt: skip
                w.env[v] = ()
            elif kw == "dtype":
                body.append(f"{v} = {c.pick(['np.sum', 'np.mean'])}({inner}, dtype=np.float64)")
                w.env[v] = ()
            elif kw == "initial":
                body.append(f"{v} = {c.pick(['np.sum', 'np.max'])}({inner}, initial=0.5)")
                w.env[v] = ()
            else:
                body.append(f"{v} = ({inner}).{c.pick(['sum', 'mean', 'max'])}(axis=1)")
                w.env[v] = (n,)
            continue
        shape = c.pick(shapes)
        body.append(f"{v} = {w.expr(shape)}")
        w.env[v] = shape
    if c.coin():
        # the bundled case: a loss that does not touch the array data
        ending = " + ".join(
            [f"{p} * {q}" for p, q in zip(scalars, scalars[1:], strict=False)] or scalars
        )
    else:
        ending = w.expr(c.pick([(), (), (n,)]))
        ending = " + ".join([ending, *[f"np.sum({v})" for v in w.env if v.startswith("v")]])
    body.append(f"return {ending}")
    parts = [function_source("f", list(args), body)]
    return Program("arrays", module_source(parts), tuple(args.items()), wrt)


KINDS: dict[str, Callable[[], st.SearchStrategy[Program]]] = {
    "helpers": helper_programs,
    "lists": list_programs,
    "loops": loop_programs,
    "views": view_programs,
    "arrays": array_programs,
}
