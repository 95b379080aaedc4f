"""Schema step: ``user_logins`` (the current DDL, only when absent), the ledger, the view.

How to run it, and the legacy ledger's migration in place: docs/operations.md (The schema
step)."""

from __future__ import annotations

import os
import sys

import pg8000.native

from ..connection_settings import ConnectionSettings
from ..errors import ConfigurationError, SettingsError
from . import sql
from .connect import connect
from .errors import DatabaseUnavailable
from .introspect import find_table, read_table


def init_schema(conn: pg8000.native.Connection) -> None:
    """Create what is missing; idempotent. The view follows the table's app_version type."""
    conn.run("BEGIN")
    try:
        # Only when the name resolves to nothing: CREATE TABLE IF NOT EXISTS looks in
        # current_schema() alone, and would add a second, empty user_logins there when
        # the one in use is further down the search_path.
        if find_table(conn) is None:
            conn.run(sql.CREATE_USER_LOGINS)
        conn.run(sql.CREATE_SCHEMA)
        conn.run(sql.CREATE_LEDGER_SLOT_DAYS)
        conn.run(sql.FILL_LEDGER_SLOT_DAYS, last=sql.LEDGER_SLOTS - 1)
        for slot in range(sql.LEDGER_SLOTS):
            conn.run(sql.create_slot_table(slot))
        conn.run(sql.CREATE_UNDATED_LEDGER)
        conn.run(sql.CREATE_UNDATED_LEDGER_INDEX)
        legacy = bool(conn.run(sql.LEDGER_EXISTS, name=sql.LEGACY_LEDGER)[0][0])
        if legacy:
            conn.run(sql.DROP_OLD_LEDGER_INDEX)
            conn.run(sql.CREATE_LEGACY_LEDGER_INDEX)
        conn.run(sql.DROP_LEDGER_VIEW)
        conn.run(sql.create_ledger_view(legacy))
        conn.run(sql.DECODE_APP_VERSION_FUNCTION)
        table, shape = read_table(conn)
        conn.run(sql.DROP_VERSION_VIEW)
        conn.run(sql.create_version_view(shape.app_version_kind, table))
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


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DATABASE_URL")
    if not url:
        print("db-init: set DATABASE_URL (or pass it as the argument)", file=sys.stderr)
        return 2
    try:
        settings = ConnectionSettings.from_url(url)
        init_database(settings)
    except (SettingsError, ConfigurationError, DatabaseUnavailable) as error:
        # Our own texts, which quote no password (a traceback would add nothing).
        print(f"db-init: error: {error}", file=sys.stderr)
        return 1
    print(
        f"db-init: user_logins, {sql.LEDGER} and {sql.VERSION_VIEW} ready on {settings.redacted()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
