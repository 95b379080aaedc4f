"""What the handler knows about the target table: the columns it can write."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

TABLE_NAME = "user_logins"

# Insertion order of the row tuples built by records.to_row and written by the sink.
ROW_COLUMNS = (
    "user_id",
    "device_type",
    "masked_ip",
    "masked_device_id",
    "locale",
    "app_version",
    "create_date",
)
REQUIRED_COLUMNS = frozenset(ROW_COLUMNS) - {"create_date"}


class AppVersionKind(Enum):
    INTEGER = "integer"  # encoded MAJOR*1_000_000 + MINOR*1_000 + PATCH
    TEXT = "text"  # the string as sent


@dataclass(frozen=True, slots=True)
class TableShape:
    """The parts of ``user_logins`` that change what a row looks like.

    Two DDLs are in use: the current one (integer ``app_version``, ``create_date``)
    and the legacy one (``varchar(100)`` ``app_version``, no ``create_date``).
    """

    app_version_kind: AppVersionKind
    app_version_max_length: int | None
    has_create_date: bool

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns written, in ROW_COLUMNS order."""
        return ROW_COLUMNS if self.has_create_date else ROW_COLUMNS[:-1]


CURRENT_SHAPE = TableShape(AppVersionKind.INTEGER, None, has_create_date=True)
LEGACY_SHAPE = TableShape(AppVersionKind.TEXT, 100, has_create_date=False)
