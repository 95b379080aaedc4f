"""The exactly-once ledger: a ring of daily tables whose size and claim cost stay flat.

What it holds, for how long, and its maintenance on the write path: docs/operations.md
(The ledger)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import pg8000.native

from ..config import MAX_RETENTION_SECONDS
from ..dates import UNDATED, day_date, epoch_day
from ..table import TableShape
from . import sql
from .errors import DRIVER_ERRORS, DatabaseUnavailable, Handling, classify, describe

SLOTS: Final = sql.LEDGER_SLOTS
MARGIN_DAYS: Final = 1

_log = logging.getLogger(__name__)


def window_days(retention_seconds: int) -> int:
    """Days a slot is kept after it was opened: the retention in days, rounded up, plus
    a day of margin. With tomorrow (an SQS clock slightly ahead) and today, at most
    ``window + 2`` days are live at once, which the ring has room for."""
    if not 0 < retention_seconds <= MAX_RETENTION_SECONDS:
        raise ValueError(f"queue retention {retention_seconds} s is not 1 s .. 14 days")
    return -(-retention_seconds // 86_400) + MARGIN_DAYS


def slot_of(day: int) -> int:
    """The ledger table of ``day`` (``sql.UNDATED_SLOT`` for ``dates.UNDATED``)."""
    return sql.UNDATED_SLOT if day == UNDATED else day % SLOTS


@dataclass(slots=True)
class SlotStatements:
    """The batch statements of one ledger table, prepared on first use. ``params`` are
    bound on every run: the undated table's ``claimed_on`` (today, kept current by
    :meth:`Ledger.prepare`), nothing for a day slot."""

    claim_statement: pg8000.native.PreparedStatement  # sql.claim_message_ids
    claim_new_statement: pg8000.native.PreparedStatement  # sql.claim_new_message_ids
    unclaim_statement: pg8000.native.PreparedStatement  # sql.unclaim_message_ids
    small_batch_statement: pg8000.native.PreparedStatement  # sql.write_small_batch
    params: dict[str, object]

    def claim(self, message_ids: Sequence[str]) -> set[str]:
        """Claim (``ON CONFLICT``); return the ids already claimed."""
        ids = json.dumps(message_ids)
        return {row[0] for row in self.claim_statement.run(message_ids=ids, **self.params)}

    def claim_new(self, message_ids: Sequence[str]) -> None:
        """Claim with a plain ``INSERT``: an id already there fails it with 23505."""
        self.claim_new_statement.run(message_ids=json.dumps(message_ids), **self.params)

    def unclaim(self, message_ids: Sequence[str]) -> None:
        self.unclaim_statement.run(message_ids=json.dumps(message_ids))

    def small_batch(self, rows: str) -> set[str]:
        """Write a small batch (``rows``: its JSON); return the ids already claimed."""
        return {row[0] for row in self.small_batch_statement.run(rows=rows, **self.params)}


@dataclass(slots=True)
class Ledger:
    """One connection's use of the ring: prepared statements per slot, and the days
    whose slots it knows to be open (so maintenance costs nothing per batch)."""

    conn: pg8000.native.Connection
    shape: TableShape
    table: str  # user_logins, schema-qualified (what the shape was read from)
    window: int
    legacy: bool  # the legacy table had ids when the session opened: claims look there
    today: Callable[[], date]
    _statements: dict[int, SlotStatements] = field(default_factory=dict)
    _open: dict[int, int] = field(default_factory=dict)  # slot -> day
    _expired_on: date | None = None
    _undated_backlog: bool = False  # the last expiry chunk of the undated table was full
    _claimed_on: dict[str, object] = field(default_factory=dict)  # the undated claims' day

    def statements(self, day: int) -> SlotStatements:
        """The statements of ``day``'s slot (prepared by :meth:`prepare`)."""
        slot = slot_of(day)
        if (found := self._statements.get(slot)) is None:
            conn, legacy = self.conn, self.legacy
            found = SlotStatements(
                claim_statement=conn.prepare(sql.claim_message_ids(slot, legacy)),
                claim_new_statement=conn.prepare(sql.claim_new_message_ids(slot, legacy)),
                unclaim_statement=conn.prepare(sql.unclaim_message_ids(slot)),
                small_batch_statement=conn.prepare(
                    sql.write_small_batch(self.shape, self.table, slot, legacy)
                ),
                params=self._claimed_on if slot == sql.UNDATED_SLOT else {},
            )
            self._statements[slot] = found
        return found

    def prepare(self, days: Iterable[int]) -> None:
        """Make the slots of ``days`` ready for claims and prepare their statements;
        outside any transaction, in ``Session.step``, which settles a failure."""
        today = self.today()
        self._claimed_on["claimed_on"] = today
        if self._expired_on != today:
            self._expire(today)
            self._expired_on = today
            self._undated_backlog = True
        if self._undated_backlog:
            self._expire_undated(today)
        for day in days:
            if day != UNDATED and self._open.get(slot_of(day)) != day:
                self._open_slot(day, today)
            self.statements(day)

    def _open_slot(self, day: int, today: date) -> None:
        slot = slot_of(day)
        conn = self.conn
        (held,) = conn.run(sql.SLOT_DAY, slot=slot)[0]
        if held != day_date(day):  # a plain read first: usually another session opened it
            conn.run("BEGIN")
            (held,) = conn.run(sql.LOCK_SLOT_DAY, slot=slot)[0]
            if held is None or held < day_date(day):
                if held is not None and not self._truncate(slot):
                    conn.run("COMMIT")
                    # Still the old day's ids: relabelled, they would be kept (and
                    # counted) as this day's; claimed in as they are, they would be
                    # emptied with the old day. The batch waits for the lock instead.
                    raise DatabaseUnavailable(
                        f"ledger slot {sql.slot_table(slot)} still holds {held} and could"
                        f" not be emptied for {day_date(day)}; the batch is retried"
                    )
                conn.run(sql.OPEN_SLOT, slot=slot, day=day_date(day), today=today)
                held = day_date(day)
            conn.run("COMMIT")
        if held == day_date(day):
            self._open[slot] = day
        # else the slot holds a later day: ``day`` is older than any retention (a message
        # SQS can no longer deliver). Its id is claimed there all the same.

    def _expire(self, today: date) -> None:
        conn = self.conn
        cutoff = day_date(epoch_day(today) - self.window)
        conn.run("BEGIN")
        for (slot,) in conn.run(sql.EXPIRED_SLOTS, cutoff=cutoff):
            if self._truncate(slot):
                conn.run(sql.EMPTY_SLOT, slot=slot)
                self._open.pop(slot, None)
        if (
            self.legacy
            and conn.run(sql.LEGACY_LEDGER_HAS_IDS)[0][0]
            and not conn.run(sql.LEGACY_LEDGER_HAS_IDS_SINCE, since=cutoff)[0][0]
        ):
            self._truncate(None)
        conn.run("COMMIT")

    def _expire_undated(self, today: date) -> None:
        """One bounded chunk of the undated ids claimed before the window."""
        cutoff = day_date(epoch_day(today) - self.window)
        self.conn.run(sql.EXPIRE_UNDATED, cutoff=cutoff, limit=sql.UNDATED_EXPIRY_ROWS)
        self._undated_backlog = self.conn.row_count >= sql.UNDATED_EXPIRY_ROWS

    def _truncate(self, slot: int | None) -> bool:
        """TRUNCATE a slot (None: the legacy table) in a savepoint, waiting at most a
        second for the table's lock."""
        conn = self.conn
        conn.run("SAVEPOINT ledger_truncate")
        try:
            conn.run(sql.SHORT_LOCK_TIMEOUT)
            if slot is None:
                conn.run(sql.TRUNCATE_LEGACY_LEDGER)
            else:
                conn.run(sql.truncate_slot(slot))
        except DRIVER_ERRORS as error:
            if classify(error) is Handling.RETRY:
                raise
            conn.run("ROLLBACK TO SAVEPOINT ledger_truncate")
            what = sql.LEGACY_LEDGER if slot is None else sql.slot_table(slot)
            _log.warning("%s not emptied, left for the next maintenance: %s", what, describe(error))
            return False
        conn.run("RELEASE SAVEPOINT ledger_truncate")
        return True


@dataclass(frozen=True, slots=True)
class BatchDays:
    """The ``SentTimestamp`` day (days since the epoch) of each message of a batch."""

    single: int | None  # the day of every message, when they share one (nearly always)
    by_id: dict[str, int]  # each message's day otherwise (else empty)

    @classmethod
    def of(cls, message_ids: Sequence[str], days: Sequence[int]) -> BatchDays:
        if len(days) != len(message_ids):
            raise ValueError("one day per message id")
        if not days or min(days) == max(days):
            return cls(days[0] if days else None, {})
        return cls(None, dict(zip(message_ids, days, strict=True)))

    def distinct(self) -> set[int]:
        return {self.single} if self.single is not None else set(self.by_id.values())

    def split(self, message_ids: Iterable[str]) -> list[tuple[int, list[str]]]:
        """``message_ids`` by day (each list in the given order; no empty list)."""
        if self.single is not None:
            ids = list(message_ids)
            return [(self.single, ids)] if ids else []
        by_day: dict[int, list[str]] = {}
        for message_id in message_ids:
            by_day.setdefault(self.by_id[message_id], []).append(message_id)
        return list(by_day.items())
