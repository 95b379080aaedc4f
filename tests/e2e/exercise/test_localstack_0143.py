"""The exercise's environment as its image builds it: LocalStack 0.14.3 with ``login-queue``
holding the 100 records, one ``send_message`` each. Also pins the 0.14.3 behaviours the project's
query-protocol SQS client depends on (epoch-second ``SentTimestamp``, legacy ``AttributeName``),
through that client: the project's botocore with botocore 1.34.89's SQS model."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from localdev.env.localstack_0143 import loader
from localdev.traffic import exercise_queue_records
from tests.e2e.exercise.conftest import LocalStack0143

pytestmark = pytest.mark.exercise

LOGIN_KEYS = {"user_id", "app_version", "device_type", "ip", "locale", "device_id"}


def system_attribute_name(request: Any, **kwargs: Any) -> None:
    """Send the current name ``MessageSystemAttributeName.N``, which the query model (whose
    ``AttributeNames`` is the legacy ``AttributeName.N``) has no member for."""
    form = request.data  # the form fields, still a dict before signing
    for key in [k for k in form if k.startswith("AttributeName.")]:
        form[key.replace("AttributeName.", "MessageSystemAttributeName.")] = form.pop(key)


def drain(
    ls: LocalStack0143, queue_url: str, expected: int, *, attributes: str | None = None
) -> list[dict[str, object]]:
    """Receive until ``expected`` messages came (bounded: loaded machines are slow), asking
    for all system attributes as ``attributes`` (``AttributeName``,
    ``MessageSystemAttributeName``) or not at all."""
    sqs = loader.client(ls.endpoint)
    params: dict[str, Any] = {"AttributeNames": ["All"]} if attributes else {}
    if attributes == "MessageSystemAttributeName":
        sqs.meta.events.register("before-sign.sqs.ReceiveMessage", system_attribute_name)
    got: list[dict[str, object]] = []
    deadline = time.monotonic() + 120
    while len(got) < expected and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            WaitTimeSeconds=1,
            **params,
        )
        got += [
            {"body": m.get("Body"), "attributes": dict(m.get("Attributes", {}))}
            for m in answer.get("Messages", [])
        ]
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
    attributes = localstack_0143.attributes(url)
    assert attributes["ApproximateNumberOfMessages"] == "100"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:login-queue"

    bodies = [m["body"] for m in drain(localstack_0143, url, 100)]
    assert sorted(str(b) for b in bodies) == sorted(json.dumps(r) for r in exercise_queue_records())


def test_sent_timestamp_is_in_epoch_seconds(localstack_0143: LocalStack0143) -> None:
    before = time.time()
    url = localstack_0143.load_queue("sent-timestamp-queue", exercise_queue_records()[:5])
    after = time.time()

    messages = drain(localstack_0143, url, 5, attributes="AttributeName")
    for message in messages:
        attributes = message["attributes"]
        assert isinstance(attributes, dict)
        sent = int(attributes["SentTimestamp"])  # an integer...
        assert before - 5 <= sent <= after + 5  # ...of seconds (real SQS: milliseconds)
        assert attributes["ApproximateReceiveCount"] == "1"
        assert attributes["SenderId"] == "000000000000"


def test_message_system_attribute_name_is_ignored(localstack_0143: LocalStack0143) -> None:
    url = localstack_0143.load_queue("system-attribute-queue", exercise_queue_records()[:3])
    messages = drain(localstack_0143, url, 3, attributes="MessageSystemAttributeName")
    assert all(m["attributes"] == {} for m in messages)  # 0.14.3 knows only AttributeName.N


def test_reloading_a_queue_starts_it_afresh(localstack_0143: LocalStack0143) -> None:
    url = localstack_0143.load_queue("reload-queue", exercise_queue_records()[:7])
    assert localstack_0143.load_queue("reload-queue", exercise_queue_records()[:2]) == url
    assert localstack_0143.attributes(url)["ApproximateNumberOfMessages"] == "2"
