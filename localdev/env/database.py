"""The project's database by URL, as the handler connects: a connection, the schema step.

``init_database`` is what ``make db-init`` runs: ``user_logins`` (current DDL, if absent), the
ledger and the analyst view.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def connect(url: str) -> Any:
    """A connection made the handler's way (``login_etl.postgres.connect``); close it after use."""
    from login_etl.connection_settings import ConnectionSettings
    from login_etl.postgres import connect as handler_connect

    return handler_connect(ConnectionSettings.from_url(url))


def init_database(url: str) -> None:
    """``init_schema`` (``login_etl.postgres.schema``) on the database of ``url``."""
    from login_etl.connection_settings import ConnectionSettings
    from login_etl.postgres.schema import init_database as init_schema_on

    init_schema_on(ConnectionSettings.from_url(url))


def with_database(url: str, database: str) -> str:
    """``url`` with its database name replaced."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def drop_database(admin: Any, name: str) -> None:
    """End the sessions on database ``name``, then drop it (an open ``pg8000`` connection).

    Not ``DROP DATABASE ... WITH (FORCE)``: that needs PostgreSQL 13 (the exercise's is 10).
    ``name`` is an identifier the caller made, never input.
    """
    admin.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = :name AND pid <> pg_backend_pid()",
        name=name,
    )
    admin.run(f"DROP DATABASE IF EXISTS {name}")


def empty_tables(conn: Any) -> None:
    """Empty ``user_logins`` and the ledger, every slot free again (tests and benchmarks;
    an open connection)."""
    from login_etl.postgres import sql

    slots = [sql.slot_table(slot) for slot in range(sql.LEDGER_SLOTS)] + [sql.UNDATED_LEDGER]
    conn.run(f"TRUNCATE {', '.join(['user_logins', *slots])}")
    conn.run(f"UPDATE {sql.LEDGER_SLOT_DAYS} SET day = NULL, opened_on = NULL")
