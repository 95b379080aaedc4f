"""Open a pg8000 connection whose every wait is bounded."""

from __future__ import annotations

import socket

import pg8000.native

from ..connection_settings import ConnectionSettings
from . import sql
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe


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
    except DRIVER_ERRORS as error:
        sock.close()
        raise DatabaseUnavailable(
            f"cannot open a Postgres session ({settings.redacted()}): {describe(error)}"
        ) from None
    return conn
