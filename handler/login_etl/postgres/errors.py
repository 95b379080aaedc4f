"""The one sorting of pg8000's errors (``classify``), and how the write path reports them."""

from __future__ import annotations

import enum
from typing import Final

from pg8000.exceptions import DatabaseError, InterfaceError

from ..errors import DatabaseUnavailable

__all__ = ["DRIVER_ERRORS", "DatabaseUnavailable", "Handling", "classify", "describe", "sqlstate"]

# Everything pg8000 and the socket raise when a statement or the connection fails.
DRIVER_ERRORS: Final = (InterfaceError, DatabaseError, OSError)

# 08: connection exception; 57P01-57P03: admin shutdown / crash / cannot connect now.
_CONNECTION_STATES: Final = ("08", "57P01", "57P02", "57P03")
# SQLSTATE classes caused by one row's values: 22 data exception, 23 integrity
# constraint, P0 raised by a trigger.
_ROW_LEVEL_CLASSES: Final = ("22", "23", "P0")


class Handling(enum.Enum):
    """What a write does about one of ``DRIVER_ERRORS`` (``session.Session.step``)."""

    RETRY = "retry on a new connection"  # the connection broke
    ISOLATE = "isolate the rows"  # one row's values were refused
    FAIL = "fail the batch"  # anything else


def classify(error: Exception) -> Handling:
    """The handling of one of ``DRIVER_ERRORS``: the only place that sorts them."""
    if not isinstance(error, DatabaseError):
        return Handling.RETRY  # InterfaceError, OSError: the socket or the protocol
    code = sqlstate(error)
    if code.startswith(_CONNECTION_STATES):
        return Handling.RETRY
    return Handling.ISOLATE if code.startswith(_ROW_LEVEL_CLASSES) else Handling.FAIL


def sqlstate(error: BaseException) -> str:
    info = error.args[0] if error.args else None
    return str(info.get("C", "")) if isinstance(info, dict) else ""


def describe(error: BaseException) -> str:
    """SQLSTATE and message only: Postgres' DETAIL can quote row values."""
    info = error.args[0] if isinstance(error, DatabaseError) and error.args else None
    if isinstance(info, dict):
        return f"{info.get('C', '?')} {info.get('M', '')}".strip()
    return f"{type(error).__name__}: {error}"
