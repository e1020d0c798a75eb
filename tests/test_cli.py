"""The command line: `python -m fmad show TARGET`, in-process through main() and as a process."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fmad
from fmad.cli import main

ROOT = Path(fmad.__file__).resolve().parent.parent

MODEL = """\
import fmad
from model_helper import OFFSET


def loss(X, y, w, b):
    y_pred = w * X + b + OFFSET
    return (y_pred - y) ** 2


@fmad.differentiate(wrt=["w"])
def loss_w(X, y, w, b):
    return (w * X + b - y) ** 2


NOT_A_FUNCTION = 3
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    (tmp_path / "model_helper.py").write_text("OFFSET = 0.0\n")
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


@pytest.fixture
def module(model: Path):
    """The model file imported on its own, to compare the CLI's output with the API's."""
    spec = importlib.util.spec_from_file_location("_test_cli_model", model)
    loaded = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(model.parent))
    try:
        spec.loader.exec_module(loaded)
    finally:
        sys.path.remove(str(model.parent))
        sys.modules.pop("model_helper", None)
    return loaded


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The exit status, the code shown (after its header line) and stderr."""
    status = main(argv)
    out, err = capsys.readouterr()
    return status, shown_code(out), err


def shown_code(out: str) -> str:
    """``show`` prints which variant it shows, then the code."""
    if not out.startswith("# fmad: the "):
        return out
    return out.split("\n", 1)[1]


def test_show_prints_the_forward_code(model: Path, module, capsys) -> None:
    status, out, err = run(["show", f"{model}:loss"], capsys)
    assert (status, err) == (0, "")
    expected = fmad.differentiate(module.loss).show(stage="forward", printer="ast")
    assert out == expected.rstrip("\n") + "\n"
    assert "def loss(X, y, w, b):" in out
    compile(out, "shown.py", "exec")


def test_show_flat_stage(model: Path, module, capsys) -> None:
    status, out, err = run(["show", f"{model}:loss", "--stage", "flat"], capsys)
    assert (status, err) == (0, "")
    assert out == fmad.differentiate(module.loss).show(stage="flat").rstrip("\n") + "\n"
    assert out != run(["show", f"{model}:loss"], capsys)[1]


def test_show_with_wrt(model: Path, module, capsys) -> None:
    status, out, err = run(["show", f"{model}:loss", "--wrt", "w, b"], capsys)
    assert (status, err) == (0, "")
    assert out == fmad.differentiate(module.loss, wrt=["w", "b"]).show().rstrip("\n") + "\n"
    _, only_w, _ = run(["show", f"{model}:loss", "--wrt", "w"], capsys)
    assert only_w == fmad.differentiate(module.loss, wrt=["w"]).show().rstrip("\n") + "\n"
    assert only_w != out


def test_an_already_differentiated_function(model: Path, module, capsys) -> None:
    status, out, _ = run(["show", f"{model}:loss_w"], capsys)
    assert status == 0
    assert out == module.loss_w.show().rstrip("\n") + "\n"
    status, out, _ = run(["show", f"{model}:loss_w", "--wrt", "b"], capsys)
    assert status == 0
    assert out == fmad.differentiate(module.loss_w.__wrapped__, wrt=["b"]).show().rstrip() + "\n"


def test_astor_printer(model: Path, module, capsys) -> None:
    status, out, err = run(["show", f"{model}:loss", "--printer", "astor"], capsys)
    assert status == 0
    assert "def loss(X, y, w, b):" in out
    if importlib.util.find_spec("astor") is None:
        assert err.startswith("fmad: warning: astor is not installed")
        assert len(err.splitlines()) == 1
    else:
        assert err == ""


def test_package_module_target(tmp_path: Path, monkeypatch, capsys) -> None:
    package = tmp_path / "fmad_cli_test_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "losses.py").write_text("def square(w):\n    return w * w\n")
    monkeypatch.chdir(tmp_path)
    try:
        status, out, err = run(["show", "fmad_cli_test_pkg.losses:square"], capsys)
    finally:
        for name in ["fmad_cli_test_pkg", "fmad_cli_test_pkg.losses"]:
            sys.modules.pop(name, None)
    assert (status, err) == (0, "")
    assert "def square(w):" in out


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon_here", "TARGET must be path/to/file.py:function or package.module:function"),
        ("{dir}/missing.py:loss", "no such file: {dir}/missing.py"),
        ("{dir}/model.py:nothing", "{dir}/model.py has no function 'nothing'"),
        ("{dir}/model.py:", "TARGET must be"),
        ("{dir}/model.py:NOT_A_FUNCTION", "NOT_A_FUNCTION is not a function; it is of type int"),
        ("{dir}/broken.py:f", "importing {dir}/broken.py failed: ZeroDivisionError"),
        ("{dir}/bad_syntax.py:f", "importing {dir}/bad_syntax.py failed: SyntaxError"),
        ("{dir}/uses_try.py:f", "{dir}/uses_try.py:3: "),
        ("fmad_no_such_module_xyz:f", "no module named 'fmad_no_such_module_xyz'"),
        ("fmad.nowhere:f", "no module named 'fmad.nowhere'"),
        ("fmad.errors:nothing", "fmad.errors has no function 'nothing'"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    target: str, message: str, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = model.parent
    (directory / "broken.py").write_text("x = 1 / 0\n")
    (directory / "bad_syntax.py").write_text("def f(:\n")
    (directory / "uses_try.py").write_text(
        textwrap.dedent(
            """\
            def f(w):
                y = w
                try:
                    y = w * w
                except ValueError:
                    pass
                return y
            """
        )
    )
    status, out, err = run(["show", target.format(dir=directory)], capsys)
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fmad: error: ")
    assert message.format(dir=directory) in err


def test_wrt_that_is_not_a_parameter(model: Path, capsys) -> None:
    status, out, err = run(["show", f"{model}:loss", "--wrt", "q"], capsys)
    assert (status, out) == (2, "")
    assert err.startswith("fmad: error: ") and "q" in err
    assert len(err.splitlines()) == 1


def test_empty_wrt(model: Path, capsys) -> None:
    status, _, err = run(["show", f"{model}:loss", "--wrt", ","], capsys)
    assert status == 2
    assert err == "fmad: error: --wrt needs parameter names such as w,b, got ','\n"


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    status, out, err = run([], capsys)
    assert status == 2
    assert "show" in err and "usage: fmad" in err


def test_help_exits_0(capsys) -> None:
    status, out, _ = run(["--help"], capsys)
    assert status == 0
    assert "show" in out


def fmad_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "fmad", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_process_help() -> None:
    done = fmad_process("--help")
    assert done.returncode == 0
    assert "usage: fmad" in done.stdout
    assert "show" in done.stdout
    assert "print a function's derivative code" in done.stdout


def test_process_without_command() -> None:
    done = fmad_process()
    assert done.returncode == 2
    assert "usage: fmad" in done.stderr


def test_process_show(model: Path, module) -> None:
    done = fmad_process("show", f"{model}:loss", "--stage", "flat")
    assert (done.returncode, done.stderr) == (0, "")
    expected = fmad.differentiate(module.loss).show(stage="flat").rstrip() + "\n"
    assert shown_code(done.stdout) == expected


def test_process_relative_path_from_its_directory(model: Path) -> None:
    done = fmad_process("show", "model.py:loss_w", cwd=model.parent)
    assert (done.returncode, done.stderr) == (0, "")
    assert "def loss_w(X, y, w, b):" in done.stdout


def test_process_error_has_no_traceback(model: Path) -> None:
    done = fmad_process("show", f"{model.parent}/missing.py:loss")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"fmad: error: no such file: {model.parent}/missing.py\n"


def test_show_says_which_variant_it_shows(model: Path, capsys) -> None:
    main(["show", f"{model}:loss", "--wrt", "w,b"])
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith("# fmad: the variant for w scalar, b scalar (--shapes")


def test_show_with_shapes(model: Path, module, capsys) -> None:
    status, out, err = run(
        ["show", f"{model}:loss", "--wrt", "w,b", "--shapes", "X=Nx3,y=N,w=3,b="], capsys
    )
    assert (status, err) == (0, "")
    differentiated = fmad.differentiate(module.loss, wrt=["w", "b"])
    assert out == differentiated.source_for(np.ones((5, 3)), np.ones(5), np.ones(3), 0.5)


def test_show_without_comments(model: Path, module, capsys) -> None:
    status, out, _ = run(["show", f"{model}:loss", "--no-comments"], capsys)
    assert status == 0 and "# line" not in out
    assert out == fmad.differentiate(module.loss).show(comments=False)


@pytest.mark.parametrize("shapes", ["X", "X=3y", "=3", "X=3x-1"])
def test_show_with_malformed_shapes(model: Path, shapes, capsys) -> None:
    status, out, err = run(["show", f"{model}:loss", "--shapes", shapes], capsys)
    assert (status, out) == (2, "")
    assert err.startswith("fmad: error: --shapes")


def test_show_order_2_prints_the_second_order_code(model: Path, module, capsys) -> None:
    main(["show", f"{model}:loss", "--wrt", "w,b", "--order", "2"])
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("# fmad: the second-order code of the variant for w scalar, b scalar")
    expected = fmad.hessian(module.loss, wrt=["w", "b"]).show()
    assert shown_code(out) == expected.rstrip("\n") + "\n"
    assert "d2" in out
