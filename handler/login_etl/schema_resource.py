"""The schema step as a CloudFormation custom resource (docs/operations.md, The schema step).

Create and Update run the schema step, Delete does nothing; every outcome is answered to
CloudFormation, a failure with a one-line reason that never holds a secret.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from pg8000.exceptions import DatabaseError

from .config import database_settings
from .errors import ConfigurationError, DatabaseUnavailable, SchemaError
from .postgres import sql
from .postgres.errors import describe, sqlstate
from .postgres.schema import init_database
from .secrets import SecretSource

Respond = Callable[[Mapping[str, Any], dict[str, Any]], None]
_INSUFFICIENT_PRIVILEGE = "42501"


def handle(
    event: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    secrets: SecretSource,
    log_stream: str = "",
    respond: Respond | None = None,
) -> dict[str, Any]:
    """Run the request and answer CloudFormation; returns the answer (for the logs)."""
    answer = _run(event, env, secrets)
    if answer["Status"] == "FAILED" and log_stream:
        answer["Reason"] += f" (log stream {log_stream})"
    body = answer | {key: event[key] for key in ("StackId", "RequestId", "LogicalResourceId")}
    (respond or put_response)(event, body)
    return body


def _run(event: Mapping[str, Any], env: Mapping[str, str], secrets: SecretSource) -> dict[str, Any]:
    physical_id = str(event.get("PhysicalResourceId") or "login-etl-schema")
    if event["RequestType"] == "Delete":
        return {"Status": "SUCCESS", "PhysicalResourceId": physical_id, "Data": {}}
    try:
        settings = database_settings(env, secrets)
        init_database(settings)
    except ConfigurationError as error:
        return _failed(physical_id, f"configuration: {error}")
    except DatabaseUnavailable as error:
        return _failed(physical_id, f"database: {error}")  # unreachable, or login refused
    except DatabaseError as error:
        if sqlstate(error) == _INSUFFICIENT_PRIVILEGE:
            reason = f"the database role lacks rights for the schema step: {describe(error)}"
        else:
            reason = f"the schema step failed: {describe(error)}"
        return _failed(physical_id, reason)
    except SchemaError as error:
        return _failed(physical_id, f"the schema step failed: {error}")
    except Exception as error:  # noqa: BLE001 - CloudFormation must always get an answer
        return _failed(physical_id, f"the schema step failed: {type(error).__name__}")
    return {
        "Status": "SUCCESS",
        # Stable for one database: a new database is a new resource (CloudFormation then
        # sends Delete for the old one, which keeps its data).
        "PhysicalResourceId": (
            f"login-etl-schema:{settings.host}:{settings.port}/{settings.database}"
        ),
        "Data": {"Ledger": sql.LEDGER, "View": sql.VERSION_VIEW},
    }


def _failed(physical_id: str, reason: str) -> dict[str, Any]:
    return {"Status": "FAILED", "PhysicalResourceId": physical_id, "Reason": reason, "Data": {}}


def put_response(event: Mapping[str, Any], body: dict[str, Any]) -> None:
    """PUT the answer to the pre-signed ``ResponseURL`` (no content type: it is signed)."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL CloudFormation gave us
        str(event["ResponseURL"]),
        data=data,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(data))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()
