"""The SAM stack on LocalStack: real SQS event source mapping → built function → Postgres.

Asserts the design card end to end: every valid message is a row exactly once, each rejected
message is delivered MaxReceiveCount times and then sits in the dead-letter queue, nothing else
is left in either queue; and the same with an existing queue attached through SourceQueueArn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from localdev import traffic
from localdev.env.function_logs import read_function_logs
from localdev.env.sqs import fifo_entry
from localdev.env.sqs import queue_counts as queue_depth
from tests.conftest import Databases, admin_connect, wait_for
from tests.e2e.conftest import FAST_PARAMS, Deployer, client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MAX_RECEIVE_COUNT = int(FAST_PARAMS["MaxReceiveCount"])
INVALID = (
    "not json",
    json.dumps({"foo": "oops_wrong_msg_type", "bar": "123"}),
    json.dumps({"user_id": "u-1", "ip": 12345}),
    json.dumps({"user_id": "u-2", "device_type": "x" * 33}),
)


def valid_logins(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [traffic.login(rng) for _ in range(count)]


def send_all(queue_url: str, bodies: list[str]) -> dict[str, str]:
    sqs = client("sqs")
    sent = {}
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                fifo_entry(queue_url, {"Id": str(i), "MessageBody": b}) for i, b in enumerate(chunk)
            ],
        )
        assert not response.get("Failed")
        for entry in response["Successful"]:
            sent[entry["MessageId"]] = chunk[int(entry["Id"])]
    return sent


def depth(queue_url: str) -> tuple[int, int]:
    return queue_depth(client("sqs"), queue_url)


def drain_dlq(dlq_url: str, expected: int) -> list[dict[str, Any]]:
    sqs = client("sqs")
    messages: list[dict[str, Any]] = []
    while len(messages) < expected:
        page = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if not page:
            break
        messages += page
    return messages


def rows(database_url: str) -> list[list[Any]]:
    conn = admin_connect(database_url)
    try:
        result: list[list[Any]] = conn.run(
            "SELECT user_id, masked_ip, masked_device_id FROM user_logins"
        )
        return result
    finally:
        conn.close()


def check_flow(
    *, queue_url: str, dlq_url: str, function_name: str, database_url: str, seed: int, count: int
) -> None:
    logins = valid_logins(count, seed)
    bodies = [json.dumps(login) for login in logins] + list(INVALID)
    random.Random(seed).shuffle(bodies)
    started_ms = int(time.time() * 1000)
    sent = send_all(queue_url, bodies)
    began = time.monotonic()

    def finished() -> bool | None:
        return (depth(queue_url) == (0, 0) and depth(dlq_url)[0] >= len(INVALID)) or None

    wait_for("the queue to drain and the rejects to reach the DLQ", finished, timeout_s=120)
    print(f"drained and dead-lettered {time.monotonic() - began:.1f} s after sending")

    # Every valid message is a row, exactly once.
    stored = rows(database_url)
    assert Counter(r[0] for r in stored) == Counter(login["user_id"] for login in logins)

    # Each rejected message was delivered MaxReceiveCount times, then dead-lettered.
    dead = drain_dlq(dlq_url, len(INVALID))
    assert sorted(m["Body"] for m in dead) == sorted(INVALID)
    rejected_ids = {m["MessageId"] for m in dead}
    assert rejected_ids == {mid for mid, body in sent.items() if body in INVALID}
    logs = wait_for(
        "the function logs of every delivery",
        lambda: (
            found
            if all(
                (found := read_function_logs(function_name, since_ms=started_ms)).deliveries[m]
                >= MAX_RECEIVE_COUNT
                for m in rejected_ids
            )
            else None
        ),
        timeout_s=30,
    )
    assert {m: logs.deliveries[m] for m in rejected_ids} == dict.fromkeys(
        rejected_ids, MAX_RECEIVE_COUNT
    )
    # SQS keeps the count when it moves a message; our receive from the DLQ adds one.
    assert {int(m["Attributes"]["ApproximateReceiveCount"]) for m in dead} == {
        MAX_RECEIVE_COUNT + 1
    }

    # Nothing else is in either queue (the DLQ messages were just received: in flight).
    assert depth(queue_url) == (0, 0)
    assert depth(dlq_url)[0] == 0


def watched_by_alarms(outputs: dict[str, str], queue_name: str) -> dict[str, dict[str, Any]]:
    """The stack's alarms as CloudWatch has them, by logical id; checks what each watches."""
    stack = outputs["FunctionName"].removesuffix("-login-etl")
    resources = client("cloudformation").describe_stack_resources(StackName=stack)
    alarm_ids = {
        r["PhysicalResourceId"]: r["LogicalResourceId"]
        for r in resources["StackResources"]
        if r["ResourceType"] == "AWS::CloudWatch::Alarm"
    }
    alarms = client("cloudwatch").describe_alarms(AlarmNames=list(alarm_ids))["MetricAlarms"]
    by_id = {alarm_ids[a["AlarmName"]]: a for a in alarms}
    dimensions = {k: {d["Name"]: d["Value"] for d in a["Dimensions"]} for k, a in by_id.items()}
    assert dimensions["QueueAgeAlarm"] == {"QueueName": queue_name}
    assert dimensions["FunctionErrorsAlarm"] == {"FunctionName": outputs["FunctionName"]}
    assert dimensions["FunctionThrottlesAlarm"] == {"FunctionName": outputs["FunctionName"]}
    assert by_id["QueueAgeAlarm"]["Threshold"] == float(
        FAST_PARAMS.get("QueueAgeAlarmSeconds", 600)
    )
    return by_id


def test_created_queue_rows_exactly_once_rejects_to_dlq(
    deploy_stack: Deployer, databases: Databases
) -> None:
    database_url = databases.create()
    outputs = deploy_stack(database_url)
    assert set(outputs) >= {"QueueUrl", "QueueArn", "DeadLetterQueueUrl", "FunctionName"}
    alarms = watched_by_alarms(outputs, outputs["QueueUrl"].rsplit("/", 1)[1])
    assert set(alarms) == {
        "DeadLetterQueueAlarm",
        "QueueAgeAlarm",
        "FunctionErrorsAlarm",
        "FunctionThrottlesAlarm",
    }
    check_flow(
        queue_url=outputs["QueueUrl"],
        dlq_url=outputs["DeadLetterQueueUrl"],
        function_name=outputs["FunctionName"],
        database_url=database_url,
        seed=1,
        count=25,
    )
    # The masks use the key the stack generated (read by the function at cold start).
    key = client("secretsmanager").get_secret_value(SecretId=outputs["PiiHashKeySecretArn"])
    login = valid_logins(25, 1)[0]
    expected_ip = hmac.new(
        key["SecretString"].encode(), login["ip"].encode(), hashlib.sha256
    ).hexdigest()
    assert [login["user_id"], expected_ip] in [r[:2] for r in rows(database_url)]


def test_attaches_to_existing_queue(deploy_stack: Deployer, databases: Databases) -> None:
    sqs = client("sqs")
    suffix = uuid.uuid4().hex[:8]
    dlq_url = sqs.create_queue(QueueName=f"existing-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"existing-login-queue-{suffix}",
        Attributes={
            "VisibilityTimeout": FAST_PARAMS["VisibilityTimeout"],
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    try:
        database_url = databases.create()
        outputs = deploy_stack(database_url, SourceQueueArn=queue_arn)
        assert outputs["QueueArn"] == queue_arn
        assert outputs["QueueUrl"].endswith(f"/existing-login-queue-{suffix}")
        assert "DeadLetterQueueUrl" not in outputs  # the existing queue's redrive is its own
        alarms = watched_by_alarms(outputs, f"existing-login-queue-{suffix}")
        assert "DeadLetterQueueAlarm" not in alarms  # the existing queue's DLQ is not ours
        check_flow(
            queue_url=queue_url,
            dlq_url=dlq_url,
            function_name=outputs["FunctionName"],
            database_url=database_url,
            seed=2,
            count=10,
        )
    finally:
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=dlq_url)
