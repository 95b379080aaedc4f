"""Which ``user_logins``: the one the shape is read from is the one rows go to, whatever
``search_path`` says, on real Postgres (default and 10).

The session resolves the unqualified name once (as a statement would, through
``search_path``) and writes to that table by its schema-qualified name.
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies
from login_etl.connection_settings import ConnectionSettings
from login_etl.masking import Masker
from login_etl.pipeline import process_batch
from login_etl.postgres import SMALL_BATCH_ROWS, PostgresSink
from login_etl.postgres.schema import init_schema
from login_etl.table import CURRENT_SHAPE
from tests.conftest import LEGACY_DDL, Databases, Db, on_each_server

from .conftest import PII_KEY

pytestmark = on_each_server

CURRENT_DDL = """
CREATE TABLE {schema}.user_logins(
    user_id varchar(128), device_type varchar(32), masked_ip varchar(256),
    masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date)
"""


class Quiet:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass


def two_tables(databases: Databases, search_path: str) -> Db:
    """Schemas ``a`` (current DDL) and ``b`` (legacy DDL) each with a user_logins, an
    empty schema ``first``, and ``search_path`` set for the database's sessions; then
    the schema step, in such a session."""
    db = Db(databases.create(init=False))
    conn = db.connect()
    try:
        conn.run("CREATE SCHEMA first; CREATE SCHEMA a; CREATE SCHEMA b")
        conn.run(CURRENT_DDL.format(schema="a"))
        conn.run("SET search_path = b")
        conn.run(LEGACY_DDL)
        name = conn.run("SELECT current_database()")[0][0]
        conn.run(f"ALTER DATABASE {name} SET search_path = {search_path}")
    finally:
        conn.close()
    conn = db.connect()
    try:
        init_schema(conn)
    finally:
        conn.close()
    return db


def rows_in(db: Db, schema: str) -> int:
    return int(db.query(f"SELECT count(*) FROM {schema}.user_logins")[0][0])


def user_logins_schemas(db: Db) -> set[str]:
    found = db.query(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'user_logins'"
    )
    return {str(r[0]) for r in found}


@pytest.mark.parametrize("count", [5, SMALL_BATCH_ROWS + 30])  # one statement; COPY
def test_the_table_further_down_the_search_path_is_found_and_written(
    databases: Databases, count: int
) -> None:
    """current_schema() is ``first`` (no user_logins); the name means ``a.user_logins``."""
    db = two_tables(databases, "first, a, b")
    assert user_logins_schemas(db) == {"a", "b"}  # the schema step added none in `first`
    sink = PostgresSink(ConnectionSettings.from_url(db.url))
    try:
        assert sink.table_shape() == CURRENT_SHAPE  # a's, not b's legacy one
        event = sqs_event([m.body for m in login_bodies(count, seed=41, invalid_ratio=0)], seed=41)
        result = process_batch(
            event["Records"], sink=sink, masker=Masker(PII_KEY.encode()), logger=Quiet()
        )
    finally:
        sink.close()
    assert result.written == count
    assert (rows_in(db, "a"), rows_in(db, "b")) == (count, 0)
    view = db.query("SELECT count(*) FROM login_etl.user_logins_decoded")
    assert view == [[count]]  # the analyst view reads the same table


@pytest.mark.parametrize("count", [5, SMALL_BATCH_ROWS + 30])
def test_rows_go_where_the_shape_came_from_when_search_path_changes(
    databases: Databases, count: int
) -> None:
    """A session whose search_path changes after it read the shape (a pooler sharing
    server sessions, a function's SET): unqualified, the rows would go to b."""
    db = two_tables(databases, "a, b")
    sink = PostgresSink(ConnectionSettings.from_url(db.url))
    try:
        assert sink.table_shape() == CURRENT_SHAPE
        session = sink._open()
        session.conn.run("SET search_path = b, a")
        event = sqs_event([m.body for m in login_bodies(count, seed=42, invalid_ratio=0)], seed=42)
        result = process_batch(
            event["Records"], sink=sink, masker=Masker(PII_KEY.encode()), logger=Quiet()
        )
    finally:
        sink.close()
    assert result.written == count
    assert (rows_in(db, "a"), rows_in(db, "b")) == (count, 0)
