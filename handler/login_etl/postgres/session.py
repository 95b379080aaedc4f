"""One open connection with the table's shape and the batch statements prepared on it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Final

import pg8000.native

from ..connection_settings import ConnectionSettings
from ..errors import ConnectionLost, DatabaseUnavailable, RowRejected
from . import sql
from .connect import connect
from .errors import DRIVER_ERRORS, Handling, classify, describe
from .introspect import legacy_ledger_has_ids, read_table
from .ledger import BatchDays, Ledger

_BOTH: Final = (Handling.RETRY, Handling.ISOLATE)


@dataclass(slots=True)
class Session:
    """Prepared once per connection: pg8000 re-scans SQL text for ``:params`` on every
    ``run()``, and Postgres would re-plan it. Once closed (a write found the connection
    unusable), the sink opens a new session for the next write."""

    conn: pg8000.native.Connection
    ledger: Ledger  # the table's shape, the claim statements of each day's slot, maintenance
    copy_sql: str  # sql.copy_rows(shape, table)
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(*DRIVER_ERRORS):
                self.conn.close()

    def prepare_ledger(self, days: BatchDays) -> None:
        """The ledger's maintenance, when this session meets a day it has not seen."""
        with self.step("ledger maintenance", handles=(Handling.RETRY,), transaction=False):
            self.ledger.prepare(days.distinct())

    def rollback_or_close(self) -> None:
        """Roll back; if that fails in any way, close (which ends the transaction)."""
        with contextlib.suppress(DatabaseUnavailable), self.step("rollback", handles=()):
            self.conn.run("ROLLBACK")

    @contextlib.contextmanager
    def step(
        self, what: str, *, handles: Collection[Handling] = _BOTH, transaction: bool = True
    ) -> Iterator[None]:
        """Run a write step; settle a failure in it the same way for every strategy, as
        docs/architecture.md (Failures on the write path) describes."""
        try:
            yield
        except DRIVER_ERRORS as error:
            handling = classify(error)
            if handling is Handling.ISOLATE and handling in handles:
                if transaction:
                    with self.step(what, handles=(Handling.RETRY,), transaction=False):
                        self.conn.run("ROLLBACK")
                raise RowRejected from error
            self.close()
            if handling is Handling.RETRY and handling in handles:
                raise ConnectionLost from error
            raise DatabaseUnavailable(f"{what} failed: {describe(error)}") from None
        except DatabaseUnavailable:
            raise
        except BaseException:
            self.close()
            raise


def open_session(
    settings: ConnectionSettings, *, window_days: int, today: Callable[[], date]
) -> Session:
    conn = connect(settings)
    try:
        conn.run(sql.CLIENT_ENCODING_UTF8)  # why: its comment in sql.py
        # One resolution of the unqualified name: the shape and every write use it.
        table, shape = read_table(conn)
        legacy = legacy_ledger_has_ids(conn)
        ledger = Ledger(conn, shape, table, window_days, legacy, today)
        return Session(conn, ledger, copy_sql=sql.copy_rows(shape, table))
    except BaseException as error:  # whatever it is (SchemaError, a bug): never leave it open
        with contextlib.suppress(*DRIVER_ERRORS):  # the connection may be the broken part
            conn.close()
        if isinstance(error, DRIVER_ERRORS):
            raise DatabaseUnavailable(
                f"cannot prepare the batch write: {describe(error)}"
            ) from None
        raise
