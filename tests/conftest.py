"""pytest options for the suite: ``--slow`` runs the random-program hunt at full size.

The random-program tests (tests/test_random_programs.py) read their hypothesis settings
from the profile ``randprog-active``: ``randprog`` by default (deterministic, no example
database, no shrinking, about 2,000 programs in all) or ``randprog-slow`` with ``--slow``
(ten times as many programs, shrinking on, for a run before resolving an issue).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings

# Per kind: five kinds, so 2,000 programs by default and 20,000 with --slow.
EXAMPLES = 400
SLOW_EXAMPLES = 4000

settings.register_profile(
    "randprog",
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # CI only needs to know that a kind fails; `python -m tests.hunt KIND` shrinks.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "randprog-slow",
    parent=settings.get_profile("randprog"),
    max_examples=SLOW_EXAMPLES,
    phases=list(Phase),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help=f"run the random-program tests with {SLOW_EXAMPLES} programs per kind",
    )


def pytest_configure(config: pytest.Config) -> None:
    chosen = "randprog-slow" if config.getoption("--slow") else "randprog"
    settings.register_profile("randprog-active", parent=settings.get_profile(chosen))
