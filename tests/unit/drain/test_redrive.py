"""login-etl redrive: DLQ → source queue, with counts; never a delete before the copy; each
copy keeps its identity (original id and send time, signed)."""

from __future__ import annotations

from typing import Any

import pytest

from localdev.env.sqs import queue_counts
from login_etl.identity import ATTRIBUTE, Identity, IdentitySigner
from login_etl_drain import cli
from login_etl_drain.cli import main
from login_etl_drain.redrive import redrive
from login_etl_drain.sqs import SqsQueue
from tests.support.drain import PII_KEY, login_bodies, make_queue, send_batched

SIGNER = IdentitySigner(PII_KEY.encode())


@pytest.fixture(autouse=True)
def masking_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_HASH_KEY", PII_KEY)
    for name in ("PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)


def _queues(sqs: Any, name: str) -> tuple[str, str]:
    url, dlq_url = make_queue(sqs, name, max_receive_count=2)
    assert dlq_url is not None
    return url, dlq_url


def _bodies(sqs: Any, url: str) -> list[str]:
    out: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return sorted(out)
        out += [m["Body"] for m in got]


@pytest.mark.parametrize("method", ["copy", "auto"])
def test_redrive_moves_every_message_back(moto_sqs: Any, method: str) -> None:
    url, dlq_url = _queues(moto_sqs, f"redrive-{method}")
    bodies = login_bodies(23, seed=3)
    send_batched(moto_sqs, dlq_url, bodies)
    dlq = SqsQueue.open(dlq_url, endpoint_url=None, region="us-east-1", wait_seconds=1)
    source = SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=1)
    result = redrive(dlq, source, method=method, signer=SIGNER, timeout_s=60)
    assert (result.before, result.moved, result.after) == (23, 23, 0)
    assert queue_counts(moto_sqs, dlq_url) == (0, 0)
    assert _bodies(moto_sqs, url) == sorted(bodies)


def test_a_message_the_destination_refused_stays_in_the_dlq(
    moto_sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, dlq_url = _queues(moto_sqs, "redrive-refused")
    send_batched(moto_sqs, dlq_url, login_bodies(5, seed=4))
    dlq = SqsQueue.open(dlq_url, endpoint_url=None, region="us-east-1", wait_seconds=1)
    source = SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=1)
    real_send = source.client.send_message_batch

    def refuse_first(QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        response = dict(real_send(QueueUrl=QueueUrl, Entries=Entries[1:]))
        response["Failed"] = [{"Id": Entries[0]["Id"], "Code": "Throttled", "SenderFault": False}]
        return response

    monkeypatch.setattr(source.client, "send_message_batch", refuse_first)
    result = redrive(dlq, source, method="copy", signer=SIGNER, timeout_s=5)
    assert result.moved >= 4 - 1  # each round refuses one
    visible_dlq, in_flight_dlq = queue_counts(moto_sqs, dlq_url)
    moved_count = len(_bodies(moto_sqs, url))
    assert moved_count == result.moved
    assert visible_dlq + in_flight_dlq + moved_count == 5  # nothing lost, nothing doubled


def test_cli_redrive_finds_the_source_queue(
    moto_sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, dlq_url = _queues(moto_sqs, "redrive-cli")
    send_batched(moto_sqs, dlq_url, login_bodies(3, seed=5))
    assert main(["redrive", "--dlq-url", dlq_url, "--method", "copy"]) == 0
    assert "3 moved to" in capsys.readouterr().out
    assert len(_bodies(moto_sqs, url)) == 3


def test_cli_redrive_unknown_queue_is_one_line(
    capsys: pytest.CaptureFixture[str], moto_sqs: Any
) -> None:
    missing = "https://sqs.us-east-1.amazonaws.com/123456789012/nope-dlq"
    assert main(["redrive", "--dlq-url", missing]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def _open(url: str) -> SqsQueue:
    return SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=1)


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while got := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    ).get("Messages", []):
        out += got
    return out


def _dead_letter(sqs: Any, url: str, dlq_url: str, bodies: list[str], **send: Any) -> list[Any]:
    """Send to the queue, receive past maxReceiveCount: SQS moves them to the DLQ, keeping
    each message's id and SentTimestamp. Returns what was first sent, as received."""
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body, **send)
    first: list[Any] = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    assert len(first) == len(bodies)
    for _ in range(5):
        if queue_counts(sqs, dlq_url)[0] == len(bodies):
            break
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert queue_counts(sqs, dlq_url)[0] == len(bodies)
    return first


def test_each_copy_carries_its_original_id_and_send_time_signed(moto_sqs: Any) -> None:
    url, dlq_url = _queues(moto_sqs, "redrive-identity")
    source = {
        "source": {"DataType": "String", "StringValue": "mobile"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    originals = _dead_letter(
        moto_sqs, url, dlq_url, login_bodies(3, seed=8), MessageAttributes=source
    )
    sqs_ids = {m["MessageId"] for m in originals}

    result = redrive(_open(dlq_url), _open(url), method="copy", signer=SIGNER, timeout_s=60)
    assert (result.moved, result.without_identity) == (3, 0)
    copies = _received(moto_sqs, url)
    assert len(copies) == 3 and not {c["MessageId"] for c in copies} & sqs_ids  # new ids
    for copy in copies:
        original = next(m for m in originals if m["Body"] == copy["Body"])
        attributes = copy["MessageAttributes"]
        assert attributes["source"]["StringValue"] == "mobile"  # the producer's, kept
        assert attributes["raw"]["BinaryValue"] == b"\x00\xff"  # binary too, as bytes
        value = attributes[ATTRIBUTE]["StringValue"]
        assert SIGNER.verify(value, copy["Body"]) == Identity(
            original["MessageId"], original["Attributes"]["SentTimestamp"]
        )
        assert IdentitySigner(b"another key").verify(value, copy["Body"]) is None


def test_an_identity_from_an_earlier_redrive_is_kept_and_a_forged_one_replaced(
    moto_sqs: Any,
) -> None:
    url, dlq_url = _queues(moto_sqs, "redrive-again")
    earlier, forged = login_bodies(2, seed=9)
    kept = SIGNER.sign(Identity("first-original", "1764547200000"), earlier)
    made_up = IdentitySigner(b"a producer's key").sign(Identity("someone-else", "1"), forged)
    sent = {
        body: moto_sqs.send_message(
            QueueUrl=dlq_url,
            MessageBody=body,
            MessageAttributes={ATTRIBUTE: {"DataType": "String", "StringValue": value}},
        )["MessageId"]
        for body, value in ((earlier, kept), (forged, made_up))
    }

    redrive(_open(dlq_url), _open(url), method="copy", signer=SIGNER, timeout_s=60)
    copies = {
        c["Body"]: c["MessageAttributes"][ATTRIBUTE]["StringValue"]
        for c in _received(moto_sqs, url)
    }
    assert copies[earlier] == kept
    replaced = SIGNER.verify(copies[forged], forged)
    assert replaced is not None and replaced.message_id == sent[forged]  # the DLQ message's


def test_a_message_with_ten_attributes_is_copied_without_identity_and_counted(
    moto_sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, dlq_url = _queues(moto_sqs, "redrive-full")
    ten = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    moto_sqs.send_message(QueueUrl=dlq_url, MessageBody=login_bodies(1)[0], MessageAttributes=ten)
    assert main(["redrive", "--dlq-url", dlq_url]) == 0
    assert "1 copies carry no identity" in capsys.readouterr().err
    [copy] = _received(moto_sqs, url)
    assert set(copy["MessageAttributes"]) == set(ten)  # the producer's, all kept


def test_a_fifo_copy_keeps_its_group_and_identity(moto_sqs: Any) -> None:
    dlq_url = moto_sqs.create_queue(
        QueueName="redrive-f-dlq.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    url = moto_sqs.create_queue(QueueName="redrive-f.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    body = login_bodies(1, seed=2)[0]
    sent = moto_sqs.send_message(
        QueueUrl=dlq_url, MessageBody=body, MessageGroupId="g1", MessageDeduplicationId="d1"
    )
    redrive(_open(dlq_url), _open(url), method="copy", signer=SIGNER, timeout_s=60)
    [copy] = _received(moto_sqs, url)
    assert copy["Attributes"]["MessageGroupId"] == "g1"
    assert copy["Attributes"]["MessageDeduplicationId"] == sent["MessageId"]
    identity = SIGNER.verify(copy["MessageAttributes"][ATTRIBUTE]["StringValue"], body)
    assert identity is not None and identity.message_id == sent["MessageId"]


def test_cli_redrive_without_a_masking_key_moves_nothing(
    moto_sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, dlq_url = _queues(moto_sqs, "redrive-nokey")
    send_batched(moto_sqs, dlq_url, login_bodies(2, seed=6))
    monkeypatch.delenv("PII_HASH_KEY")
    assert main(["redrive", "--dlq-url", dlq_url]) == cli.EXIT_CONFIG
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no masking key configured" in line and "move-task" in line
    assert queue_counts(moto_sqs, dlq_url)[0] == 2 and queue_counts(moto_sqs, url) == (0, 0)
