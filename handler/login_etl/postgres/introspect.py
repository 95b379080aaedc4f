"""What the database has: the shape of ``user_logins`` and whether the ledger exists."""

from __future__ import annotations

from typing import Final

import pg8000.native

from ..table import REQUIRED_COLUMNS, TABLE_NAME, AppVersionKind, SchemaError, TableShape
from . import sql

_INTEGER_TYPES: Final = ("integer", "bigint")
_TEXT_TYPES: Final = ("character varying", "text", "character")


def legacy_ledger_has_ids(conn: pg8000.native.Connection) -> bool:
    """Whether the single-table ledger of earlier versions exists and holds ids."""
    if not conn.run(sql.LEDGER_EXISTS, name=sql.LEGACY_LEDGER)[0][0]:
        return False
    return bool(conn.run(sql.LEGACY_LEDGER_HAS_IDS)[0][0])


def read_table_shape(conn: pg8000.native.Connection) -> TableShape:
    """Inspect ``user_logins`` and check the ledger exists (one query each)."""
    rows = conn.run(sql.TABLE_COLUMNS, table=TABLE_NAME)
    columns = {name: (data_type, max_length) for name, data_type, max_length in rows}
    if not columns:
        raise SchemaError(f"table {TABLE_NAME} does not exist; run `make db-init`")
    missing = REQUIRED_COLUMNS - columns.keys()
    if missing:
        raise SchemaError(f"table {TABLE_NAME} lacks columns {sorted(missing)}")
    if not conn.run(sql.LEDGER_EXISTS, name=sql.LEDGER_SLOT_DAYS)[0][0]:
        raise SchemaError(f"ledger {sql.LEDGER_SLOT_DAYS} does not exist; run `make db-init`")
    data_type, max_length = columns["app_version"]
    if data_type in _INTEGER_TYPES:
        kind = AppVersionKind.INTEGER
    elif data_type in _TEXT_TYPES:
        kind = AppVersionKind.TEXT
    else:
        raise SchemaError(f"{TABLE_NAME}.app_version has unsupported type {data_type}")
    return TableShape(kind, max_length, has_create_date="create_date" in columns)
