"""The soak's short variant: ``localdev.soak`` with 1,500 messages and every fault on.

Same code as ``make soak`` (20,000 messages): a dedicated Postgres, its own stack, messages sent
at a steady rate while Postgres restarts, warm connections are killed, the table is locked past
the statement timeout and committed messages are redelivered. Pass = lost 0, duplicates 0,
DLQ == the invalid messages sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev.soak.faults import KINDS, FaultSettings
from localdev.soak.run import STACK_PARAMS, SoakConfig, run_soak

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# A valid message is dead-lettered only after failing MaxReceiveCount times, at least
# VisibilityTimeout apart: (8 - 1) x 3 s = 21 s of failures, far above a 4 s outage.
PARAMS = dict(STACK_PARAMS) | {
    "MaxReceiveCount": "8",
    "VisibilityTimeout": "3",
    "FunctionTimeout": "3",
}
FAULTS = FaultSettings(every_s=(1.5, 3.0), outage_s=(2.0, 4.0), lock_s=(3.0, 4.0))


def test_short_soak_with_faults(localstack_endpoint: str, built_function: Path) -> None:
    report = run_soak(
        SoakConfig(
            messages=1_500,
            seed=11,
            faults=FAULTS,
            rate=75,  # a 20 s stream, so the faults hit it mid-flow
            params=PARAMS,
            drain_timeout_s=200,
            build_dir=built_function,
            build=False,
        )
    )
    print("\n".join(report.lines()))
    assert report.drained
    assert report.problems == []
    assert report.counts.lost == 0
    assert report.counts.duplicates == 0
    assert report.counts.rows == report.valid
    assert report.dlq == report.invalid == report.invalid_in_dlq
    assert report.valid_in_dlq == 0
    assert {f.split()[2] for f in report.faults} == set(KINDS)  # each fault hit at least once
    assert report.ok
