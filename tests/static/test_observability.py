"""The stack watches itself: its alarms and its dashboard, after the SAM transform (offline).

The dashboard's body is rendered the way CloudFormation would (``Fn::Sub`` with the
conditions of a created or an existing queue), parsed as JSON, and every metric it plots
is checked against what the function really emits (``telemetry.py``, ``app.py``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.static.test_template import REPO, VARIANTS, translated

ALARMS = {
    # alarm: (namespace, metric, dimension, statistic)
    "DeadLetterQueueAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "Maximum",
    ),
    "QueueAgeAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "Maximum"),
    "FunctionErrorsAlarm": ("AWS/Lambda", "Errors", "FunctionName", "Sum"),
    "FunctionThrottlesAlarm": ("AWS/Lambda", "Throttles", "FunctionName", "Sum"),
}
EXISTING_QUEUE = "arn:aws:sqs:us-east-1:123456789012:login-queue"


def resources(variant: str) -> dict[str, Any]:
    result: dict[str, Any] = translated(VARIANTS[variant])["Resources"]
    return result


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_every_alarm_watches_its_metric_and_notifies_the_topic(variant: str, alarm: str) -> None:
    stack = resources(variant)
    props = stack[alarm]["Properties"]
    namespace, metric, dimension, statistic = ALARMS[alarm]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (
        namespace,
        metric,
        statistic,
    )
    assert [d["Name"] for d in props["Dimensions"]] == [dimension]
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["TreatMissingData"] == "notBreaching"
    assert props["AlarmActions"] == {
        "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }


def test_the_queue_age_threshold_is_a_parameter() -> None:
    stack = translated({})
    props = stack["Resources"]["QueueAgeAlarm"]["Properties"]
    assert props["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 5
    parameter = stack["Parameters"]["QueueAgeAlarmSeconds"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 60


def test_the_age_alarm_follows_an_existing_queue() -> None:
    [dimension] = resources("default")["QueueAgeAlarm"]["Properties"]["Dimensions"]
    assert resolve(dimension["Value"], create_queue=False) == "login-queue"
    assert resolve(dimension["Value"], create_queue=True) == "<LoginQueue.QueueName>"


def test_function_alarms_name_the_stack_function() -> None:
    stack = resources("default")
    for alarm in ("FunctionErrorsAlarm", "FunctionThrottlesAlarm"):
        [dimension] = stack[alarm]["Properties"]["Dimensions"]
        assert dimension["Value"] == {"Ref": "LoginEtlFunction"}


# -- the dashboard --------------------------------------------------------------------


def resolve(value: Any, *, create_queue: bool) -> Any:
    """The intrinsic functions the dashboard uses, evaluated offline."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve(v, create_queue=create_queue) for v in value]
    ((function, argument),) = value.items()
    if function == "Fn::If":
        assert argument[0] == "CreateQueue"
        return resolve(argument[1] if create_queue else argument[2], create_queue=create_queue)
    if function == "Fn::GetAtt":
        name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return f"<{name}.{attribute}>"
    if function == "Ref":
        return EXISTING_QUEUE if argument == "SourceQueueArn" else f"<{argument}>"
    if function == "Fn::Join":
        separator, items = argument
        return separator.join(resolve(items, create_queue=create_queue))
    if function == "Fn::Split":
        separator, text = argument
        return resolve(text, create_queue=create_queue).split(separator)
    if function == "Fn::Select":
        index, items = argument
        return resolve(items, create_queue=create_queue)[int(index)]
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(resolve(variables[name], create_queue=create_queue))
            if name == "AWS::Region":
                return "us-east-1"
            return f"<{name}>"  # a resource (Ref) or Resource.Attribute (GetAtt)

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)
    raise AssertionError(f"unexpected {function} in the dashboard")


def dashboard(*, create_queue: bool) -> dict[str, Any]:
    body = resources("default")["Dashboard"]["Properties"]["DashboardBody"]
    parsed: dict[str, Any] = json.loads(resolve(body, create_queue=create_queue))
    return parsed


def plotted(board: dict[str, Any]) -> set[tuple[str, ...]]:
    """(namespace, metric, dimension value[, stat]) of every plotted metric line."""
    lines: set[tuple[str, ...]] = set()
    for widget in board["widgets"]:
        previous: list[str] = []
        for line in widget["properties"]["metrics"]:
            options = line[-1] if isinstance(line[-1], dict) else {}
            fields = [f for f in line if isinstance(f, str)]
            # CloudWatch's shorthand: "." repeats the field of the line above.
            fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            previous = fields
            if len(fields) >= 4:
                lines.add(
                    (
                        fields[0],
                        fields[1],
                        fields[3],
                        *([options["stat"]] if "stat" in options else []),
                    )
                )
    return lines


@pytest.mark.parametrize("create_queue", [True, False], ids=["created-queue", "existing-queue"])
def test_the_dashboard_is_json_with_queue_function_and_record_widgets(create_queue: bool) -> None:
    board = dashboard(create_queue=create_queue)
    lines = plotted(board)
    queue = "<LoginQueue.QueueName>" if create_queue else "login-queue"
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
    ):
        assert ("AWS/SQS", metric, queue) in lines
    dlq = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "<LoginDeadLetterQueue.QueueName>")
    assert (dlq in lines) is create_queue  # an existing queue's DLQ is not the stack's
    for metric in ("Invocations", "Errors", "Throttles", "ConcurrentExecutions"):
        assert ("AWS/Lambda", metric, "<LoginEtlFunction>") in lines
    for stat in ("p50", "p99"):
        assert ("AWS/Lambda", "Duration", "<LoginEtlFunction>", stat) in lines
    assert all(w["properties"]["region"] == "us-east-1" for w in board["widgets"])


def emitted_metrics() -> set[str]:
    """Every metric name the function emits (telemetry.py and app.py)."""
    source = (REPO / "handler/login_etl/telemetry.py").read_text()
    source += (REPO / "handler/app.py").read_text()
    return set(re.findall(r'name="(\w+)"', source)) | set(
        re.findall(r'\("(\w+)", result\.', source)
    )


def test_the_dashboard_plots_what_the_function_emits() -> None:
    emitted = emitted_metrics()
    assert {"AcceptedRecords", "RejectedRecords", "FailedBatches", "RejectedByReason"} <= emitted
    lines = plotted(dashboard(create_queue=True))
    own = {metric for namespace, metric, *_ in lines if namespace == "LoginEtl"}
    assert own <= emitted  # nothing plotted that does not exist
    assert {"AcceptedRecords", "RejectedRecords", "DuplicatesSkipped", "FifoHeldBack"} <= own
    assert "FailedBatches" in own
    searches = [
        line[0]["expression"]
        for widget in dashboard(create_queue=True)["widgets"]
        for line in widget["properties"]["metrics"]
        if isinstance(line[0], dict)
    ]
    assert searches == [
        'SEARCH(\'{LoginEtl,reason,service} MetricName="RejectedByReason" '
        "service=\"login-etl\"', 'Sum', 300)"
    ]


def test_the_dashboard_uses_the_namespace_and_service_the_function_is_given() -> None:
    function = resources("default")["LoginEtlFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "LoginEtl"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "login-etl"
