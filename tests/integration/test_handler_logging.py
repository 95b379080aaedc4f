"""What the handler logs, whatever the function's environment says (docs/security.md).

Powertools reads ``POWERTOOLS_LOGGER_LOG_EVENT`` when ``inject_lambda_context`` wraps the
handler, i.e. when ``app`` is imported, and an explicit ``log_event`` argument wins over
it: so the module is imported afresh with the variable set, as a cold start would.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from localdev.lambda_event import LocalContext

from .conftest import Db, failed_ids, load_event


@pytest.fixture
def app_with_log_event_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    import app

    app._runtime.close()
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    importlib.reload(app)  # the cold start of a function deployed with the variable set
    yield app
    app._runtime.close()
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    importlib.reload(app)  # the suite's app as it was


@pytest.mark.parametrize("name", ["sqs-single-login.json", "sqs-mixed-batch.json"])
def test_log_event_env_true_logs_no_raw_ip_or_device_id(
    db: Db, app_with_log_event_on: ModuleType, captured_logs: Callable[[], str], name: str
) -> None:
    event = load_event(name)
    response = app_with_log_event_on.lambda_handler(event, LocalContext())
    logs = captured_logs()
    assert '"batch processed"' in logs  # INFO lines are written: the event would be too
    assert db.count() == len(event["Records"]) - len(failed_ids(response)) > 0
    raw: list[str] = []
    for record in event["Records"]:
        try:
            body: Any = json.loads(record["body"])
        except ValueError:
            continue
        if isinstance(body, dict):
            raw += [str(body[k]).strip() for k in ("ip", "device_id") if body.get(k)]
    assert raw
    # Counts only in the messages: a failure must not print the logs (and the values).
    leaked = sum(value in logs for value in raw)
    assert leaked == 0, f"{leaked} of {len(raw)} raw ip/device_id values in the logs"
    handles = sum(record["receiptHandle"] in logs for record in event["Records"])
    assert handles == 0, "the event itself was logged"
