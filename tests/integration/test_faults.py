"""Faults around the handler: database restarts, crash after commit, secrets unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.env import postgres as local_postgres
from localdev.env.postgres import free_port
from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies
from login_etl.errors import ConfigurationError
from login_etl.postgres import DatabaseUnavailable, PostgresSink
from tests.conftest import server_data_dir, with_database

from .conftest import Db, failed_ids, record_ids

pytestmark = pytest.mark.integration


@pytest.fixture
def own_server(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[local_postgres.LocalPostgres, Db]]:
    """A server of the test's own, so the test may stop and restart it."""
    with server_data_dir("pgown") as data_dir:
        yield from _own_server(data_dir, monkeypatch)


def _own_server(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[local_postgres.LocalPostgres, Db]]:
    server = local_postgres.start(data_dir, port=0)
    from localdev.env.database import init_database

    init_database(server.url)
    monkeypatch.setenv("DATABASE_URL", server.url)
    monkeypatch.setenv("PII_HASH_KEY", "fault-key")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    try:
        yield server, Db(with_database(server.url, "postgres"))
    finally:
        local_postgres.stop(data_dir, mode="immediate")


def test_postgres_restart_mid_stream_loses_and_doubles_nothing(
    own_server: tuple[local_postgres.LocalPostgres, Db], handler: Any
) -> None:
    server, db = own_server
    messages = login_bodies(600, seed=21, invalid_ratio=0.02)
    batches = [
        sqs_event([m.body for m in messages[i : i + 20]], seed=1000 + i)
        for i in range(0, len(messages), 20)
    ]
    pending = list(batches)  # what SQS still holds; a failed batch is redelivered later
    rejected: set[str] = set()
    unavailable = 0
    for step in range(200):
        if not pending:
            break
        if step == 8:
            local_postgres.stop(server.data_dir, mode="immediate")  # crash, no clean shutdown
        if step == 14:
            local_postgres.start(server.data_dir, port=server.port)
        event = pending.pop(0)
        try:
            response = handler(event)
        except DatabaseUnavailable:
            unavailable += 1
            pending.append(event)  # whole batch redelivered after the visibility timeout
            continue
        rejected |= set(failed_ids(response))  # these go on to the DLQ (tested elsewhere)
    assert pending == []
    assert unavailable >= 6  # the outage was real
    assert db.count() == sum(m.valid for m in messages)
    duplicates = "SELECT count(*) - count(DISTINCT user_id) FROM user_logins"
    assert db.query(duplicates) == [[0]]
    invalid_ids = {
        r["messageId"]
        for e, start in zip(batches, range(0, len(messages), 20), strict=True)
        for r, m in zip(e["Records"], messages[start : start + 20], strict=True)
        if not m.valid
    }
    assert rejected == invalid_ids


def test_crash_after_commit_then_redelivery_adds_no_row(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sqs_event([m.body for m in login_bodies(30, seed=4, invalid_ratio=0)], seed=4)
    original = PostgresSink.write

    def write_then_crash(self: PostgresSink, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)  # committed
        raise RuntimeError("simulated crash after commit, before the response")

    monkeypatch.setattr(PostgresSink, "write", write_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        handler(event)
    assert db.count() == 30
    monkeypatch.setattr(PostgresSink, "write", original)
    assert failed_ids(handler(event)) == []  # redelivered: every record a duplicate
    assert db.count() == 30


def test_unreachable_secrets_manager_fails_closed_and_fast(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.delenv("PII_HASH_KEY")
    monkeypatch.setenv(
        "PII_HASH_KEY_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:000000000000:secret:pii-key"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    event = sqs_event([m.body for m in login_bodies(5, seed=8, invalid_ratio=0)], seed=8)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="cannot read the masking key secret"):
        handler(event)
    assert time.monotonic() - started < 15
    assert db.count() == 0
    assert record_ids(event)  # nothing reported; the whole batch stays queued
