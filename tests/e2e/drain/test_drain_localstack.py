"""``login-etl drain`` against a real LocalStack (localdev/env/localstack, no Docker).

The exercise's scenario: 100 messages sent one by one, one of them not a login,
a DLQ redrive policy and a short visibility timeout. Also Ctrl-C and the drain rate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from localdev.env.sqs import queue_counts
from login_etl_drain import cli
from tests.support.drain import (
    BAD_MESSAGE,
    Db,
    exercise_bodies,
    identity_scenario,
    login_bodies,
    make_queue,
    send_batched,
    send_one_by_one,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="session")
def localstack_url(localstack_endpoint: str) -> str:
    return localstack_endpoint


@pytest.fixture
def sqs(localstack_url: str, aws_env: None) -> Any:
    return boto3.client("sqs", endpoint_url=localstack_url, region_name="us-east-1")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"  # LocalStack may be shared with other suites


def drain_args(localstack_url: str, url: str, *extra: str) -> list[str]:
    return [
        "drain",
        "--queue-url",
        url,
        "--endpoint-url",
        localstack_url,
        "--region",
        "us-east-1",
        *extra,
    ]


def test_the_exercise_queue_drains_to_99_rows_and_the_bad_message_reaches_the_dlq(
    localstack_url: str, sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    url, dlq_url = make_queue(sqs, unique("login-queue"), visibility_timeout=2, max_receive_count=2)
    assert dlq_url is not None
    send_one_by_one(sqs, url, exercise_bodies())
    args = drain_args(localstack_url, url, "--wait-seconds", "1", "--idle-polls", "2")

    assert cli.main(args) == cli.EXIT_OK
    assert db.count() == 99
    first = capsys.readouterr().out
    assert "written 99 | duplicates 0" in first
    visible, in_flight = queue_counts(sqs, url)
    assert visible + in_flight + sum(queue_counts(sqs, dlq_url)) == 1

    # Later runs add nothing; the bad message is received again until the redrive
    # policy moves it (receive count > maxReceiveCount) to the DLQ.
    for _ in range(4):
        if queue_counts(sqs, dlq_url)[0] == 1:
            break
        time.sleep(2.2)
        assert cli.main(args) == cli.EXIT_OK
        assert db.count() == 99
        assert "written 0" in capsys.readouterr().out
    assert queue_counts(sqs, url) == (0, 0)
    [dead] = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(dead["Body"]) == BAD_MESSAGE


def test_ctrl_c_finishes_the_batch_in_flight_and_exits_130(
    localstack_url: str, sqs: Any, db: Db
) -> None:
    total = 2000
    url, _ = make_queue(sqs, unique("sigint"), visibility_timeout=30)
    send_batched(sqs, url, login_bodies(total))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "login_etl_drain",
            *drain_args(
                localstack_url, url, "--follow", "--batch-size", "50", "--concurrency", "2"
            ),
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while db.count() < 200 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 130, err
    assert "stopping after the batch in flight" in err
    assert "login-etl drain: received" in out
    written = db.count()
    assert 0 < written < total
    visible, in_flight = queue_counts(sqs, url)
    # Every message is written and deleted, or still in the queue: nothing written and
    # left behind, nothing deleted unwritten.
    assert written + visible + in_flight == total
    assert db.query("SELECT count(DISTINCT user_id) FROM user_logins")[0][0] == written


@pytest.mark.parametrize(("batch_size", "concurrency"), [("100", "4")])
def test_drain_rate(
    localstack_url: str,
    sqs: Any,
    db: Db,
    batch_size: str,
    concurrency: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    total = 2000
    url, _ = make_queue(sqs, unique("rate"))
    send_batched(sqs, url, login_bodies(total))
    began = time.monotonic()
    code = cli.main(
        drain_args(
            localstack_url,
            url,
            "--batch-size",
            batch_size,
            "--concurrency",
            concurrency,
            "--wait-seconds",
            "0",
            "--idle-polls",
            "1",
        )
    )
    seconds = time.monotonic() - began
    assert code == cli.EXIT_OK
    assert db.query("SELECT count(*), count(DISTINCT user_id) FROM user_logins") == [[total, total]]
    assert queue_counts(sqs, url) == (0, 0)
    assert f"written {total} | duplicates 0 | rejected 0" in capsys.readouterr().out
    with capsys.disabled():
        print(
            f"\ndrain rate, LocalStack, batch {batch_size} x {concurrency} workers: "
            f"{total / seconds:.0f} msg/s ({total} in {seconds:.1f} s)"
        )


def test_redrive_on_localstack_moves_dlq_back(
    sqs: Any,
    localstack_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PII_HASH_KEY", "redrive-key")  # the copies' identities are signed
    url, dlq_url = make_queue(sqs, unique("redrive"), max_receive_count=2)
    assert dlq_url is not None
    bodies = login_bodies(12, seed=17)
    send_batched(sqs, dlq_url, bodies)
    args = ["redrive", "--dlq-url", dlq_url, "--endpoint-url", localstack_url]
    assert cli.main([*args, "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    assert "12 moved to" in out and "0 left" in out
    assert queue_counts(sqs, dlq_url) == (0, 0)
    assert queue_counts(sqs, url)[0] == 12


def test_a_fifo_batch_holds_back_only_the_group_of_a_rejected_message(
    localstack_url: str, sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real FIFO queue hands the drain one batch of two groups: a0 (not a login), a1,
    b0..b5. a1 waits behind a0 (order within group a); group b is written at once."""
    url = sqs.create_queue(
        QueueName=unique("logins") + ".fifo",
        Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"},
    )["QueueUrl"]
    bodies = [json.dumps(BAD_MESSAGE), *login_bodies(7, seed=23)]
    groups = ["a", "a"] + ["b"] * 6
    for index, (body, group) in enumerate(zip(bodies, groups, strict=True)):
        sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=str(index)
        )
    args = drain_args(
        localstack_url, url, "--batch-size", "8", "--wait-seconds", "1", "--idle-polls", "1"
    )

    assert cli.main(args) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "received 8 | written 6 | duplicates 0 | rejected 1 | held back 1 | 1 batches" in out
    written = {row[0] for row in db.query("SELECT user_id FROM user_logins")}
    assert written == {json.loads(b)["user_id"] for b in bodies[2:]}
    assert queue_counts(sqs, url) == (0, 2)  # a0 and a1: not deleted, back after the timeout


def test_a_redriven_message_keeps_its_identity(
    localstack_url: str, sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message committed before it was dead-lettered adds no second row after
    ``login-etl redrive``; the others are written once, dated by their first send day,
    and claimed in the ledger under their original ids."""
    case = identity_scenario(sqs, localstack_url, unique("identity"))
    assert db.count() == 1  # the committed one
    # The copy loop, as on an endpoint without a move task. (LocalStack's own move task
    # re-queues the same message object, id and SentTimestamp included; AWS's gives new
    # ones, docs/operations.md.)
    redrive = ["redrive", "--dlq-url", case.dlq_url, "--endpoint-url", localstack_url]
    assert cli.main([*redrive, "--region", "us-east-1", "--method", "copy"]) == cli.EXIT_OK
    assert "3 moved to" in capsys.readouterr().out
    args = drain_args(localstack_url, case.url, "--wait-seconds", "1", "--idle-polls", "2")

    assert cli.main(args) == cli.EXIT_OK

    assert "written 2 | duplicates 1 | rejected 0" in capsys.readouterr().out
    assert queue_counts(sqs, case.url) == (0, 0)
    rows = {user: day for user, day in db.query("SELECT user_id, create_date FROM user_logins")}
    users = [json.loads(body)["user_id"] for body in case.bodies]
    assert len(rows) == db.count() == 3  # each login once
    stuck_day = datetime.fromtimestamp(int(case.stuck_sent) / 1000, UTC).date()
    assert rows[users[1]] == stuck_day
    assert rows[users[2]] == case.earlier_day  # the first send, days before the redrive
    ledger = {m for [m] in db.query("SELECT message_id FROM login_etl.ledger")}
    assert ledger == {case.committed, case.stuck, case.earlier.message_id}
