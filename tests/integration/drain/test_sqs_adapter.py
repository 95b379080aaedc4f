"""The SQS adapter against moto: record shape, delete, visibility, errors."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from localdev.env.sqs import queue_counts
from login_etl.connection_settings import ConnectionSettings
from login_etl.errors import QueueNotFound
from login_etl.masking import Masker
from login_etl.pipeline import process_batch
from login_etl.postgres import PostgresSink
from login_etl_drain.lease import VisibilityLease
from login_etl_drain.sqs import SqsQueue, region_from_url
from tests.support.drain import PII_KEY, Db, login_bodies, make_queue

pytestmark = pytest.mark.integration


def open_queue(url: str) -> SqsQueue:
    return SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=0)


def receive_all(queue: SqsQueue, expected: int, visibility_timeout: int = 30) -> list[Any]:
    records: list[Any] = []
    for _ in range(20):
        if len(records) >= expected:
            break
        records += queue.receive(10, wait_seconds=0, visibility_timeout=visibility_timeout)
    return records


def test_records_have_the_lambda_event_shape(moto_sqs: Any) -> None:
    url, _ = make_queue(moto_sqs, "shape")
    body = login_bodies(1)[0]
    moto_sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={"source": {"DataType": "String", "StringValue": "exercise"}},
    )
    queue = open_queue(url)
    arn = moto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    [record] = queue.receive(10, wait_seconds=0, visibility_timeout=30)

    # The keys of a record of the Lambda SQS event, as AWS documents them (written out
    # here, not taken from localdev.lambda_event, which builds its records with this adapter).
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == body
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(record["attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000
    assert record["messageAttributes"] == {
        "source": {
            "stringValue": "exercise",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert queue.info.visibility_timeout == 30


def test_received_records_go_through_the_real_pipeline(moto_sqs: Any, db: Db) -> None:
    url, _ = make_queue(moto_sqs, "pipeline")
    for body in login_bodies(3):
        moto_sqs.send_message(QueueUrl=url, MessageBody=body)
    records = receive_all(open_queue(url), 3)
    sink = PostgresSink(ConnectionSettings.from_url(db.url))
    try:
        result = process_batch(
            records, sink=sink, masker=Masker(PII_KEY.encode()), logger=_NullLog()
        )
    finally:
        sink.close()
    assert (result.written, result.failed_message_ids) == (3, [])
    # create_date comes from SentTimestamp, which the adapter asked SQS for.
    assert db.query("SELECT count(*) FROM user_logins WHERE create_date = current_date")[0][0] == 3


def test_delete_removes_only_the_given_records(moto_sqs: Any) -> None:
    url, _ = make_queue(moto_sqs, "delete")
    for body in login_bodies(5):
        moto_sqs.send_message(QueueUrl=url, MessageBody=body)
    queue = open_queue(url)
    records = receive_all(queue, 5)

    assert queue.delete(records[:2]) == []

    assert queue_counts(moto_sqs, url) == (0, 3)
    assert queue.counts() == (0, 3)


def test_a_stale_receipt_handle_is_reported_not_raised(moto_sqs: Any) -> None:
    url, _ = make_queue(moto_sqs, "stale")
    moto_sqs.send_message(QueueUrl=url, MessageBody=login_bodies(1)[0])
    queue = open_queue(url)
    [record] = receive_all(queue, 1)
    queue.delete([record])
    moto_sqs.send_message(QueueUrl=url, MessageBody="x")
    stale = dict(record, receiptHandle="not-a-receipt-handle")
    assert queue.delete([stale]) == [record["messageId"]]


def test_extending_visibility_keeps_a_batch_hidden(moto_sqs: Any) -> None:
    url, _ = make_queue(moto_sqs, "extend", visibility_timeout=1)
    moto_sqs.send_message(QueueUrl=url, MessageBody=login_bodies(1)[0])
    queue = open_queue(url)
    records = queue.receive(10, wait_seconds=0, visibility_timeout=1)
    assert queue.change_visibility(records, 30) == []
    time.sleep(1.3)
    assert queue.receive(10, wait_seconds=0, visibility_timeout=1) == []


def test_a_missing_queue_is_a_clear_error(moto_sqs: Any) -> None:
    with pytest.raises(QueueNotFound, match="does not exist"):
        open_queue("https://sqs.us-east-1.amazonaws.com/123456789012/nope")


def test_region_comes_from_an_aws_queue_url() -> None:
    assert region_from_url("https://sqs.eu-west-1.amazonaws.com/1/q") == "eu-west-1"
    assert region_from_url("http://127.0.0.1:4566/000000000000/q") is None


class _NullLog:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass


def test_the_lease_keeps_a_slow_batch_hidden_until_released(moto_sqs: Any) -> None:
    url, _ = make_queue(moto_sqs, "lease", visibility_timeout=1)
    moto_sqs.send_message(QueueUrl=url, MessageBody=login_bodies(1)[0])
    queue, other = open_queue(url), open_queue(url)
    with VisibilityLease(queue, 1) as lease:
        lease.add(queue.receive(10, wait_seconds=0, visibility_timeout=1))
        time.sleep(2.5)  # 2.5 visibility timeouts: without the heartbeat it would be back
        assert other.receive(10, wait_seconds=0, visibility_timeout=1) == []
    time.sleep(1.2)
    assert len(other.receive(10, wait_seconds=0, visibility_timeout=1)) == 1
