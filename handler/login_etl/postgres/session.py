"""One open connection with the table's shape and the batch statements prepared on it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pg8000.native

from ..connection_settings import ConnectionSettings
from ..table import SchemaError, TableShape
from . import sql
from .connect import connect
from .errors import DRIVER_ERRORS, DatabaseUnavailable, describe
from .introspect import read_table_shape


@dataclass(slots=True)
class Session:
    """Prepared once per connection: pg8000 re-scans SQL text for ``:params`` on every
    ``run()``, and Postgres would re-plan it. Once closed (a write found the connection
    unusable), the sink opens a new session for the next write."""

    conn: pg8000.native.Connection
    shape: TableShape
    claim: pg8000.native.PreparedStatement  # sql.CLAIM_MESSAGE_IDS
    claim_new: pg8000.native.PreparedStatement  # sql.CLAIM_NEW_MESSAGE_IDS
    unclaim: pg8000.native.PreparedStatement  # sql.UNCLAIM_MESSAGE_IDS
    small_batch: pg8000.native.PreparedStatement  # sql.write_small_batch(shape)
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


def open_session(settings: ConnectionSettings) -> Session:
    conn = connect(settings)
    try:
        shape = read_table_shape(conn)
        return Session(
            conn=conn,
            shape=shape,
            claim=conn.prepare(sql.CLAIM_MESSAGE_IDS),
            claim_new=conn.prepare(sql.CLAIM_NEW_MESSAGE_IDS),
            unclaim=conn.prepare(sql.UNCLAIM_MESSAGE_IDS),
            small_batch=conn.prepare(sql.write_small_batch(shape)),
            copy_sql=sql.copy_rows(shape),
        )
    except DRIVER_ERRORS as error:
        conn.close()
        raise DatabaseUnavailable(f"cannot prepare the batch write: {describe(error)}") from None
    except SchemaError:
        conn.close()
        raise
