"""Where and how to reach Postgres: a URL or an RDS-shaped secret, plus TLS and timeouts.

Plain data, no database import: ``config`` builds it, ``postgres.connect`` uses it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

_SSLMODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


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
