"""Schema step: ``user_logins`` (the current DDL, only when absent), the ledger, the view.

Run as ``python -m login_etl.postgres.schema`` (reads ``DATABASE_URL``) or call
:func:`init_schema` with an open connection. It never alters ``user_logins``.
"""

from __future__ import annotations

import os
import sys

import pg8000.native

from ..connection_settings import ConnectionSettings
from . import sql
from .connect import connect
from .introspect import read_table_shape


def init_schema(conn: pg8000.native.Connection) -> None:
    """Create what is missing; idempotent. The view follows the table's app_version type."""
    conn.run("BEGIN")
    try:
        conn.run(sql.CREATE_USER_LOGINS)
        conn.run(sql.CREATE_SCHEMA)
        conn.run(sql.CREATE_LEDGER)
        conn.run(sql.DROP_OLD_LEDGER_INDEX)
        conn.run(sql.CREATE_LEDGER_INDEX)
        conn.run(sql.DECODE_APP_VERSION_FUNCTION)
        shape = read_table_shape(conn)
        conn.run(sql.DROP_VERSION_VIEW)
        conn.run(sql.create_version_view(shape.app_version_kind))
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise


def init_database(settings: ConnectionSettings) -> None:
    """Connect with ``settings``, run :func:`init_schema`, close."""
    conn = connect(settings)
    try:
        init_schema(conn)
    finally:
        conn.close()


def prune_ledger(conn: pg8000.native.Connection, older_than_days: int = 15) -> int:
    """Delete ledger entries SQS can no longer redeliver (retention is at most 14 days)."""
    conn.run(sql.PRUNE_LEDGER, days=older_than_days)
    return conn.row_count or 0


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DATABASE_URL")
    if not url:
        print("db-init: set DATABASE_URL (or pass it as the argument)", file=sys.stderr)
        return 2
    settings = ConnectionSettings.from_url(url)
    init_database(settings)
    print(
        f"db-init: user_logins, {sql.LEDGER} and {sql.VERSION_VIEW} ready on {settings.redacted()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
