"""Run the random-program generators outside pytest, group the failures by class and shrink
one example of each class: ``python -m tests.hunt KIND [EXAMPLES] [SEED]``."""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict

from hypothesis import HealthCheck, Phase, find, given, seed, settings

from tests.randoracle import STATS, check
from tests.randprog import KINDS, Program, _show, module_source


def hunt(kind: str, examples: int, seed_value: int = 0, shrink: bool = True) -> dict:
    failures: dict[str, list] = defaultdict(list)
    count = [0]

    @seed(seed_value)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(KINDS[kind]())
    def run(program):
        count[0] += 1
        failure = check(program)
        if failure is not None:
            failures[failure.signature].append((program, failure))

    start = time.time()
    STATS.clear()
    run()
    took = time.time() - start
    print(
        f"== {kind}: {count[0]} examples in {took:.1f}s, "
        f"{sum(map(len, failures.values()))} failures; {dict(STATS)}"
    )
    for sig, items in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(items):4d}  {sig}")
    if shrink:
        for sig, items in sorted(failures.items(), key=lambda kv: -len(kv[1])):
            try:
                small = find(
                    KINDS[kind](),
                    lambda p, sig=sig: (f := check(p)) is not None and f.signature == sig,
                    settings=settings(
                        max_examples=3000,
                        database=None,
                        deadline=None,
                        suppress_health_check=list(HealthCheck),
                    ),
                )
            except Exception as exc:  # not found again: show the first one seen
                print(f"--- {sig}: not re-found ({type(exc).__name__}); first seen:")
                small = items[0][0]
            print(f"--- {sig}\n{small!r}\n    -> {check(small)}\n")
    return failures


if __name__ == "__main__":
    kind = sys.argv[1]
    examples = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    hunt(
        kind,
        examples,
        int(sys.argv[3]) if len(sys.argv) > 3 else 0,
        shrink="--noshrink" not in sys.argv,
    )


def entry(title: str, program, note: str = "") -> str:
    """A findings entry (markdown) for ``program``: source, call, what fmad does."""
    failure = check(program)
    source = (
        program.source.replace("import functools\n", "")
        if "functools." not in program.source
        else program.source
    )
    call = ", ".join(f"{k}={_show(v)}" for k, v in program.args)
    return (
        f"\n### {title}\n\nFound by the `{program.kind}` generator (tests/randprog.py). {note}\n\n"
        f"```python\n{source.strip()}\n```\n\n"
        f"Call: `f({call})`, `wrt={list(program.wrt)}`\n\n"
        f"fmad on main: `{failure}`\n"
    )


def record(
    category: str,
    title: str,
    parts: list[str],
    args: dict,
    wrt: list[str],
    kind: str,
    note: str = "",
) -> str:
    """Append a findings entry to $FMAD_FINDINGS/<category>.md (default /work/findings);
    return its text."""
    program = Program(kind, module_source(parts), tuple(args.items()), tuple(wrt))
    text = entry(title, program, note)
    directory = os.environ.get("FMAD_FINDINGS", "/work/findings")
    path = os.path.join(directory, f"{category.removesuffix('.md')}.md")
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write(
                f"# {category[:-3]}: reproducers from the random-program generators\n\n"
                "Each entry: a minimal program shrunk by hypothesis, the call, and what fmad "
                "does on main (expected: the original value and gradients equal to finite "
                "differences, or an FmadError with file:line).\n"
            )
    with open(path, "a") as fh:
        fh.write(text)
    return text
