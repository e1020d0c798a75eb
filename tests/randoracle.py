"""The oracle for the random programs of tests/randprog.py (issue 14's contract).

``check(program)`` accepts an ``FmadError`` whose message names the generated file and a
line (``randprog_....py:N:``), or the original function's value bit for bit, the
original's own effect on the arguments, and gradients equal to central finite
differences. Anything else is a :class:`Failure` whose ``signature`` names its class
(used to group failures: ``python -m tests.hunt``). Programs that say nothing (the
original fails with a non-finite value, finite differences straddle a kink) are skipped
with ``hypothesis.assume``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import re
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import assume

import fmad
from tests.fdcheck import _with_value, same_value
from tests.randprog import Program

# ----------------------------------------------------------------------------- loading

_DIRECTORY: Path | None = None
_LOADED: dict[str, tuple[Callable[..., Any], str]] = {}


def load(source: str) -> tuple[Callable[..., Any], str]:
    """Write ``source`` to a real file, import it; return its ``f`` and the file's name."""
    global _DIRECTORY
    if _DIRECTORY is None:
        _DIRECTORY = Path(tempfile.mkdtemp(prefix="fmad_randprog_"))
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    if digest not in _LOADED:
        name = f"randprog_{digest}"
        path = _DIRECTORY / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _LOADED[digest] = (module.f, path.name)
    return _LOADED[digest]


# ----------------------------------------------------------------------------- oracle

LARGEST = 1e4
RTOL = 1e-4
ATOL = 1e-6
EPS = float(np.finfo(float).eps)


@dataclass
class Failure:
    signature: str
    detail: str
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{self.signature}] {self.detail}"


def normalize(message: str) -> str:
    """A message without the parts that vary from program to program."""
    message = message.splitlines()[0] if message else message
    message = re.sub(r"randprog_\w+\.py:\d+", "FILE:N", message)
    # generated names (with a digit or an underscore) vary; type and method names do not
    message = re.sub(r"'[^']*[\d_][^']*'", "'_'", message)
    message = re.sub(r"\(\d+(, \d+)*,?\)", "(S)", message)
    message = re.sub(r"\d+(\.\d+)?", "N", message)
    return message[:120]


def moderate(value: Any) -> bool:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.isfinite(array)) and np.all(np.abs(array) <= LARGEST))


def _run(fn: Callable[..., Any], args: dict[str, Any]) -> np.ndarray:
    return np.asarray(fn(**copy.deepcopy(args)), dtype=float)


def gradient_failure(
    fn: Callable[..., Any], args: dict[str, Any], name: str, grad: Any, value: Any
) -> Failure | None:
    """Compare one gradient with central differences; skip (assume) at kinks."""
    param = np.asarray(args[name], dtype=float)
    want_shape = np.shape(value) + param.shape
    if np.shape(grad) != want_shape:
        return Failure("grad-shape", f"d/d{name}: shape {np.shape(grad)}, want {want_shape}")
    got = np.asarray(grad, dtype=float)
    if not np.all(np.isfinite(got)):
        return Failure("grad-nonfinite", f"d/d{name} = {grad!r}")
    center = _run(fn, args)
    magnitude = float(np.max(np.abs(center), initial=0.0))
    for index in np.ndindex(param.shape):
        x = float(param[index])
        h1 = 1e-6 * max(1.0, abs(x))
        h2 = 1e-4 * max(1.0, abs(x))
        u1 = _run(fn, _with_value(args, name, index, x + h1))
        l1 = _run(fn, _with_value(args, name, index, x - h1))
        fd = (u1 - l1) / ((x + h1) - (x - h1))
        noise = 64.0 * EPS * magnitude / h1
        g = got[(...,) + index]
        if np.all(np.abs(g - fd) <= ATOL + RTOL * np.abs(fd) + noise):
            continue
        # A mismatch counts only where the function is smooth on both scales.
        u2 = _run(fn, _with_value(args, name, index, x + h2))
        l2 = _run(fn, _with_value(args, name, index, x - h2))
        fwd1, bwd1 = (u1 - center) / h1, (center - l1) / h1
        fwd2, bwd2 = (u2 - center) / h2, (center - l2) / h2
        coarse = (u2 - l2) / (2 * h2)
        scale = 1.0 + np.abs(fd)
        smooth = (
            np.all(np.abs(fwd1 - bwd1) <= 1e-3 * scale + 4 * noise)
            and np.all(np.abs(fwd2 - bwd2) <= 1e-2 * scale)
            and np.all(np.abs(coarse - fd) <= 1e-3 * scale + noise)
            and moderate(u2)
            and moderate(l2)
        )
        assume(smooth)
        return Failure(
            "wrong-grad",
            f"d/d{name}{list(index) if index else ''}: fmad {np.asarray(g).tolist()!r}, "
            f"finite differences {np.asarray(fd).tolist()!r}",
            {"grad": grad},
        )
    return None


# Constructs that issue 14 names as risky: a wrong value or gradient is grouped by the ones
# present, so that one known cause does not hide another.
FEATURES = {
    "decorator": r"^@doubled",
    "out=": r"out=|\(s, s\)",
    "in-place method": r"\.(fill|sort|reverse|insert|pop|extend|remove)\(|push\(",
    "append": r"\.append\(",
    "augmented": r"\+=|\*=|-=",
    "item assignment": r"^\s*\w+\[[^\]]*\] = ",
    "alias": r"^\s*T\d+ = \w+$|^\s*t\d+ = s$|^\s*g = ",
    "where=": r"where=",
    "dtype=/initial=": r"dtype=|initial=",
}


def features(source: str) -> str:
    found = [k for k, rx in FEATURES.items() if re.search(rx, source, re.MULTILINE)]
    return ", ".join(found) or "plain"


def located(exc: BaseException, filename: str) -> Failure | None:
    if re.search(re.escape(filename) + r":\d+:", str(exc)):
        return None
    return Failure(
        f"unlocated {type(exc).__name__}: {normalize(str(exc))}",
        f"{type(exc).__name__} without {filename}:N: {exc}",
    )


def crash(where: str, exc: BaseException) -> Failure:
    return Failure(
        f"crash {type(exc).__name__}: {normalize(str(exc))}",
        f"{where}: {type(exc).__name__}: {exc}",
        {"exception": exc},
    )


def check(program: Program) -> Failure | None:
    """The oracle. Returns None when fmad keeps the contract, calls ``assume(False)`` for a
    program that says nothing (the original fails or is not finite, FD is unreliable)."""
    fn, filename = load(program.source)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _check(program, fn, filename)


STATS: Counter[str] = Counter()


def _check(program: Program, fn: Callable[..., Any], filename: str) -> Failure | None:
    original_args = program.arguments()
    original_error: BaseException | None = None
    reference: Any = None
    try:
        reference = fn(**original_args)
    except Exception as exc:  # the original's own error: fmad must raise the same
        original_error = exc
    if original_error is None:
        assume(moderate(reference))
        if isinstance(reference, list | tuple):
            assume(False)
    try:
        dfn = fmad.differentiate(fn, wrt=list(program.wrt))
    except fmad.FmadError as exc:
        STATS["refused at decoration"] += 1
        return located(exc, filename)
    except Exception as exc:
        return crash("at decoration", exc)
    fmad_args = program.arguments()
    try:
        value, grads = dfn(**fmad_args)
    except fmad.FmadError as exc:
        STATS["refused at call"] += 1
        return located(exc, filename)
    except Exception as exc:
        if original_error is not None and type(exc) is type(original_error):
            return None
        return crash("at call", exc)
    if original_error is not None:
        return Failure(
            f"no-error: original raises {type(original_error).__name__}",
            f"the original raises {original_error!r}; fmad returned {value!r}",
        )
    if not same_value(value, reference):
        if np.shape(value) == np.shape(reference) and np.array_equal(
            np.asarray(value, dtype=float), np.asarray(reference, dtype=float), equal_nan=True
        ):
            return Failure(
                "value-type",
                f"value {value!r} ({type(value).__name__}) != original {reference!r} "
                f"({type(reference).__name__})",
            )
        return Failure(
            f"wrong-value [{features(program.source)}]",
            f"value {value!r} != original {reference!r}",
        )
    if not same_value(fmad_args, original_args):
        return Failure(
            "argument-mutation",
            f"arguments after the call: fmad {fmad_args!r}, original {original_args!r}",
        )
    if not isinstance(grads, dict) or tuple(grads) != tuple(program.wrt):
        return Failure("grad-keys", f"grads {grads!r}, wrt {program.wrt}")
    base = program.arguments()
    for name in program.wrt:
        failure = gradient_failure(fn, base, name, grads[name], value)
        if failure is not None:
            if failure.signature == "wrong-grad":
                failure.signature += f" [{features(program.source)}]"
            return failure
    STATS["value and gradients checked"] += 1
    return None


def assert_keeps_contract(program: Program) -> None:
    failure = check(program)
    assert failure is None, str(failure)
