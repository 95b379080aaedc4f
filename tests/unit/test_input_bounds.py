"""Memory and CPU stay bounded whatever producers send (docs/contract.md#length-caps).

A warm container keeps module state across invocations: a cache that kept producer
values of any length grew RSS by tens of MiB on a 128 MB function. Here a fresh
interpreter (``tests/support/rss_probe.py``) runs 50 batches of 1,000 records of
distinct long values (at the caps, and over them) through one warm runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from login_etl import dates as dates_module
from login_etl.dates import SentDates
from tests.conftest import REPO

MIB = 1024 * 1024
# What the function may keep over the 48 batches after the warm-up (48,000 distinct
# records of long values): a few MiB of allocator noise. The entry-bounded version
# cache kept 15.4 MiB more here (the last 4,096 versions, 1,536 of them padded to 16 KB);
# the byte-bounded one holds at most 64 KiB, and growth measured 0.2 MiB.
RSS_GROWTH_MAX = 4 * MIB
SENT_TIMESTAMP_MAX = 32  # docs/contract.md#length-caps


def test_rss_stays_flat_over_many_distinct_long_values_across_warm_invocations() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("handler", ""))}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.rss_probe"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    growth = report["end"] - report["baseline"]
    assert growth < RSS_GROWTH_MAX, f"RSS grew {growth / MIB:.1f} MiB over 48 warm batches"
    # The batches did what they claim: at-cap records written, over-cap ones refused.
    outcomes = report["outcomes"]
    assert outcomes["written"] == 25_000 - 10  # 10 bodies over SQS's maximum
    assert outcomes["too_long"] == 25_000
    assert outcomes["body_too_large"] == 10


def test_sent_timestamp_text_over_its_cap_is_implausible_unread() -> None:
    today = date(2026, 12, 1)
    dates = SentDates(lambda: today)
    padded = "1764547200000".zfill(SENT_TIMESTAMP_MAX)  # 2025-12-01 in ms, at the cap
    assert dates.for_record({"attributes": {"SentTimestamp": padded}}) == "2025-12-01"
    for over in ("0" + padded, "9" * 4_300, "1" * 1_000_000, "1764547200." + "5" * 40):
        assert dates.for_record({"attributes": {"SentTimestamp": over}}) == "2026-12-01"
    assert dates.implausible == 4
    assert getattr(dates_module, "SENT_TIMESTAMP_MAX", None) == SENT_TIMESTAMP_MAX
