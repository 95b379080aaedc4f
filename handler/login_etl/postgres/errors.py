"""How the write path classifies pg8000's errors (by SQLSTATE) and reports them."""

from __future__ import annotations

from typing import Final

from pg8000.exceptions import DatabaseError, InterfaceError

from ..errors import ConnectionLost, DatabaseUnavailable, RowRejected

__all__ = ["ConnectionLost", "DatabaseUnavailable", "RowRejected", "describe", "sqlstate"]

# Everything pg8000 and the socket raise when a statement or the connection fails.
DRIVER_ERRORS: Final = (InterfaceError, DatabaseError, OSError)

# SQLSTATE classes caused by one row's values (22 data exception, 23 integrity
# constraint, P0 raised by a trigger): isolate the row instead of failing the batch.
_ROW_LEVEL_CLASSES: Final = ("22", "23", "P0")


def sqlstate(error: DatabaseError) -> str:
    info = error.args[0] if error.args else None
    return str(info.get("C", "")) if isinstance(info, dict) else ""


def is_row_level(error: DatabaseError) -> bool:
    return sqlstate(error).startswith(_ROW_LEVEL_CLASSES)


def is_connection_error(error: DatabaseError) -> bool:
    # 08: connection exception; 57P01-57P03: admin shutdown / crash / cannot connect now.
    code = sqlstate(error)
    return code.startswith("08") or code in ("57P01", "57P02", "57P03")


def describe(error: BaseException) -> str:
    """SQLSTATE and message only: Postgres' DETAIL can quote row values."""
    if isinstance(error, DatabaseError):
        info = error.args[0] if error.args else None
        if isinstance(info, dict):
            return f"{info.get('C', '?')} {info.get('M', '')}".strip()
    return f"{type(error).__name__}: {error}"
