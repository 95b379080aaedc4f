"""The length caps end to end: what is at a cap fits the table, what is over is refused
before it costs anything (docs/contract.md#length-caps), against a real Postgres."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from localdev.lambda_event import sqs_event

from .conftest import PII_KEY, Db, failed_ids, record_ids

SQS_MAX_BODY = 1_048_576  # bytes: SQS's maximum message size since 2025 (was 256 KiB)
AT_CAP = {
    "user_id": "\u00e9" * 128,  # varchar counts characters, not bytes
    "device_type": "t" * 32,
    "locale": "l" * 32,
    "ip": "2001:db8::1".center(64),
    "device_id": "593-47-5928".ljust(256, "x"),
}


def mask(canonical: str) -> str:
    return hmac.new(PII_KEY.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def rejected_reasons(logs: str) -> dict[str, str]:
    lines = [json.loads(line) for line in logs.splitlines() if '"record rejected"' in line]
    return {line["message_id"]: line["reason"] for line in lines}


@pytest.mark.parametrize("ddl", ["db", "legacy_db"])
def test_values_at_every_cap_are_written_and_over_them_refused(
    request: pytest.FixtureRequest, handler: Any, captured_logs: Any, ddl: str
) -> None:
    table: Db = request.getfixturevalue(ddl)
    legacy = ddl == "legacy_db"
    version = "2.3.0".center(100)
    at_cap = json.dumps({**AT_CAP, "app_version": version})
    over = [
        json.dumps({**AT_CAP, "app_version": version, field: AT_CAP[field] + "z"})
        for field in AT_CAP
    ] + [json.dumps({**AT_CAP, "app_version": version + " "})]
    event = sqs_event([at_cap, *over])
    response = handler(event)
    ids = record_ids(event)
    assert failed_ids(response) == ids[1:]
    assert set(rejected_reasons(captured_logs()).values()) == {"too_long"}
    columns = "user_id, device_type, locale, masked_ip, masked_device_id, app_version"
    [row] = table.query(f"SELECT {columns} FROM user_logins")
    assert tuple(row) == (
        AT_CAP["user_id"],
        AT_CAP["device_type"],
        AT_CAP["locale"],
        mask("2001:db8::1"),
        mask(AT_CAP["device_id"]),
        version if legacy else 2_003_000,
    )


def test_body_of_sqs_maximum_written_one_over_refused(
    db: Db, handler: Any, captured_logs: Any
) -> None:
    login = {"user_id": "u", "ip": "10.0.0.1", "padding": ""}
    room = SQS_MAX_BODY - len(json.dumps(login))
    largest = json.dumps({**login, "padding": "p" * room})
    too_large = json.dumps({**login, "padding": "p" * (room + 1)})
    assert len(largest.encode()) == SQS_MAX_BODY
    event = sqs_event([largest, too_large])
    response = handler(event)
    assert failed_ids(response) == record_ids(event)[1:]
    assert rejected_reasons(captured_logs()) == {record_ids(event)[1]: "body_too_large"}
    assert db.count() == 1
