"""The careful path's last step: find the rows Postgres refuses, keep the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..pipeline import PendingRow, WriteOutcome
from ..records import Rejection
from .errors import DRIVER_ERRORS, Handling, classify, sqlstate
from .ledger import BatchDays
from .session import Session
from .transaction import claim_and_copy


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
