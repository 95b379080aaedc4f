"""The host executor under LocalStack's genuine SQS event source mapping.

A tiny python3.13 zip function records every message it sees (to a file named in its
environment) and reports bodies containing "bad" as batch item failures. With maxReceiveCount=2
and a 2 s visibility timeout, each bad message must be delivered exactly twice and then land in
the DLQ, while each good message is processed exactly once.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
Cleanup = list[Callable[[], Any]]
MAX_RECEIVE_COUNT = 2
VISIBILITY_TIMEOUT_S = 2
ROLE_ARN = "arn:aws:iam::000000000000:role/lambda-role"  # LocalStack does not enforce IAM

FUNCTION_CODE = """
import json, os, sys, time

import boto3  # shipped by the runtime, as in AWS


def handler(event, context):
    failures = []
    with open(os.environ["RECORD_FILE"], "a") as out:
        for record in event["Records"]:
            out.write(json.dumps({
                "messageId": record["messageId"],
                "body": record["body"],
                "receiveCount": int(record["attributes"]["ApproximateReceiveCount"]),
                "at": time.time(),
                "function": context.function_name,
                "remainingMs": context.get_remaining_time_in_millis(),
                "taskRootFirst": sys.path[0] == os.environ["LAMBDA_TASK_ROOT"],
                "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
            }) + "\\n")
            if "bad" in record["body"]:
                failures.append({"itemIdentifier": record["messageId"]})
    print(f"processed {len(event['Records'])} records, {len(failures)} failed")
    return {"batchItemFailures": failures}


def crash(event, context):
    raise ValueError("boom")


def slow(event, context):
    time.sleep(5)


def exit_process(event, context):
    os._exit(3)


def echo_or_fail(event, context):
    if event.get("mode") == "sleep":
        slow(event, context)
    elif event.get("mode") == "exit":
        exit_process(event, context)
    return {"event": event, "requestId": context.aws_request_id}
"""


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def aws(localstack_endpoint: str) -> Callable[[str], Any]:
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    return lambda service: cast(Any, session).client(service, endpoint_url=localstack_endpoint)


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """Undo actions, run last-in first-out even when the test fails."""
    actions: Cleanup = []
    yield actions
    for action in reversed(actions):
        try:
            action()
        except Exception as e:  # noqa: BLE001 - clean up as much as possible
            print(f"cleanup failed: {e}")


def create_function(
    aws: Callable[[str], Any],
    cleanup: Cleanup,
    handler: str,
    env: dict[str, str] | None = None,
    timeout_s: int = 10,
) -> str:
    lam = aws("lambda")
    name = f"hostexec-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=ROLE_ARN,
        Handler=handler,
        Code={"ZipFile": zipped(FUNCTION_CODE)},
        Timeout=timeout_s,
        MemorySize=128,
        Environment={"Variables": env or {}},
    )
    cleanup.append(lambda: lam.delete_function(FunctionName=name))
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60}
    )
    return name


def invoke(aws: Callable[[str], Any], name: str, event: object) -> tuple[str | None, Any]:
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("app.crash", "ValueError"),
        ("app.slow", "Sandbox.Timedout"),
        ("app.exit_process", "Runtime.ExitError"),
        ("missing.handler", "Runtime.ImportModuleError"),
    ],
)
def test_failures_are_function_errors(
    aws: Callable[[str], Any], cleanup: Cleanup, handler: str, error_type: str
) -> None:
    name = create_function(aws, cleanup, handler, timeout_s=1)
    function_error, payload = invoke(aws, name, {})
    assert function_error == "Unhandled"
    assert payload["errorType"] == error_type


def test_environment_recovers_after_timeout_and_exit(
    aws: Callable[[str], Any], cleanup: Cleanup
) -> None:
    """After a timeout or a runtime exit the next invocation gets a fresh process, as in AWS."""
    name = create_function(aws, cleanup, "app.echo_or_fail", timeout_s=1)
    assert invoke(aws, name, {"n": 1})[1]["event"] == {"n": 1}
    assert invoke(aws, name, {"mode": "sleep"})[1]["errorType"] == "Sandbox.Timedout"
    assert invoke(aws, name, {"n": 2})[1]["event"] == {"n": 2}
    assert invoke(aws, name, {"mode": "exit"})[1]["errorType"] == "Runtime.ExitError"
    function_error, payload = invoke(aws, name, {"n": 3})
    assert function_error is None and payload["event"] == {"n": 3}


@pytest.mark.timeout(120)
def test_sqs_partial_batch_failures_retries_and_dlq(
    aws: Callable[[str], Any], cleanup: Cleanup, tmp_path: Path
) -> None:
    sqs, lam = aws("sqs"), aws("lambda")
    suffix = uuid.uuid4().hex[:8]
    record_file = tmp_path / "seen.jsonl"
    record_file.touch()

    dlq_url = sqs.create_queue(QueueName=f"hostexec-dlq-{suffix}")["QueueUrl"]
    cleanup.append(lambda: sqs.delete_queue(QueueUrl=dlq_url))
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"hostexec-src-{suffix}",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    cleanup.append(lambda: sqs.delete_queue(QueueUrl=queue_url))
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]

    name = create_function(aws, cleanup, "app.handler", {"RECORD_FILE": str(record_file)})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    uuid_ = mapping["UUID"]
    cleanup.append(lambda: lam.delete_event_source_mapping(UUID=uuid_))  # runs first: stops polling
    wait_for(
        "the event source mapping to be enabled",
        lambda: lam.get_event_source_mapping(UUID=uuid_)["State"] == "Enabled" or None,
        timeout_s=30,
    )

    good = {f"good-{i}" for i in range(3)}
    bad = {f"bad-{i}" for i in range(2)}
    sent_at = time.time()
    sent = {
        body: sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
        for body in good | bad
    }

    def all_bad_dead_lettered() -> bool | None:
        count = sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(count["Attributes"]["ApproximateNumberOfMessages"]) >= len(bad) or None

    wait_for("the bad messages to reach the DLQ", all_bad_dead_lettered, timeout_s=60)
    in_dlq_after_s = time.time() - sent_at
    received = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)[
        "Messages"
    ]
    assert {m["Body"] for m in received} == bad

    seen = [json.loads(line) for line in record_file.read_text().splitlines()]
    deliveries = Counter(s["body"] for s in seen)
    print(
        f"deliveries: {dict(deliveries)}; bad messages in DLQ {in_dlq_after_s:.1f} s after sending"
    )
    assert {body: deliveries[body] for body in good} == {body: 1 for body in good}
    assert {body: deliveries[body] for body in bad} == {body: MAX_RECEIVE_COUNT for body in bad}
    assert {s["messageId"] for s in seen} == set(sent.values())
    assert sorted(s["receiveCount"] for s in seen if s["body"] == "bad-0") == [1, 2]
    # The environment is the one a Lambda function expects.
    first = seen[0]
    assert (
        first["function"] == name and first["taskRootFirst"] and 0 < first["remainingMs"] <= 10_000
    )
    assert first["endpoint"].startswith("http://127.0.0.1:")

    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
