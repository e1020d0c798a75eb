"""P1 alone: fmad's value+gradient call against the hand-written one, as a ratio.

    python benchmarks/bench_scalar.py [--repeats 9]

Scalar code is where per-statement overhead shows most, so this is the quickest check that
the generated code is as lean as the hand-written gradient (target <= 1.3x).
"""

# ruff: noqa: E402  (the thread settings must come before numpy is imported)
import sys
from pathlib import Path

from timing import pin_threads

pin_threads()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import math

from problems import P1
from timing import CallTimer

import fmad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    repeats = parser.parse_args().repeats

    args = P1.make_args()
    differentiated = fmad.differentiate(P1.fn, wrt=list(P1.wrt))
    value, grads = differentiated(*args)
    ref_value, ref_grads = P1.hand(*args)
    close = [
        math.isclose(a, b, rel_tol=1e-12)
        for a, b in zip([value, *grads.values()], [ref_value, *ref_grads.values()], strict=True)
    ]
    if not all(close):
        print(f"mismatch: fmad {value}, {grads}; hand-written {ref_value}, {ref_grads}")
        return 1

    # Interleaved runs, so that drifting machine load affects both alike.
    hand_timer, fmad_timer = CallTimer(P1.hand, args), CallTimer(differentiated, args)
    for _ in range(repeats):
        hand_timer.run()
        fmad_timer.run()
    hand, ours = hand_timer.median, fmad_timer.median
    print(f"hand-written: {hand * 1e9:.0f} ns/call")
    print(f"fmad:         {ours * 1e9:.0f} ns/call")
    print(f"ratio fmad / hand-written: {ours / hand:.2f}x (target <= {P1.target}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
