"""``PostgresSink``: the pipeline's ``LoginSink`` on Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from ..config import MAX_RETENTION_SECONDS
from ..connection_settings import ConnectionSettings
from ..pipeline import PendingRow, WriteOutcome
from ..table import TableShape
from .errors import ConnectionLost, DatabaseUnavailable, RowRejected, describe
from .isolate import write_isolating
from .ledger import BatchDays, window_days
from .session import Session, open_session
from .streaming import write_streaming
from .transaction import SMALL_BATCH_ROWS, write_transaction


class PostgresSink:
    """Writes batches to ``user_logins`` with an exactly-once ledger, one transaction each.

    One connection (a :class:`Session`), kept across warm invocations and re-opened when
    a write found it unusable. Each message id is claimed in the ledger slot of its
    ``SentTimestamp`` day (``ledger``), kept for ``queue_retention_seconds`` (SQS's
    maximum unless told) plus a day; a new day's first batch first does the ledger's
    maintenance. Then a batch takes the first of these that can finish:

    1. **streamed** (more than ``SMALL_BATCH_ROWS`` messages): ``streaming.write_streaming``
       claims every id with a plain ``INSERT`` and ``COPY``s the rows while they are still
       being parsed. On a redelivered id, a refused row or a lost connection it hands
       the parsed rows (``Streamed.unfinished``) to step 2.
    2. **one transaction**: ``transaction.write_transaction``: one statement up to
       ``SMALL_BATCH_ROWS`` rows, else ``BEGIN`` / claim ``ON CONFLICT`` / ``COPY`` /
       ``COMMIT``. Ids already in the ledger come back as duplicates.
    3. **bisection**: ``isolate.write_isolating``, when Postgres refused a row's values:
       savepoints find the refused rows, the rest is written in the same transaction
       (on a FIFO queue, except the later rows of a refused row's message group).

    Every step sorts a database error with ``errors.classify`` (``Session.step``): the
    connection broke (``Handling.RETRY``: the maintenance and step 2 are tried once
    more on a new connection; safe, the ledger turns a repeat of a transaction that did
    commit into duplicates), a row was refused (``ISOLATE``: step 3), or anything else
    (``FAIL``). A failure, or a second lost connection, raises ``DatabaseUnavailable``
    and nothing of the batch is written.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        queue_retention_seconds: int = MAX_RETENTION_SECONDS,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._settings = settings
        self._window = window_days(queue_retention_seconds)
        self._today = today
        self._session: Session | None = None
        # Runs the database side of a streamed write.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="login-etl-db")

    def table_shape(self) -> TableShape:
        return self._open().shape

    def write(
        self,
        message_ids: Sequence[str],
        rows: Iterable[PendingRow],
        *,
        days: Sequence[int],
        groups: Mapping[str, str] | None,
    ) -> WriteOutcome:
        batch_days = BatchDays.of(message_ids, days)
        self._reconnecting("ledger maintenance", lambda session: session.prepare_ledger(batch_days))
        if len(message_ids) > SMALL_BATCH_ROWS:
            streamed = write_streaming(self._open(), self._worker, message_ids, batch_days, rows)
            if streamed.unfinished is None:
                return WriteOutcome(written=streamed.written)
            rows = streamed.unfinished  # write them the careful way below
        pending = rows if isinstance(rows, list) else list(rows)
        if not pending:
            return WriteOutcome()
        try:
            fresh = self._reconnecting(
                "the batch write", lambda session: write_transaction(session, pending, batch_days)
            )
        except RowRejected:
            return write_isolating(self._open(), pending, batch_days, groups)
        return WriteOutcome(written=fresh, duplicates={r.message_id for r in pending} - fresh)

    def close(self) -> None:
        """Close the connection (the next write opens a new one)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _open(self) -> Session:
        if self._session is None or self._session.closed:
            self._session = open_session(
                self._settings, window_days=self._window, today=self._today
            )
        return self._session

    def _reconnecting[T](self, what: str, attempt: Callable[[Session], T]) -> T:
        """``attempt`` on the warm session, and once more on a new one if it lost the
        connection (a warm connection may have been dropped between invocations)."""
        try:
            return attempt(self._open())
        except ConnectionLost:
            pass  # the session is closed: _open() makes a new one
        try:
            return attempt(self._open())
        except ConnectionLost as lost:
            raise DatabaseUnavailable(
                f"connection lost during {what}: {describe(lost.__cause__ or lost)}"
            ) from None
