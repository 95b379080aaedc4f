"""The deployed function's log: totals from its Powertools lines in CloudWatch Logs (LocalStack)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from localdev.env import deploy


@dataclass
class FunctionLogs:
    """Totals from the function's Powertools log lines in CloudWatch Logs."""

    invocations: int = 0
    written: int = 0
    duplicates: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)  # rejected message id -> count
    reasons: dict[str, str] = field(default_factory=dict)  # rejected message id -> reason


def read_function_logs(function_name: str, *, since_ms: int) -> FunctionLogs:
    logs = deploy.client("logs")
    result = FunctionLogs()
    kwargs: dict[str, Any] = {
        "logGroupName": f"/aws/lambda/{function_name}",
        "startTime": since_ms,
    }
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page["events"]:
            for line in event["message"].splitlines():
                _count(result, line)
        if not page.get("nextToken"):
            return result
        kwargs["nextToken"] = page["nextToken"]


def _count(result: FunctionLogs, line: str) -> None:
    if not line.startswith("{"):
        return
    try:
        entry = json.loads(line)
    except ValueError:
        return
    if entry.get("message") == "batch processed":
        result.invocations += 1
        result.written += int(entry.get("written", 0))
        result.duplicates += int(entry.get("duplicates", 0))
    elif entry.get("message") == "record rejected":
        result.deliveries[entry["message_id"]] += 1
        result.reasons[entry["message_id"]] = str(entry.get("reason"))
