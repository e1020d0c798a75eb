"""fmad.fence: every syntactic refusal is one row of ``fence.REFUSED``, checked in one walk.

Each row has a case here: a function body whose line marked ``# HERE`` holds the construct;
the fence must refuse it at that line with the row's message. A row without a case fails
:func:`test_every_row_has_a_case`.
"""

from __future__ import annotations

import ast
import sys
import textwrap

import pytest

from fmad import fence
from fmad.errors import UnsupportedError

FILE = "user_code.py"

# row -> (body of the function, the text the row's ``{code}`` stands for)
CASES: dict[type | str, tuple[str, str]] = {
    ast.Try: ("try:  # HERE\n    y = w\nexcept ValueError:\n    y = 0.0", ""),
    ast.With: ("with ctx:  # HERE\n    y = w", ""),
    ast.AsyncWith: ("async with ctx:  # HERE\n    y = w", ""),
    ast.AsyncFor: ("async for v in w:  # HERE\n    y = v", ""),
    ast.AsyncFunctionDef: ("async def inner(z):  # HERE\n    return z", ""),
    ast.ClassDef: ("class Point:  # HERE\n    scale = 2.0", ""),
    ast.Delete: ("y = w\ndel y  # HERE", ""),
    ast.Import: ("import math  # HERE", ""),
    ast.ImportFrom: ("from math import sin  # HERE", ""),
    ast.Global: ("global counter  # HERE", ""),
    ast.Nonlocal: ("nonlocal total  # HERE", ""),
    ast.Match: ("match w:  # HERE\n    case 1:\n        y = w", ""),
    "statement": ("type Alias = int  # HERE", "TypeAlias"),
    "decorated def": ("@staticmethod\ndef inner(z):  # HERE (a def's line)\n    return z", ""),
    "starred target": ("for a, *rest in w:  # HERE\n    pass", ""),
    "attribute target": ("cfg.x = w  # HERE", ""),
    "target": ("for v[0] in w:  # HERE\n    pass", "v[0]"),
    ast.Yield: ("y = (yield w)  # HERE", ""),
    ast.YieldFrom: ("y = yield from w  # HERE", ""),
    ast.Await: ("y = await w  # HERE", ""),
    ast.NamedExpr: ("y = (z := w) * 2.0  # HERE", ""),
    ast.Lambda: ("square = lambda z: z * z  # HERE", ""),
    ast.DictComp: ("d = {k: w for k in range(3)}  # HERE", ""),
    ast.SetComp: ("s = {k * w for k in range(3)}  # HERE", ""),
    "async comprehension": ("ys = [v async for v in w]  # HERE", ""),
    "starred argument": ("y = f(*w)  # HERE", ""),
    "keyword unpacking": ("y = f(**w)  # HERE", ""),
    "starred item": ("ys = [*w, 1.0]  # HERE", ""),
    "dict unpacking": ("d = {**w}  # HERE", ""),
    "expression": ("y = w[*idx]  # HERE", "*idx"),
}
if hasattr(ast, "TryStar"):
    CASES[ast.TryStar] = ("try:  # HERE\n    y = w\nexcept* ValueError:\n    y = 0.0", "")
NEEDS = {"statement": (3, 12)}  # the Python that parses the case


def function_tree(body: str) -> ast.FunctionDef:
    source = "def f(w, cfg, idx):\n" + textwrap.indent(body, "    ") + "\n    return w\n"
    return ast.parse(source).body[0]


def row_id(row: type | str) -> str:
    return row if isinstance(row, str) else row.__name__


def test_every_row_has_a_case() -> None:
    assert set(fence.REFUSED) == set(CASES)


@pytest.mark.parametrize("row", list(CASES), ids=row_id)
def test_each_row_is_refused_at_its_line(row) -> None:
    if sys.version_info < NEEDS.get(row, (3,)):
        pytest.skip("the case needs a newer Python")
    body, code = CASES[row]
    line = 1 + next(n for n, text in enumerate(body.splitlines(), 1) if "# HERE" in text)
    with pytest.raises(UnsupportedError) as info:
        fence.check(FILE, function_tree(body))
    message = fence.REFUSED[row].replace("{code}", code)
    assert (info.value.filename, info.value.lineno) == (FILE, line)
    assert str(info.value) == f"{FILE}:{line}: {message}"


@pytest.mark.parametrize(
    "body",
    [
        "if (lambda z: z)(w):\n    y = w",  # a test runs as Python runs it
        "assert {k: w for k in range(2)}, {x for x in w}",
        "raise ValueError(lambda: w)",  # raised as written
        "print(f'{(lambda: w)()}')",  # an f-string is left as written
        "def inner(z):\n    return (lambda: z)()",  # fenced when it is transformed
        "x: cfg.attr",  # an annotation alone does nothing
        "a, cfg[lambda: 0] = w, w",  # a subscript in a tuple target stays as written
    ],
)
def test_left_as_written_is_not_refused(body: str) -> None:
    fence.check(FILE, function_tree(body))


@pytest.mark.parametrize(
    ("body", "row"),
    [
        ("y = (lambda: 1)() + f(*w)", ast.Lambda),  # operands left to right
        ("y = f(lambda: 1, *w)", "starred argument"),  # the call's shape, then its operands
        ("cfg[lambda: 0] = (yield)", ast.Yield),  # the right side before the target
        ("cfg[lambda: 0] += (yield)", ast.Lambda),  # x[i] op= v reads x[i] first
        ("a, *b[0] = lambda: 0", "starred target"),  # targets before the value
        ("if (z := w):\n    y = lambda: 0", ast.NamedExpr),  # a test in statement order
        ("y = [lambda: 0 for v in w if (z := v)]", ast.NamedExpr),  # a comprehension's loop first
    ],
)
def test_the_first_construct_run_is_the_one_reported(body: str, row) -> None:
    with pytest.raises(UnsupportedError) as info:
        fence.check(FILE, function_tree(body))
    assert info.value.message == fence.REFUSED[row]
