"""The fast path of a large batch: the database works while Python parses.

A worker thread opens the transaction, claims every message id of the batch in the
ledger with a plain ``INSERT`` (no redelivery expected) and then streams the ``COPY``
from chunks that the calling thread parses, masks and renders meanwhile; then it
un-claims the ids of messages that produced no row and commits.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import Final

from pg8000.exceptions import DatabaseError

from ..pipeline import PendingRow
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe, is_connection_error, is_row_level
from .ledger import BatchDays
from .session import Session
from .transaction import copy_chunk

# Rows per COPY data message: the database starts on the first chunk early; near the
# end of the batch, chunks get smaller because the last one is not overlapped with
# parsing (the COMMIT waits for it).
COPY_CHUNK_ROWS: Final = 200
COPY_TAIL_CHUNK_ROWS: Final = 50
# While this thread parses, the database worker needs the GIL back after every reply of
# the server; with CPython's default switch interval (5 ms) each round trip would cost
# up to that much. 0.5 ms beat 0.2 ms (fewer forced switches) and 1-2 ms in interleaved
# runs of handler@1,000. Set only while a streaming write runs.
_STREAMING_SWITCH_INTERVAL_S: Final = 0.0005


def write_streaming(
    session: Session,
    worker: ThreadPoolExecutor,
    message_ids: Sequence[str],
    days: BatchDays,
    rows: Iterable[PendingRow],
) -> set[str] | list[PendingRow]:
    """Return the ids written, or, when the fast path cannot finish, the parsed rows.

    It cannot finish when an id is already in the ledger (a redelivery), a row is
    refused, or the connection was lost: then the transaction is rolled back (or the
    session closed) and the caller writes the returned rows the careful way.
    """
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
        stale = finish.get()
        if stale is None:
            return
        for day, ids in days.split(stale):  # the statements exist: each day was claimed
            ledger.statements(day).unclaim(ids)
        conn.run("COMMIT")

    _SWITCH_INTERVAL.shorten()
    done = worker.submit(database_side)
    pending: list[PendingRow] = []
    written: set[str] = set()
    stale: list[str] | None = None  # None: no row at all, nothing to commit
    parsed_all = False
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
        _SWITCH_INTERVAL.restore()
        if not parsed_all:
            session.close()  # parsing raised: the transaction goes with the connection
        elif failure is None and stale is None:
            session.rollback_or_close()  # only the claims to undo
    if failure is None:
        return written
    return _after_failure(session, failure, pending)


def _after_failure(
    session: Session, failure: BaseException, pending: list[PendingRow]
) -> list[PendingRow]:
    if isinstance(failure, DatabaseError) and not is_connection_error(failure):
        # 23505 on the claim: a redelivery (or a concurrent copy of a message) — the
        # careful path finds out which. Row-level: the careful path isolates it.
        if is_row_level(failure):
            session.rollback_or_close()
            return pending
        session.close()  # the server rolls the transaction back
        raise DatabaseUnavailable(f"batch write failed: {describe(failure)}") from None
    if isinstance(failure, DRIVER_ERRORS):
        session.close()  # the careful path reconnects once, as for any lost connection
        return pending
    session.close()  # not a database error: the transaction state is unknown
    raise failure


class _SwitchInterval:
    """Shortens CPython's thread switch interval while any streaming write runs.

    Counted, so concurrent writes (``login-etl drain --workers``) restore the original
    value only when the last one ends.
    """

    def __init__(self, short: float) -> None:
        self._short = short
        self._lock = threading.Lock()
        self._active = 0
        self._original = 0.0

    def shorten(self) -> None:
        with self._lock:
            if self._active == 0:
                self._original = sys.getswitchinterval()
                sys.setswitchinterval(self._short)
            self._active += 1

    def restore(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                sys.setswitchinterval(self._original)


_SWITCH_INTERVAL: Final = _SwitchInterval(_STREAMING_SWITCH_INTERVAL_S)
