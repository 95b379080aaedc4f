"""The ledger ring on real Postgres (default and 10): exactly-once inside the queue's
retention, flat size after it, pruning that never holds up a write, and the migration
of a single-table ledger.

Days are driven by the sink's clock (``today``) and the records' ``SentTimestamp``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from localdev.lambda_event import sqs_record
from localdev.traffic import login_bodies
from login_etl.connection_settings import ConnectionSettings
from login_etl.dates import epoch_day
from login_etl.masking import Masker
from login_etl.pipeline import BatchResult, process_batch
from login_etl.postgres import SMALL_BATCH_ROWS, DatabaseUnavailable, PostgresSink, sql
from login_etl.postgres.ledger import SLOTS, slot_of
from login_etl.postgres.schema import init_schema
from tests.conftest import Databases, Db, on_each_server, wait_for

from .conftest import PII_KEY

pytestmark = on_each_server

DAY0 = date(2026, 3, 2)
RETENTION_S = 4 * 86_400  # SQS's default: the window is 4 + 1 days
LARGE = SMALL_BATCH_ROWS + 40  # streamed


class Quiet:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass


class Clock:
    def __init__(self, today: date) -> None:
        self.today = today

    def __call__(self) -> date:
        return self.today


def sent_ms(day: date, offset_ms: int = 0) -> int:
    return epoch_day(day) * 86_400_000 + 3_600_000 + offset_ms


def batch(count: int, day: date, *, seed: int, prefix: str | None = None) -> list[dict[str, Any]]:
    bodies = [m.body for m in login_bodies(count, seed=seed, invalid_ratio=0)]
    prefix = prefix or f"s{seed}"
    return [
        sqs_record(body, message_id=f"{prefix}-{i}", sent_timestamp_ms=sent_ms(day, i))
        for i, body in enumerate(bodies)
    ]


class Consumer:
    """A PostgresSink with its own clock; ``new_session`` models another Lambda container."""

    def __init__(self, url: str, today: date, *, statement_timeout_ms: int = 10_000) -> None:
        self.url, self.clock = url, Clock(today)
        self.settings = replace(
            ConnectionSettings.from_url(url), statement_timeout_ms=statement_timeout_ms
        )
        self.sink = self._sink()

    def _sink(self) -> PostgresSink:
        return PostgresSink(self.settings, queue_retention_seconds=RETENTION_S, today=self.clock)

    def new_session(self) -> None:
        self.sink.close()
        self.sink = self._sink()

    def write(self, records: list[dict[str, Any]]) -> BatchResult:
        result = process_batch(
            records,
            sink=self.sink,
            masker=Masker(PII_KEY.encode()),
            logger=Quiet(),
            today=self.clock,
        )
        assert result.failed_message_ids == []
        return result

    def close(self) -> None:
        self.sink.close()


@pytest.fixture
def consumer(db: Db) -> Iterator[Consumer]:
    found = Consumer(db.url, DAY0)
    yield found
    found.close()


def slot_days(db: Db) -> dict[int, date | None]:
    return dict(db.query(f"SELECT slot, day FROM {sql.LEDGER_SLOT_DAYS}"))  # type: ignore[arg-type]


def ids_in_slot(db: Db, day: date) -> int:
    table = sql.slot_table(slot_of(epoch_day(day)))
    return int(db.query(f"SELECT count(*) FROM {table}")[0][0])


@pytest.mark.parametrize("count", [3, LARGE])  # one statement; streamed
def test_a_redelivery_inside_the_retention_is_skipped_by_a_later_session(
    db: Db, consumer: Consumer, count: int
) -> None:
    records = batch(count, DAY0, seed=1)
    assert consumer.write(records).written == count
    # Four days later (the last day of a 4-day retention), from another container.
    consumer.clock.today = DAY0 + timedelta(days=4)
    consumer.new_session()
    again = consumer.write(records)
    assert (again.written, again.duplicates) == (0, count)
    assert db.count() == count
    assert ids_in_slot(db, DAY0) == count


def test_a_slot_is_emptied_once_the_retention_and_a_day_have_passed(
    db: Db, consumer: Consumer
) -> None:
    consumer.write(batch(5, DAY0, seed=2))
    consumer.clock.today = DAY0 + timedelta(days=5)  # still inside: 4 days + 1 of margin
    consumer.new_session()
    consumer.write(batch(2, DAY0 + timedelta(days=5), seed=3))
    assert ids_in_slot(db, DAY0) == 5
    consumer.clock.today = DAY0 + timedelta(days=6)  # the session meets a new day
    consumer.write(batch(2, DAY0 + timedelta(days=6), seed=4))
    assert ids_in_slot(db, DAY0) == 0
    assert slot_days(db)[slot_of(epoch_day(DAY0))] is None
    assert ids_in_slot(db, DAY0 + timedelta(days=5)) == 2  # younger days stay
    assert db.count() == 9  # user_logins is never touched by pruning


def test_the_ledger_stays_flat_over_weeks_of_traffic(db: Db, consumer: Consumer) -> None:
    """A day's batch for 40 days: the ledger holds only the days of the window."""
    for n in range(40):
        day = DAY0 + timedelta(days=n)
        consumer.clock.today = day
        consumer.write(batch(3, day, seed=100 + n))
    held = db.query(f"SELECT count(*), count(DISTINCT day) FROM {sql.LEDGER}")[0]
    assert held == [6 * 3, 6]  # today and the 5 days of the window (4 + 1)
    assert db.count() == 40 * 3


def test_a_batch_spanning_midnight_claims_in_both_days_slots(db: Db, consumer: Consumer) -> None:
    before = batch(LARGE, DAY0, seed=5, prefix="late")
    after = batch(LARGE, DAY0 + timedelta(days=1), seed=6, prefix="early")
    mixed = [r for pair in zip(before, after, strict=True) for r in pair]
    consumer.clock.today = DAY0 + timedelta(days=1)
    assert consumer.write(mixed).written == 2 * LARGE
    assert ids_in_slot(db, DAY0) == ids_in_slot(db, DAY0 + timedelta(days=1)) == LARGE
    consumer.new_session()
    for records in (mixed, mixed[:7], mixed[-2:]):  # streamed, then the transaction path
        again = consumer.write(records)
        assert (again.written, again.duplicates) == (0, len(records))
    assert db.count() == 2 * LARGE


def test_reusing_a_slot_for_a_new_day_empties_it_first(db: Db, consumer: Consumer) -> None:
    """Day + SLOTS lands in the same table: the old day's ids go (if expiry did not)."""
    consumer.write(batch(4, DAY0, seed=7))
    later = DAY0 + timedelta(days=SLOTS)
    # An old day whose ids expiry could not remove (as if its TRUNCATE kept timing out).
    db.query(f"UPDATE {sql.LEDGER_SLOT_DAYS} SET opened_on = :d", d=later)
    consumer.clock.today = later
    consumer.new_session()
    consumer.write(batch(2, later, seed=8))
    assert ids_in_slot(db, later) == 2
    assert slot_days(db)[slot_of(epoch_day(later))] == later


def test_pruning_waits_a_moment_for_a_reader_then_leaves_the_slot_for_later(db: Db) -> None:
    """An analyst's open transaction on an expired slot: the write is not held up."""
    # Statements (and locks) of the write may wait 5 minutes: only the TRUNCATE's own
    # 1 s lock timeout lets the write finish while the reader is there.
    consumer = Consumer(db.url, DAY0, statement_timeout_ms=300_000)
    consumer.write(batch(3, DAY0, seed=9))
    reader = db.connect()
    reader.run("SET idle_in_transaction_session_timeout = 0")  # an analyst's session
    reader.run("BEGIN")
    reader.run(f"SELECT count(*) FROM {sql.slot_table(slot_of(epoch_day(DAY0)))}")
    outcome: dict[str, BatchResult] = {}
    try:
        consumer.clock.today = DAY0 + timedelta(days=7)
        writer = threading.Thread(
            target=lambda: outcome.update(r=consumer.write(batch(2, consumer.clock.today, seed=10)))
        )
        writer.start()
        wait_for("the write", lambda: outcome.get("r"), timeout_s=60, every_s=0.05)
        writer.join(timeout=60)
        assert ids_in_slot(db, DAY0) == 3  # left for the next maintenance
    finally:
        reader.run("ROLLBACK")
        reader.close()
    assert outcome["r"].written == 2
    consumer.clock.today = DAY0 + timedelta(days=8)
    consumer.write(batch(1, consumer.clock.today, seed=11))
    consumer.close()
    assert ids_in_slot(db, DAY0) == 0


def test_two_containers_opening_the_same_new_day_both_write(db: Db) -> None:
    day = DAY0 + timedelta(days=SLOTS)  # reuses DAY0's slot
    first = Consumer(db.url, DAY0)
    first.write(batch(3, DAY0, seed=12))
    first.close()
    consumers = [Consumer(db.url, day) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[BatchResult] = []
    shared = batch(LARGE, day, seed=13, prefix="shared")

    def consume(consumer: Consumer) -> None:
        consumer.sink.table_shape()
        barrier.wait()
        results.append(consumer.write(shared))

    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for consumer in consumers:
        consumer.close()
    assert sorted(r.written for r in results) == [0, LARGE]
    assert ids_in_slot(db, day) == LARGE


# -- migration of the single-table ledger ---------------------------------------------

OLD_LEDGER = """
CREATE SCHEMA login_etl;
CREATE TABLE login_etl.processed_messages (
    message_id   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_messages_processed_at_brin
    ON login_etl.processed_messages USING brin (processed_at);
"""


@pytest.fixture
def migrated(databases: Databases) -> Iterator[Db]:
    """A database of the single-table version with two processed messages, then the
    schema step of this one."""
    url = databases.create(init=False)
    db = Db(url)
    conn = db.connect()
    try:
        conn.run(sql.CREATE_USER_LOGINS)
        for statement in OLD_LEDGER.split(";")[:-1]:
            conn.run(statement)
        conn.run(
            "INSERT INTO login_etl.processed_messages (message_id, processed_at)"
            " VALUES ('old-0', now()), ('old-1', CAST(:at AS timestamptz))",
            at=f"{DAY0.isoformat()}T10:00:00Z",
        )
        init_schema(conn)
        init_schema(conn)  # idempotent
    finally:
        conn.close()
    yield db


@pytest.mark.parametrize("count", [2, LARGE])
def test_ids_of_the_single_table_ledger_still_count_as_written(migrated: Db, count: int) -> None:
    records = batch(count, DAY0, seed=14, prefix="old")  # old-0 and old-1 are among them
    consumer = Consumer(migrated.url, DAY0)
    try:
        result = consumer.write(records)
    finally:
        consumer.close()
    assert (result.written, result.duplicates) == (count - 2, 2)
    assert migrated.count() == count - 2
    assert {r[0] for r in migrated.query(f"SELECT message_id FROM {sql.LEDGER}")} >= {
        "old-0",
        "old-1",
    }


def test_the_single_table_ledger_is_emptied_when_nothing_in_it_can_come_back(
    migrated: Db,
) -> None:
    migrated.query("UPDATE login_etl.processed_messages SET processed_at = :at", at=DAY0)
    consumer = Consumer(migrated.url, DAY0 + timedelta(days=5))  # inside the window
    try:
        consumer.write(batch(1, consumer.clock.today, seed=15))
        assert migrated.query("SELECT count(*) FROM login_etl.processed_messages") == [[2]]
        consumer.clock.today = DAY0 + timedelta(days=6)
        consumer.write(batch(1, consumer.clock.today, seed=16))
    finally:
        consumer.close()
    assert migrated.query("SELECT count(*) FROM login_etl.processed_messages") == [[0]]
    assert migrated.count() == 2


def test_the_migration_keeps_user_logins_and_the_old_ids(migrated: Db) -> None:
    assert migrated.query("SELECT count(*) FROM login_etl.processed_messages") == [[2]]
    tables = {
        r[0]
        for r in migrated.query(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_schema = 'login_etl'"
        )
    }
    assert tables >= {sql.LEDGER, sql.LEDGER_SLOT_DAYS, sql.LEGACY_LEDGER, sql.slot_table(0)}


# -- messages without a usable SentTimestamp ------------------------------------------


def undated(count: int, *, seed: int, prefix: str, sent: str | None = None) -> list[dict[str, Any]]:
    """Records without a SentTimestamp (``sent`` None) or with an implausible one."""
    records = batch(count, DAY0, seed=seed, prefix=prefix)
    for record in records:
        del record["attributes"]["SentTimestamp"]
        if sent is not None:
            record["attributes"]["SentTimestamp"] = sent
    return records


def undated_ids(db: Db) -> int:
    return int(db.query(f"SELECT count(*) FROM {sql.UNDATED_LEDGER}")[0][0])


@pytest.mark.parametrize(
    ("count", "dated"),
    [(3, 0), (LARGE, 0), (3, 3)],  # one statement; streamed; BEGIN/claim/COPY (two days)
)
@pytest.mark.parametrize("sent", [None, "42"])  # missing; implausible
def test_an_undated_message_is_a_duplicate_whatever_day_it_comes_back(
    db: Db, consumer: Consumer, count: int, dated: int, sent: str | None
) -> None:
    records = undated(count, seed=20, prefix="undated", sent=sent)
    records += batch(dated, DAY0, seed=21, prefix="dated")
    first = consumer.write(records)
    assert first.written == count + dated
    assert undated_ids(db) == count
    # create_date of an undated record: the day it was processed.
    on_day0 = db.query("SELECT count(*) FROM user_logins WHERE create_date = :d", d=DAY0)
    assert on_day0 == [[count + dated]]
    for later in (1, 3):  # after midnight, then near the end of the retention
        consumer.clock.today = DAY0 + timedelta(days=later)
        consumer.new_session()
        again = consumer.write(records)
        assert (again.written, again.duplicates) == (0, count + dated)
        streamed_again = consumer.write(records[-1:] + records[:-1])  # same ids, warm session
        assert streamed_again.written == 0
    assert db.count() == count + dated


def test_two_deliveries_of_an_undated_batch_at_once_across_midnight_write_it_once(db: Db) -> None:
    shared = undated(LARGE, seed=22, prefix="twice")
    consumers = [Consumer(db.url, DAY0), Consumer(db.url, DAY0 + timedelta(days=1))]
    barrier = threading.Barrier(2)
    results: list[BatchResult] = []

    def consume(consumer: Consumer) -> None:
        consumer.sink.table_shape()
        barrier.wait()
        results.append(consumer.write(shared))

    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for consumer in consumers:
        consumer.close()
    assert sorted(r.written for r in results) == [0, LARGE]
    assert db.count() == LARGE
    assert undated_ids(db) == LARGE


def test_undated_ids_expire_after_the_window_and_user_logins_stays(
    db: Db, consumer: Consumer
) -> None:
    records = undated(4, seed=23, prefix="expiring")
    consumer.write(records)
    consumer.clock.today = DAY0 + timedelta(days=5)  # still inside: 4 days + 1 of margin
    consumer.new_session()
    consumer.write(batch(1, consumer.clock.today, seed=24))
    assert undated_ids(db) == 4
    consumer.clock.today = DAY0 + timedelta(days=6)  # the session meets a new day
    consumer.write(undated(2, seed=25, prefix="young"))
    assert undated_ids(db) == 2  # the young ones only
    assert db.count() == 4 + 1 + 2  # expiry never touches user_logins


def test_undated_expiry_deletes_in_bounded_chunks_until_it_caught_up(
    db: Db, consumer: Consumer
) -> None:
    old = sql.UNDATED_EXPIRY_ROWS + 5
    db.query(
        f"INSERT INTO {sql.UNDATED_LEDGER} (message_id, claimed_on)"
        " SELECT 'old-' || n, CAST(:d AS date) FROM generate_series(1, :n) AS n",
        d=DAY0,
        n=old,
    )
    consumer.clock.today = DAY0 + timedelta(days=6)
    consumer.write(batch(1, consumer.clock.today, seed=26))  # the day's maintenance: one chunk
    assert undated_ids(db) == 5
    consumer.write(batch(1, consumer.clock.today, seed=27))  # the chunk was full: one more
    assert undated_ids(db) == 0
    assert db.count() == 2


# -- a slot that cannot be emptied keeps its day ---------------------------------------


def test_a_slot_that_could_not_be_emptied_is_not_relabelled_and_is_emptied_later(
    db: Db,
) -> None:
    consumer = Consumer(db.url, DAY0, statement_timeout_ms=300_000)
    consumer.write(batch(4, DAY0, seed=28))
    later = DAY0 + timedelta(days=SLOTS)  # the same slot
    slot = slot_of(epoch_day(later))
    # As if expiry had not run: only the opening for `later` can empty it.
    db.query(f"UPDATE {sql.LEDGER_SLOT_DAYS} SET opened_on = :d WHERE slot = :s", d=later, s=slot)
    consumer.clock.today = later
    consumer.new_session()
    records = batch(2, later, seed=29)
    reader = db.connect()
    reader.run("SET idle_in_transaction_session_timeout = 0")
    reader.run("BEGIN")
    reader.run(f"SELECT count(*) FROM {sql.slot_table(slot)}")  # holds the TRUNCATE off
    try:
        with pytest.raises(DatabaseUnavailable, match="could not be emptied"):
            consumer.write(records)
        assert slot_days(db)[slot] == DAY0  # still the old day's ids, still labelled so
        assert ids_in_slot(db, DAY0) == 4
    finally:
        reader.run("ROLLBACK")
        reader.close()
    result = consumer.write(records)  # SQS's retry: the slot is emptied now
    consumer.close()
    assert result.written == 2
    assert slot_days(db)[slot] == later
    assert ids_in_slot(db, later) == 2
    assert db.count() == 4 + 2
