"""Fixtures for running ``lambda_handler`` against a real Postgres."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.lambda_event import LocalContext
from tests.conftest import LEGACY_DDL, Databases, Db

PII_KEY = "integration-test-key-\u00e9"  # non-ASCII on purpose: the key is UTF-8 text


@pytest.fixture
def databases(server_databases: Databases) -> Databases:
    """Here, the databases of the test's server (``pg_server``): for ``on_each_server``.

    Function-scoped, unlike the suite-wide fixture it overrides: fixtures in this folder
    with a wider scope must not use it.
    """
    return server_databases


@pytest.fixture
def current_ddl_url(databases: Databases) -> str:
    return databases.shared()  # init_schema creates the current DDL


@pytest.fixture
def legacy_url(databases: Databases) -> str:
    return databases.shared(LEGACY_DDL)


def _fresh(url: str, monkeypatch: pytest.MonkeyPatch) -> Db:
    db = Db(url)
    db.empty()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PII_HASH_KEY", PII_KEY)
    for name in (
        "DB_SECRET_ARN",
        "PII_HASH_KEY_SECRET_ARN",
        "PII_HASH_KEY_PARAMETER",
        "DB_STATEMENT_TIMEOUT_MS",
        "DB_CONNECT_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    return db


@pytest.fixture
def db(current_ddl_url: str, monkeypatch: pytest.MonkeyPatch) -> Db:
    """The current DDL (integer app_version, create_date), emptied, configured for the handler."""
    return _fresh(current_ddl_url, monkeypatch)


@pytest.fixture
def legacy_db(legacy_url: str, monkeypatch: pytest.MonkeyPatch) -> Db:
    """The legacy DDL (varchar app_version, no create_date)."""
    return _fresh(legacy_url, monkeypatch)


@pytest.fixture
def handler() -> Iterator[Any]:
    """``app.lambda_handler`` with a Lambda-like context; closes the warm connection after."""
    import app

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return app.lambda_handler(event, LocalContext())

    yield invoke
    app._runtime.close()


@pytest.fixture
def captured_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything the handler writes: Powertools log lines and EMF metric lines.

    The Logger's handler keeps the stdout it saw at import time, so pytest's capture
    fixtures cannot see its lines; point the handler at a buffer instead.
    """
    from login_etl.telemetry import logger

    buffer = io.StringIO()
    handlers = [h for h in logger._logger.handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(buffer) for h in handlers]
    yield lambda: buffer.getvalue() + capsys.readouterr().out
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def load_event(name: str) -> dict[str, Any]:
    from tests.conftest import EVENTS

    return json.loads((EVENTS / name).read_text())


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def record_ids(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"]]


__all__ = ["PII_KEY", "Db", "Path", "failed_ids", "load_event", "record_ids"]
