"""create_date through lambda_handler: SentTimestamp in ms (SQS) or s (LocalStack < 3.0).

Both write paths: a small batch (one statement) and a streamed one (> 100 records).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import pytest

from localdev import traffic
from localdev.lambda_event import sqs_event
from tests.conftest import on_each_server

from .conftest import Db, failed_ids

pytestmark = on_each_server

SENT = datetime(2025, 3, 9, 23, 59, 58, tzinfo=UTC)  # a day boundary two seconds later


@pytest.mark.parametrize("size", [4, 150])
def test_seconds_milliseconds_and_implausible_timestamps(
    db: Db, handler: Any, size: int, captured_logs: Any
) -> None:
    rng = random.Random(size)
    event = sqs_event([json.dumps(traffic.login(rng)) for _ in range(size)], seed=size)
    seconds = int(SENT.timestamp())
    forms = [str(seconds * 1000), str(seconds), str(seconds + 3), "1700"]  # 1700: implausible
    for i, record in enumerate(event["Records"]):
        record["attributes"]["SentTimestamp"] = forms[i % 4]

    assert failed_ids(handler(event)) == []

    by_user = dict(db.query("SELECT user_id, create_date FROM user_logins"))
    today = datetime.now(UTC).date()
    expected = [date(2025, 3, 9), date(2025, 3, 9), date(2025, 3, 10), today]
    for i, record in enumerate(event["Records"]):
        created = by_user[json.loads(record["body"])["user_id"]]
        assert created == expected[i % 4] or (i % 4 == 3 and created > today)  # midnight
    metrics = [json.loads(line) for line in captured_logs().splitlines() if '"_aws"' in line]
    counted = [m.get("ImplausibleSentTimestamps") for m in metrics]
    assert [[size // 4]] == [c for c in counted if c is not None]  # EMF: a list of values
