"""Batch-level rules against a real Postgres: failures, isolation, FIFO, connections."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pg8000.core
import pytest

from localdev.env.postgres import free_port
from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies
from login_etl.errors import ConfigurationError, SchemaError
from login_etl.postgres import SMALL_BATCH_ROWS, DatabaseUnavailable
from tests.conftest import Databases, on_each_server

from .conftest import Db, failed_ids, load_event, record_ids

pytestmark = on_each_server  # both write paths, bisection, the schema step: also on PG 10

FIFO_ARN = "arn:aws:sqs:us-east-1:000000000000:login-queue.fifo"


def valid_event(count: int, *, seed: int = 0, queue_arn: str | None = None) -> dict[str, Any]:
    bodies = [m.body for m in login_bodies(count, seed=seed, invalid_ratio=0)]
    kwargs = {"queue_arn": queue_arn} if queue_arn else {}
    return sqs_event(bodies, seed=seed, **kwargs)


# Far above the 1 s timeouts the tests set, far below "hangs until the Lambda's own timeout".
UNBOUNDED_WAIT_S = 30


def backend_pids(db: Db) -> list[int]:
    rows = db.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'login-etl'"
        " AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    return [r[0] for r in rows]


# -- database unavailable: bounded wait, nothing reported as success ----------------


def test_refused_connection_fails_the_batch_quickly(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:x@127.0.0.1:{free_port()}/postgres")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        handler(valid_event(5))
    # Generous: what this guards against is a retry loop or an unbounded wait, not a slow machine.
    assert time.monotonic() - started < UNBOUNDED_WAIT_S


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and then never answers (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_is_bounded(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch, silent_server: int
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://postgres:x@127.0.0.1:{silent_server}/postgres"
    )
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "1000")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        handler(valid_event(3))
    assert time.monotonic() - started < UNBOUNDED_WAIT_S  # the timeouts above are 1 s


@pytest.mark.parametrize("size", [4, SMALL_BATCH_ROWS + 50])  # one statement; streamed
def test_statement_blocked_by_a_lock_times_out_and_commits_nothing(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "500")
    event = valid_event(size)
    locker = db.connect()
    try:
        locker.run("BEGIN")
        locker.run("LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(DatabaseUnavailable) as raised:
            handler(event)
        # The server's own timeout, while the lock was still held: a lock or statement
        # timeout's SQLSTATE, not a socket timeout (that would be a lost connection,
        # retried once, then "connection lost during ...").
        assert re.search(r"failed: (55P03|57014) ", str(raised.value)), str(raised.value)
        held = "SELECT count(*) FROM pg_locks WHERE granted AND pid = pg_backend_pid()"
        assert locker.run(held + " AND mode = 'AccessExclusiveLock'")[0][0] == 1
        locker.run("ROLLBACK")
    finally:
        locker.close()
    assert db.count() == 0
    assert db.query("SELECT count(*) FROM login_etl.ledger")[0][0] == 0
    # The retry (SQS redelivery) then writes everything exactly once.
    assert failed_ids(handler(event)) == []
    assert db.count() == size


# -- one bad row: isolate it, write the rest -----------------------------------------


@pytest.fixture
def poison_check(db: Db) -> Iterator[Db]:
    """A constraint only Postgres knows about, so a valid-looking row fails the bulk write."""
    db.query("ALTER TABLE user_logins ADD CONSTRAINT no_poison CHECK (user_id <> 'poison')")
    yield db
    db.query("ALTER TABLE user_logins DROP CONSTRAINT no_poison")


def poisoned_event(position: int, count: int, *, queue_arn: str | None = None) -> dict[str, Any]:
    event = valid_event(count, seed=position, queue_arn=queue_arn)
    record = event["Records"][position]
    record["body"] = json.dumps(json.loads(record["body"]) | {"user_id": "poison"})
    return event


@pytest.mark.parametrize("size", [12, SMALL_BATCH_ROWS + 50])  # both write paths
def test_one_bad_row_is_isolated_and_the_rest_written(
    poison_check: Db, handler: Any, size: int
) -> None:
    event = poisoned_event(5, size)
    response = handler(event)
    assert failed_ids(response) == [record_ids(event)[5]]
    assert poison_check.count() == size - 1
    # Redelivery of the whole batch: the others are duplicates now, the poison fails again.
    assert failed_ids(handler(event)) == [record_ids(event)[5]]
    assert poison_check.count() == size - 1


def test_fifo_bad_row_fails_every_later_record(poison_check: Db, handler: Any) -> None:
    event = poisoned_event(2, 6, queue_arn=FIFO_ARN)
    response = handler(event)
    assert failed_ids(response) == record_ids(event)[2:]
    assert poison_check.count() == 2


@pytest.mark.parametrize("size", [12, SMALL_BATCH_ROWS + 50])  # both write paths
def test_fifo_bad_row_holds_back_only_its_own_group(
    poison_check: Db, handler: Any, size: int
) -> None:
    """Two message groups alternate; the database refuses a row of group "a"."""
    event = poisoned_event(4, size, queue_arn=FIFO_ARN)
    for index, record in enumerate(event["Records"]):
        record["attributes"]["MessageGroupId"] = "ab"[index % 2]
    ids = record_ids(event)
    held = [m for i, m in enumerate(ids) if i >= 4 and i % 2 == 0]  # group a from the refusal
    assert failed_ids(handler(event)) == held
    assert poison_check.count() == size - len(held)
    # Redelivered as SQS would (group a from its failed message on): the same one fails.
    assert (
        failed_ids(handler({"Records": [r for r in event["Records"] if r["messageId"] in held]}))
        == held
    )


def test_fifo_rejected_record_holds_back_the_rest_of_the_batch(db: Db, handler: Any) -> None:
    event = load_event("sqs-fifo-batch.json")
    response = handler(event)
    assert failed_ids(response) == record_ids(event)[2:]
    assert db.count() == 2


def test_standard_queue_rejected_record_does_not_hold_back_the_rest(db: Db, handler: Any) -> None:
    event = load_event("sqs-fifo-batch.json")
    for record in event["Records"]:
        record["eventSourceARN"] = record["eventSourceARN"].removesuffix(".fifo")
    assert failed_ids(handler(event)) == [record_ids(event)[2]]
    assert db.count() == 4


# -- connections ---------------------------------------------------------------------


def test_warm_connection_is_reused_and_reopened_when_dropped(db: Db, handler: Any) -> None:
    handler(valid_event(2, seed=1))
    (pid,) = backend_pids(db)
    handler(valid_event(2, seed=2))
    assert backend_pids(db) == [pid]
    db.query("SELECT pg_terminate_backend(:pid)", pid=pid)
    assert failed_ids(handler(valid_event(2, seed=3))) == []
    assert db.count() == 6
    assert backend_pids(db) not in ([], [pid])


def test_round_trips_per_batch_do_not_grow_with_the_batch(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler(valid_event(1, seed=9))  # connect and introspect outside the count
    counts: list[int] = []
    calls = {"n": 0}
    for name in ("execute_simple", "execute_unnamed", "execute_named"):
        original = getattr(pg8000.core.CoreConnection, name)

        def counted(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pg8000.core.CoreConnection, name, counted)
    sizes = (1, SMALL_BATCH_ROWS, SMALL_BATCH_ROWS + 1, 2000)
    for seed, size in enumerate(sizes, start=10):
        calls["n"] = 0
        assert failed_ids(handler(valid_event(size, seed=seed))) == []
        counts.append(calls["n"])
    assert counts[0] == counts[1] == 1  # one statement: claim ids + insert rows, autocommit
    assert counts[2] == counts[3] == 4  # BEGIN, claim ids, COPY rows, COMMIT
    assert db.count() == 1 + sum(sizes)


# -- configuration and schema: fail closed with a clear error ------------------------


def test_no_masking_key_refuses_to_process(
    db: Db, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PII_HASH_KEY")
    with pytest.raises(ConfigurationError, match="no masking key configured"):
        handler(valid_event(3))
    assert db.count() == 0


def test_missing_table_is_a_clear_error(
    databases: Databases, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", databases.create(init=False))
    monkeypatch.setenv("PII_HASH_KEY", "k")
    with pytest.raises(SchemaError, match="user_logins does not exist; run `make db-init`"):
        handler(valid_event(1))


def test_db_init_is_idempotent_and_never_alters_user_logins(databases: Databases) -> None:
    from tests.conftest import LEGACY_DDL

    url = databases.create(LEGACY_DDL)
    db = Db(url)
    columns = (
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = 'user_logins' ORDER BY ordinal_position"
    )
    before = db.query(columns)
    from login_etl.postgres.schema import init_schema

    conn = db.connect()
    try:
        init_schema(conn)
        init_schema(conn)
    finally:
        conn.close()
    assert db.query(columns) == before
    assert [c[0] for c in before] == [
        "user_id",
        "app_version",
        "device_type",
        "masked_ip",
        "locale",
        "masked_device_id",
    ]
