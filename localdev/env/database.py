"""The project's database by URL, as the handler connects: a connection, the schema step.

``init_database`` is what ``make db-init`` runs: ``user_logins`` (current DDL, if absent), the
ledger and the analyst view.
"""

from __future__ import annotations

from typing import Any


def connect(url: str) -> Any:
    """A connection made the handler's way (``login_etl.postgres.connect``); close it after use."""
    from login_etl.connection_settings import ConnectionSettings
    from login_etl.postgres import connect as handler_connect

    return handler_connect(ConnectionSettings.from_url(url))


def init_database(url: str) -> None:
    """``init_schema`` (``login_etl.postgres.schema``) on the database of ``url``."""
    from login_etl.postgres.schema import init_schema

    conn = connect(url)
    try:
        init_schema(conn)
    finally:
        conn.close()
