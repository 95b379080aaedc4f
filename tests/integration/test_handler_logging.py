"""What the handlers log, whatever the function's environment says (docs/security.md).

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


SIGNATURE = "X-Amz-Signature=5ec7e75d9a7b0c0ffee"


@pytest.fixture
def schema_app_with_log_event_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    import schema_app

    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    importlib.reload(schema_app)
    yield schema_app
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    importlib.reload(schema_app)


def test_log_event_env_true_logs_no_presigned_response_url(
    schema_app_with_log_event_on: ModuleType,
    captured_logs: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from login_etl import schema_resource

    answers: list[dict[str, Any]] = []
    monkeypatch.setattr(schema_resource, "put_response", lambda _, body: answers.append(body))
    event = {
        "RequestType": "Delete",  # answers without a database
        "ResponseURL": f"https://cloudformation-custom-resource.s3.amazonaws.com/x?{SIGNATURE}",
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "Schema",
        "ResourceType": "Custom::LoginEtlSchema",
        "PhysicalResourceId": "login-etl-schema",
        "ResourceProperties": {},
    }
    schema_app_with_log_event_on.handler(event, LocalContext())
    assert [answer["Status"] for answer in answers] == ["SUCCESS"]
    logs = captured_logs()
    assert '"schema answer"' in logs
    assert SIGNATURE not in logs
