"""One open connection with the table's shape and the batch statements prepared on it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pg8000.native

from ..connection_settings import ConnectionSettings
from ..table import TableShape
from . import sql
from .connect import connect
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe
from .introspect import legacy_ledger_has_ids, qualified_table, read_table_shape
from .ledger import Ledger


@dataclass(slots=True)
class Session:
    """Prepared once per connection: pg8000 re-scans SQL text for ``:params`` on every
    ``run()``, and Postgres would re-plan it. Once closed (a write found the connection
    unusable), the sink opens a new session for the next write."""

    conn: pg8000.native.Connection
    shape: TableShape
    ledger: Ledger  # the claim statements of each day's slot, and its maintenance
    copy_sql: str  # sql.copy_rows(shape, table)
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(*DRIVER_ERRORS):
                self.conn.close()

    def rollback_or_close(self) -> None:
        """Roll back; if that fails in any way, close (which ends the transaction)."""
        try:
            self.conn.run("ROLLBACK")
        except DRIVER_ERRORS:
            self.close()
        except BaseException:
            self.close()
            raise


def open_session(
    settings: ConnectionSettings, *, window_days: int, today: Callable[[], date]
) -> Session:
    conn = connect(settings)
    try:
        # Whatever the database's encoding: the server converts, and COPY data
        # (copy_chunk) and parameters are the same UTF-8 bytes.
        conn.run(sql.CLIENT_ENCODING_UTF8)
        # One resolution of the unqualified name: the shape and every write use it.
        table = qualified_table(conn)
        shape = read_table_shape(conn)
        legacy = legacy_ledger_has_ids(conn)
        ledger = Ledger(conn, shape, table, window_days, legacy, today)
        copy_sql = sql.copy_rows(shape, table)
        return Session(conn=conn, shape=shape, ledger=ledger, copy_sql=copy_sql)
    except DRIVER_ERRORS as error:
        with contextlib.suppress(*DRIVER_ERRORS):  # the connection may be the broken part
            conn.close()
        raise DatabaseUnavailable(f"cannot prepare the batch write: {describe(error)}") from None
    except BaseException:  # SchemaError, or not the driver's: never leave it open
        with contextlib.suppress(*DRIVER_ERRORS):
            conn.close()
        raise
