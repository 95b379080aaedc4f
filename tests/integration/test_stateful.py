"""A stateful property test: the pipeline and the ledger against a model of SQS.

The system: ``process_batch`` with a ``PostgresSink`` (one warm session, as in a Lambda
container) on a real Postgres, a masker, and records shaped as the event source mapping
hands them over. The model: SQS. A message acknowledged (not in ``batchItemFailures``,
the batch did not raise) is deleted; one that failed, or whose batch raised, is delivered
again later, with the same messageId and attributes and its receive count + 1, until
``MAX_RECEIVE_COUNT``, then dead-lettered. A standard queue may also deliver a deleted
message again while the queue still holds it (at-least-once), or twice in one batch.
Nothing is delivered past the queue's retention (SQS deletes it).

Hypothesis generates the steps: batches of 1 to ~260 records (both the one-statement
path and the streamed COPY path) of valid and invalid bodies, bodies the test
database refuses (a CHECK constraint and a trigger of its own), identical bodies
under other messageIds, redeliveries, SentTimestamps in ms, in s, missing or
implausible, FIFO queues with message groups; the clock moving on by minutes, days and
beyond the retention; a new container now and then; and failures injected at the k-th
database call or inside the rows iterator (``tests/support/faults.py``): closed sockets,
terminated sessions, server errors, replies lost after a COMMIT went through,
RuntimeError and MemoryError.

After every step (and, after draining the queue, at the end):

- **no loss**: a message acknowledged has its row; at the end every valid message has
  one unless it was dead-lettered (which the model allows only after
  ``MAX_RECEIVE_COUNT`` failed receives) or SQS dropped it at the end of its retention;
- **no doubling**: never more rows for a body than messages that carried it and reached
  the sink (each body is unique to its message, except the test's identical bodies);
- **true create_date**: the SentTimestamp's UTC day when it is usable, else the day of a
  processing of that message;
- **exact batchItemFailures**: the model's rejected records and FIFO hold-backs; a batch
  raises only when a fault was injected, and then all of it is redelivered;
- **the ledger**: an acknowledged message's id stays in the ledger while SQS may still
  deliver it, under its SentTimestamp day;
- **the warm session stays usable**: no session of the sink left ``idle in transaction``
  (or otherwise busy) between batches, and at most one open.

``LOGIN_ETL_STATEFUL_EXAMPLES`` / ``LOGIN_ETL_STATEFUL_STEPS`` raise the bounds for a long
run by hand (which also shrinks a failure to a minimal one), ``LOGIN_ETL_STATEFUL_SEED``
replays a run; see docs/local-development.md.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import gc
import itertools
import json
import os
import random
import secrets
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import pg8000.native
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    rule,
)

from localdev.env.database import empty_tables
from localdev.lambda_event import DEFAULT_QUEUE_ARN, sqs_record
from login_etl.connection_settings import ConnectionSettings
from login_etl.pipeline import BatchResult, process_batch
from login_etl.postgres import PostgresSink, sql
from login_etl.postgres.errors import DRIVER_ERRORS
from tests.conftest import Databases, admin_connect, on_each_server, wait_for
from tests.support.faults import Fault, FaultInjector, FaultKind, FaultyMasker, labels

from .conftest import PII_KEY

pytestmark = [pytest.mark.integration, on_each_server]

MAX_RECEIVE_COUNT = 4
STATS: collections.Counter[str] = collections.Counter()  # what the runs met, printed after
FIFO_QUEUE_ARN = DEFAULT_QUEUE_ARN + ".fifo"
DAY_MS = 86_400_000
START = datetime(2026, 3, 2, tzinfo=UTC)
GROUPS = 5  # FIFO message groups g0..g4

# Values that pass the pipeline's validation but the test database refuses.
REFUSED_DEVICE_TYPE = "refused-by-check"  # CHECK constraint: SQLSTATE 23514
REFUSED_LOCALE = "refused-by-trigger"  # trigger: SQLSTATE P0001
DDL = f"""
CREATE TABLE user_logins(
    user_id varchar(128), device_type varchar(32), masked_ip varchar(256),
    masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date,
    CONSTRAINT stateful_refuses CHECK (device_type IS DISTINCT FROM '{REFUSED_DEVICE_TYPE}'));
CREATE FUNCTION stateful_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.locale = '{REFUSED_LOCALE}' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stateful_refuse BEFORE INSERT ON user_logins
    FOR EACH ROW EXECUTE PROCEDURE stateful_refuse();
"""

# Bodies the pipeline rejects (none holds a PII-shaped value).
INVALID_BODIES = (
    "not json {",
    "[1, 2]",
    json.dumps({"foo": "oops_wrong_msg_type", "bar": "123"}),
    json.dumps({"user_id": ""}),
    json.dumps({"user_id": "stateful-x", "app_version": "1.2.3.4"}),
    json.dumps({"user_id": "stateful-x", "device_type": "d" * 33}),
    json.dumps({"user_id": "nul\u0000"}),
    '{"user_id": "\\ud800"}',
    json.dumps({"app_version": "1.0"}),
)
IMPLAUSIBLE_STAMPS = ("42", "abc", "", "-5", "99999999999999999", "1e3")


class _Repr(enum.Enum):
    def __repr__(self) -> str:  # hypothesis prints steps as code to paste into a test
        return f"{type(self).__name__}.{self.name}"


class Kind(_Repr):
    VALID = "valid"
    INVALID = "invalid"  # the pipeline rejects it
    REFUSED_CHECK = "refused_check"  # the database refuses it (CHECK)
    REFUSED_TRIGGER = "refused_trigger"  # the database refuses it (trigger)


class Stamp(_Repr):
    MS = "ms"  # SQS
    SECONDS = "seconds"  # LocalStack before 3.0
    SECONDS_TEXT = "seconds_text"  # fractional seconds as text
    MISSING = "missing"
    IMPLAUSIBLE = "implausible"


FaultKind.__repr__ = lambda self: f"FaultKind.{self.name}"  # type: ignore[method-assign]


class State(enum.Enum):
    QUEUED = "queued"  # in the queue: will be delivered again
    DELETED = "deleted"  # acknowledged
    DEAD = "dead"  # moved to the dead-letter queue
    EXPIRED = "expired"  # dropped by SQS at the end of the retention


@dataclass(frozen=True)
class NewMessage:
    """A message sent to the queue ``lag_s`` before the batch that first receives it."""

    kind: Kind = Kind.VALID
    stamp: Stamp = Stamp.MS
    lag_s: int = 1
    group: int = 0
    same_body_as: int | None = None  # identical body to an earlier message (index: modulo)
    at: int = 0  # its position in the batch (modulo)


@dataclass(frozen=True)
class Batch:
    """What one receive hands the function, ``wait_s`` after the last one."""

    wait_s: int = 0
    new_container: bool = False  # the receive goes to another container (a new sink)
    bulk: int = 0  # valid messages in ms, sent just now
    new: tuple[NewMessage, ...] = ()
    redeliver: tuple[int, ...] = ()  # queued messages received again (index: modulo)
    ghosts: tuple[int, ...] = ()  # deleted ones delivered again (standard queues)
    repeats: tuple[int, ...] = ()  # records present twice in the batch (standard queues)
    shuffle: int | None = None  # order of a standard queue's batch
    faults: tuple[Fault, ...] = ()
    rows_fault: tuple[int, str] | None = None  # (k-th mask, "RuntimeError"/"MemoryError")


@dataclass
class Message:
    id: str
    seq: int
    body_no: int
    body: str = field(repr=False)  # holds PII-shaped values: never printed
    kind: Kind
    stamp: Stamp
    sent_ms: int  # when SQS enqueued it (its retention counts from there)
    group: str
    state: State = State.QUEUED
    receive_count: int = 0
    acked: bool = False  # reported a success in a batch that returned
    delivered_on: set[date] = field(default_factory=set)  # days it reached the pipeline

    @property
    def valid(self) -> bool:
        return self.kind is Kind.VALID

    @property
    def sent_day(self) -> date:
        return datetime.fromtimestamp(self.sent_ms / 1000, UTC).date()

    @property
    def usable_stamp(self) -> bool:
        return self.stamp in (Stamp.MS, Stamp.SECONDS, Stamp.SECONDS_TEXT)

    def stamp_value(self) -> str | None:
        if self.stamp is Stamp.MS:
            return str(self.sent_ms)
        if self.stamp is Stamp.SECONDS:
            return str(self.sent_ms // 1000)
        if self.stamp is Stamp.SECONDS_TEXT:
            return f"{self.sent_ms / 1000:.3f}"
        if self.stamp is Stamp.IMPLAUSIBLE:
            return IMPLAUSIBLE_STAMPS[self.seq % len(IMPLAUSIBLE_STAMPS)]
        return None

    def allowed_dates(self) -> set[date]:
        """The create_date its row may have."""
        return {self.sent_day} if self.usable_stamp else set(self.delivered_on)


def body_of(body_no: int, kind: Kind) -> str:
    """A login body unique to ``body_no`` (its user_id says which); PII-shaped ip and
    device_id made up from it (they only ever go through the masker)."""
    if kind is Kind.INVALID:
        return INVALID_BODIES[body_no % len(INVALID_BODIES)]
    rng = random.Random(body_no)
    login: dict[str, Any] = {
        "user_id": f"stateful-{body_no}",
        "app_version": rng.choice(["2.3.0", "0.60", "2.00", "10.4", " 3.4.5 ", None]),
        "device_type": rng.choice(["android", "ios", None]),
        "ip": ".".join(str(rng.randint(1, 254)) for _ in range(4)),
        "locale": rng.choice(["RU", "PH", None]),
        "device_id": "-".join(f"{rng.randint(0, 10**width - 1):0{width}d}" for width in (3, 2, 4)),
    }
    if kind is Kind.REFUSED_CHECK:
        login["device_type"] = REFUSED_DEVICE_TYPE
    if kind is Kind.REFUSED_TRIGGER:
        login["locale"] = REFUSED_LOCALE
    return json.dumps(login)


def body_no_of(user_id: str) -> int:
    return int(user_id.removeprefix("stateful-"))


class RejectionLog:
    """The pipeline's logger: keeps the rejected message ids and reasons (no values)."""

    def __init__(self) -> None:
        self.rejected: dict[str, str] = {}

    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        assert msg == "record rejected"
        self.rejected[str(extra["message_id"])] = str(extra["reason"])


@dataclass
class Env:
    """What a machine runs against: one database of the test's server."""

    url: str
    admin: pg8000.native.Connection
    injector: FaultInjector
    lock: threading.Lock


def predict(messages: Sequence[Message], fifo: bool) -> tuple[list[str], set[str]]:
    """The batch's failed ids (arrival order) and those the pipeline must call rejected."""
    failed: list[str] = []
    rejected: set[str] = set()
    held: set[str] = set()
    for message in messages:
        if fifo and message.group in held:
            failed.append(message.id)  # held back behind a rejected one of its group
        elif not message.valid:
            failed.append(message.id)
            rejected.add(message.id)
            if fifo:
                held.add(message.group)
    return failed, rejected


class StatefulPipeline(RuleBasedStateMachine):
    env: ClassVar[Env]

    def __init__(self) -> None:
        super().__init__()
        self.failed = False  # a check failed: the teardown only cleans up
        self.last = "no batch yet"  # what the last batch met, for a failure's message
        self.fifo = False
        self.retention_s = 4 * 86_400
        self.now_ms = int(START.timestamp() * 1000)
        self.messages: list[Message] = []
        self.by_id: dict[str, Message] = {}
        self.bodies: dict[int, list[Message]] = {}
        self.nonce = secrets.randbits(48)
        self.masker = FaultyMasker(PII_KEY.encode())
        self.injector = self.env.injector
        self.injector.reset()
        self.sink = self._new_sink()

    # -- the system -------------------------------------------------------------------

    def today(self) -> date:
        return datetime.fromtimestamp(self.now_ms / 1000, UTC).date()

    def _new_sink(self) -> PostgresSink:
        return PostgresSink(
            ConnectionSettings.from_url(self.env.url),
            queue_retention_seconds=self.retention_s,
            today=self.today,
        )

    def _query(self, statement: str) -> list[list[Any]]:
        with self.env.lock:
            return self.env.admin.run(statement)

    # -- rules --------------------------------------------------------------------------

    @initialize(
        fifo=st.booleans(),
        retention_s=st.sampled_from([4 * 86_400, 3_600, 14 * 86_400, 2 * 86_400 + 1]),
        start_s=st.integers(0, 86_399),
    )
    def start(self, fifo: bool, retention_s: int, start_s: int) -> None:
        self.fifo, self.retention_s = fifo, retention_s
        self.now_ms += start_s * 1000
        self.sink.close()
        self.sink = self._new_sink()

    @rule(batch=st.deferred(lambda: batches))
    def deliver(self, batch: Batch) -> None:
        with self._checking():
            self._deliver(batch)

    def advance(self, seconds: int) -> None:
        """The clock moves on; SQS drops what outlived the retention."""
        self.now_ms += seconds * 1000
        for message in self.messages:
            if message.state is State.QUEUED and not self._retained(message):
                message.state = State.EXPIRED
                STATS["expired in the queue"] += 1

    def cold_start(self) -> None:
        """Another container: a new sink (the old one's connection closed)."""
        self.sink.close()
        self.sink = self._new_sink()
        STATS["new containers"] += 1

    @invariant()
    def holds(self) -> None:
        with self._checking():
            self._check(final=False)

    def teardown(self) -> None:
        try:
            if not self.failed:
                with self._checking():
                    self._drain()
                    self._check(final=True)
        finally:
            self.sink.close()
            self._clean()

    # -- delivering -------------------------------------------------------------------

    def _retained(self, message: Message) -> bool:
        return self.now_ms < message.sent_ms + self.retention_s * 1000

    def _send(self, spec: NewMessage) -> Message:
        seq = len(self.messages)
        kind = spec.kind
        body_no = seq
        if spec.same_body_as is not None and self.messages:
            twin = self.messages[spec.same_body_as % len(self.messages)]
            body_no, kind = twin.body_no, twin.kind
        lag_s = min(spec.lag_s, self.retention_s // 2)  # SQS would have dropped it already
        message = Message(
            id=str(uuid.UUID(int=(self.nonce << 64) | seq, version=4)),
            seq=seq,
            body_no=body_no,
            body=body_of(body_no, kind),
            kind=kind,
            stamp=spec.stamp,
            sent_ms=self.now_ms - lag_s * 1000,
            group=f"g{spec.group % GROUPS}",
        )
        self.messages.append(message)
        self.by_id[message.id] = message
        self.bodies.setdefault(body_no, []).append(message)
        return message

    def _compose(self, batch: Batch) -> list[Message]:
        """The batch's messages in the order SQS hands them over."""
        queued = [m for m in self.messages if m.state is State.QUEUED]
        old = {
            queued[i % len(queued)].id: queued[i % len(queued)] for i in batch.redeliver if queued
        }
        chosen = list(old.values())
        deleted = [m for m in self.messages if m.state is State.DELETED and self._retained(m)]
        if not self.fifo and deleted:
            ghosts = {deleted[i % len(deleted)].id: deleted[i % len(deleted)] for i in batch.ghosts}
            chosen += [m for m in ghosts.values() if m.id not in old]
        new = [self._send(NewMessage(lag_s=i % 60, group=i)) for i in range(batch.bulk)]
        for spec in batch.new:
            new.insert(spec.at % (len(new) + 1), self._send(spec))
        if self.fifo:  # in send order (per group, as FIFO keeps it)
            return sorted(chosen, key=lambda m: m.seq) + new
        order = chosen + new
        if batch.shuffle is not None:
            random.Random(batch.shuffle).shuffle(order)
        for i in batch.repeats:
            if order:
                order.append(order[i % len(order)])
        return order

    def _record(self, message: Message) -> dict[str, Any]:
        record = sqs_record(
            message.body,
            message_id=message.id,
            sent_timestamp_ms=message.sent_ms,
            queue_arn=FIFO_QUEUE_ARN if self.fifo else DEFAULT_QUEUE_ARN,
            receive_count=message.receive_count,
            group=message.group,
        )
        value = message.stamp_value()
        if value is None:
            del record["attributes"]["SentTimestamp"]
        else:
            record["attributes"]["SentTimestamp"] = value
        return record

    def _deliver(self, batch: Batch) -> None:
        if batch.wait_s:
            self.advance(batch.wait_s)
        if batch.new_container:
            self.cold_start()
        messages = self._compose(batch)
        if messages:
            self._receive(messages, batch.faults, batch.rows_fault)

    def _receive(
        self,
        messages: list[Message],
        faults: Sequence[Fault] = (),
        rows_fault: tuple[int, str] | None = None,
    ) -> None:
        today = self.today()
        for message in messages:
            message.receive_count += 1
            message.delivered_on.add(today)
        records = [self._record(m) for m in messages]
        distinct = list({m.id: m for m in messages}.values())
        rows_before = self._row_count()
        log = RejectionLog()
        self.injector.arm(faults)
        if rows_fault is not None:
            k, name = rows_fault
            self.masker.arm(k, {"RuntimeError": RuntimeError, "MemoryError": MemoryError}[name])
        result: BatchResult | None = None
        raised: BaseException | None = None
        try:
            result = process_batch(
                records, sink=self.sink, masker=self.masker, logger=log, today=self.today
            )
        except Exception as error:  # noqa: BLE001  (MemoryError too: the invocation fails)
            raised = error
        fired = labels(self.injector.disarm())
        if rows_fault is not None and not self.masker.disarm():
            fired.append(f"{rows_fault[1]}@rows")
        rows_after = self._row_count()
        self.last = (
            f"{len(records)} records on {today}, faults fired: {fired or 'none'}, "
            f"raised: {raised!r}"
        )
        expected_failed, expected_rejected = predict(distinct, self.fifo)
        STATS["batches"] += 1
        STATS["streamed batches" if len(distinct) > 100 else "batches of <= 100"] += 1
        STATS.update(f"fault fired: {label}" for label in fired)
        STATS[f"outcome: {type(raised).__name__ if raised else 'returned'}"] += 1
        if raised is not None:
            assert fired, f"the batch raised without an injected fault: {raised!r}"
            # The sink's contract: the database failing as a whole is DatabaseUnavailable
            # (what the handler and `drain --follow` treat as transient); an exception
            # that is not the driver's goes through as it is.
            assert not isinstance(raised, DRIVER_ERRORS), (
                f"a driver error escaped the sink: {raised!r} (faults fired: {fired})"
            )
            assert rows_after - rows_before <= sum(m.valid for m in distinct)
            for message in distinct:
                self._failed_receive(message)
            return
        assert result is not None
        assert result.failed_message_ids == expected_failed, (
            f"batchItemFailures differ from the model (faults fired: {fired})"
        )
        assert set(log.rejected) <= set(expected_failed)
        assert expected_rejected <= set(log.rejected), "a rejected record was not logged"
        for message_id, reason in log.rejected.items():
            kind = self.by_id[message_id].kind
            assert kind is not Kind.VALID, f"valid {message_id} logged as {reason}"
            refused = kind in (Kind.REFUSED_CHECK, Kind.REFUSED_TRIGGER)
            assert (reason == "database_rejected") == refused, (message_id, kind, reason)
        assert result.written + result.duplicates == len(distinct) - len(expected_failed)
        added = rows_after - rows_before
        if fired:  # a write that committed unheard, retried: its rows come back as duplicates
            assert result.written <= added <= result.written + result.duplicates, (
                f"{result.written} reported written, {added} rows added"
            )
        else:
            assert added == result.written, f"{result.written} reported written, {added} rows added"
        failed = set(expected_failed)
        for message in distinct:
            if message.id in failed:
                self._failed_receive(message)
            else:
                message.acked = True
                if message.state is State.QUEUED:
                    message.state = State.DELETED

    def _failed_receive(self, message: Message) -> None:
        if message.state is State.QUEUED and message.receive_count >= MAX_RECEIVE_COUNT:
            message.state = State.DEAD
            STATS[f"dead-lettered: {message.kind.value}"] += 1

    def _drain(self) -> None:
        """SQS hands over what it still holds, without faults, until nothing is left."""
        for _ in range(MAX_RECEIVE_COUNT + 1):
            queued = [m for m in self.messages if m.state is State.QUEUED]
            for start in range(0, len(queued), 150):
                self._receive(queued[start : start + 150])
        left = [m.id for m in self.messages if m.state is State.QUEUED]
        assert not left, f"still queued after {MAX_RECEIVE_COUNT} receives: {left}"

    # -- checking -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _checking(self) -> Iterator[None]:
        try:
            yield
        except BaseException as error:
            self.failed = True
            error.add_note(f"last batch: {self.last}")
            raise

    def _row_count(self) -> int:
        return int(self._query("SELECT count(*) FROM user_logins")[0][0])

    def _check(self, *, final: bool) -> None:
        self._check_rows(final=final)
        self._check_ledger()
        self._check_sessions()

    def _check_rows(self, *, final: bool) -> None:
        rows: dict[int, list[date]] = {}
        for user_id, create_date in self._query("SELECT user_id, create_date FROM user_logins"):
            rows.setdefault(body_no_of(user_id), []).append(create_date)
        unknown = rows.keys() - self.bodies.keys()
        assert not unknown, f"rows of bodies never sent: {sorted(unknown)}"
        for body_no, carriers in self.bodies.items():
            found = rows.get(body_no, [])
            valid = [m for m in carriers if m.valid]
            must = [m for m in valid if m.acked]
            may = [m for m in valid if m.delivered_on]
            ids = [m.id for m in carriers]
            assert len(found) >= len(must), (
                f"loss: body {body_no} of {ids}: {len(must)} acknowledged, {len(found)} rows"
            )
            assert len(found) <= len(may), (
                f"doubling: body {body_no} of {ids}: {len(found)} rows, "
                f"{len(may)} message(s) delivered"
            )
            if final:
                owed = [m for m in valid if m.state not in (State.DEAD, State.EXPIRED)]
                assert len(found) >= len(owed), f"loss at the end: body {body_no} of {ids}"
            assert _matches(found, [m.allowed_dates() for m in may]), (
                f"create_date of body {body_no} of {ids}: rows {sorted(found)}, "
                f"allowed {[sorted(m.allowed_dates()) for m in may]}"
            )

    def _check_ledger(self) -> None:
        listed: dict[str, list[date | None]] = {}
        for message_id, day in self._query(f"SELECT message_id, day FROM {sql.LEDGER}"):
            listed.setdefault(message_id, []).append(day)
        for message_id, days in listed.items():
            message = self.by_id.get(message_id)
            assert message is not None, f"ledger holds an id never sent: {message_id}"
            assert len(days) == 1, f"{message_id} claimed {len(days)} times: {days}"
            assert message.valid, f"ledger holds {message_id}, which has no row ({message.kind})"
            if message.usable_stamp:
                assert days[0] == message.sent_day, (
                    f"{message_id} sent on {message.sent_day} is listed under {days[0]}"
                )
        for message in self.messages:
            if message.acked and self._retained(message):
                assert message.id in listed, (
                    f"{message.id} (acknowledged, sent {message.sent_day}, "
                    f"stamp {message.stamp.value}) left the ledger while SQS may redeliver it"
                )

    def _check_sessions(self) -> None:
        gc.collect()  # a connection dropped without close() is found now, not at random
        dropped = self.injector.dropped_pids
        assert not dropped, (
            f"sessions {sorted(dropped)} were dropped without being closed (left open "
            "on the server until the garbage collector got to them)"
        )
        busy = self._query(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'login-etl' AND pid <> pg_backend_pid()"
        )
        live = {pid: state for pid, state in busy if pid not in self.injector.dead_pids}
        assert all(state == "idle" for state in live.values()), (
            f"the sink's session is not idle between batches: {live}"
        )
        assert len(live) <= 1, (
            f"the sink holds {len(live)} open sessions: {live} (opened: {self.injector.pids})"
        )

    def _clean(self) -> None:
        with self.env.lock:
            admin = self.env.admin
            admin.run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            empty_tables(admin)


def _matches(found: list[date], allowed: list[set[date]]) -> bool:
    """Whether each row's date can be given to a distinct message that allows it."""
    if len(found) == 1 and len(allowed) == 1:
        return found[0] in allowed[0]
    return any(
        all(d in allowed[i] for d, i in zip(found, chosen, strict=True))
        for chosen in itertools.permutations(range(len(allowed)), len(found))
    )


# -- strategies -------------------------------------------------------------------------

kinds = st.sampled_from([Kind.VALID] * 4 + [Kind.INVALID, Kind.REFUSED_CHECK, Kind.REFUSED_TRIGGER])
stamps = st.sampled_from(
    [Stamp.MS] * 3 + [Stamp.SECONDS, Stamp.SECONDS_TEXT, Stamp.MISSING, Stamp.IMPLAUSIBLE]
)
new_messages = st.builds(
    NewMessage,
    kind=kinds,
    stamp=stamps,
    lag_s=st.one_of(st.integers(-600, 600), st.integers(0, 6 * 3600)),
    group=st.integers(0, GROUPS - 1),
    same_body_as=st.none() | st.none() | st.integers(0, 1_000),
    at=st.integers(0, 1_000),
)
STATEMENTS = [
    None,
    None,
    None,
    "COMMIT",
    "BEGIN",
    "COPY",
    "WITH",
    "INSERT",
    "DELETE",
    "TRUNCATE",
    "PREPARE",
    "CONNECT",
    "SELECT",
    "UPDATE",
    "SAVEPOINT",
    "ROLLBACK",
]


@st.composite
def faults(draw: st.DrawFn) -> Fault:
    on = draw(st.sampled_from(STATEMENTS))
    kind = draw(st.sampled_from(list(FaultKind)))
    after = kind in (FaultKind.SOCKET_CLOSED, FaultKind.RUNTIME_ERROR, FaultKind.MEMORY_ERROR)
    return Fault(
        call=draw(st.integers(1, 2) if on else st.one_of(st.integers(1, 6), st.integers(1, 24))),
        kind=kind,
        after=after and draw(st.booleans()),
        on=on,
    )


batches = st.builds(
    Batch,
    wait_s=st.one_of(
        st.just(0),
        st.just(0),
        st.integers(1, 4 * 3600),
        st.integers(20 * 3600, 28 * 3600),
        st.integers(2, 16).map(lambda days: days * 86_400),
    ),
    new_container=st.sampled_from([False] * 7 + [True]),
    bulk=st.one_of(st.just(0), st.integers(1, 12), st.integers(90, 150), st.integers(150, 260)),
    new=st.lists(new_messages, max_size=8).map(tuple),
    redeliver=st.lists(st.integers(0, 1_000), max_size=8).map(tuple),
    ghosts=st.lists(st.integers(0, 1_000), max_size=2).map(tuple),
    repeats=st.lists(st.integers(0, 1_000), max_size=2).map(tuple),
    shuffle=st.none() | st.integers(0, 1_000),
    faults=st.one_of(st.just(()), st.lists(faults(), min_size=1, max_size=2).map(tuple)),
    rows_fault=st.none()
    | st.none()
    | st.tuples(st.integers(1, 200), st.sampled_from(["RuntimeError", "MemoryError"])),
)


# -- the tests ----------------------------------------------------------------------------

# Bounded for the suite (the module well under a minute on a loaded 2-core machine).
SUITE_EXAMPLES = {"pg-default": 12, "pg10": 5}
SUITE_STEPS = 10


@pytest.fixture
def machine_env(server_databases: Databases, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A database of the test's server with the refusing DDL; the sink's connections
    instrumented; ``StatefulPipeline`` bound to it."""
    url = server_databases.create(DDL)
    admin = admin_connect(url)
    lock = threading.Lock()

    def terminate(pid: int) -> None:
        with lock:
            admin.run("SELECT pg_terminate_backend(CAST(:pid AS integer))", pid=pid)
            gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)"
            wait_for(f"backend {pid} to end", lambda: admin.run(gone, pid=pid)[0][0] or None, 30)

    injector = FaultInjector(terminate)
    injector.install(monkeypatch)
    env = Env(url, admin, injector, lock)
    monkeypatch.setattr(StatefulPipeline, "env", env, raising=False)
    try:
        yield env
    finally:
        admin.close()


def _bound(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def test_the_pipeline_and_ledger_keep_the_sqs_model(machine_env: Env, pg_server: str) -> None:
    long_run = bool(os.environ.get("LOGIN_ETL_STATEFUL_EXAMPLES"))
    run_seed = _bound("LOGIN_ETL_STATEFUL_SEED", secrets.randbits(32))
    print(f"stateful seed: {run_seed} (LOGIN_ETL_STATEFUL_SEED={run_seed} replays it)")
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if long_run:  # shrinking a failure can take minutes: by hand only
        phases.append(Phase.shrink)
    STATS.clear()
    test = get_state_machine_test(
        StatefulPipeline,
        settings=settings(
            max_examples=_bound("LOGIN_ETL_STATEFUL_EXAMPLES", SUITE_EXAMPLES[pg_server]),
            stateful_step_count=_bound("LOGIN_ETL_STATEFUL_STEPS", SUITE_STEPS),
            deadline=None,
            phases=phases,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    try:
        hypothesis_seed(run_seed)(test)()
    except BaseException as error:
        error.add_note(f"stateful seed: {run_seed} (LOGIN_ETL_STATEFUL_SEED={run_seed})")
        raise
    finally:
        print(
            "what the runs met:",
            *(f"  {n:6d} {what}" for what, n in sorted(STATS.items())),
            sep="\n",
        )


# -- regression cases: sequences found by the machine, replayed as plain tests ------------
#
# Each is written as hypothesis prints a failing run (``state = StatefulPipeline()``,
# then its steps); every step is followed by the machine's invariants, as in a run.

FOUR_DAYS = 4 * 86_400


@pytest.fixture
def state(machine_env: Env) -> Iterator[StatefulPipeline]:
    machine = StatefulPipeline()
    try:
        yield machine
    finally:
        machine.failed = True  # a plain test's failure is its own: the teardown cleans up
        machine.teardown()


def replay(state: StatefulPipeline, *batches: Batch) -> None:
    state.holds()
    for batch in batches:
        state.deliver(batch=batch)
        state.holds()
    state.failed = False
    state.teardown()  # drain the queue and check the end state
    state.failed = True


def test_a_non_driver_error_after_begin_leaves_no_transaction_open(
    state: StatefulPipeline,
) -> None:
    """Issue 18, point 8: a RuntimeError between BEGIN and COMMIT (here: right after the
    BEGIN of a two-day batch's transaction) must not leave the warm session inside it."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=60)
    two_days = (NewMessage(lag_s=3_600), NewMessage(lag_s=1))  # sent before and after 00:00
    replay(
        state,
        Batch(new=two_days),  # warm: slots open, statements prepared
        Batch(new=two_days, faults=(Fault(1, FaultKind.RUNTIME_ERROR, after=True, on="BEGIN"),)),
    )


def test_a_non_driver_error_in_ledger_maintenance_leaves_no_transaction_open(
    state: StatefulPipeline,
) -> None:
    """The same inside the ledger's maintenance (a new session's first batch)."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=3_600)
    replay(state, Batch(bulk=1, faults=(Fault(1, FaultKind.MEMORY_ERROR, after=True, on="BEGIN"),)))


@pytest.mark.parametrize("path", ["streamed", "two-day transaction"])
def test_a_non_driver_error_at_rollback_leaves_no_transaction_open(
    state: StatefulPipeline, path: str
) -> None:
    """A batch with a row the database refuses rolls back before the careful path
    (the streamed COPY, or the BEGIN/claim/COPY/COMMIT of a batch of two days); a
    RuntimeError at that ROLLBACK must not leave the session in the aborted
    transaction."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=60)
    refused = NewMessage(kind=Kind.REFUSED_CHECK)
    rollback_fails = (Fault(1, FaultKind.RUNTIME_ERROR, on="ROLLBACK"),)
    if path == "streamed":
        replay(state, Batch(bulk=120, new=(refused,), faults=rollback_fails))
    else:
        two_days = (NewMessage(lag_s=3_600), NewMessage(lag_s=1))
        replay(
            state,
            Batch(new=two_days),  # warm: slots open, statements prepared
            Batch(new=(*two_days, refused), faults=rollback_fails),
        )


def test_a_non_driver_error_while_the_session_opens_closes_the_connection(
    state: StatefulPipeline,
) -> None:
    """A RuntimeError while a new session reads the table's shape: the connection it
    opened must be closed, not left open on the server for the garbage collector."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=3_600)
    replay(state, Batch(bulk=1, faults=(Fault(1, FaultKind.RUNTIME_ERROR, on="SELECT"),)))


def test_a_redelivery_without_sent_timestamp_after_midnight_is_not_written_twice(
    state: StatefulPipeline,
) -> None:
    """Issue 18, point 6: a message without SentTimestamp committed at 23:53 whose
    batch then failed (a MemoryError after the autocommitted statement) is redelivered
    at 00:03: it must be a duplicate, not a second row."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=86_000)
    undated = NewMessage(stamp=Stamp.MISSING)
    replay(
        state,
        Batch(new=(undated,), faults=(Fault(1, FaultKind.MEMORY_ERROR, after=True, on="WITH"),)),
        Batch(wait_s=600, redeliver=(0,)),
    )


def test_a_slot_whose_clear_failed_keeps_its_day(state: StatefulPipeline) -> None:
    """Issue 18, point 8: 17 days on, a slot's day comes round again; its TRUNCATE fails
    at expiry and again at reopening (the server fails it): the slot must not be
    relabelled with the new day while it still holds the old day's ids."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=3_600)
    truncate_fails = (
        Fault(1, FaultKind.SERVER_ERROR, on="TRUNCATE"),
        Fault(2, FaultKind.SERVER_ERROR, on="TRUNCATE"),
    )
    replay(state, Batch(bulk=2), Batch(wait_s=17 * 86_400, bulk=2, faults=truncate_fails))


def test_a_connection_lost_while_the_session_opens_is_database_unavailable(
    state: StatefulPipeline,
) -> None:
    """The socket breaks while a new session reads the table's shape: the sink must
    raise ``DatabaseUnavailable`` (transient for the handler and ``drain --follow``),
    not the ``InterfaceError`` that pg8000's ``close()`` raises on the broken socket."""
    state.start(fifo=False, retention_s=FOUR_DAYS, start_s=3_600)
    replay(state, Batch(bulk=1, faults=(Fault(1, FaultKind.SOCKET_CLOSED, on="SELECT"),)))
