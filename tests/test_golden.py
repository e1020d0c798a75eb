"""Golden text of the generated code: what ``fmad show``, ``.source``, ``.flat_source`` and
``source_for`` print for a few functions of ``tests/passes_module.py``.

The text must be identical from run to run (it is computed again in two fresh processes with
different hash seeds). After an intended change of the generated code, regenerate the files
with ``FMAD_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import fmad
from tests import passes_module as pm

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
PASSES_FILE = Path(pm.__file__).resolve()
UPDATE = os.environ.get("FMAD_UPDATE_GOLDEN") == "1"


def mse_arguments() -> tuple:
    # shapes matter, values do not: the variant is chosen by the parameters' shapes
    return np.ones((4, 3)), np.ones(4), np.ones(3), 0.5


RENDERERS: dict[str, Callable[[], str]] = {
    "train_loop.source": lambda: fmad.differentiate(pm.train_loop, wrt=["w", "b"]).source,
    "train_loop.flat": lambda: fmad.differentiate(pm.train_loop, wrt=["w", "b"]).flat_source,
    "loop_branch_helper.source": lambda: (
        fmad.differentiate(pm.loop_branch_helper, wrt=["w", "b"]).source
    ),
    "loop_branch_helper.flat": lambda: (
        fmad.differentiate(pm.loop_branch_helper, wrt=["w", "b"]).flat_source
    ),
    "mse.vector.source": lambda: fmad.differentiate(pm.mse, wrt=["w", "b"]).source_for(
        *mse_arguments()
    ),
}
SHOW_ARGS = ["show", f"{PASSES_FILE}:train_loop"]


def render_all() -> dict[str, str]:
    """Every in-process golden text (run by the subprocesses of the determinism test)."""
    return {name: render() for name, render in RENDERERS.items()}


def run_show(hash_seed: str = "0") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "fmad", *SHOW_ARGS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def render_in_fresh_process(hash_seed: str) -> dict[str, str]:
    code = "import json, tests.test_golden as g; print(json.dumps(g.render_all()))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        pytest.skip(f"FMAD_UPDATE_GOLDEN=1: rewrote {path.name}")
    assert path.exists(), f"missing {path}; create it with FMAD_UPDATE_GOLDEN=1"
    expected = path.read_text()
    assert text == expected, (
        f"generated code differs from {path.name}; if the change is intended, regenerate "
        f"with FMAD_UPDATE_GOLDEN=1 and review the diff.\n--- got:\n{text}"
    )


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_generated_code_matches_golden(name: str) -> None:
    check_golden(name, RENDERERS[name]())


def test_cli_show_matches_golden() -> None:
    check_golden("show.train_loop", run_show())


def test_golden_text_is_the_same_in_fresh_processes() -> None:
    here = render_all()
    first, second = render_in_fresh_process("1"), render_in_fresh_process("2")
    assert first == second == here
    assert run_show("3") == run_show("4")


def test_golden_code_runs() -> None:
    """The golden texts are code, not just text: the source of train_loop, exec'd, gives
    the numbers of the compiled function (the rest is exercised by test_printer)."""
    differentiated = fmad.differentiate(pm.train_loop, wrt=["w", "b"])
    printed = pm.printed_function(differentiated, RENDERERS["train_loop.source"]())
    value, grads = differentiated(3.0, 7.0, 0.5, 0.25)
    assert printed(3.0, 7.0, 0.5, 0.25) == (value, grads["w"], grads["b"])
    assert differentiated(3.0, 7.0, 0.5, 0.25) == (27.5625, {"w": -31.5, "b": -10.5})
