"""The careful path. One batch in one transaction, in a constant number of round trips
(docs/contract.md, Batch semantics); above ``SMALL_BATCH_ROWS`` or spanning days, one claim
per day's slot. Its last step: find the rows Postgres refuses, keep the others."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from ..copyformat import copy_line
from ..pipeline import PendingRow, WriteOutcome
from ..records import Rejection
from .errors import DRIVER_ERRORS, Handling, classify, sqlstate
from .ledger import BatchDays
from .session import Session

# Up to this many rows a batch is one statement (one round trip); above, BEGIN + claim +
# COPY + COMMIT (four), whose per-row cost is lower. Measured with `make bench`.
SMALL_BATCH_ROWS: Final = 100


def write_transaction(session: Session, rows: Sequence[PendingRow], days: BatchDays) -> set[str]:
    """Write the rows not yet in the ledger; return their message ids. A failure is
    settled by ``Session.step`` (``ConnectionLost``, ``RowRejected``, ``DatabaseUnavailable``)."""
    single = days.single if len(rows) <= SMALL_BATCH_ROWS else None
    with session.step("batch write", transaction=single is None):
        if single is not None:  # one autocommitted statement: atomic
            # Characters as they are, not \u escapes: Postgres refuses an escape of a
            # non-ASCII character in a database that is not UTF-8 (22P05: PG 10, and
            # SQL_ASCII on any version), which would bisect every such row.
            # records.to_row already refused NUL and lone surrogates.
            payload = json.dumps([[r.message_id, *r.row] for r in rows], ensure_ascii=False)
            already = session.ledger.statements(single).small_batch(payload)
            return {r.message_id for r in rows} - already
        session.conn.run("BEGIN")
        fresh = claim_and_copy(session, rows, days)
        session.conn.run("COMMIT")
    return fresh


def write_isolating(
    session: Session,
    rows: Sequence[PendingRow],
    days: BatchDays,
    groups: Mapping[str, str] | None,
) -> WriteOutcome:
    """Bisect inside one transaction (savepoints): log(n) extra round trips per bad row.
    A refused row is rejected with its SQLSTATE, never the server's DETAIL (it can quote
    values). With ``groups`` (FIFO), chunks go in arrival order, so no row after a refused
    one of its message group is written."""
    conn = session.conn
    outcome = WriteOutcome()
    pending: list[Sequence[PendingRow]] = [rows]
    held: set[str] = set()  # FIFO: groups with a refused row
    # Any failure but a refused row's fails the batch: nothing left to fall back on.
    with session.step("batch write", handles=()):
        conn.run("BEGIN")
        while pending:
            chunk = pending.pop(0)
            if held and groups is not None:
                chunk = [r for r in chunk if groups[r.message_id] not in held]
                if not chunk:
                    continue
            conn.run("SAVEPOINT chunk")
            try:
                fresh = claim_and_copy(session, chunk, days)
            except DRIVER_ERRORS as error:
                if classify(error) is not Handling.ISOLATE:
                    raise
                conn.run("ROLLBACK TO SAVEPOINT chunk")
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    pending[:0] = [chunk[:half], chunk[half:]]  # keep arrival order
                    continue
                outcome.rejected[chunk[0].message_id] = Rejection(
                    "database_rejected", detail=f"SQLSTATE {sqlstate(error)}"
                )
                if groups is not None:
                    held.add(groups[chunk[0].message_id])
                continue
            conn.run("RELEASE SAVEPOINT chunk")
            outcome.written |= fresh
            outcome.duplicates |= {r.message_id for r in chunk} - fresh
        conn.run("COMMIT")
    return outcome


def claim_and_copy(session: Session, rows: Sequence[PendingRow], days: BatchDays) -> set[str]:
    """Claim the ids, COPY the rows of the newly claimed ones; return those ids."""
    ids = [r.message_id for r in rows]
    already: set[str] = set()
    for day, day_ids in days.split(ids):
        already |= session.ledger.statements(day).claim(day_ids)
    fresh = [r for r in rows if r.message_id not in already] if already else rows
    if fresh:
        # execute_unnamed: run() would re-scan the SQL for :params on every batch.
        session.conn.execute_unnamed(session.copy_sql, stream=[copy_chunk(fresh)])
    return set(ids) - already


def copy_chunk(rows: Sequence[PendingRow]) -> bytes:
    """COPY data of rows, using each row's own line when ``to_row`` rendered one; UTF-8,
    as every session sets ``client_encoding`` (``session.open_session``)."""
    lines = [copy_line(r.row) if r.copy_line is None else r.copy_line for r in rows]
    lines.append("")
    return "\n".join(lines).encode()
