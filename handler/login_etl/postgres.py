"""Postgres adapter: connection lifecycle, table introspection and the batch write.

Example::

    sink = PostgresSink(ConnectionSettings.from_url("postgresql://u:p@host:5432/db"))
    shape = sink.table_shape()          # once per connection
    outcome = sink.write(rows, stop_at_first_rejection=False)
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from queue import SimpleQueue
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError

from . import sql
from .copyformat import copy_line
from .pipeline import PendingRow, WriteOutcome
from .records import Rejection
from .table import (
    REQUIRED_COLUMNS,
    TABLE_NAME,
    AppVersionKind,
    SchemaError,
    TableShape,
)

# SQLSTATE classes caused by one row's values (22 data exception, 23 integrity
# constraint, P0 raised by a trigger): isolate the row instead of failing the batch.
_ROW_LEVEL_CLASSES: Final = ("22", "23", "P0")
_INTEGER_TYPES: Final = ("integer", "bigint")
_TEXT_TYPES: Final = ("character varying", "text", "character")
_SSLMODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Up to this many rows a batch is one statement (one round trip); above, BEGIN + claim +
# COPY + COMMIT (four), whose per-row cost is lower. Measured with `make bench`.
SMALL_BATCH_ROWS: Final = 100
# Rows per COPY data message on the streaming path: the database starts on the first
# chunk early; near the end of the batch, chunks get smaller because the last one is
# not overlapped with parsing (the COMMIT waits for it).
COPY_CHUNK_ROWS: Final = 200
COPY_TAIL_CHUNK_ROWS: Final = 50
# While this thread parses, the database worker needs the GIL back after every reply of
# the server; with CPython's default switch interval (5 ms) each round trip would cost
# up to that much. 0.5 ms beat 0.2 ms (fewer forced switches) and 1-2 ms in interleaved
# runs of handler@1,000. Set only while a streaming write runs.
_STREAMING_SWITCH_INTERVAL_S: Final = 0.0005


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or the write failed as a whole."""


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    host: str
    port: int
    user: str
    password: str | None
    database: str
    sslmode: str = "prefer"  # libpq's default
    sslrootcert: str | None = None
    connect_timeout: float = 5.0
    statement_timeout_ms: int = 10_000

    @classmethod
    def from_url(cls, url: str) -> ConnectionSettings:
        """Parse ``postgresql://user:password@host:port/dbname[?sslmode=…]``."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must start with postgresql://")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        settings = cls(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password is not None else None,
            database=unquote(parts.path.lstrip("/")) or "postgres",
        )
        return settings.with_options(query)

    @classmethod
    def from_rds_secret(
        cls, secret: dict[str, Any], sslmode: str = "require"
    ) -> ConnectionSettings:
        """The Secrets Manager RDS JSON shape: host, port, username, password, dbname."""
        try:
            return cls(
                host=str(secret["host"]),
                port=int(secret.get("port", 5432)),
                user=str(secret["username"]),
                password=str(secret["password"]),
                database=str(secret.get("dbname", "postgres")),
            ).with_options({"sslmode": sslmode})
        except KeyError as missing:
            raise ValueError(f"database secret lacks the key {missing}") from None

    def with_options(self, options: dict[str, str]) -> ConnectionSettings:
        sslmode = options.get("sslmode", self.sslmode)
        if sslmode not in _SSLMODES:
            raise ValueError(f"unsupported sslmode {sslmode!r}")
        changed = replace(self, sslmode=sslmode, sslrootcert=options.get("sslrootcert"))
        if "connect_timeout" in options:
            changed = replace(changed, connect_timeout=float(options["connect_timeout"]))
        return changed

    def ssl_context(self) -> ssl.SSLContext | bool | None:
        """pg8000's ``ssl_context``: False = plaintext, None = TLS if the server offers it."""
        if self.sslmode == "disable":
            return False
        if self.sslmode in ("allow", "prefer"):
            return None  # opportunistic TLS without verification, as libpq's "prefer"
        context = ssl.create_default_context(cafile=self.sslrootcert)
        if self.sslmode != "verify-full":
            context.check_hostname = False
        if self.sslmode == "require":
            context.verify_mode = ssl.CERT_NONE
        return context

    def redacted(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database} sslmode={self.sslmode}"


def connect(settings: ConnectionSettings) -> pg8000.native.Connection:
    """Open a connection whose every wait is bounded.

    Connecting is bounded by ``connect_timeout``; every later socket read by the
    statement timeout plus a margin, so a server that stops answering cannot hang us.
    """
    try:
        sock = socket.create_connection((settings.host, settings.port), settings.connect_timeout)
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot connect to Postgres at {settings.host}:{settings.port}: {error}"
        ) from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # pg8000 writes a statement as several small messages; without NODELAY, Nagle's
    # algorithm and delayed ACKs add milliseconds to every round trip.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(settings.connect_timeout + settings.statement_timeout_ms / 1000)
    try:
        conn = pg8000.native.Connection(
            settings.user,
            password=settings.password,
            database=settings.database,
            sock=sock,
            ssl_context=settings.ssl_context(),
            application_name="login-etl",
        )
        timeout = str(settings.statement_timeout_ms)
        conn.run(sql.SESSION_TIMEOUTS, statement_timeout=timeout, idle_timeout=timeout)
    except (InterfaceError, DatabaseError, OSError) as error:
        sock.close()
        raise DatabaseUnavailable(
            f"cannot open a Postgres session ({settings.redacted()}): {_describe(error)}"
        ) from None
    return conn


def read_table_shape(conn: pg8000.native.Connection) -> TableShape:
    """Inspect ``user_logins`` and check the ledger exists (one query each)."""
    rows = conn.run(sql.TABLE_COLUMNS, table=TABLE_NAME)
    columns = {name: (data_type, max_length) for name, data_type, max_length in rows}
    if not columns:
        raise SchemaError(f"table {TABLE_NAME} does not exist; run `make db-init`")
    missing = REQUIRED_COLUMNS - columns.keys()
    if missing:
        raise SchemaError(f"table {TABLE_NAME} lacks columns {sorted(missing)}")
    if not conn.run(sql.LEDGER_EXISTS, name=sql.LEDGER)[0][0]:
        raise SchemaError(f"ledger table {sql.LEDGER} does not exist; run `make db-init`")
    data_type, max_length = columns["app_version"]
    if data_type in _INTEGER_TYPES:
        kind = AppVersionKind.INTEGER
    elif data_type in _TEXT_TYPES:
        kind = AppVersionKind.TEXT
    else:
        raise SchemaError(f"{TABLE_NAME}.app_version has unsupported type {data_type}")
    return TableShape(kind, max_length, has_create_date="create_date" in columns)


class PostgresSink:
    """Writes batches to ``user_logins`` with an exactly-once ledger.

    A batch is one transaction in a constant number of round trips: up to
    ``SMALL_BATCH_ROWS`` rows one statement that claims the ids in the ledger and inserts
    the rows of the newly claimed ones; above, four: ``BEGIN``, claim, ``COPY``,
    ``COMMIT``, streamed from a worker thread while the batch is still being parsed
    (``_write_streaming``), with the careful path (claim ``ON CONFLICT``, COPY the newly
    claimed rows, bisection) when that cannot finish. One connection, kept across warm
    invocations, re-opened when dropped.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self._settings = settings
        self._conn: pg8000.native.Connection | None = None
        self._shape: TableShape | None = None
        self._claim: pg8000.native.PreparedStatement | None = None
        self._claim_new: pg8000.native.PreparedStatement | None = None
        self._unclaim: pg8000.native.PreparedStatement | None = None
        self._small_batch: pg8000.native.PreparedStatement | None = None
        self._copy_sql = ""
        # Runs the database side of a streaming write (see _write_streaming).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="login-etl-db")

    def table_shape(self) -> TableShape:
        self._ensure_connection()
        assert self._shape is not None
        return self._shape

    def write(
        self,
        message_ids: Sequence[str],
        rows: Iterable[PendingRow],
        *,
        stop_at_first_rejection: bool,
    ) -> WriteOutcome:
        if len(message_ids) > SMALL_BATCH_ROWS:
            streamed = self._write_streaming(message_ids, rows)
            if isinstance(streamed, set):
                return WriteOutcome(written=streamed)
            rows = streamed  # fell back: write them the careful way below
        pending = rows if isinstance(rows, list) else list(rows)
        if not pending:
            return WriteOutcome()
        try:
            fresh = self._write_reconnecting(pending)
        except _RowRejected:
            return self._write_isolating(pending, stop_at_first_rejection)
        return WriteOutcome(written=fresh, duplicates={r.message_id for r in pending} - fresh)

    def close(self) -> None:
        conn, self._conn, self._shape = self._conn, None, None
        self._claim = self._claim_new = self._unclaim = self._small_batch = None
        if conn is not None:
            with contextlib.suppress(InterfaceError, DatabaseError, OSError):
                conn.close()

    # -- internals -------------------------------------------------------------

    def _ensure_connection(self) -> pg8000.native.Connection:
        if self._conn is None:
            conn = connect(self._settings)
            try:
                shape = read_table_shape(conn)
                # Prepared once per connection: pg8000 re-scans SQL text for :params on
                # every run(), and Postgres would re-plan it.
                claim = conn.prepare(sql.CLAIM_MESSAGE_IDS)
                claim_new = conn.prepare(sql.CLAIM_NEW_MESSAGE_IDS)
                unclaim = conn.prepare(sql.UNCLAIM_MESSAGE_IDS)
                small_batch = conn.prepare(sql.write_small_batch(shape))
            except (InterfaceError, DatabaseError, OSError) as error:
                conn.close()
                raise DatabaseUnavailable(
                    f"cannot prepare the batch write: {_describe(error)}"
                ) from None
            except SchemaError:
                conn.close()
                raise
            self._conn, self._shape = conn, shape
            self._claim, self._small_batch = claim, small_batch
            self._claim_new, self._unclaim = claim_new, unclaim
            self._copy_sql = sql.copy_rows(shape)
        return self._conn

    def _write_reconnecting(self, rows: Sequence[PendingRow]) -> set[str]:
        try:
            return self._write_transaction(rows)
        except _ConnectionLost:
            # A warm connection may have been dropped between invocations. Retrying on a
            # new one is safe even if the lost transaction did commit: the ledger turns
            # the repeat into duplicates.
            self.close()
        try:
            return self._write_transaction(rows)
        except _ConnectionLost as lost:
            self.close()
            raise DatabaseUnavailable(
                f"connection lost during the batch write: {_describe(lost.__cause__ or lost)}"
            ) from None

    def _write_transaction(self, rows: Sequence[PendingRow]) -> set[str]:
        conn = self._ensure_connection()
        small = len(rows) <= SMALL_BATCH_ROWS
        try:
            if small:  # one autocommitted statement: atomic on its own
                assert self._small_batch is not None
                payload = json.dumps([[r.message_id, *r.row] for r in rows])
                already = {row[0] for row in self._small_batch.run(rows=payload)}
                return {r.message_id for r in rows} - already
            conn.run("BEGIN")
            fresh = self._claim_and_copy(conn, rows)
            conn.run("COMMIT")
        except DatabaseError as error:
            if _is_connection_error(error):
                raise _ConnectionLost from error
            row_level = _sqlstate(error).startswith(_ROW_LEVEL_CLASSES)
            try:
                if not small:
                    conn.run("ROLLBACK")
            except (InterfaceError, DatabaseError, OSError):
                self.close()
                raise DatabaseUnavailable(f"batch write failed: {_describe(error)}") from None
            if row_level:
                raise _RowRejected from error
            self.close()
            raise DatabaseUnavailable(f"batch write failed: {_describe(error)}") from None
        except (InterfaceError, OSError) as error:
            raise _ConnectionLost from error
        return fresh

    def _claim_and_copy(
        self, conn: pg8000.native.Connection, rows: Sequence[PendingRow]
    ) -> set[str]:
        """Claim the ids, COPY the rows of the newly claimed ones; return those ids."""
        assert self._claim is not None
        ids = [r.message_id for r in rows]
        already = {row[0] for row in self._claim.run(message_ids=json.dumps(ids))}
        fresh = [r for r in rows if r.message_id not in already] if already else rows
        if fresh:
            # execute_unnamed: run() would re-scan the SQL for :params on every batch.
            conn.execute_unnamed(self._copy_sql, stream=[copy_chunk(fresh)])
        return set(ids) - already

    def _write_streaming(
        self, message_ids: Sequence[str], rows: Iterable[PendingRow]
    ) -> set[str] | list[PendingRow]:
        """The fast path of a large batch: the database works while Python parses.

        A worker thread opens the transaction, claims every message id of the batch in
        the ledger with a plain ``INSERT`` (no redelivery expected) and then streams the
        ``COPY`` from chunks that this thread parses, masks and renders meanwhile; then
        it un-claims the ids of messages that produced no row and commits. Returns the
        ids written. When the fast path cannot finish (an id is already in the ledger, a
        row is refused, the connection was lost) the transaction is rolled back and the
        parsed rows are returned, for the careful path.
        """
        conn = self._ensure_connection()
        claim, unclaim = self._claim_new, self._unclaim
        assert claim is not None and unclaim is not None
        chunks: SimpleQueue[bytes | None] = SimpleQueue()
        # After the last chunk: the ids to un-claim before COMMIT, or None for no COMMIT.
        finish: SimpleQueue[list[str] | None] = SimpleQueue()

        def database_side() -> None:  # on the worker thread; this one waits for it
            conn.run("BEGIN")
            claim.run(message_ids=json.dumps(message_ids))
            conn.execute_unnamed(self._copy_sql, stream=iter(chunks.get, None))
            stale = finish.get()
            if stale is None:
                return
            if stale:
                unclaim.run(message_ids=json.dumps(stale))
            conn.run("COMMIT")

        _SWITCH_INTERVAL.shorten()
        done = self._worker.submit(database_side)
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
                self.close()  # parsing raised: the transaction goes with the connection
            elif failure is None and stale is None:
                self._rollback_or_close(conn)  # only the claims to undo
        if failure is None:
            return written
        return self._after_streaming_failure(conn, failure, pending)

    def _rollback_or_close(self, conn: pg8000.native.Connection) -> None:
        try:
            conn.run("ROLLBACK")
        except (InterfaceError, DatabaseError, OSError):
            self.close()

    def _after_streaming_failure(
        self, conn: pg8000.native.Connection, failure: BaseException, pending: list[PendingRow]
    ) -> list[PendingRow]:
        if isinstance(failure, DatabaseError) and not _is_connection_error(failure):
            code = _sqlstate(failure)
            # 23505 on the claim: a redelivery (or a concurrent copy of a message) —
            # the careful path finds out which. Row-level: the careful path isolates it.
            if code.startswith(_ROW_LEVEL_CLASSES):
                self._rollback_or_close(conn)
                return pending
            self.close()  # the server rolls the transaction back
            raise DatabaseUnavailable(f"batch write failed: {_describe(failure)}") from None
        if isinstance(failure, (InterfaceError, DatabaseError, OSError)):
            self.close()  # the careful path reconnects once, as for any lost connection
            return pending
        self.close()  # not a database error: the transaction state is unknown
        raise failure

    def _write_isolating(
        self, rows: Sequence[PendingRow], stop_at_first_rejection: bool
    ) -> WriteOutcome:
        """Bisect inside one transaction (savepoints) to find the rows Postgres refuses."""
        conn = self._ensure_connection()
        outcome = WriteOutcome()
        pending: list[Sequence[PendingRow]] = [rows]
        try:
            conn.run("BEGIN")
            while pending:
                chunk = pending.pop(0)
                conn.run("SAVEPOINT chunk")
                try:
                    fresh = self._claim_and_copy(conn, chunk)
                except DatabaseError as error:
                    if not _sqlstate(error).startswith(_ROW_LEVEL_CLASSES):
                        raise
                    conn.run("ROLLBACK TO SAVEPOINT chunk")
                    if len(chunk) > 1:
                        half = len(chunk) // 2
                        pending[:0] = [chunk[:half], chunk[half:]]  # keep arrival order
                        continue
                    outcome.rejected[chunk[0].message_id] = Rejection(
                        "database_rejected", detail=f"SQLSTATE {_sqlstate(error)}"
                    )
                    if stop_at_first_rejection:
                        break
                    continue
                conn.run("RELEASE SAVEPOINT chunk")
                outcome.written |= fresh
                outcome.duplicates |= {r.message_id for r in chunk} - fresh
            conn.run("COMMIT")
        except (InterfaceError, DatabaseError, OSError) as error:
            self.close()
            raise DatabaseUnavailable(f"batch write failed: {_describe(error)}") from None
        return outcome


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


def copy_chunk(rows: Sequence[PendingRow]) -> bytes:
    """COPY data of rows, using each row's own line when ``to_row`` rendered one."""
    lines = [copy_line(r.row) if r.copy_line is None else r.copy_line for r in rows]
    lines.append("")
    return "\n".join(lines).encode()


class _ConnectionLost(Exception):
    pass


class _RowRejected(Exception):
    pass


def _sqlstate(error: DatabaseError) -> str:
    info = error.args[0] if error.args else None
    return str(info.get("C", "")) if isinstance(info, dict) else ""


def _is_connection_error(error: DatabaseError) -> bool:
    # 08: connection exception; 57P01-57P03: admin shutdown / crash / cannot connect now.
    code = _sqlstate(error)
    return code.startswith("08") or code in ("57P01", "57P02", "57P03")


def _describe(error: BaseException) -> str:
    """SQLSTATE and message only: Postgres' DETAIL can quote row values."""
    if isinstance(error, DatabaseError):
        info = error.args[0] if error.args else None
        if isinstance(info, dict):
            return f"{info.get('C', '?')} {info.get('M', '')}".strip()
    return f"{type(error).__name__}: {error}"
