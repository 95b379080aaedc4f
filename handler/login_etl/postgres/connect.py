"""Open a pg8000 connection whose every wait is bounded and whose TLS checks the host."""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Final

import pg8000.native
from scramp import ScramException

from ..connection_settings import ConnectionSettings
from ..errors import ConfigurationError, SettingsError
from . import sql
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe

# The protocol's SSLRequest: length 8, request code 80877103.
_SSL_REQUEST: Final = struct.pack("!ii", 8, 80877103)
# sslmode prefer/allow: TLS when the server offers it, nothing verified (as libpq). Built once:
# given ``ssl_context=None`` for this, pg8000 builds a default context per connection, which
# loads the system's CA certificates to verify nothing (about 50 ms of CPU per connection).
_UNVERIFIED: Final = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


def _tls_if_offered(sock: socket.socket, host: str) -> socket.socket:
    """Ask for TLS; the socket to speak on: wrapped if the server agreed, else as it was."""
    sock.sendall(_SSL_REQUEST)
    if sock.recv(1) == b"S":
        return _UNVERIFIED.wrap_socket(sock, server_hostname=host)
    return sock


def connect(settings: ConnectionSettings) -> pg8000.native.Connection:
    """Connecting is bounded by ``connect_timeout``; every later socket read by the
    statement timeout plus a margin, so a server that stops answering cannot hang us."""
    try:
        ssl_context = settings.ssl_context()
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None
    try:
        sock = socket.create_connection((settings.host, settings.port), settings.connect_timeout)
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot connect to Postgres at {settings.host}:{settings.port}: "
            f"{type(error).__name__}: {error.strerror or error}"
        ) from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # pg8000 writes a statement as several small messages; without NODELAY, Nagle's
    # algorithm and delayed ACKs add milliseconds to every round trip.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(settings.connect_timeout + settings.statement_timeout_ms / 1000)
    try:
        if ssl_context is None:  # TLS is negotiated here; pg8000 speaks on what we hand it
            sock, ssl_context = _tls_if_offered(sock, settings.host), False
        conn = pg8000.native.Connection(
            settings.user,
            # With ``sock`` given, pg8000 uses ``host`` only as the TLS server name: without
            # it, verify-full would check the certificate against "localhost".
            host=settings.host,
            password=settings.password,
            database=settings.database,
            sock=sock,
            ssl_context=ssl_context,
            application_name="login-etl",
        )
        timeout = str(settings.statement_timeout_ms)
        conn.run(sql.SESSION_TIMEOUTS, statement_timeout=timeout, idle_timeout=timeout)
    except ssl.SSLCertVerificationError as error:
        reason = (
            "the server's TLS certificate was refused (CA bundle "
            f"{settings.sslrootcert or 'the system trust store'}): {error.verify_message}"
        )
    except ScramException as error:
        # scramp refuses some passwords before sending anything (SASLprep: control or
        # unassigned characters); its text names the rule, never the password.
        rule = error.args[0] if error.args else "SASLprep"
        reason = f"the password cannot be used for SCRAM authentication ({rule})"
    except DRIVER_ERRORS as error:
        reason = describe(error)
    except UnicodeError:  # the driver encodes user, password and database as UTF-8
        reason = "the user, password or database name is not valid UTF-8 text"
    else:
        return conn
    sock.close()
    raise DatabaseUnavailable(f"cannot open a Postgres session ({settings.redacted()}): {reason}")
