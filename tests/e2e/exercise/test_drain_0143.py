"""``login-etl drain`` and ``login-etl redrive`` against LocalStack 0.14.3 itself.

The README's commands for the exercise's images, as a user runs them: ``login-queue``
loaded as the image loads it (100 messages, one not a login), a database with nothing
but what ``--init-db`` creates, no protocol flag. 0.14.3 speaks only the query protocol
and gives ``SentTimestamp`` in seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localdev.env.localstack_0143 import loader
from localdev.traffic import exercise_queue_records
from login_etl_drain import cli
from tests.conftest import Databases, Db
from tests.e2e.exercise.conftest import LocalStack0143
from tests.support.drain import identity_scenario

pytestmark = [pytest.mark.exercise, pytest.mark.e2e, pytest.mark.integration]

KEY = "exercise-key"
NOTE = (
    "login-etl drain: note: the SQS endpoint does not speak SQS's JSON protocol "
    "(LocalStack before 3.0); using the query protocol"
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)  # as a user of the image: no credentials
    for name in ("DATABASE_URL", "DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PII_HASH_KEY", KEY)


def drain(ls: LocalStack0143, url: str, database_url: str, *extra: str) -> int:
    return cli.main(
        [
            "drain",
            "--queue-url",
            url,
            "--endpoint-url",
            ls.endpoint,
            "--region",
            "us-east-1",
            "--database-url",
            database_url,
            "--wait-seconds",
            "1",
            *extra,
        ]
    )


def mask(value: str) -> str:
    return hmac.new(KEY.encode(), value.strip().encode(), hashlib.sha256).hexdigest()


def version(text: str) -> int:
    parts = [int(p) for p in text.split(".")] + [0, 0]
    return parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]


def expected_rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r["user_id"],
            r["device_type"],
            mask(r["ip"]),
            mask(r["device_id"]),
            r["locale"],
            version(r["app_version"]),
        )
        for r in records
        if "user_id" in r
    )


def rows(db: Db) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(row)
        for row in db.query(
            "SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version"
            " FROM user_logins"
        )
    )


def test_the_readme_drain_writes_99_exact_rows_once(
    localstack_0143: LocalStack0143,
    databases: Databases,
    env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = localstack_0143.load_queue("login-queue")
    database_url = databases.create(init=False)  # --init-db creates everything
    before = datetime.now(UTC).date()

    assert drain(localstack_0143, url, database_url, "--init-db") == cli.EXIT_OK

    first = capsys.readouterr()
    db = Db(database_url)
    assert rows(db) == expected_rows(exercise_queue_records())
    dates = {d for [d] in db.query("SELECT DISTINCT create_date FROM user_logins")}
    assert dates <= {before, before + timedelta(days=1)}  # sent just now, never 1970
    assert "written 99 | duplicates 0 | rejected 1" in first.out
    assert "rejections: missing_user_id 1 | queue: 0 visible, 1 in flight" in first.out
    assert first.err.count(NOTE) == 1
    assert localstack_0143.attributes(url)["ApproximateNumberOfMessagesNotVisible"] == "1"

    # The bad message stays in the queue; running again adds nothing.
    assert drain(localstack_0143, url, database_url) == cli.EXIT_OK
    assert "written 0 | duplicates 0" in capsys.readouterr().out
    assert db.count() == 99


def test_concurrent_workers_and_large_batches(
    localstack_0143: LocalStack0143,
    databases: Databases,
    env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = exercise_queue_records(seed=3, count=300)
    url = localstack_0143.load_queue("login-queue-concurrent", records)
    database_url = databases.create()

    code = drain(localstack_0143, url, database_url, "--concurrency", "3", "--batch-size", "120")

    out = capsys.readouterr().out
    assert code == cli.EXIT_OK
    assert rows(Db(database_url)) == expected_rows(records)
    assert "duplicates 0 | rejected 1" in out


def test_redrive_moves_dead_letters_back(
    localstack_0143: LocalStack0143, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    records = exercise_queue_records(seed=4, count=25)
    dlq = localstack_0143.load_queue("login-queue-dlq", records)
    source = localstack_0143.load_queue("login-queue-source", [])

    code = cli.main(
        [
            "redrive",
            "--dlq-url",
            dlq,
            "--to-queue-url",
            source,
            "--endpoint-url",
            localstack_0143.endpoint,
            "--region",
            "us-east-1",
        ]
    )

    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.err
    assert "25 moved to" in captured.out and "(copy)" in captured.out
    assert captured.err.count("using the query protocol") == 1
    counts = localstack_0143.attributes(source)
    assert counts["ApproximateNumberOfMessages"] == "25"
    assert localstack_0143.attributes(dlq)["ApproximateNumberOfMessages"] == "0"


def test_a_missing_queue_is_exit_4_in_one_line(
    localstack_0143: LocalStack0143,
    databases: Databases,
    env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = localstack_0143.queue_url("no-such-queue")
    assert drain(localstack_0143, url, databases.create()) == cli.EXIT_SQS
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"login-etl drain: error: queue {url} does not exist "
        "(AWS.SimpleQueueService.NonExistentQueue)"
    )


def test_a_redriven_message_keeps_its_identity_over_the_query_protocol(
    localstack_0143: LocalStack0143,
    databases: Databases,
    env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As tests/e2e/drain's test of the same name, on 0.14.3: its redrive policy
    dead-letters the messages, the copy loop (0.14.3 has no move task) adds the identity
    attribute over the query protocol, and the drain receives it back."""
    database_url = databases.create()
    monkeypatch.setenv("DATABASE_URL", database_url)
    sqs = loader.client(localstack_0143.endpoint)
    case = identity_scenario(sqs, localstack_0143.endpoint, "identity-0143")
    db = Db(database_url)
    assert db.count() == 1
    code = cli.main(
        [
            "redrive",
            "--dlq-url",
            case.dlq_url,
            "--to-queue-url",  # 0.14.3 has no ListDeadLetterSourceQueues
            case.url,
            "--endpoint-url",
            localstack_0143.endpoint,
            "--region",
            "us-east-1",
        ]
    )
    assert code == cli.EXIT_OK
    assert "3 moved to" in capsys.readouterr().out

    assert drain(localstack_0143, case.url, database_url) == cli.EXIT_OK

    assert "written 2 | duplicates 1 | rejected 0" in capsys.readouterr().out
    rows = dict(db.query("SELECT user_id, create_date FROM user_logins"))
    users = [json.loads(body)["user_id"] for body in case.bodies]
    assert len(rows) == db.count() == 3
    assert rows[users[1]] == datetime.fromtimestamp(int(case.stuck_sent), UTC).date()  # s
    assert rows[users[2]] == case.earlier_day
    ledger = {m for [m] in db.query("SELECT message_id FROM login_etl.ledger")}
    assert ledger == {case.committed, case.stuck, case.earlier.message_id}
