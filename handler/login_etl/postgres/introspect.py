"""What the database has: the shape of ``user_logins`` and whether the ledger exists."""

from __future__ import annotations

from typing import Final

import pg8000.native

from ..errors import SchemaError
from ..table import REQUIRED_COLUMNS, TABLE_NAME, AppVersionKind, TableShape
from . import sql

_INTEGER_TYPES: Final = ("integer", "bigint")
_TEXT_TYPES: Final = ("character varying", "text", "character")


def legacy_ledger_has_ids(conn: pg8000.native.Connection) -> bool:
    """Whether the single-table ledger of earlier versions exists and holds ids."""
    if not conn.run(sql.LEDGER_EXISTS, name=sql.LEGACY_LEDGER)[0][0]:
        return False
    return bool(conn.run(sql.LEGACY_LEDGER_HAS_IDS)[0][0])


def find_table(conn: pg8000.native.Connection) -> tuple[str, str] | None:
    """The schema and name of the table ``user_logins`` means on this connection (as an
    unqualified name in a statement would resolve through ``search_path``), or None."""
    found = conn.run(sql.RESOLVE_TABLE, name=TABLE_NAME)
    return (str(found[0][0]), str(found[0][1])) if found else None


def read_table(conn: pg8000.native.Connection) -> tuple[str, TableShape]:
    """Inspect ``user_logins`` (the table the unqualified name resolves to, see
    :func:`find_table`) and check the ledger exists. Returns the table schema-qualified and
    quoted (the one name every statement of a session writes to) and its shape."""
    if (found := find_table(conn)) is None:
        raise SchemaError(f"table {TABLE_NAME} does not exist; run `make db-init`")
    schema, name = found
    rows = conn.run(sql.TABLE_COLUMNS, schema=schema, table=name)
    columns = {name: (data_type, max_length) for name, data_type, max_length in rows}
    if missing := REQUIRED_COLUMNS - columns.keys():
        raise SchemaError(f"table {TABLE_NAME} lacks columns {sorted(missing)}")
    for ledger in (sql.LEDGER_SLOT_DAYS, sql.UNDATED_LEDGER):
        if not conn.run(sql.LEDGER_EXISTS, name=ledger)[0][0]:
            raise SchemaError(f"ledger {ledger} does not exist; run `make db-init`")
    data_type, max_length = columns["app_version"]
    if data_type in _INTEGER_TYPES:
        kind = AppVersionKind.INTEGER
    elif data_type in _TEXT_TYPES:
        kind = AppVersionKind.TEXT
    else:
        raise SchemaError(f"{TABLE_NAME}.app_version has unsupported type {data_type}")
    shape = TableShape(kind, max_length, has_create_date="create_date" in columns)
    return sql.qualified(*found), shape
