"""Property: whatever the bodies, the batch never crashes; each record is a row or a failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies

from .conftest import Db, failed_ids, load_event, record_ids

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
field_values = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
    st.sampled_from(["1.2", "2.00", "1.2.3.4", " 3.4.5 ", "\x00"]),
)
login_like = st.fixed_dictionaries(
    {"user_id": st.one_of(st.text(max_size=130), st.none(), st.integers())},
    optional={
        k: field_values
        for k in ("app_version", "device_type", "ip", "locale", "device_id", "extra")
    },
)
bodies = st.one_of(
    login_like.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=50),
    st.binary(max_size=50).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(bodies, min_size=1, max_size=12))
def test_any_bodies_are_each_written_or_reported(db: Db, handler: Any, batch: list[str]) -> None:
    db.empty()
    event = sqs_event(batch)
    response = handler(event)
    failed = set(failed_ids(response))
    ids = record_ids(event)
    assert failed <= set(ids)
    ledger = {r[0] for r in db.query("SELECT message_id FROM login_etl.ledger")}
    assert ledger == set(ids) - failed  # written exactly when not reported failed
    assert db.count() == len(ledger)


def test_no_raw_ip_or_device_id_in_any_log_line(
    db: Db, handler: Any, captured_logs: Callable[[], str]
) -> None:
    events = [
        load_event(name)
        for name in ("sqs-mixed-batch.json", "sqs-invalid-records.json", "sqs-fifo-batch.json")
    ]
    events.append(sqs_event([m.body for m in login_bodies(200, seed=5, invalid_ratio=0.2)]))
    raw: set[str] = set()
    for event in events:
        for record in event["Records"]:
            try:
                body = json.loads(record["body"])
            except ValueError:
                continue
            if isinstance(body, dict):
                raw |= {str(body[k]).strip() for k in ("ip", "device_id") if body.get(k)}
        handler(event)
        handler(event)  # redelivery logs too
    logs = captured_logs()
    assert "record rejected" in logs and "batch processed" in logs  # we did capture the logs
    leaked = sorted(value for value in raw if value in logs)
    assert leaked == []
