"""The streaming write of large batches (claim + COPY on a worker thread) on a real Postgres.

Above ``SMALL_BATCH_ROWS`` message ids, every id is claimed before the batch is parsed;
these tests pin what that must not change: rejected and held-back ids leave no ledger
entry, redeliveries and concurrent copies are written once, and every way the fast path
can fail ends in the careful path or a clean batch failure.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies
from login_etl import records
from login_etl.connection_settings import ConnectionSettings
from login_etl.masking import Masker
from login_etl.pipeline import BatchResult, process_batch
from login_etl.postgres import SMALL_BATCH_ROWS, PostgresSink, sql
from login_etl.postgres.ledger import slot_of
from tests.conftest import on_each_server

from .conftest import PII_KEY, Db, failed_ids, record_ids

pytestmark = on_each_server  # the streamed COPY and its ledger claims: also on PG 10

LARGE = SMALL_BATCH_ROWS + 50
FIFO_ARN = "arn:aws:sqs:us-east-1:000000000000:login-queue.fifo"


def large_event(*, seed: int, invalid_ratio: float = 0.0, count: int = LARGE) -> dict[str, Any]:
    bodies = [m.body for m in login_bodies(count, seed=seed, invalid_ratio=invalid_ratio)]
    return sqs_event(bodies, seed=seed)


def ledger_ids(db: Db) -> set[str]:
    return {r[0] for r in db.query("SELECT message_id FROM login_etl.ledger")}


def written_ids(event: dict[str, Any], response: dict[str, Any]) -> set[str]:
    return set(record_ids(event)) - set(failed_ids(response))


def test_rejected_records_leave_no_ledger_entry(db: Db, handler: Any) -> None:
    event = large_event(seed=1, invalid_ratio=0.2)
    response = handler(event)
    assert 0 < len(failed_ids(response)) < LARGE
    assert db.count() == LARGE - len(failed_ids(response))
    assert ledger_ids(db) == written_ids(event, response)


def test_a_batch_of_only_rejects_writes_nothing(db: Db, handler: Any) -> None:
    event = sqs_event(["not json"] * LARGE, seed=2)
    assert failed_ids(handler(event)) == record_ids(event)
    assert db.count() == 0
    assert ledger_ids(db) == set()


def test_redelivered_large_batch_is_written_once(db: Db, handler: Any) -> None:
    event = large_event(seed=3)
    assert failed_ids(handler(event)) == []
    assert failed_ids(handler(event)) == []  # every id already claimed: all duplicates
    assert db.count() == LARGE


def test_partly_redelivered_batch_writes_only_the_new_messages(db: Db, handler: Any) -> None:
    first = large_event(seed=4)
    assert failed_ids(handler(first)) == []
    second = large_event(seed=5)
    second["Records"][10:30] = first["Records"][10:30]  # 20 redeliveries among new ones
    assert failed_ids(handler(second)) == []
    assert db.count() == 2 * LARGE - 20
    assert ledger_ids(db) == set(record_ids(first)) | set(record_ids(second))


def test_fifo_large_batch_holds_back_everything_after_a_reject(db: Db, handler: Any) -> None:
    bodies = [m.body for m in login_bodies(LARGE, seed=6, invalid_ratio=0)]
    bodies[20] = "not json"
    event = sqs_event(bodies, seed=6, queue_arn=FIFO_ARN)
    response = handler(event)
    assert failed_ids(response) == record_ids(event)[20:]
    assert db.count() == 20
    assert ledger_ids(db) == set(record_ids(event)[:20])


def test_connection_dropped_between_invocations(db: Db, handler: Any) -> None:
    assert failed_ids(handler(large_event(seed=7))) == []
    db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'login-etl' AND datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    assert failed_ids(handler(large_event(seed=8))) == []
    assert db.count() == 2 * LARGE


def test_connection_killed_while_the_claim_waits(db: Db, handler: Any) -> None:
    """The worker's claim blocks on a lock and its backend is killed: retried, written once."""
    handler(large_event(seed=9, count=1))  # warm connection
    event = large_event(seed=10)
    locker = db.connect()
    locker.run("BEGIN")
    # The ledger table of the event's SentTimestamp day (sqs_event's default, 2025-11-24).
    slot_table = sql.slot_table(slot_of(1_764_000_000_000 // 86_400_000))
    locker.run(f"LOCK TABLE {slot_table} IN EXCLUSIVE MODE")
    outcome: dict[str, Any] = {}
    invocation = threading.Thread(target=lambda: outcome.update(response=handler(event)))
    invocation.start()
    try:
        for _ in range(200):
            waiting = db.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'login-etl'"
                " AND wait_event_type = 'Lock' AND datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
            if waiting:
                break
            time.sleep(0.02)
        assert waiting, "the claim never waited on the lock"
        db.query("SELECT pg_terminate_backend(:pid)", pid=waiting[0][0])
    finally:
        locker.run("ROLLBACK")
        locker.close()
        invocation.join(timeout=30)
    assert failed_ids(outcome["response"]) == []
    assert db.count() == 1 + LARGE
    assert ledger_ids(db) >= set(record_ids(event))


@pytest.mark.parametrize("claim_fails_too", [False, True])
def test_an_error_while_parsing_rolls_back_and_the_next_batch_works(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch, claim_fails_too: bool
) -> None:
    earlier = large_event(seed=20)
    if claim_fails_too:  # a redelivered id: the worker's claim fails as well
        assert failed_ids(handler(earlier)) == []
    event = large_event(seed=11)
    event["Records"][0] = earlier["Records"][0]
    original = records.to_row
    calls = {"n": 0}

    def failing_to_row(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 120:
            raise RuntimeError("a bug in the parser")
        return original(*args)

    monkeypatch.setattr("login_etl.pipeline.to_row", failing_to_row)
    with pytest.raises(RuntimeError, match="a bug in the parser"):
        handler(event)
    before = LARGE if claim_fails_too else 0
    assert db.count() == before
    assert len(ledger_ids(db)) == before  # the claims went with the transaction
    monkeypatch.setattr("login_etl.pipeline.to_row", original)
    assert failed_ids(handler(large_event(seed=12))) == []
    assert db.count() == before + LARGE


def test_two_invocations_with_the_same_batch_write_it_once(db: Db) -> None:
    """SQS may hand one message to two consumers at once: their claims serialise."""
    event = large_event(seed=13, count=2_000)
    settings = ConnectionSettings.from_url(db.url)
    sinks = [PostgresSink(settings) for _ in range(2)]
    masker = Masker(PII_KEY.encode())
    results: list[BatchResult] = []
    barrier = threading.Barrier(2)

    class Quiet:
        def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
            pass

    def consume(sink: PostgresSink) -> None:
        sink.table_shape()
        barrier.wait()
        results.append(process_batch(event["Records"], sink=sink, masker=masker, logger=Quiet()))

    threads = [threading.Thread(target=consume, args=(sink,)) for sink in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for sink in sinks:
        sink.close()
    assert len(results) == 2
    assert [r.failed_message_ids for r in results] == [[], []]
    assert sum(r.written for r in results) == 2_000
    assert sum(r.written + r.duplicates for r in results) == 4_000
    assert db.count() == 2_000


def test_the_switch_interval_is_restored(db: Db, handler: Any) -> None:
    before = sys.getswitchinterval()
    assert failed_ids(handler(large_event(seed=14))) == []
    assert sys.getswitchinterval() == before


def test_rows_are_identical_on_both_write_paths(db: Db, handler: Any) -> None:
    """The same messages through one-statement and streaming writes give the same rows."""
    bodies = [m.body for m in login_bodies(LARGE, seed=15, invalid_ratio=0)]
    small = [sqs_event(bodies[i : i + 10], seed=100 + i) for i in range(0, LARGE, 10)]
    for event in small:
        assert failed_ids(handler(event)) == []
    columns = "user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date"
    via_small = db.query(f"SELECT {columns} FROM user_logins ORDER BY user_id")
    db.empty()
    large = sqs_event(bodies, seed=16)
    for i, record in enumerate(large["Records"]):  # same SentTimestamp → same create_date
        record["attributes"] = small[i // 10]["Records"][i % 10]["attributes"]
    assert failed_ids(handler(large)) == []
    assert db.query(f"SELECT {columns} FROM user_logins ORDER BY user_id") == via_small
