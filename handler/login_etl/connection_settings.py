"""Where and how to reach Postgres: a URL or an RDS-shaped secret, plus TLS and timeouts.

Plain data, no database import: ``config`` builds it, ``postgres.connect`` uses it. Every
error is a :class:`SettingsError` in our own words, never a parser's, which can quote the
piece of a URL it choked on: a password (docs/security.md, Secrets in messages).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from .errors import SettingsError

_SSLMODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# AWS's RDS global CA bundle, shipped in the package: RDS server certificates are signed by
# AWS's private RDS CAs, which no public trust store holds (docs/security.md: provenance).
RDS_CA_BUNDLE: Final = Path(__file__).parent / "certs" / "rds-global-bundle.pem"

# host[:port] after the userinfo: a DNS name / IPv4 address, or an IPv6 address in brackets.
_HOST_PORT: Final = re.compile(r"(?P<host>\[[0-9A-Fa-f:.%]+\]|[^\[\]/?#@:]*)(?::(?P<port>[^/?]*))?")


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

    def __repr__(self) -> str:
        # The dataclass' repr would print the password (tracebacks, debuggers, f"{x!r}").
        return f"ConnectionSettings({self.redacted()})"

    @classmethod
    def from_url(cls, url: str) -> ConnectionSettings:
        """Parse ``postgresql://user:password@host:port/dbname[?sslmode=…&sslrootcert=…]``.

        The userinfo ends at the LAST ``@``, the user at its first ``:`` (docs/security.md).
        """
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("postgresql", "postgres"):
            raise SettingsError("DATABASE_URL must start with postgresql://")
        userinfo, _, location = rest.rpartition("@")  # no "@": ("", "", rest)
        authority, _, query = location.partition("?")
        authority, _, path = authority.partition("/")
        match = _HOST_PORT.fullmatch(authority)
        if match is None:
            raise SettingsError(
                "DATABASE_URL: cannot read host[:port] after the last '@' "
                "(write '@' in the database name or the query as %40)"
            )
        user, colon, password = userinfo.partition(":")
        host = unquote(match.group("host"))
        if host.startswith("[") and host.endswith("]"):  # an IPv6 address
            host = host[1:-1]
        return cls(
            host=host or "localhost",
            port=_port(match.group("port"), "DATABASE_URL"),
            user=unquote(user) or "postgres",
            password=unquote(password) if colon else None,
            database=unquote(path) or "postgres",
        ).with_options(dict(parse_qsl(query)))

    @classmethod
    def from_rds_secret(
        cls, secret: object, sslmode: str = "verify-full", sslrootcert: str | None = None
    ) -> ConnectionSettings:
        """The Secrets Manager RDS JSON shape: host, port, username, password, dbname."""
        if not isinstance(secret, dict):
            raise SettingsError("database secret is not a JSON object")
        for key in ("host", "username", "password"):
            if key not in secret:
                raise SettingsError(f"database secret lacks the key '{key}'")
            if not isinstance(secret[key], str) or not secret[key]:
                raise SettingsError(f"database secret: '{key}' is not a non-empty string")
        dbname = secret.get("dbname", "postgres")
        if not isinstance(dbname, str):
            raise SettingsError("database secret: 'dbname' is not a string")
        return cls(
            host=secret["host"],
            port=_port(secret.get("port", 5432), "database secret"),
            user=secret["username"],
            password=secret["password"],
            database=dbname or "postgres",
        ).with_options({"sslmode": sslmode, "sslrootcert": sslrootcert or str(RDS_CA_BUNDLE)})

    def with_options(self, options: dict[str, str]) -> ConnectionSettings:
        sslmode = options.get("sslmode", self.sslmode)
        if sslmode not in _SSLMODES:
            raise SettingsError(f"unsupported sslmode (use one of {', '.join(_SSLMODES)})")
        changed = replace(self, sslmode=sslmode, sslrootcert=options.get("sslrootcert") or None)
        if "connect_timeout" in options:
            try:
                timeout = float(options["connect_timeout"])
            except ValueError:
                timeout = 0.0
            if not 0 < timeout <= 600:
                raise SettingsError("connect_timeout must be a number of seconds from 0 to 600")
            changed = replace(changed, connect_timeout=timeout)
        return changed

    def ssl_context(self) -> ssl.SSLContext | bool | None:
        """``connect``'s TLS: False = plaintext, None = TLS if the server offers it (negotiated
        by ``connect``), else the context to require and verify TLS with (pg8000's ``ssl_context``).

        What each mode checks: docs/security.md. An unreadable CA bundle: :class:`SettingsError`.
        """
        if self.sslmode == "disable":
            return False
        if self.sslmode in ("allow", "prefer"):
            return None  # opportunistic TLS without verification, as libpq's "prefer"
        try:
            if self.sslrootcert == str(RDS_CA_BUNDLE):
                # The RDS CAs *and* the system's roots: RDS Proxy endpoints present Amazon
                # Trust Services certificates, which the RDS bundle lacks (docs/security.md).
                context = ssl.create_default_context()
                context.load_verify_locations(cafile=self.sslrootcert)
            else:
                context = ssl.create_default_context(cafile=self.sslrootcert)
        except (OSError, ssl.SSLError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else None
            raise SettingsError(
                f"the CA bundle sslrootcert={self.sslrootcert} cannot be used: "
                f"{reason or 'no PEM certificate in it'}"
            ) from None
        if self.sslmode != "verify-full":
            context.check_hostname = False
        if self.sslmode == "require":
            context.verify_mode = ssl.CERT_NONE
        return context

    def redacted(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database} sslmode={self.sslmode}"


def _port(value: Any, where: str) -> int:
    if value is None or value == "":
        return 5432
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SettingsError(f"{where}: the port is not a whole number from 1 to 65535")
    return int(text)
