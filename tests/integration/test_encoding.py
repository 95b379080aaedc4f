"""Non-ASCII text in databases that are not UTF-8 (LATIN1, SQL_ASCII), on real Postgres
(default and 10), through the one-statement path and the streamed COPY.

Both paths must store the same text: every session speaks UTF-8 (``client_encoding``)
and the server converts. A character the database's encoding cannot hold is one row's
rejection (SQLSTATE 22P05), on both paths, never garbage and never a failed batch.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from localdev.env.database import with_database
from localdev.lambda_event import sqs_record
from localdev.traffic import login_bodies
from login_etl.connection_settings import ConnectionSettings
from login_etl.masking import Masker
from login_etl.pipeline import process_batch
from login_etl.postgres import SMALL_BATCH_ROWS, PostgresSink
from login_etl.postgres import sink as sink_module
from login_etl.postgres.schema import init_schema
from tests.conftest import Databases, Db, admin_connect, on_each_server

from .conftest import PII_KEY

pytestmark = on_each_server

# (text in user_id, whether LATIN1 can hold it)
TEXTS = [("café", True), ("Müller", True), ("5 €", False), ("日本", False), ("plain", True)]


class Rejections:
    def __init__(self) -> None:
        self.details: dict[str, str] = {}

    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        self.details[extra["message_id"]] = str(extra["detail"])


def encoded_database(databases: Databases, encoding: str) -> str:
    name = f"login_etl_test_{encoding.lower()}_{secrets.token_hex(4)}"
    admin = admin_connect(databases.server_url)
    try:
        admin.run(
            f"CREATE DATABASE {name} WITH ENCODING '{encoding}'"
            " LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    finally:
        admin.close()
    databases.created.append(name)
    url = with_database(databases.server_url, name)
    conn = admin_connect(url)
    try:
        init_schema(conn)
    finally:
        conn.close()
    return url


@pytest.fixture(params=["LATIN1", "SQL_ASCII"])
def encoded(databases: Databases, request: pytest.FixtureRequest) -> Iterator[tuple[str, Db]]:
    encoding = str(request.param)
    yield encoding, Db(encoded_database(databases, encoding))


def batch(
    count: int, *, prefix: str, texts: list[str] | None = None
) -> tuple[list[Any], dict[str, str]]:
    """Records whose user_id holds each of ``texts`` (TEXTS) in turn; and each id's
    user_id."""
    texts = texts or [text for text, _ in TEXTS]
    records, users = [], {}
    for i, message in enumerate(login_bodies(count, seed=31, invalid_ratio=0)):
        body = json.loads(message.body)
        body["user_id"] = f"{texts[i % len(texts)]} {prefix}{i}"
        message_id = f"{prefix}-{i}"
        users[message_id] = body["user_id"]
        records.append(
            sqs_record(
                json.dumps(body, ensure_ascii=False),
                message_id=message_id,
                sent_timestamp_ms=1_780_000_000_000 + i,
            )
        )
    return records, users


def stored_users(db: Db) -> set[str]:
    conn = db.connect()
    try:
        conn.run("SET client_encoding TO 'UTF8'")  # read back as the characters they are
        return {row[0] for row in conn.run("SELECT user_id FROM user_logins")}
    finally:
        conn.close()


@pytest.mark.parametrize("count", [10, SMALL_BATCH_ROWS + 50])  # one statement; COPY
def test_both_paths_store_the_same_text_in_a_non_utf8_database(
    encoded: tuple[str, Db], count: int
) -> None:
    encoding, db = encoded
    records, users = batch(count, prefix=f"n{count}")
    log = Rejections()
    sink = PostgresSink(ConnectionSettings.from_url(db.url))
    try:
        result = process_batch(records, sink=sink, masker=Masker(PII_KEY.encode()), logger=log)
    finally:
        sink.close()
    if encoding == "LATIN1":  # what LATIN1 holds is stored; the rest is refused, row by row
        holdable = {TEXTS[i % len(TEXTS)][1] for i in range(count)}
        assert holdable == {True, False}
        expected = {
            users[r["messageId"]] for i, r in enumerate(records) if TEXTS[i % len(TEXTS)][1]
        }
        refused = set(users) - {m for m, u in users.items() if u in expected}
        assert set(result.failed_message_ids) == refused
        assert result.rejections == {"database_rejected": len(refused)}
        assert set(log.details.values()) == {"SQLSTATE 22P05"}
    else:  # SQL_ASCII stores the bytes it is given: the UTF-8 of every text
        expected = set(users.values())
        assert result.failed_message_ids == []
    assert stored_users(db) == expected
    assert db.count() == len(expected)


@pytest.mark.parametrize("count", [10, SMALL_BATCH_ROWS + 50])
def test_text_the_database_can_hold_needs_no_bisection(
    encoded: tuple[str, Db], count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """é and ü are written by the batch's own path (one statement, or the COPY), not
    found "refused" and re-written row by row."""
    _, db = encoded
    records, users = batch(count, prefix=f"h{count}", texts=["café", "Müller", "plain"])
    bisected: list[int] = []
    original = sink_module.write_isolating

    def spy(session: Any, rows: Any, *args: Any) -> Any:
        bisected.append(len(rows))
        return original(session, rows, *args)

    monkeypatch.setattr(sink_module, "write_isolating", spy)
    sink = PostgresSink(ConnectionSettings.from_url(db.url))
    try:
        result = process_batch(
            records, sink=sink, masker=Masker(PII_KEY.encode()), logger=Rejections()
        )
    finally:
        sink.close()
    assert result.failed_message_ids == []
    assert bisected == []
    assert stored_users(db) == set(users.values())
