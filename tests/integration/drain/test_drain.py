"""``login-etl drain`` end to end in-process: moto SQS, real Postgres."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from localdev.env.sqs import queue_counts
from login_etl.connection_settings import ConnectionSettings
from login_etl.postgres import DatabaseUnavailable, connect
from login_etl.runtime import PipelineRuntime
from login_etl_drain import cli
from login_etl_drain.progress import Stats
from login_etl_drain.runner import Drainer, DrainOptions, StopSwitch
from login_etl_drain.sqs import SqsQueue
from tests.support.drain import (
    PII_KEY,
    Db,
    exercise_bodies,
    login_bodies,
    make_queue,
    send_batched,
    send_one_by_one,
)

pytestmark = pytest.mark.integration
FAST = ["--wait-seconds", "0", "--idle-polls", "1"]


def drain(url: str, *extra: str) -> int:
    return cli.main(["drain", "--queue-url", url, "--region", "us-east-1", *FAST, *extra])


def test_drains_the_exercise_mix_and_leaves_the_bad_message(
    moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = make_queue(moto_sqs, "exercise")
    send_one_by_one(moto_sqs, url, exercise_bodies())

    assert drain(url) == 0

    assert db.count() == 99
    assert queue_counts(moto_sqs, url) == (0, 1)  # the bad one: received, not deleted
    summary = capsys.readouterr().out
    assert "received 100 | written 99 | duplicates 0 | rejected 1" in summary
    assert "missing_user_id 1" in summary


def test_a_second_run_adds_nothing(moto_sqs: Any, db: Db) -> None:
    url, _ = make_queue(moto_sqs, "twice", visibility_timeout=1)
    send_one_by_one(moto_sqs, url, exercise_bodies())
    assert drain(url) == 0
    time.sleep(1.2)  # the rejected message becomes visible again
    assert drain(url) == 0
    assert db.count() == 99


def test_records_written_before_a_crash_are_duplicates_and_get_deleted(
    moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Committed but not deleted (crash in between): the redelivery is a duplicate."""
    url, _ = make_queue(moto_sqs, "crash", visibility_timeout=1)
    send_batched(moto_sqs, url, login_bodies(10))
    queue = SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=0)
    records = queue.receive(10, wait_seconds=0, visibility_timeout=1)
    runtime = PipelineRuntime({"DATABASE_URL": db.url, "PII_HASH_KEY": PII_KEY})
    try:
        runtime.process(records, logger=_NullLog())
    finally:
        runtime.close()
    time.sleep(1.2)

    assert drain(url) == 0

    assert db.count() == 10
    assert queue_counts(moto_sqs, url) == (0, 0)
    assert f"written 0 | duplicates {len(records)}" in capsys.readouterr().out


def test_batch_size_combines_several_receives(
    moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = make_queue(moto_sqs, "combine")
    send_batched(moto_sqs, url, login_bodies(60))
    assert drain(url, "--batch-size", "25") == 0
    assert db.count() == 60
    assert "| 3 batches |" in capsys.readouterr().out  # 25 + 25 + 10


def test_concurrent_workers_write_each_message_once(
    moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four workers, four connections: every message is one row.

    moto's ReceiveMessage is not atomic across threads (it picks visible messages
    without a lock), so it now and then hands one message to two workers. That is
    SQS's at-least-once delivery in miniature: the ledger makes the second copy a
    duplicate. moto's in-flight counter drifts then, so the empty-queue check runs
    against LocalStack (test_e2e_localstack.py::test_drain_rate).
    """
    url, _ = make_queue(moto_sqs, "concurrent")
    send_batched(moto_sqs, url, login_bodies(150))
    assert drain(url, "--concurrency", "4", "--batch-size", "20") == 0
    assert db.query("SELECT count(*), count(DISTINCT user_id) FROM user_logins") == [[150, 150]]
    assert "written 150 | duplicates" in capsys.readouterr().out


def test_large_batches_take_the_streamed_write(
    moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batches above 100 records: two workers, each sink streaming on its own thread.

    320 messages: two batches of 150 and the rest. moto's ReceiveMessage scans the whole queue
    on every call, so the cost grows with the square of the queue (600 messages took 28-56 s).
    """
    url, _ = make_queue(moto_sqs, "large")
    bodies = login_bodies(320)
    bodies[7] = "not json"  # a reject inside a streamed batch: not written, not in the ledger
    send_batched(moto_sqs, url, bodies)
    assert drain(url, "--concurrency", "2", "--batch-size", "150") == 0
    assert db.query("SELECT count(*), count(DISTINCT user_id) FROM user_logins") == [[319, 319]]
    assert db.query("SELECT count(*) FROM login_etl.ledger") == [[319]]
    assert "written 319 |" in capsys.readouterr().out


def test_an_empty_queue_stops_at_once(moto_sqs: Any, db: Db) -> None:
    url, _ = make_queue(moto_sqs, "empty")
    began = time.monotonic()
    assert drain(url) == 0
    assert time.monotonic() - began < 5


def test_no_raw_pii_in_any_output(
    moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = make_queue(moto_sqs, "pii")
    bodies = login_bodies(20)
    broken = [dict(json.loads(b), app_version="not-a-version") for b in login_bodies(5, seed=9)]
    send_batched(moto_sqs, url, bodies + [json.dumps(b) for b in broken])
    assert drain(url, "--verbose") == 0
    out = capsys.readouterr()
    assert "reason=invalid_app_version" in out.err
    for body in [json.loads(b) for b in bodies] + broken:
        for field in ("ip", "device_id"):
            assert body[field] not in out.out + out.err


def test_a_database_failure_mid_run_deletes_nothing(moto_sqs: Any, db: Db) -> None:
    """Statement timeout while another session locks the table: DatabaseUnavailable."""
    url, _ = make_queue(moto_sqs, "dbfail")
    send_batched(moto_sqs, url, login_bodies(30))
    settings = ConnectionSettings.from_url(db.url)
    runtime = short_timeout_runtime(db.url)
    runtime.table_shape()  # connected and prepared before the lock, as the CLI does
    locker = connect(settings)
    locker.run("BEGIN")
    locker.run("LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE")
    switch, stats = StopSwitch(), Stats()
    try:
        queue = SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=0)
        Drainer(
            queue,
            lambda _: runtime,
            DrainOptions(wait_seconds=0, idle_polls=1),
            stats=stats,
            switch=switch,
            rejections=_NullLog(),
        ).run(lambda: None, interrupted=lambda: False)
    finally:
        locker.run("ROLLBACK")
        locker.close()

    assert isinstance(switch.error, DatabaseUnavailable)
    assert stats.snapshot().failed_batches == 1
    assert queue_counts(moto_sqs, url) == (20, 10)  # the failed batch: in flight, not deleted
    assert db.count() == 0


def test_follow_mode_retries_after_a_database_failure(moto_sqs: Any, db: Db) -> None:
    url, _ = make_queue(moto_sqs, "retry", visibility_timeout=1)
    send_batched(moto_sqs, url, login_bodies(20))
    settings = ConnectionSettings.from_url(db.url)
    runtime = short_timeout_runtime(db.url)
    runtime.table_shape()
    locker = connect(settings)
    locker.run("BEGIN")
    locker.run("LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE")
    switch, stats = StopSwitch(), Stats()
    queue = SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=0)
    deadline = time.monotonic() + 60
    locker_released: list[bool] = []

    def tick() -> None:
        # The lock goes once a batch has failed on it (not on a timer: on a slow machine
        # the first batch may come later than any fixed delay).
        if not locker_released and stats.snapshot().failed_batches:
            locker.run("ROLLBACK")
            locker.close()
            locker_released.append(True)
        done = locker_released and db.count() == 20 and queue_counts(moto_sqs, url) == (0, 0)
        if done or time.monotonic() > deadline:
            switch.stop()

    try:
        Drainer(
            queue,
            lambda _: runtime,
            DrainOptions(wait_seconds=1, follow=True, max_backoff_s=1),
            stats=stats,
            switch=switch,
            rejections=_NullLog(),
        ).run(tick, interrupted=lambda: False)
    finally:
        if not locker_released:
            locker.close()  # the server rolls the lock back

    totals = stats.snapshot()
    assert switch.error is None
    assert locker_released, "no batch failed on the locked table"
    assert totals.failed_batches >= 1
    assert db.count() == 20


def short_timeout_runtime(database_url: str) -> PipelineRuntime:
    """The drain's runtime with a 300 ms statement timeout (a locked table fails fast)."""
    env = {"DATABASE_URL": database_url, "DB_STATEMENT_TIMEOUT_MS": "300", "PII_HASH_KEY": PII_KEY}
    return PipelineRuntime(env)


class _NullLog:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass
