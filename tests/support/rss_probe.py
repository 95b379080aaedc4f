"""Many batches of long, distinct values through ONE warm runtime; prints the RSS it saw.

Run in a fresh interpreter (``python -m tests.support.rss_probe``) by
``tests/unit/test_memory_bounds.py``: a warm Lambda container is one process that keeps
whatever a batch leaves behind, so memory held across batches shows as RSS growth.

Every value is new (nothing repeats across records), half of them padded to just under
their cap and half just over it (or, for the body, over SQS's message size). The
over-cap ``app_version`` values are valid versions padded with whitespace: what the
unbounded version cache used to keep. Rows and ledger ids are dropped after each batch
(the database keeps them, not the function), so only what the function itself keeps can
grow. Prints one JSON object: RSS after the warm-up batches and at the end, and the
outcome counts (to show the batches did what they claim).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any

from login_etl.runtime import PipelineRuntime
from tests.support.memory_sink import MemorySink

BATCHES = 50
RECORDS = 1_000
WARM_UP = 2  # batches before the baseline: imports, arenas, the first batch's peak
# The caps of docs/contract.md, spelled out here (not imported) so that the probe runs
# the same records against code without them.
USER_ID, SHORT, VERSION, IP, DEVICE_ID = 128, 32, 100, 64, 256
BODY = 1_048_576
OVER_VERSION = 16_000  # a valid version padded far over the cap: 16 KB a key
ENV = {"DATABASE_URL": "postgresql://u:p@db.invalid:5432/logins", "PII_HASH_KEY": "rss-probe"}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pad(text: str, width: int, k: int) -> str:
    """``text`` in whitespace to ``width`` characters; where it sits varies with ``k``."""
    left = k % (width - len(text) + 1)
    return " " * left + text + " " * (width - len(text) - left)


def login(k: int, over: bool) -> dict[str, Any]:
    extra = 1 if over else 0  # one character over each cap, or exactly at it
    version = f"{k % 2000}.{k // 2000 % 1000}.{k % 997}"
    return {
        "user_id": f"u{k}".ljust(USER_ID + extra, "u"),
        "device_type": f"t{k}".ljust(SHORT + extra, "t"),
        "locale": f"l{k}".ljust(SHORT + extra, "l"),
        "app_version": pad(version, OVER_VERSION if over else VERSION, k),
        "ip": pad(f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}", IP + extra, k),
        "device_id": f"d{k}".ljust(DEVICE_ID + extra, "d"),
    }


def batch(number: int) -> list[dict[str, Any]]:
    records = []
    others = ("user_id", "ip", "device_id", "device_type", "locale")
    for i in range(RECORDS):
        k = number * RECORDS + i
        fields = login(k, over=False)  # even i: every field at its cap
        if i % 2 == 1:
            over = login(k, over=True)
            if i % 10 == 1:  # every field over (rejected at the first one)
                fields = over
            elif i % 10 == 3:  # one other field over, each in turn
                name = others[(i // 10) % len(others)]
                fields = {**fields, name: over[name]}
            else:  # the attack: a valid version padded far over the cap
                fields = {**fields, "app_version": over["app_version"]}
        body = json.dumps(fields)
        if i == 0 and number % 5 == 0:
            body = json.dumps({**fields, "filler": "f" * BODY})  # over SQS's maximum
        records.append(
            {
                "messageId": f"m-{k}",
                "body": body,
                "attributes": {"SentTimestamp": str(1_764_547_200_000 + k)},
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:login-queue",
            }
        )
    return records


class _Quiet:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass


def main() -> None:
    sink = MemorySink()
    runtime = PipelineRuntime(dict(ENV), sink_factory=lambda settings, **_: sink)
    outcomes: Counter[str] = Counter()
    baseline = 0
    for number in range(BATCHES):
        result = runtime.process(batch(number), logger=_Quiet())
        outcomes["written"] += result.written
        outcomes.update(result.rejections)
        sink.rows.clear()  # the database's, not the function's
        sink.ledger.clear()
        sink.writes.clear()
        if number == WARM_UP - 1:
            baseline = rss_bytes()
    json.dump({"baseline": baseline, "end": rss_bytes(), "outcomes": outcomes}, sys.stdout)


if __name__ == "__main__":
    main()
