"""One open connection with the table's shape and the batch statements prepared on it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pg8000.native

from ..connection_settings import ConnectionSettings
from ..table import SchemaError, TableShape
from . import sql
from .connect import connect
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe
from .introspect import legacy_ledger_has_ids, read_table_shape
from .ledger import Ledger


@dataclass(slots=True)
class Session:
    """Prepared once per connection: pg8000 re-scans SQL text for ``:params`` on every
    ``run()``, and Postgres would re-plan it. Once closed (a write found the connection
    unusable), the sink opens a new session for the next write."""

    conn: pg8000.native.Connection
    shape: TableShape
    ledger: Ledger  # the claim statements of each day's slot, and its maintenance
    copy_sql: str  # sql.copy_rows(shape)
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(*DRIVER_ERRORS):
                self.conn.close()

    def rollback_or_close(self) -> None:
        try:
            self.conn.run("ROLLBACK")
        except DRIVER_ERRORS:
            self.close()


def open_session(
    settings: ConnectionSettings, *, window_days: int, today: Callable[[], date]
) -> Session:
    conn = connect(settings)
    try:
        shape = read_table_shape(conn)
        ledger = Ledger(conn, shape, window_days, legacy_ledger_has_ids(conn), today)
        return Session(conn=conn, shape=shape, ledger=ledger, copy_sql=sql.copy_rows(shape))
    except DRIVER_ERRORS as error:
        conn.close()
        raise DatabaseUnavailable(f"cannot prepare the batch write: {describe(error)}") from None
    except SchemaError:
        conn.close()
        raise
