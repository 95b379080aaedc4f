"""Faults injected into the sink's database calls and its rows iterator (tests only).

:class:`FaultInjector` replaces the ``connect`` that ``login_etl.postgres.session`` uses,
so every connection a ``PostgresSink`` opens is instrumented: each database call (pg8000's
``execute_simple``/``execute_unnamed`` behind ``Connection.run``, ``execute_named`` behind
a prepared statement's ``run``, ``prepare_statement`` behind ``prepare``, and opening the
connection itself) is counted from :meth:`FaultInjector.arm`, and a :class:`Fault` fires at
the k-th call (optionally: the k-th call of one kind of statement, e.g. ``COMMIT``).

Faults are real where they can be: a closed socket is a socket shut down under pg8000
(which then raises what it raises), a terminated session is ``pg_terminate_backend``,
a server error is a statement the server really fails (so a transaction is really
aborted). "After" means the call went through and then its reply was lost (the socket
is shut down and pg8000's ``InterfaceError('network error')`` raised): for ``COMMIT`` or
an autocommitted statement, the commit happened but the client did not hear it.
Non-driver exceptions (``RuntimeError``, ``MemoryError``) are raised before or after
the call, leaving the connection as it is.

:class:`FaultyMasker` raises inside the pipeline's rows iterator (its k-th mask).
"""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pg8000.native
from pg8000.exceptions import InterfaceError

from login_etl.connection_settings import ConnectionSettings
from login_etl.masking import Masker
from login_etl.postgres import session as session_module
from login_etl.postgres.errors import DatabaseUnavailable


class FaultKind(enum.Enum):
    SOCKET_CLOSED = "socket_closed"  # before: the call meets a dead socket; after: reply lost
    TERMINATED = "terminated"  # pg_terminate_backend, then the call (before only)
    SERVER_ERROR = "server_error"  # the server fails the statement with 57014 (before only)
    RUNTIME_ERROR = "runtime_error"
    MEMORY_ERROR = "memory_error"


# What the server raises for SERVER_ERROR: a statement timeout (not a connection error,
# not row-level: the write fails as a whole).
SERVER_ERROR_SQL = (
    "DO $$ BEGIN RAISE EXCEPTION 'injected statement timeout' USING ERRCODE = '57014'; END $$"
)


@dataclass(frozen=True)
class Fault:
    """Fire ``kind`` at the ``call``-th database call of the batch (1-based).

    With ``on``, only calls of that statement count: its first SQL word (``BEGIN``,
    ``COMMIT``, ``COPY``, ``TRUNCATE``, ``WITH``, ...), ``PREPARE`` for preparing a
    statement, or ``CONNECT`` for opening a connection.
    """

    call: int
    kind: FaultKind
    after: bool = False
    on: str | None = None


@dataclass
class Fired:
    fault: Fault
    label: str  # the call it fired at (e.g. "COMMIT", "WITH", "PREPARE", "CONNECT")


@dataclass
class _Tracked:
    pid: int
    closed: bool = False  # by the client (``close()``)


def _label(sql: str) -> str:
    words = sql.split(None, 1)
    return words[0].upper() if words else ""


@dataclass
class FaultInjector:
    """Counts and faults the database calls of every connection the sink opens.

    ``terminate(pid)`` ends a backend from another connection (for TERMINATED).
    """

    terminate: Callable[[int], None]
    fired: list[Fired] = field(default_factory=list)
    # Backends whose connection the client closed or a fault broke: a leftover
    # transaction there is the server's to roll back, not a leak.
    dead_pids: set[int] = field(default_factory=set)
    # Backends whose connection object was garbage-collected without being closed: the
    # socket went with it, but only when the collector got to it (pg8000's connection
    # holds reference cycles), so the session stayed open until then.
    dropped_pids: set[int] = field(default_factory=set)
    pids: list[int] = field(default_factory=list)  # every backend opened, in order
    _faults: list[Fault] = field(default_factory=list)
    _counts: dict[str | None, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: Any) -> None:
        """Instrument the connections of every sink made from now on (pytest's monkeypatch)."""
        monkeypatch.setattr(session_module, "connect", self._connect)

    def arm(self, faults: Sequence[Fault]) -> None:
        with self._lock:
            self._faults = list(faults)
            self._counts = {}
            self.fired = []

    def disarm(self) -> list[Fired]:
        with self._lock:
            fired, self._faults, self.fired = self.fired, [], []
            return fired

    # -- the instrumentation ----------------------------------------------------------

    def _due(self, label: str) -> Fault | None:
        """Count one call; return the fault that fires at it, if any."""
        with self._lock:
            if not self._faults:
                return None
            for key in (None, label):
                self._counts[key] = self._counts.get(key, 0) + 1
            for fault in self._faults:
                if self._counts.get(fault.on, 0) == fault.call and (
                    fault.on is None or fault.on == label
                ):
                    self._faults.remove(fault)
                    self.fired.append(Fired(fault, label))
                    return fault
            return None

    def _connect(self, settings: ConnectionSettings) -> pg8000.native.Connection:
        fault = self._due("CONNECT")
        if fault is not None:
            if fault.kind is FaultKind.RUNTIME_ERROR:
                raise RuntimeError("injected fault while connecting")
            if fault.kind is FaultKind.MEMORY_ERROR:
                raise MemoryError
            raise DatabaseUnavailable("cannot connect to Postgres (injected fault)")
        conn = _real_connect(settings)
        pid = int(conn.run("SELECT pg_backend_pid()")[0][0])
        self.pids.append(pid)
        tracked = _Tracked(pid)
        weakref.finalize(conn, self._collected, tracked)
        self._instrument(conn, tracked)
        return conn

    def _collected(self, tracked: _Tracked) -> None:
        if not tracked.closed:
            self.dropped_pids.add(tracked.pid)
            self.dead_pids.add(tracked.pid)

    def reset(self) -> None:
        """Forget the connections seen so far (a new example)."""
        self.dead_pids.clear()
        self.dropped_pids.clear()
        self.pids.clear()

    def _instrument(self, conn: pg8000.native.Connection, tracked: _Tracked) -> None:
        injector, pid = self, tracked.pid
        simple, unnamed = conn.execute_simple, conn.execute_unnamed
        named, prepare, close = conn.execute_named, conn.prepare_statement, conn.close

        def call(label: str, real: Callable[[], Any]) -> Any:
            fault = injector._due(label)
            if fault is None:
                return real()
            return injector._fire(conn, tracked, fault, real, simple)

        def execute_simple(statement: str) -> Any:
            return call(_label(statement), lambda: simple(statement))

        def execute_unnamed(statement: str, *args: Any, **kwargs: Any) -> Any:
            return call(_label(statement), lambda: unnamed(statement, *args, **kwargs))

        def execute_named(name: bytes, params: Any, columns: Any, funcs: Any, sql: str) -> Any:
            return call(_label(sql), lambda: named(name, params, columns, funcs, sql))

        def prepare_statement(statement: str, oids: Any = None) -> Any:
            return call("PREPARE", lambda: prepare(statement, oids))

        def closing() -> None:
            tracked.closed = True
            injector.dead_pids.add(pid)
            stream = conn._sock
            try:
                close()
            finally:
                # On a broken socket pg8000's close() leaves its Terminate message in
                # the buffer, which the collector would try to flush again, raising
                # "Exception ignored in: BufferedRWPair" (pg8000's, not the sink's).
                if stream is not None:
                    with contextlib.suppress(OSError, ValueError):
                        stream.close()

        conn.execute_simple = execute_simple
        conn.execute_unnamed = execute_unnamed
        conn.execute_named = execute_named
        conn.prepare_statement = prepare_statement
        conn.close = closing

    def _fire(
        self,
        conn: pg8000.native.Connection,
        tracked: _Tracked,
        fault: Fault,
        real: Callable[[], Any],
        simple: Callable[[str], Any],
    ) -> Any:
        kind = fault.kind
        if kind in (FaultKind.RUNTIME_ERROR, FaultKind.MEMORY_ERROR):
            when = "before"
            if fault.after:
                real()
                when = "after"
            if kind is FaultKind.RUNTIME_ERROR:
                raise RuntimeError(f"injected fault {when} the call")
            raise MemoryError(f"injected fault {when} the call")
        if kind is FaultKind.SOCKET_CLOSED:
            if fault.after:
                real()  # the server did it; the reply is lost
                self._shut(conn, tracked)
                raise InterfaceError("network error")
            self._shut(conn, tracked)
            return real()  # pg8000 meets the dead socket
        if kind is FaultKind.TERMINATED:
            self.dead_pids.add(tracked.pid)
            self.terminate(tracked.pid)
            return real()
        # SERVER_ERROR: the server fails this statement instead of running it.
        return simple(SERVER_ERROR_SQL)

    def _shut(self, conn: pg8000.native.Connection, tracked: _Tracked) -> None:
        self.dead_pids.add(tracked.pid)
        usock = conn._usock
        if usock is not None:
            with contextlib.suppress(OSError):
                usock.shutdown(socket.SHUT_RDWR)


_real_connect = session_module.connect


class FaultyMasker(Masker):
    """A masker that raises at its ``k``-th ``mask_login`` after :meth:`arm` (once)."""

    __slots__ = ("_left", "_raise")

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self._left = 0
        self._raise: type[BaseException] | None = None

    def arm(self, k: int, error: type[BaseException]) -> None:
        self._left, self._raise = k, error

    def disarm(self) -> bool:
        """Whether the fault is still pending (it did not fire)."""
        pending = self._raise is not None
        self._left, self._raise = 0, None
        return pending

    def mask_login(self, ip: str | None, device_id: str | None) -> tuple[str | None, str | None]:
        if self._raise is not None:
            self._left -= 1
            if self._left <= 0:
                error, self._raise = self._raise, None
                raise error("injected fault in the rows iterator")
        return super().mask_login(ip, device_id)


def labels(fired: Iterator[Fired] | Sequence[Fired]) -> list[str]:
    return [f"{f.fault.kind.value}{'/after' if f.fault.after else ''}@{f.label}" for f in fired]
