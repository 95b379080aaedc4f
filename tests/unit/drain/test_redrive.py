"""login-etl redrive: DLQ → source queue, with counts; never a delete before the copy."""

from __future__ import annotations

from typing import Any

import pytest

from localdev.env.sqs import queue_counts
from login_etl_drain.cli import main
from login_etl_drain.redrive import redrive
from login_etl_drain.sqs import SqsQueue
from tests.support.drain import login_bodies, make_queue, send_batched


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
    result = redrive(dlq, source, method=method, timeout_s=60)
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
    result = redrive(dlq, source, method="copy", timeout_s=5)
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
