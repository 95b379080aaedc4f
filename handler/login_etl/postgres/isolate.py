"""The careful path's last step: find the rows Postgres refuses, keep the others."""

from __future__ import annotations

from collections.abc import Sequence

from pg8000.exceptions import DatabaseError

from ..pipeline import PendingRow, WriteOutcome
from ..records import Rejection
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe, is_row_level, sqlstate
from .session import Session
from .transaction import claim_and_copy


def write_isolating(
    session: Session, rows: Sequence[PendingRow], stop_at_first_rejection: bool
) -> WriteOutcome:
    """Bisect inside one transaction (savepoints): log(n) extra round trips per bad row.

    A refused row becomes a ``database_rejected`` rejection with its SQLSTATE (never
    the server's DETAIL, which can quote values). With ``stop_at_first_rejection``
    (FIFO) nothing after the first refused row is written.
    """
    conn = session.conn
    outcome = WriteOutcome()
    pending: list[Sequence[PendingRow]] = [rows]
    try:
        conn.run("BEGIN")
        while pending:
            chunk = pending.pop(0)
            conn.run("SAVEPOINT chunk")
            try:
                fresh = claim_and_copy(session, chunk)
            except DatabaseError as error:
                if not is_row_level(error):
                    raise
                conn.run("ROLLBACK TO SAVEPOINT chunk")
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    pending[:0] = [chunk[:half], chunk[half:]]  # keep arrival order
                    continue
                outcome.rejected[chunk[0].message_id] = Rejection(
                    "database_rejected", detail=f"SQLSTATE {sqlstate(error)}"
                )
                if stop_at_first_rejection:
                    break
                continue
            conn.run("RELEASE SAVEPOINT chunk")
            outcome.written |= fresh
            outcome.duplicates |= {r.message_id for r in chunk} - fresh
        conn.run("COMMIT")
    except DRIVER_ERRORS as error:
        session.close()
        raise DatabaseUnavailable(f"batch write failed: {describe(error)}") from None
    return outcome
