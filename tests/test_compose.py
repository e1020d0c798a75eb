"""fmad's output is plain Python that fmad can transform again: every generated unit returns
one flat tuple ``(value, *tangents)``, and the printed code, written to a file, is
differentiated like any user code (here: second derivatives of the seed example)."""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import fmad
from tests import passes_module as pm

ROOT = Path(__file__).resolve().parent.parent
HEADER = "import math\n\nimport numpy as np\n\n\n"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def printed_to_file(differentiated, tmp_path: Path, name: str):
    """The printed code of ``differentiated`` as a module of its own, and its function."""
    path = tmp_path / f"printed_{name}.py"
    path.write_text(HEADER + differentiated.source)
    return load(path, name)


def seed_example():
    return load(ROOT / "examples" / "linear_regression.py", "train_loop")


def test_the_generated_function_returns_one_flat_tuple() -> None:
    source = seed_example().source
    last = ast.parse(source).body[-1].body[-1]
    assert isinstance(last, ast.Return)
    assert ast.unparse(last) == "return (loss, dloss_dw, dloss_db)"


def test_the_printed_seed_example_is_differentiated_again(tmp_path: Path) -> None:
    first = seed_example()
    printed = printed_to_file(first, tmp_path, "train_loop")
    X, y, w, b = 3.0, 7.0, 0.5, 0.25
    value, grads = first(X, y, w, b)
    assert printed(X, y, w, b) == (value, grads["w"], grads["b"])  # bit for bit
    second = fmad.differentiate(printed, wrt=["w", "b"])
    (loss, dloss_dw, dloss_db), hess = second(X, y, w, b)
    assert (loss, dloss_dw, dloss_db) == (value, grads["w"], grads["b"])
    # d(loss)/dw again, then the second derivatives: d2loss/dw2 = 2 X**2, d2loss/dwdb = 2 X
    assert hess["w"] == (dloss_dw, 2 * X**2, 2 * X)
    assert hess["b"] == (dloss_db, 2 * X, 2.0)


@pytest.mark.parametrize("X", [-45.1, 0.3, 2.0])
def test_second_derivatives_of_the_seed_example_at_array_data(tmp_path: Path, X) -> None:
    printed = printed_to_file(seed_example(), tmp_path, "train_loop")
    xs = np.array([X, 2 * X, -X])
    _, hess = fmad.differentiate(printed, wrt=["w"])(xs, np.ones(3), 0.5, 0.25)
    np.testing.assert_allclose(hess["w"][1], 2 * xs**2, rtol=1e-12)


def test_printed_helpers_loops_and_branches_are_differentiated_again(tmp_path: Path) -> None:
    """loop_branch_helper calls a helper in a loop with a branch: its printed code (two
    functions, keyword-only tangent arguments) is differentiated again, checked against
    central differences of the first derivatives."""
    first = fmad.differentiate(pm.loop_branch_helper, wrt=["x", "w", "b"])
    printed = printed_to_file(first, tmp_path, "loop_branch_helper")
    second = fmad.differentiate(printed, wrt=["w"])
    args = (0.3, 1.2, 0.7, 5)
    outputs, hess = second(*args)
    value, grads = first(*args)
    assert outputs == (value, grads["x"], grads["w"], grads["b"])
    h = 1e-6
    up = printed(0.3, 1.2 + h, 0.7, 5)
    down = printed(0.3, 1.2 - h, 0.7, 5)
    for i, exact in enumerate(hess["w"]):
        assert math.isclose(exact, (up[i] - down[i]) / (2 * h), rel_tol=1e-6, abs_tol=1e-8)


def test_comments_quote_the_user_line_the_code_comes_from() -> None:
    shown = fmad.differentiate(pm.train_loop, wrt=["w", "b"]).show()
    lines = Path(pm.__file__).read_text().splitlines()
    comments = [line.strip() for line in shown.splitlines() if line.strip().startswith("# ")]
    assert comments, shown
    for comment in comments:
        number, text = comment.removeprefix("# line ").split(": ", 1)
        assert lines[int(number) - 1].strip() == text
    assert any("loss" in c for c in comments)


def test_comments_can_be_turned_off_and_do_not_change_the_code() -> None:
    differentiated = fmad.differentiate(pm.loop_branch_helper, wrt=["w", "b"])
    with_comments = differentiated.show()
    without = differentiated.show(comments=False)
    assert "# line" in with_comments and "#" not in without
    assert ast.dump(ast.parse(with_comments)) == ast.dump(ast.parse(without))
    flat = differentiated.show(stage="flat")
    assert "# line" in flat
    assert ast.dump(ast.parse(flat)) == ast.dump(
        ast.parse(differentiated.show(stage="flat", comments=False))
    )


def test_show_with_shapes_is_the_code_that_runs_for_those_shapes() -> None:
    differentiated = fmad.differentiate(pm.mse, wrt=["w", "b"])
    shown = differentiated.show(shapes={"X": (4, 3), "y": (4,), "w": (3,), "b": ()})
    assert shown == differentiated.source_for(np.ones((4, 3)), np.ones(4), np.ones(3), 0.5)
    assert shown != differentiated.show()
    # a length known only at run time is fine for data
    assert shown == differentiated.show(shapes={"X": (None, 3), "y": (None,), "w": (3,)})


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"q": (3,)}, "not a parameter"),
        ({"w": (None,)}, "must be known"),
        ({"w": [3]}, "tuple of lengths"),
    ],
)
def test_show_with_bad_shapes_says_what_is_wrong(shapes, message) -> None:
    differentiated = fmad.differentiate(pm.mse, wrt=["w", "b"])
    with pytest.raises(fmad.WrtError, match=message):
        differentiated.show(shapes=shapes)
