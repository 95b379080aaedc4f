"""``PostgresSink``: the pipeline's ``LoginSink`` on Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from ..config import MAX_RETENTION_SECONDS
from ..connection_settings import ConnectionSettings
from ..errors import ConnectionLost, DatabaseUnavailable, RowRejected
from ..pipeline import PendingRow, WriteOutcome
from ..table import TableShape
from .errors import describe
from .ledger import BatchDays, window_days
from .session import Session, open_session
from .streaming import write_streaming
from .transaction import SMALL_BATCH_ROWS, write_isolating, write_transaction


class PostgresSink:
    """Writes batches to ``user_logins`` with an exactly-once ledger, one transaction each
    (docs/contract.md, Batch semantics), on one warm connection (a :class:`Session`).

    A new day's first batch first does the ledger's maintenance (``ledger``). Then a batch
    takes the first of these that can finish:

    1. **streamed** (more than ``SMALL_BATCH_ROWS`` messages): ``streaming.write_streaming``;
       when it cannot finish it hands the parsed rows (``Streamed.unfinished``) to step 2.
    2. **one transaction**: ``transaction.write_transaction``.
    3. **bisection**: ``transaction.write_isolating``, when Postgres refused a row's values.

    How a failure is settled: docs/architecture.md (Failures on the write path).
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
        return self._open().ledger.shape

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
