"""No piece of a password or key in any message, on every path (docs/security.md).

Each hostile password is the real password of a throw-away role on the suite's Postgres
and is written into ``DATABASE_URL`` as an operator would paste it: unencoded (only a
password holding ``%`` is percent-encoded, as documented). Each path then runs three
ways -- the right password, a wrong one (the server refuses), a URL that cannot be used --
and everything it said (log lines, stdout, stderr, the exception and its traceback, the
answer to CloudFormation) is searched for any 4-character piece of the password and of
the masking key. The paths: the Lambda handler (``DATABASE_URL`` and ``DB_SECRET_ARN``),
the schema custom resource, ``python -m login_etl.postgres.schema``, ``login-etl drain
--init-db`` and ``login-etl redrive``.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from scramp import ScramException
from scramp.utils import saslprep

from localdev.lambda_event import LocalContext, sqs_event
from login_etl.connection_settings import ConnectionSettings
from login_etl_drain import cli
from tests.conftest import Db, admin_connect
from tests.support.drain import login_bodies, make_queue, send_batched
from tests.support.secret_guard import (
    HOSTILE_KEY,
    HOSTILE_PASSWORDS,
    collides_with_source,
    leaked,
)

pytestmark = pytest.mark.integration

LOGIN = json.dumps({"user_id": "u-leak", "ip": "10.1.2.3", "device_id": "111-22-3333"})
WRONG = "Wv7Tq3Zn"  # the role's password when a test dials with the hostile one


def scram_accepts(password: str) -> bool:
    """pg8000's SCRAM client refuses what SASLprep forbids (control characters,
    code points unassigned in Unicode 3.2) before it sends anything."""
    try:
        saslprep(password)
    except ScramException:
        return False
    return True


@dataclass
class Role:
    """A login role whose password is ``password`` (or ``WRONG``), on the test database."""

    name: str
    password: str
    db: Db

    @property
    def target(self) -> ConnectionSettings:
        return ConnectionSettings.from_url(self.db.url)

    def url(self, *, port: str | None = None, query: str = "") -> str:
        """The URL as pasted: the password unencoded unless it holds '%'."""
        pw = quote(self.password, safe="") if "%" in self.password else self.password
        target = self.target
        return (
            f"postgresql://{self.name}:{pw}@{target.host}:{port or target.port}/"
            f"{target.database}{query}"
        )

    def secret(self) -> str:
        target = self.target
        return json.dumps(
            {
                "engine": "postgres",
                "host": target.host,
                "port": target.port,
                "username": self.name,
                "password": self.password,
                "dbname": target.database,
            }
        )


@pytest.fixture
def make_role(server_url: str, db: Db) -> Iterator[Callable[[str, bool], Role]]:
    created: list[str] = []

    def make(password: str, right: bool = True) -> Role:
        name = f"leak_{secrets.token_hex(4)}"
        real = password if right else WRONG
        admin = admin_connect(server_url)
        try:
            literal = real.replace("'", "''")
            admin.run(f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{literal}'")
        finally:
            admin.close()
        created.append(name)
        return Role(name, password, db)

    yield make
    owner = admin_connect(db.url)  # the schema step run as a role makes it own the view
    try:
        for name in created:
            owner.run(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            owner.run(f"DROP OWNED BY {name}")
    finally:
        owner.close()
    admin = admin_connect(server_url)
    try:
        for name in created:
            admin.run(f"DROP ROLE IF EXISTS {name}")
    finally:
        admin.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "DATABASE_URL",
        "DB_SECRET_ARN",
        "DB_SSLMODE",
        "DB_SSLROOTCERT",
        "PII_HASH_KEY_SECRET_ARN",
        "PII_HASH_KEY_PARAMETER",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PII_HASH_KEY", HOSTILE_KEY)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return monkeypatch


def assert_nothing_leaked(password: str, *texts: str) -> None:
    found = leaked([password, HOSTILE_KEY], *texts)
    assert not found, f"secret fragments {found!r} in:\n" + "\n".join(texts)


def _exception_text(error: BaseException | None) -> str:
    if error is None:
        return ""
    return "".join(traceback.format_exception(error)) + repr(error)


def run_handler(logs: Callable[[], str]) -> tuple[dict[str, Any] | None, str]:
    """Invoke the real handler; returns its answer (None if it raised) and all it said."""
    import app
    from login_etl.runtime import PipelineRuntime

    # A cold start: the module's runtime keeps its Secrets Manager client from whichever
    # test used it first in this process (its endpoint, and whether moto stubs it).
    warm = app._runtime
    app._runtime = PipelineRuntime(log=app.logger, on_refresh_failure=app._count_refresh_failure)
    try:
        response = app.lambda_handler(sqs_event([LOGIN]), LocalContext())
        error = None
    except Exception as raised:  # noqa: BLE001 - the exception's text is checked too
        response, error = None, raised
    finally:
        app._runtime.close()
        app._runtime = warm
    return response, logs() + _exception_text(error)


def _written(db: Db) -> int:
    return int(db.query("SELECT count(*) FROM user_logins WHERE user_id = 'u-leak'")[0][0])


# --- the Lambda handler ----------------------------------------------------------------


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_handler_with_database_url(
    password: str,
    make_role: Callable[[str, bool], Role],
    clean_env: pytest.MonkeyPatch,
    captured_logs: Callable[[], str],
    db: Db,
) -> None:
    role = make_role(password, True)
    clean_env.setenv("DATABASE_URL", role.url())
    response, said = run_handler(captured_logs)
    if scram_accepts(password):
        assert response == {"batchItemFailures": []}, said
        assert _written(db) == 1
    else:
        assert response is None and "SCRAM" in said
    assert_nothing_leaked(password, said)

    wrong = make_role(password, False)
    clean_env.setenv("DATABASE_URL", wrong.url())
    response, said = run_handler(captured_logs)
    assert response is None
    assert ("password authentication failed" in said) or ("SCRAM" in said)
    assert_nothing_leaked(password, said)

    for unusable in (wrong.url(port="5x"), wrong.url(query="?sslmode=sometimes")):
        clean_env.setenv("DATABASE_URL", unusable)
        response, said = run_handler(captured_logs)
        assert response is None and "DATABASE_URL is not usable" in said
        assert_nothing_leaked(password, said)


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS[:4] + HOSTILE_PASSWORDS[-2:])
def test_handler_with_a_database_secret(
    password: str,
    make_role: Callable[[str, bool], Role],
    clean_env: pytest.MonkeyPatch,
    captured_logs: Callable[[], str],
    db: Db,
) -> None:
    role = make_role(password, True)
    clean_env.setenv("DB_SSLMODE", "disable")  # the suite's server speaks no TLS
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")

        def secret(value: str) -> str:
            return str(client.create_secret(Name=secrets.token_hex(6), SecretString=value)["ARN"])

        key_arn = secret(HOSTILE_KEY)
        clean_env.delenv("PII_HASH_KEY")
        clean_env.setenv("PII_HASH_KEY_SECRET_ARN", key_arn)
        clean_env.setenv("DB_SECRET_ARN", secret(role.secret()))
        response, said = run_handler(captured_logs)
        assert response == {"batchItemFailures": []}, said
        assert_nothing_leaked(password, said)

        broken = json.loads(role.secret())
        unusable = (
            role.secret()[:-30],  # truncated JSON
            json.dumps({**broken, "port": f"{password}!"}),
            json.dumps({k: v for k, v in broken.items() if k != "host"}),
            json.dumps([password]),
        )
        for value in unusable:
            clean_env.setenv("DB_SECRET_ARN", secret(value))
            response, said = run_handler(captured_logs)
            assert response is None and "database secret is not usable" in said, said
            assert_nothing_leaked(password, said)


# --- the schema step: custom resource, module command, drain --init-db ------------------


def _schema_event() -> dict[str, Any]:
    return {
        "RequestType": "Create",
        "ResponseURL": "http://127.0.0.1:9/unused",
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "Schema",
        "ResourceType": "Custom::LoginEtlSchema",
        "ResourceProperties": {},
    }


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_schema_custom_resource(
    password: str,
    make_role: Callable[[str, bool], Role],
    clean_env: pytest.MonkeyPatch,
    captured_logs: Callable[[], str],
) -> None:
    import schema_app

    from login_etl import schema_resource

    answers: list[dict[str, Any]] = []
    clean_env.setattr(schema_resource, "put_response", lambda event, body: answers.append(body))
    right, wrong = make_role(password, True), make_role(password, False)
    for url, works in (
        (right.url(), scram_accepts(password)),
        (wrong.url(), False),
        (wrong.url(port="99999"), False),
    ):
        clean_env.setenv("DATABASE_URL", url)
        answer = schema_app.handler(_schema_event(), LocalContext())
        assert answer["Status"] == ("SUCCESS" if works else "FAILED"), answer
        assert_nothing_leaked(password, json.dumps(answer), json.dumps(answers), captured_logs())


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_schema_module_command(
    password: str,
    make_role: Callable[[str, bool], Role],
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from login_etl.postgres import schema

    right, wrong = make_role(password, True), make_role(password, False)
    for url, code in (
        (right.url(), 0 if scram_accepts(password) else 1),
        (wrong.url(), 1),
        (wrong.url(query="?connect_timeout=soon"), 1),
    ):
        clean_env.setattr("sys.argv", ["schema", url])
        assert schema.main() == code
        out = capsys.readouterr()
        assert_nothing_leaked(password, out.out, out.err)


# --- login-etl drain and redrive ---------------------------------------------------------


@pytest.fixture
def moto_queue(clean_env: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url, dlq = make_queue(sqs, f"leak-{secrets.token_hex(3)}", max_receive_count=3)
        assert dlq is not None
        yield sqs, url, dlq


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> tuple[int, str]:
    with caplog.at_level(logging.INFO):
        try:
            code = cli.main(args)
            error = None
        except BaseException as raised:  # noqa: BLE001 - SystemExit from argparse, or a bug
            code, error = -1, raised
    out = capsys.readouterr()
    said = out.out + out.err + caplog.text + _exception_text(error)
    caplog.clear()
    return code, said


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_drain_with_init_db(
    password: str,
    make_role: Callable[[str, bool], Role],
    moto_queue: tuple[Any, str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    db: Db,
) -> None:
    sqs, url, _ = moto_queue
    send_batched(sqs, url, login_bodies(3))
    right, wrong = make_role(password, True), make_role(password, False)
    drain = ["drain", "--queue-url", url, "--wait-seconds", "0", "--idle-polls", "1", "--init-db"]
    code, said = run_cli([*drain, "--database-url", right.url()], capsys, caplog)
    assert code == (cli.EXIT_OK if scram_accepts(password) else cli.EXIT_DATABASE), said
    assert_nothing_leaked(password, said)
    for unusable, expected in (
        (wrong.url(), cli.EXIT_DATABASE),
        (wrong.url(port="0"), cli.EXIT_CONFIG),
        (wrong.url(query="?sslmode=sometimes"), cli.EXIT_CONFIG),
    ):
        code, said = run_cli([*drain, "--database-url", unusable], capsys, caplog)
        assert code == expected, said
        assert_nothing_leaked(password, said)


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS[:3])
def test_redrive_says_nothing_of_the_secrets_in_its_environment(
    password: str,
    make_role: Callable[[str, bool], Role],
    moto_queue: tuple[Any, str, str],
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs, url, dlq = moto_queue
    send_batched(sqs, dlq, login_bodies(2))
    # An operator's shell: the database URL, the key and the AWS secret key all set.
    clean_env.setenv("DATABASE_URL", make_role(password, True).url())
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", password)
    code, said = run_cli(["redrive", "--dlq-url", dlq, "--to-queue-url", url], capsys, caplog)
    assert code == cli.EXIT_OK, said
    assert_nothing_leaked(password, said)
    missing = dlq.rsplit("/", 1)[0] + "/no-such-queue"
    code, said = run_cli(["redrive", "--dlq-url", missing, "--to-queue-url", url], capsys, caplog)
    assert code == cli.EXIT_SQS, said
    assert_nothing_leaked(password, said)


# --- generated passwords ------------------------------------------------------------------

_HOSTILE_CHARACTERS = st.sampled_from(list("#/?@%:;&=+, '\"\\`$!*()[]{}<>|~^"))
_PASSWORDS = st.text(
    st.one_of(_HOSTILE_CHARACTERS, st.characters(exclude_categories=["Cs", "Cc"])),
    min_size=6,
    max_size=40,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(password=_PASSWORDS)
def test_generated_passwords_on_the_handler(
    password: str,
    make_role: Callable[[str, bool], Role],
    clean_env: pytest.MonkeyPatch,
    captured_logs: Callable[[], str],
) -> None:
    assume(not collides_with_source(password, "postgresql", "login_etl"))
    role = make_role(password, True)
    clean_env.setenv("DATABASE_URL", role.url())
    _, said = run_handler(captured_logs)
    assert_nothing_leaked(password, said)
