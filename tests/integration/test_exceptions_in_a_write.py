"""An exception that is not the driver's, raised inside a write's transaction (a bug, a
``MemoryError``), on real Postgres (default and 10).

It must leave the warm session rolled back or closed, never inside the transaction:
else the next, "autocommitted" small batch would run in it, be acknowledged, and be
rolled back at the idle-in-transaction timeout. Each case injects the exception at one
step of one write strategy, then checks from another connection that no session is
left idle in a transaction and that the next small batch is really committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from localdev.lambda_event import sqs_record
from localdev.traffic import login_bodies
from login_etl import pipeline
from login_etl.connection_settings import ConnectionSettings
from login_etl.dates import epoch_day
from login_etl.masking import Masker
from login_etl.pipeline import BatchResult, process_batch
from login_etl.postgres import SMALL_BATCH_ROWS, PostgresSink, streaming, transaction
from login_etl.postgres.ledger import Ledger, SlotStatements
from tests.conftest import Db, on_each_server, wait_for

from .conftest import PII_KEY

pytestmark = on_each_server

DAY0 = date(2026, 5, 4)
LARGE = SMALL_BATCH_ROWS + 60


class Quiet:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass


class Injected(Exception):
    """Stands for a bug in our code."""


def records(count: int, *, seed: int, day: date = DAY0, user: str | None = None) -> list[Any]:
    bodies = [m.body for m in login_bodies(count, seed=seed, invalid_ratio=0)]
    if user is not None:  # the first record gets this user_id
        bodies[0] = bodies[0].replace('"user_id": "', f'"user_id": "{user}', 1)
    sent = epoch_day(day) * 86_400_000 + 3_600_000
    return [
        sqs_record(body, message_id=f"e{seed}-{i}", sent_timestamp_ms=sent + i)
        for i, body in enumerate(bodies)
    ]


def raise_on_call(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, *, call: int) -> None:
    """Make ``owner.name`` raise on its ``call``-th call (after running it, for a method
    that talks to the database, so the exception comes inside the transaction)."""
    original = getattr(owner, name)
    calls = 0

    def injected(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            if name in ("claim_new", "claim"):
                original(*args, **kwargs)
            raise MemoryError if name == "claim_new" else Injected(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, injected)


def parser_raising_after(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """The pipeline's rows iterator raises after ``rows`` rows (while the sink streams)."""
    original = pipeline.to_row
    calls = 0

    def to_row(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > rows:
            raise Injected("to_row")
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "to_row", to_row)


# name -> (inject, the failing batch, the sink's day)
Case = tuple[Callable[[pytest.MonkeyPatch], None], Callable[[], list[Any]], date]
CASES: dict[str, Case] = {
    # streamed (one worker thread runs BEGIN / claim / COPY / COMMIT)
    "streamed: the rows iterator raises mid-COPY": (
        lambda mp: parser_raising_after(mp, SMALL_BATCH_ROWS),
        lambda: records(LARGE, seed=1),
        DAY0,
    ),
    "streamed: copy_chunk raises": (
        lambda mp: raise_on_call(mp, streaming, "copy_chunk", call=1),
        lambda: records(LARGE, seed=2),
        DAY0,
    ),
    "streamed: MemoryError after the claim, on the worker thread": (
        lambda mp: raise_on_call(mp, SlotStatements, "claim_new", call=1),
        lambda: records(LARGE, seed=3),
        DAY0,
    ),
    # one transaction: BEGIN / claim per day / COPY / COMMIT (two days, so not one statement)
    "transaction: copy_chunk raises": (
        lambda mp: raise_on_call(mp, transaction, "copy_chunk", call=1),
        lambda: records(3, seed=4) + records(3, seed=5, day=DAY0 - timedelta(days=1)),
        DAY0,
    ),
    "transaction: the second day's claim raises": (
        lambda mp: raise_on_call(mp, SlotStatements, "claim", call=2),
        lambda: records(3, seed=6) + records(3, seed=7, day=DAY0 - timedelta(days=1)),
        DAY0,
    ),
    # bisection (a row the database refuses), in its transaction with savepoints (the
    # small batch's one statement before it does not call claim_and_copy: call 2 is the
    # bisection's second chunk)
    "isolation: a chunk's claim_and_copy raises": (
        lambda mp: raise_on_call(mp, transaction, "claim_and_copy", call=2),
        lambda: records(6, seed=8, user="poison"),
        DAY0,
    ),
    # ledger maintenance: expiry's TRUNCATE runs inside its transaction
    "maintenance: the TRUNCATE step raises": (
        lambda mp: raise_on_call(mp, Ledger, "_truncate", call=1),
        lambda: records(3, seed=9, day=DAY0 + timedelta(days=20)),
        DAY0 + timedelta(days=20),
    ),
}


@pytest.fixture
def poison(db: Db) -> Iterator[Db]:
    """A constraint only Postgres knows about: a 'poison…' user_id is refused."""
    db.query("ALTER TABLE user_logins ADD CONSTRAINT no_poison CHECK (user_id NOT LIKE 'poison%')")
    yield db
    db.query("ALTER TABLE user_logins DROP CONSTRAINT no_poison")


def idle_in_transaction(db: Db) -> int:
    return int(
        db.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'login-etl'"
            " AND datname = current_database() AND state LIKE 'idle in transaction%'"
        )[0][0]
    )


@pytest.mark.parametrize("case", list(CASES))
def test_an_exception_inside_a_write_leaves_no_open_transaction(
    poison: Db, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    db = poison
    inject, failing, day = CASES[case]
    # The idle-in-transaction timeout follows the statement timeout: 5 minutes, far
    # longer than the checks below wait, so the server cannot end a leaked transaction.
    settings = replace(ConnectionSettings.from_url(db.url), statement_timeout_ms=300_000)
    clock = {"today": DAY0}
    sink = PostgresSink(settings, queue_retention_seconds=4 * 86_400, today=lambda: clock["today"])

    def write(batch: list[Any]) -> BatchResult:
        return process_batch(
            batch,
            sink=sink,
            masker=Masker(PII_KEY.encode()),
            logger=Quiet(),
            today=lambda: clock["today"],
        )

    try:
        assert write(records(2, seed=10)).written == 2  # a warm session with open slots
        clock["today"] = day
        with monkeypatch.context() as patched:
            inject(patched)
            with pytest.raises((Injected, MemoryError)):
                write(failing())
        # A closed connection's backend ends a moment later: a bounded wait.
        wait_for(
            "no session idle in a transaction",
            lambda: idle_in_transaction(db) == 0 or None,
            timeout_s=30,
            every_s=0.05,
        )
        after = records(3, seed=11, day=day)
        assert write(after).written == 3
        committed = db.query(
            "SELECT count(*) FROM login_etl.ledger WHERE message_id LIKE 'e11-%'"
        )  # seen from another connection: committed
        assert committed == [[3]]
        assert idle_in_transaction(db) == 0
        again = write(failing())  # the failed batch, redelivered: written once, now
        assert again.written + len(again.failed_message_ids) == len(failing())
    finally:
        sink.close()
    assert db.count() == 2 + 3 + again.written
