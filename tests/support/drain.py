"""Helpers and fixtures of the ``login-etl drain`` tests at every level.

The fixtures are imported by the ``conftest.py`` of ``tests/unit/drain`` (SQS from moto),
``tests/integration/drain`` (moto + a real Postgres) and ``tests/e2e/drain`` (LocalStack).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from localdev import traffic
from localdev.env.sqs import fifo_entry
from tests.conftest import Databases, Db

PII_KEY = "drain-test-key"
BAD_MESSAGE = {"foo": "oops_wrong_msg_type", "bar": "123"}
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_SESSION_TOKEN",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, one region, no endpoint from the environment: never real AWS."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture(scope="session")
def drain_db_url(default_databases: Databases) -> str:
    return default_databases.create()  # the current DDL, the ledger and the view


@pytest.fixture
def db(drain_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Db:
    """An emptied current-DDL database, configured through the handler's variables."""
    database = Db(drain_db_url)
    database.empty()
    monkeypatch.setenv("DATABASE_URL", drain_db_url)
    monkeypatch.setenv("PII_HASH_KEY", PII_KEY)
    for name in ("DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    return database


def login_bodies(count: int, *, seed: int = 0) -> list[str]:
    """``count`` logins as the exercise image's loader sends them: ``json.dumps(record)``."""
    rng = random.Random(seed)
    return [json.dumps(traffic.login(rng)) for _ in range(count)]


def exercise_bodies(*, seed: int = 0) -> list[str]:
    """The exercise queue's mix: 99 logins and one message that is not a login."""
    bodies = login_bodies(99, seed=seed)
    bodies.insert(37, json.dumps(BAD_MESSAGE))
    return bodies


def make_queue(
    sqs: Any, name: str, *, visibility_timeout: int = 30, max_receive_count: int | None = None
) -> tuple[str, str | None]:
    """A queue (and, with ``max_receive_count``, its DLQ). Returns (url, dlq_url)."""
    attributes = {"VisibilityTimeout": str(visibility_timeout)}
    dlq_url = None
    if max_receive_count is not None:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        # A number, not a string: LocalStack 0.14.3 compares it with an int.
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, dlq_url


def send_one_by_one(sqs: Any, url: str, bodies: Sequence[str]) -> None:
    """One SendMessage each (on a FIFO queue with a unique deduplication id each)."""
    for body in bodies:
        sqs.send_message(**fifo_entry(url, {"QueueUrl": url, "MessageBody": body}))


def send_batched(sqs: Any, url: str, bodies: Sequence[str]) -> None:
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                fifo_entry(url, {"Id": str(i), "MessageBody": b}) for i, b in enumerate(chunk)
            ],
        )


@pytest.fixture
def moto_sqs() -> Iterator[Any]:
    """An SQS client inside ``mock_aws`` (in-process; the drain's own clients see it too)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def identity_scenario(sqs: Any, endpoint: str, name: str, *, days_ago: int = 3) -> Any:
    """Dead letters of three kinds, for ``login-etl redrive`` then ``drain`` to handle.

    - ``committed``: sent, delivered once and COMMITTED by the pipeline, but the consumer
      died before its delete (a timeout after COMMIT); the next deliveries fail too (a
      database outage: nothing processed, nothing deleted) until the queue's redrive
      policy dead-letters it;
    - ``stuck``: sent and dead-lettered the same way, never committed;
    - ``earlier``: already in the DLQ with the identity of an earlier redrive: a message
      first sent ``days_ago`` days ago.

    ``sqs`` is an SQS client of either protocol; the masking key and database
    come from the environment (the ``db`` fixture). Returns a ``SimpleNamespace``.
    """
    import time
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from localdev.env.sqs import queue_counts
    from login_etl.identity import ATTRIBUTE, Identity, IdentitySigner
    from login_etl.runtime import PipelineRuntime
    from login_etl_drain.sqs import SqsQueue

    url, dlq_url = make_queue(sqs, name, visibility_timeout=30, max_receive_count=2)
    assert dlq_url is not None
    committed_body, stuck_body, earlier_body = login_bodies(3, seed=len(name))
    ids = {
        sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]: body
        for body in (committed_body, stuck_body)
    }
    queue = SqsQueue.open(url, endpoint_url=endpoint, region="us-east-1", wait_seconds=1)
    sent: dict[str, str] = {}
    runtime = PipelineRuntime()
    try:
        deadline = time.monotonic() + 60
        while sum(queue_counts(sqs, dlq_url)) < 2:
            assert time.monotonic() < deadline, "the redrive policy never dead-lettered them"
            # VisibilityTimeout 0: back at once, as after a consumer that died.
            for record in queue.receive(10, wait_seconds=1, visibility_timeout=0):
                if record["messageId"] not in sent:
                    sent[record["messageId"]] = record["attributes"]["SentTimestamp"]
                    if record["body"] == committed_body:
                        result = runtime.process([record], logger=_QuietLog())
                        assert result.written == 1
    finally:
        runtime.close()
    earlier_sent = datetime.now(UTC) - timedelta(days=days_ago)
    earlier = Identity("earlier-original-0001", str(int(earlier_sent.timestamp() * 1000)))
    signer = IdentitySigner(os.environ["PII_HASH_KEY"].encode())  # the drain's key
    value = signer.sign(earlier, earlier_body)
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=earlier_body,
        MessageAttributes={ATTRIBUTE: {"DataType": "String", "StringValue": value}},
    )
    by_body = {body: message_id for message_id, body in ids.items()}
    return SimpleNamespace(
        url=url,
        dlq_url=dlq_url,
        committed=by_body[committed_body],
        stuck=by_body[stuck_body],
        stuck_sent=sent[by_body[stuck_body]],
        earlier=earlier,
        earlier_day=earlier_sent.date(),
        bodies=(committed_body, stuck_body, earlier_body),
    )


class _QuietLog:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        raise AssertionError(f"unexpected warning: {msg}")
