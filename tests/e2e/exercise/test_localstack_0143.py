"""The exercise's environment as its image builds it: LocalStack 0.14.3 with ``login-queue``
holding the 100 records, one ``send_message`` each. Also pins the 0.14.3 behaviours the project's
query-protocol SQS client depends on (epoch-second ``SentTimestamp``, legacy ``AttributeName``)."""

from __future__ import annotations

import json
import time

import pytest

from localdev.env.localstack_0143 import loader, query
from localdev.traffic import exercise_queue_records
from tests.e2e.exercise.conftest import LocalStack0143

pytestmark = pytest.mark.exercise

LOGIN_KEYS = {"user_id", "app_version", "device_type", "ip", "locale", "device_id"}


def receive(ls: LocalStack0143, queue_url: str, **params: str) -> list[dict[str, object]]:
    answer = query.call(
        ls.endpoint,
        "ReceiveMessage",
        {"QueueUrl": queue_url, "MaxNumberOfMessages": "10", "VisibilityTimeout": "30", **params},
    )
    assert answer.status == 200, answer.body
    return [
        {
            "body": m.findtext("Body"),
            "attributes": {
                a.findtext("Name", ""): a.findtext("Value", "") for a in m.findall("Attribute")
            },
        }
        for m in answer.findall("ReceiveMessageResult/Message")
    ]


def drain(
    ls: LocalStack0143, queue_url: str, expected: int, **params: str
) -> list[dict[str, object]]:
    """Receive until ``expected`` messages came (bounded: loaded machines are slow)."""
    got: list[dict[str, object]] = []
    deadline = time.monotonic() + 120
    while len(got) < expected and time.monotonic() < deadline:
        got += receive(ls, queue_url, WaitTimeSeconds="1", **params)
    assert len(got) == expected, f"received {len(got)} of {expected}"
    return got


def test_exercise_records_have_the_exercise_data_shape() -> None:
    records = exercise_queue_records()
    assert records == exercise_queue_records()  # deterministic
    assert len(records) == 100
    assert records[12] == {"foo": "oops_wrong_msg_type", "bar": "123"}
    logins = [r for i, r in enumerate(records) if i != 12]
    assert all(set(r) == LOGIN_KEYS for r in logins)
    versions = [str(r["app_version"]) for r in logins]
    assert any(v.count(".") == 2 for v in versions) and any(v.count(".") == 1 for v in versions)
    assert any(v.count(".") == 1 and v.endswith("0") for v in versions)  # "2.00", "0.60" style
    assert {r["device_type"] for r in logins} == {"android", "ios"}
    nulls = sum(r["locale"] is None for r in logins)
    assert 15 <= nulls <= 45


def test_login_queue_is_loaded_like_the_image(localstack_0143: LocalStack0143) -> None:
    url = localstack_0143.load_queue()
    assert url == localstack_0143.queue_url("login-queue")
    assert localstack_0143.attributes(url)["ApproximateNumberOfMessages"] == "100"
    # the old boto3 sees the same
    old = loader.queue_attributes(localstack_0143.endpoint, url)
    assert old["ApproximateNumberOfMessages"] == "100"
    assert old["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:login-queue"

    bodies = [m["body"] for m in drain(localstack_0143, url, 100)]
    assert sorted(str(b) for b in bodies) == sorted(json.dumps(r) for r in exercise_queue_records())


def test_sent_timestamp_is_in_epoch_seconds(localstack_0143: LocalStack0143) -> None:
    before = time.time()
    url = localstack_0143.load_queue("sent-timestamp-queue", exercise_queue_records()[:5])
    after = time.time()

    messages = drain(localstack_0143, url, 5, **{"AttributeName.1": "All"})
    for message in messages:
        attributes = message["attributes"]
        assert isinstance(attributes, dict)
        sent = int(attributes["SentTimestamp"])  # an integer...
        assert before - 5 <= sent <= after + 5  # ...of seconds (real SQS: milliseconds)
        assert attributes["ApproximateReceiveCount"] == "1"
        assert attributes["SenderId"] == "000000000000"


def test_message_system_attribute_name_is_ignored(localstack_0143: LocalStack0143) -> None:
    url = localstack_0143.load_queue("system-attribute-queue", exercise_queue_records()[:3])
    messages = drain(localstack_0143, url, 3, **{"MessageSystemAttributeName.1": "All"})
    assert all(m["attributes"] == {} for m in messages)  # 0.14.3 knows only AttributeName.N


def test_reloading_a_queue_starts_it_afresh(localstack_0143: LocalStack0143) -> None:
    url = localstack_0143.load_queue("reload-queue", exercise_queue_records()[:7])
    assert localstack_0143.load_queue("reload-queue", exercise_queue_records()[:2]) == url
    assert localstack_0143.attributes(url)["ApproximateNumberOfMessages"] == "2"
