"""Timing helpers shared by run.py and bench_scalar.py.

This module imports nothing from numpy, so an entry script can import it first and call
``pin_threads`` before numpy is loaded: on a 2-core machine competing BLAS threads turn the
numbers into noise.
"""

from __future__ import annotations

import os
import statistics
import timeit
from collections.abc import Callable
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# XLA's CPU backend has its own thread pool; one thread keeps JAX comparable to the rest.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def pin_threads() -> None:
    """One compute thread for BLAS and XLA. Call before numpy (or jax) is imported."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD)


class CallTimer:
    """Times ``func(*args)``: ``number`` calls per run, chosen (after warm-up) so that one
    run takes at least ``min_repeat_s``. Runs of several timers can be interleaved, so
    that drifting machine load affects every peer alike; ``median`` is per call.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        min_repeat_s: float = 0.02,
        warmup_s: float = 0.005,
    ) -> None:
        # The statement spells the call out (f(a0, a1, ...)) so no *args unpacking or lambda
        # is added to what is measured; every peer pays the same global lookups.
        names = [f"a{i}" for i in range(len(args))]
        namespace = {"f": func, **dict(zip(names, args, strict=True))}
        self._timer = timeit.Timer(f"f({', '.join(names)})", globals=namespace)
        self._timer.timeit(1)
        number = 1
        while True:  # doubling until warmup_s of calls also warms caches and allocators
            elapsed = self._timer.timeit(number)
            if elapsed >= min(warmup_s, min_repeat_s):
                break
            number *= 2
        self.number = max(1, round(number * min_repeat_s / elapsed * 1.1))
        self.per_call: list[float] = []

    def run(self) -> None:
        self.per_call.append(self._timer.timeit(self.number) / self.number)

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)


def median_call_time(
    func: Callable[..., Any], args: tuple[Any, ...], *, repeats: int, min_repeat_s: float = 0.02
) -> float:
    """Median seconds per ``func(*args)`` over ``repeats`` runs of at least ``min_repeat_s``."""
    timer = CallTimer(func, args, min_repeat_s=min_repeat_s)
    for _ in range(repeats):
        timer.run()
    return timer.median
