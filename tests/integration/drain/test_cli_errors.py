"""Clear one-line errors and exit codes; configuration and database are checked first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from moto.core import set_initial_no_auth_action_count

from localdev.env.postgres import free_port
from localdev.env.sqs import queue_counts
from login_etl_drain import cli
from tests.conftest import Databases
from tests.support.drain import Db, login_bodies, make_queue, send_batched

pytestmark = pytest.mark.integration
AWS_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/{}"


def run(*args: str) -> int:
    return cli.main(["drain", "--wait-seconds", "0", "--idle-polls", "1", *args])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("login-etl drain: error: ")
    return err


@pytest.fixture
def loaded_queue(moto_sqs: Any) -> Callable[[], tuple[int, int]]:
    """A queue with 5 messages; returns a function reading its (visible, in flight)."""
    url, _ = make_queue(moto_sqs, "loaded")
    send_batched(moto_sqs, url, login_bodies(5))
    return lambda: queue_counts(moto_sqs, url)


def test_nonexistent_queue(moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--queue-url", AWS_QUEUE.format("nope")) == cli.EXIT_SQS
    assert "queue https://sqs.us-east-1.amazonaws.com/123456789012/nope does not exist" in (
        one_line_error(capsys)
    )


def test_unreachable_endpoint(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code = run(
        "--queue-url",
        f"http://127.0.0.1:{port}/000000000000/login-queue",
        "--endpoint-url",
        f"http://127.0.0.1:{port}",
    )
    assert code == cli.EXIT_SQS
    assert "cannot reach the SQS endpoint" in one_line_error(capsys)


@set_initial_no_auth_action_count(0)
def test_wrong_credentials(moto_sqs: Any, db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    # moto now checks keys against its IAM: the fixture's "testing" key is unknown.
    assert run("--queue-url", AWS_QUEUE.format("any")) == cli.EXIT_SQS
    assert "SQS refused the AWS credentials" in one_line_error(capsys)


def test_missing_table(
    databases: Databases,
    db: Db,
    loaded_queue: Callable[[], tuple[int, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = databases.create(init=False)
    code = run("--queue-url", AWS_QUEUE.format("loaded"), "--database-url", empty)
    assert code == cli.EXIT_DATABASE
    assert "table user_logins does not exist" in one_line_error(capsys)
    assert loaded_queue() == (5, 0)  # checked before any message was received


def test_missing_ledger_then_init_db(
    databases: Databases,
    db: Db,
    loaded_queue: Callable[[], tuple[int, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The exercise image's Postgres has user_logins but not our ledger: --init-db adds it."""
    image_ddl = (
        "CREATE TABLE user_logins(user_id varchar(128), device_type varchar(32), "
        "masked_ip varchar(256), masked_device_id varchar(256), locale varchar(32), "
        "app_version integer, create_date date)"
    )
    url = databases.create(image_ddl, init=False)
    args = ("--queue-url", AWS_QUEUE.format("loaded"), "--database-url", url)
    assert run(*args) == cli.EXIT_DATABASE
    assert "ledger login_etl.ledger_slots does not exist" in one_line_error(capsys)

    assert run(*args, "--init-db") == cli.EXIT_OK
    assert Db(url).count() == 5


def test_database_unreachable(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres:postgres@127.0.0.1:{free_port()}/postgres"
    assert run("--queue-url", AWS_QUEUE.format("x"), "--database-url", url) == cli.EXIT_DATABASE
    assert "cannot connect to Postgres" in one_line_error(capsys)


def test_no_masking_key(
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    loaded_queue: Callable[[], tuple[int, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PII_HASH_KEY")
    assert run("--queue-url", AWS_QUEUE.format("loaded")) == cli.EXIT_CONFIG
    assert "no masking key configured" in one_line_error(capsys)
    assert loaded_queue() == (5, 0)


def test_no_database_configured(
    db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    assert run("--queue-url", AWS_QUEUE.format("x")) == cli.EXIT_CONFIG
    assert "no database configured" in one_line_error(capsys)


@pytest.mark.parametrize("bad", [["--batch-size", "0"], ["--batch-size", "10001"]])
def test_bad_arguments_are_usage_errors(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("--queue-url", "q", *bad)
    assert exit_info.value.code == cli.EXIT_USAGE


def test_without_a_command_it_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert "drain" in capsys.readouterr().err
