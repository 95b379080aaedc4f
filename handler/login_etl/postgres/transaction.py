"""One batch in one transaction, in a constant number of round trips (docs/contract.md,
Batch semantics); above ``SMALL_BATCH_ROWS`` or spanning days, one claim per day's slot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from ..copyformat import copy_line
from ..pipeline import PendingRow
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
