"""Random programs, second derivatives: ``fmad.hessian`` gives the central differences of
fmad's own gradient (checked by tests/test_random_programs.py), or an FmadError.

The programs are those of tests/randprog.py (helpers calling helpers, loops, arrays with
reductions and the bundled variant...). Each is differentiated twice: the first-order code
fmad generated is read back and transformed again, so this exercises every rule on
generated code, the runtime helpers' rules, and the naming of a second pass.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from hypothesis import HealthCheck, assume, given, settings

import fmad
from tests.randoracle import load, moderate
from tests.randprog import Program, array_programs, helper_programs, loop_programs

SETTINGS = settings(
    # FMAD_HESSIAN_EXAMPLES=1000 python -m pytest tests/test_random_hessians.py: a longer hunt
    max_examples=int(os.environ.get("FMAD_HESSIAN_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
H = 1e-5


def numeric_hessian(grad, args: dict, wrt: tuple[str, ...]) -> dict:
    out: dict = {a: {} for a in wrt}
    for b in wrt:
        base = np.asarray(args[b], dtype=float)
        columns = []
        for j in range(base.size):
            shifted = []
            for sign in (1.0, -1.0):
                moved = dict(args)
                flat = base.ravel().copy()
                flat[j] += sign * H * max(1.0, abs(flat[j]))
                moved[b] = float(flat[0]) if base.ndim == 0 else flat.reshape(base.shape)
                shifted.append(grad(**moved)[1])
            step = 2 * H * max(1.0, abs(base.ravel()[j]))
            columns.append({a: (np.asarray(shifted[0][a]) - shifted[1][a]) / step for a in wrt})
        for a in wrt:
            block = np.stack([np.asarray(c[a], dtype=float) for c in columns], axis=-1)
            out[a][b] = block.reshape(np.shape(args[a]) + np.shape(args[b]))
    return out


def check(program: Program) -> None:
    fn, filename = load(program.source)
    args = program.arguments()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            value = fn(**program.arguments())
        except Exception:
            assume(False)
        assume(moderate(value) and np.size(value) == 1 and not isinstance(value, list | tuple))
        assume(all(np.asarray(v).dtype.kind == "f" for k, v in args.items() if k in program.wrt))
        try:
            grad = fmad.differentiate(fn, wrt=list(program.wrt))
            grad(**program.arguments())
            _, _, hess = fmad.hessian(fn, wrt=list(program.wrt))(**program.arguments())
        except fmad.FmadError as exc:
            where = str(exc).split(": ", 1)[0]  # file:line of the refusal: the user's file
            assert filename in where or isinstance(exc, fmad.WrtError), str(exc)
            return
        expected = numeric_hessian(grad, program.arguments(), program.wrt)
    for a in program.wrt:
        for b in program.wrt:
            got = np.asarray(hess[a][b], dtype=float)
            want = expected[a][b]
            assume(np.all(np.isfinite(want)) and np.abs(want).max(initial=0.0) < 1e4)
            np.testing.assert_allclose(
                got, want, rtol=1e-3, atol=1e-4, err_msg=f"d2/d{a}d{b}\n{program!r}"
            )


@SETTINGS
@given(program=helper_programs())
def test_helper_programs(program: Program) -> None:
    check(program)


@SETTINGS
@given(program=loop_programs())
def test_loop_programs(program: Program) -> None:
    check(program)


@SETTINGS
@given(program=array_programs())
def test_array_programs(program: Program) -> None:
    check(program)
