"""The schema custom resource's handler against a real Postgres (CloudFormation's side faked:
the answer that would be PUT to ResponseURL is captured)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from login_etl.schema_resource import handle
from login_etl.secrets import SecretSource
from tests.conftest import LEDGER_TABLES, LEGACY_DDL, Databases, Db, admin_connect

pytestmark = pytest.mark.integration


def event(request_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "http://127.0.0.1:9/unused",
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "Schema",
        "ResourceType": "Custom::LoginEtlSchema",
        "ResourceProperties": {},
        **extra,
    }


def run(request: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    handle(request, env=env, secrets=SecretSource(), respond=lambda _, body: answers.append(body))
    [answer] = answers
    return answer


def tables(url: str) -> set[str]:
    rows = Db(url).query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema IN ('public', 'login_etl')"
    )
    return {r[0] for r in rows}


def test_create_makes_the_schema_and_update_repeats_it(databases: Databases) -> None:
    url = databases.create(init=False)
    assert tables(url) == set()
    created = run(event("Create"), {"DATABASE_URL": url})
    assert created["Status"] == "SUCCESS", created
    expected = {
        "public.user_logins",
        *LEDGER_TABLES,
        "login_etl.user_logins_decoded",
    }
    assert tables(url) == expected
    Db(url).query("INSERT INTO login_etl.ledger_00 (message_id) VALUES ('kept')")

    updated = run(
        event("Update", PhysicalResourceId=created["PhysicalResourceId"]), {"DATABASE_URL": url}
    )
    assert updated["Status"] == "SUCCESS"
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]  # same database
    assert tables(url) == expected
    assert Db(url).query("SELECT message_id FROM login_etl.ledger") == [["kept"]]


def test_an_existing_legacy_table_is_never_altered(databases: Databases) -> None:
    url = databases.create(LEGACY_DDL, init=False)
    assert run(event("Create"), {"DATABASE_URL": url})["Status"] == "SUCCESS"
    columns = Db(url).query(
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_name = 'user_logins' AND column_name = 'app_version'"
    )
    assert columns == [["character varying"]]


def test_delete_answers_success_and_drops_nothing(databases: Databases) -> None:
    url = databases.create()
    answer = run(event("Delete", PhysicalResourceId="login-etl-schema:x"), {"DATABASE_URL": url})
    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == "login-etl-schema:x"
    assert "public.user_logins" in tables(url)


def test_an_unreachable_database_fails_with_a_clear_reason() -> None:
    password = secrets.token_hex(8)
    env = {"DATABASE_URL": f"postgresql://u:{password}@127.0.0.1:9/db", "DB_CONNECT_TIMEOUT": "2"}
    answer = run(event("Create"), env)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("database: cannot connect to Postgres at 127.0.0.1:9")
    assert password not in answer["Reason"]


def test_a_role_without_rights_fails_with_a_clear_reason(databases: Databases) -> None:
    url = databases.create(init=False)
    role, password = f"limited_{secrets.token_hex(3)}", secrets.token_hex(8)
    admin = admin_connect(url)
    try:
        admin.run(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        admin.run(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
    finally:
        admin.close()
    parts = urlsplit(url)
    limited = urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
    try:
        answer = run(event("Create"), {"DATABASE_URL": limited})
    finally:
        admin = admin_connect(url)
        try:
            admin.run(f"DROP OWNED BY {role}")
            admin.run(f"DROP ROLE {role}")
        finally:
            admin.close()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("the database role lacks rights for the schema step: 42501")
    assert password not in answer["Reason"]


def test_no_database_configured_fails_with_a_clear_reason() -> None:
    answer = run(event("Create"), {})
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "configuration: no database configured (set DB_SECRET_ARN or DATABASE_URL)"
    )
