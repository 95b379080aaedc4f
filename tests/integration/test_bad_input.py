"""Bad input at scale: whatever the bodies, the invocation never fails as a whole; each
record is a correct row or reported failed with a reason in the logs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdev.lambda_event import sqs_event
from login_etl.postgres import SMALL_BATCH_ROWS

from .conftest import Db, failed_ids, record_ids

pytestmark = pytest.mark.integration

SQS_MAX_BODY = 262_144  # bytes: the classic SQS message size limit

unicode_edge = st.sampled_from(
    ["\u0000", "\ud800", "\udfff", "\ufeff", "\u202e", "\U0001f600", "e\u0301", "\uffff", "\u2028"]
)
edge_text = st.lists(st.one_of(unicode_edge, st.text(max_size=5)), max_size=6).map("".join)
field = st.one_of(st.none(), edge_text, st.integers(), st.floats(), st.booleans(), st.just(10**40))


def _body(kind: str, fill: str, depth: int) -> str:
    if kind == "oversized":
        login = {"user_id": "u", "ip": "10.0.0.1", "padding": ""}
        room = SQS_MAX_BODY - len(json.dumps(login).encode())
        login["padding"] = fill[:1] * room
        return json.dumps(login)
    if kind == "deep":
        return "[" * depth + "]" * depth
    if kind == "deep_object":
        return '{"user_id": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    return '{"user_id": "u", "app_version": ' + fill + "}"  # huge numbers


special = st.builds(
    _body,
    st.sampled_from(["oversized", "deep", "deep_object", "huge"]),
    st.sampled_from(["1" * 5000, "1e999999", "9" * 400, "x"]),
    st.sampled_from([50, 5_000, 200_000]),
)
logins = st.fixed_dictionaries(
    {"user_id": st.one_of(edge_text, st.just("u"))},
    optional={k: field for k in ("ip", "device_id", "locale", "device_type", "app_version")},
).map(lambda d: json.dumps(d, ensure_ascii=False))
raw_bytes = st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace"))
bodies = st.one_of(special, logins, raw_bytes, edge_text)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(bodies, min_size=1, max_size=10))
def test_bad_input_never_fails_the_batch(
    db: Db, handler: Any, captured_logs: Callable[[], str], batch: list[str]
) -> None:
    db.empty()
    event = sqs_event(batch)
    response = handler(event)  # must not raise
    failed = set(failed_ids(response))
    written = {r[0] for r in db.query("SELECT message_id FROM login_etl.ledger")}
    assert written == set(record_ids(event)) - failed
    assert db.count() == len(written)
    logs = captured_logs()
    for message_id in failed:  # every failure has its reason logged
        assert f'"message_id":"{message_id}"' in logs
    rows = db.query("SELECT masked_ip, masked_device_id FROM user_logins")
    for masked_ip, masked_device_id in rows:  # written rows hold masks, never raw values
        for mask in (masked_ip, masked_device_id):
            assert mask is None or (len(mask) == 64 and set(mask) <= set("0123456789abcdef"))


def test_a_full_batch_of_maximum_size_bodies(db: Db, handler: Any) -> None:
    body = _body("oversized", "z", 0)
    assert len(body.encode()) == SQS_MAX_BODY
    event = sqs_event([body] * 10)
    assert failed_ids(handler(event)) == []  # unknown keys are ignored, however large
    assert db.count() == 10


copy_text_values = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=32
) | st.sampled_from(["\\N", "\\.", "\\", "\t", "\n", "\r\n", "a\\tb", " ", ""])


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(copy_text_values, min_size=3, max_size=3))
def test_copy_path_stores_any_text_exactly(db: Db, handler: Any, values: list[str]) -> None:
    """Above SMALL_BATCH_ROWS the rows go through COPY's text format: escapes must hold."""
    db.empty()
    device_type, locale, user_suffix = values
    logins = [
        {"user_id": f"u{i}{user_suffix}", "device_type": device_type, "locale": locale}
        for i in range(SMALL_BATCH_ROWS + 1)
    ]
    event = sqs_event([json.dumps(x) for x in logins])
    assert failed_ids(handler(event)) == []
    stored = db.query("SELECT user_id, device_type, locale FROM user_logins ORDER BY user_id")
    expected = sorted([x["user_id"], device_type, locale] for x in logins)
    assert sorted(stored) == expected
