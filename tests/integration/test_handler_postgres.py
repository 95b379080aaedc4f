"""lambda_handler against a real Postgres: rows, masking, ledger, both DDLs."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from localdev.lambda_event import sqs_event
from tests.conftest import on_each_server

from .conftest import PII_KEY, Db, failed_ids, load_event, record_ids

pytestmark = on_each_server  # both DDLs, the ledger, the view: also on PG 10


def expected_mask(canonical: str) -> str:
    return hmac.new(PII_KEY.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def bodies(event: dict[str, Any]) -> list[Any]:
    out = []
    for record in event["Records"]:
        try:
            out.append(json.loads(record["body"]))
        except ValueError:
            out.append(None)
    return out


def test_mixed_batch_writes_logins_and_reports_the_rest(db: Db, handler: Any) -> None:
    event = load_event("sqs-mixed-batch.json")
    response = handler(event)

    ids = record_ids(event)
    parsed = bodies(event)
    bad = [i for i, body in zip(ids, parsed, strict=True) if not (body and "user_id" in body)]
    assert len(bad) == 2  # the non-login and the truncated JSON
    assert failed_ids(response) == bad

    rows = db.query(
        "SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version,"
        " create_date FROM user_logins ORDER BY user_id"
    )
    logins = sorted((b for b in parsed if b and "user_id" in b), key=lambda b: b["user_id"])
    assert len(rows) == len(logins) == 7
    sent = {
        b["user_id"]: r
        for b, r in zip(parsed, event["Records"], strict=True)
        if b and "user_id" in b
    }
    for row, login in zip(rows, logins, strict=True):
        user_id, device_type, masked_ip, masked_device_id, locale, _version, created = row
        assert user_id == login["user_id"]
        assert device_type == login["device_type"]
        assert locale == login["locale"]
        assert masked_device_id == expected_mask(login["device_id"].strip())
        sent_ms = int(sent[user_id]["attributes"]["SentTimestamp"])
        assert created == datetime.fromtimestamp(sent_ms / 1000, UTC).date()
        assert masked_ip not in (None, login["ip"]) and len(masked_ip) == 64
    by_user = {row[0]: row for row in rows}
    versions = {b["user_id"]: b["app_version"] for b in logins}
    expected_versions = {
        "2.3.0": 2003000,
        "0.96": 96000,
        "2.00": 2000000,
        "0.60": 60000,
        None: None,
        "7.31": 7031000,
    }
    for user_id, version in versions.items():
        if version in expected_versions:
            assert by_user[user_id][5] == expected_versions[version]
    ips = {b["user_id"]: b["ip"] for b in logins}
    for user_id, ip in ips.items():
        if ip.strip() == "::ffff:199.172.111.135":
            assert by_user[user_id][2] == expected_mask("199.172.111.135")
        elif ip == "2001:DB8:0:0::1":
            assert by_user[user_id][2] == expected_mask("2001:db8::1")
        else:
            assert by_user[user_id][2] == expected_mask(ip)


def test_redelivered_batch_adds_no_row(db: Db, handler: Any) -> None:
    event = load_event("sqs-mixed-batch.json")
    first = handler(event)
    rows_after_first = db.count()
    second = handler(event)
    assert db.count() == rows_after_first == 7
    assert failed_ids(second) == failed_ids(first)  # the rejects stay rejects, the rest succeed


def test_identical_bodies_with_different_message_ids_are_two_logins(db: Db, handler: Any) -> None:
    body = load_event("sqs-single-login.json")["Records"][0]["body"]
    event = sqs_event([body, body], seed=3)
    assert failed_ids(handler(event)) == []
    assert db.count() == 2


def test_same_message_twice_in_one_batch_is_written_once(db: Db, handler: Any) -> None:
    event = load_event("sqs-single-login.json")
    event["Records"] = event["Records"] * 2
    assert failed_ids(handler(event)) == []
    assert db.count() == 1


def test_every_invalid_record_is_reported(db: Db, handler: Any) -> None:
    event = load_event("sqs-invalid-records.json")
    response = handler(event)
    assert failed_ids(response) == record_ids(event)
    assert db.count() == 0
    assert db.query("SELECT count(*) FROM login_etl.ledger")[0][0] == 0


def test_create_date_falls_back_to_today_without_sent_timestamp(db: Db, handler: Any) -> None:
    before = datetime.now(UTC).date()
    assert failed_ids(handler(load_event("sqs-no-sent-timestamp.json"))) == []
    (created,) = db.query("SELECT create_date FROM user_logins")[0]
    assert before <= created <= datetime.now(UTC).date()


def test_legacy_ddl_gets_the_version_text_and_no_create_date(legacy_db: Db, handler: Any) -> None:
    event = load_event("sqs-mixed-batch.json")
    handler(event)
    rows = legacy_db.query("SELECT user_id, app_version FROM user_logins")
    sent = {b["user_id"]: b.get("app_version") for b in bodies(event) if b and "user_id" in b}
    assert len(rows) == 7
    for user_id, app_version in rows:
        assert app_version == sent[user_id]  # "2.00" stays "2.00": the string as sent


def test_legacy_ddl_accepts_versions_an_integer_column_refuses(legacy_db: Db, handler: Any) -> None:
    body = json.dumps({"user_id": "u", "app_version": "1.2.3.4-beta"})
    assert failed_ids(handler(sqs_event([body]))) == []
    assert legacy_db.query("SELECT app_version FROM user_logins") == [["1.2.3.4-beta"]]


def test_integer_column_rejects_what_it_cannot_encode(db: Db, handler: Any) -> None:
    event = sqs_event(
        [json.dumps({"user_id": "u", "app_version": v}) for v in ("1.2.3.4", 2.5, "abc")]
    )
    assert failed_ids(handler(event)) == record_ids(event)
    assert db.count() == 0


def test_analyst_view_decodes_app_version(db: Db, handler: Any) -> None:
    handler(sqs_event([json.dumps({"user_id": "u", "app_version": "0.60"})]))
    assert db.query("SELECT app_version, app_version_text FROM login_etl.user_logins_decoded") == [
        [60000, "0.60.0"]
    ]


def test_masks_let_analysts_find_duplicates(db: Db, handler: Any) -> None:
    logins = [
        {"user_id": "a", "ip": "10.0.0.1", "device_id": "111-22-3333"},
        {"user_id": "b", "ip": " ::ffff:10.0.0.1", "device_id": "111-22-3333 "},
        {"user_id": "c", "ip": "10.0.0.2", "device_id": None},
    ]
    handler(sqs_event([json.dumps(x) for x in logins]))
    groups = db.query(
        "SELECT masked_ip, count(*) FROM user_logins GROUP BY masked_ip HAVING count(*) > 1"
    )
    assert groups == [[expected_mask("10.0.0.1"), 2]]
    assert db.query("SELECT masked_device_id FROM user_logins WHERE user_id = 'c'") == [[None]]
