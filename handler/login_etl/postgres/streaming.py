"""The fast path of a large batch: the database works while Python parses (described in
docs/performance.md, How the large-batch path works)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Final

from ..errors import ConnectionLost, RowRejected
from ..pipeline import PendingRow
from ..switches import SHORT_SWITCH_INTERVAL
from .ledger import BatchDays
from .session import Session
from .transaction import copy_chunk

# Rows per COPY data message: the database starts on the first chunk early; near the
# end of the batch, chunks get smaller because the last one is not overlapped with
# parsing (the COMMIT waits for it).
COPY_CHUNK_ROWS: Final = 200
COPY_TAIL_CHUNK_ROWS: Final = 50


@dataclass(frozen=True, slots=True)
class Streamed:
    """What a streamed write did: wrote ``written``, or, when ``unfinished`` is not
    None, could not finish and left these parsed rows to be written the careful way."""

    written: set[str] = field(default_factory=set)
    unfinished: list[PendingRow] | None = None


def write_streaming(
    session: Session,
    worker: ThreadPoolExecutor,
    message_ids: Sequence[str],
    days: BatchDays,
    rows: Iterable[PendingRow],
) -> Streamed:
    """Write the rows; or, when the fast path cannot finish (``Handling.ISOLATE``: a
    redelivered id, 23505, or a refused row; ``RETRY``), hand them back for the careful
    way. Any other failure is settled by ``Session.step`` and raised."""
    conn, ledger = session.conn, session.ledger
    # Prepared here: the worker thread only runs them.
    claims = [(ledger.statements(day), ids) for day, ids in days.split(message_ids)]
    chunks: SimpleQueue[bytes | None] = SimpleQueue()
    # After the last chunk: the ids to un-claim before COMMIT, or None for no COMMIT.
    finish: SimpleQueue[list[str] | None] = SimpleQueue()

    def database_side() -> None:  # on the worker thread; this one waits for it
        conn.run("BEGIN")
        for statements, ids in claims:
            statements.claim_new(ids)
        conn.execute_unnamed(session.copy_sql, stream=iter(chunks.get, None))
        if (stale := finish.get()) is None:
            return
        for day, ids in days.split(stale):  # the statements exist: each day was claimed
            ledger.statements(day).unclaim(ids)
        conn.run("COMMIT")

    pending: list[PendingRow] = []
    written: set[str] = set()
    stale: list[str] | None = None  # None: no row at all, nothing to commit
    parsed_all = False
    with SHORT_SWITCH_INTERVAL:
        done = worker.submit(database_side)
        try:
            start, chunk_rows = 0, COPY_CHUNK_ROWS
            tail_from = len(message_ids) - COPY_CHUNK_ROWS
            for row in rows:
                pending.append(row)
                if len(pending) - start == chunk_rows:
                    chunks.put(copy_chunk(pending[start:]))
                    start = len(pending)
                    if start >= tail_from:
                        chunk_rows = COPY_TAIL_CHUNK_ROWS
                    time.sleep(0)  # let the worker take the GIL now: its I/O is waiting
            if len(pending) > start:
                chunks.put(copy_chunk(pending[start:]))
            if pending:
                written = {r.message_id for r in pending}
                # Ids are distinct and each row has one: equal counts mean nothing to undo.
                stale = (
                    []
                    if len(written) == len(message_ids)
                    else [m for m in message_ids if m not in written]
                )
            parsed_all = True
        finally:
            chunks.put(None)
            finish.put(stale)
            failure = done.exception()  # waits for the worker
            if not parsed_all:
                session.close()  # parsing raised: the transaction goes with the connection
            elif failure is None and stale is None:
                session.rollback_or_close()  # only the claims to undo
    if failure is None:
        return Streamed(written)
    try:
        with session.step("batch write"):
            raise failure
    except (ConnectionLost, RowRejected):
        return Streamed(unfinished=pending)
