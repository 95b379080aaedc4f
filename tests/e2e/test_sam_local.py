"""``sam local invoke`` and ``sam local start-lambda`` for real: the built function in a container.

The engine is set up by the module itself (``localdev.engine``: the machine's Docker engine, or
the project's podman, installed as root when missing) with the Lambda base image built locally
(``localdev.lambda_image``, cached in ``.local/podman`` between runs). SAM runs its own Runtime
Interface Emulator in that image; the function reaches the suite's Postgres through a relay on
the gateway of a network this module creates (``login-etl-test-…``) and removes.

Every sample event in events/ must give the response and the rows of the in-process handler.
tests/e2e/test_built_artifact.py stays the fast check of the same artifact without a container.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localdev.engine.network import client as engine_client
from localdev.env import sam
from localdev.env.postgres import free_port
from localdev.lambda_event import LocalContext
from localdev.lambda_image import build
from localdev.lambda_local import sam_local
from tests.conftest import EVENTS, Databases, table, truncate, wait_for

pytestmark = pytest.mark.e2e

PII_KEY = "sam-local-test-key"
SAMPLE_EVENTS = sorted(p.name for p in EVENTS.glob("sqs-*.json"))
# Never a real account's credentials inside the container (SAM passes the caller's on).
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # SAM asks STS for the account id before every invoke (InvokeContext._add_account_id_to_global)
    # and uses a default when that fails. With these credentials it fails anyway, but against
    # sts.amazonaws.com, unreachable here, only after 8.5 s of retried connects: a closed local
    # port refuses at once.
    "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9",
    "AWS_MAX_ATTEMPTS": "1",
}


class Containers:
    """The module's engine session, the database, the env-vars file and the built template."""

    def __init__(self, ctx: sam_local.Session, db_url: str, env_file: Path, template: Path):
        self.ctx = ctx
        self.db_url = db_url
        self.env_file = env_file
        self.template = template

    @property
    def env(self) -> dict[str, str]:
        env = self.ctx.env | FAKE_AWS
        env.pop("AWS_PROFILE", None)
        return env

    def sam_args(self) -> list[str]:
        return ["--template", str(self.template), *self.ctx.args(self.env_file)]


@pytest.fixture(scope="module")
def containers(
    databases: Databases, built_function: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Containers]:
    db_url = databases.create()
    with sam_local.session(db_url, f"login-etl-test-{secrets.token_hex(4)}") as ctx:
        env_file = sam_local.write_env_vars(
            tmp_path_factory.mktemp("sam-local") / "env.json",
            {
                "DATABASE_URL": ctx.database_url,
                "PII_HASH_KEY": PII_KEY,
                "PII_HASH_KEY_SECRET_ARN": "",
                "DB_SECRET_ARN": "",
            },
        )
        yield Containers(ctx, db_url, env_file, built_function / "template.yaml")


@pytest.fixture
def clean_db(containers: Containers, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module's database, emptied; the in-process handler pointed at it."""
    monkeypatch.setenv("DATABASE_URL", containers.db_url)
    monkeypatch.setenv("PII_HASH_KEY", PII_KEY)
    for name in ("DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    truncate(containers.db_url)
    return containers.db_url


def in_process(event: dict[str, Any], db_url: str) -> tuple[dict[str, Any], list[list[Any]]]:
    """The in-process handler's response and rows; the table is emptied again after."""
    import app

    response: dict[str, Any] = app.lambda_handler(event, LocalContext())
    rows = table(db_url)
    truncate(db_url)
    return response, rows


def sam_local_invoke(containers: Containers, event_file: Path) -> tuple[dict[str, Any], str]:
    """``sam local invoke`` of the function on ``event_file``: its response and its log."""
    done = subprocess.run(
        [
            str(sam.BIN_DIR / "sam"),
            "local",
            "invoke",
            sam.FUNCTION_ID,
            "--event",
            str(event_file),
            *containers.sam_args(),
        ],
        cwd=sam.REPO,
        env=containers.env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The response is SAM's last line on stdout; the emulator's lines and the logs are on stderr.
    response: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return response, done.stderr


@pytest.mark.parametrize("event_name", SAMPLE_EVENTS)
def test_sam_local_invoke_matches_in_process_handler(
    containers: Containers, clean_db: str, event_name: str
) -> None:
    event_file = EVENTS / event_name
    expected, expected_rows = in_process(json.loads(event_file.read_text()), clean_db)

    response, log = sam_local_invoke(containers, event_file)

    assert response == expected
    assert table(clean_db) == expected_rows
    assert len(expected_rows) + len(expected["batchItemFailures"]) >= 1
    # The real emulator ran it. (Its lines come on the container's log stream, which SAM stops
    # reading 1 s after the response: on a loaded machine some are cut off. The start-lambda
    # test below waits for them.)
    assert "START RequestId:" in log or "REPORT RequestId:" in log


def test_the_base_image_holds_the_runtime(containers: Containers) -> None:
    """The locally built image: its own CPython 3.13, the pinned runtime client and boto3."""
    if not containers.ctx.engine.project_podman:
        pytest.skip("an existing engine runs AWS's own image")
    probe = (
        "import sys; sys.path.append('/var/runtime');"
        "import awslambdaric, boto3, runtime_client;"
        "print(sys.executable, '%d.%d' % sys.version_info[:2], boto3.__version__,"
        " awslambdaric.__file__)"
    )
    output = engine_client(containers.ctx.engine).containers.run(
        build.IMAGE,
        entrypoint=["/usr/bin/python3.13", "-I", "-c", probe],
        network_mode="none",
        remove=True,
    )
    executable, version, boto3_version, ric = output.decode().split()
    assert (executable, version) == ("/usr/bin/python3.13", "3.13")
    assert ric.startswith("/var/runtime/awslambdaric/")
    assert f"boto3=={boto3_version}" in (build.HERE / "runtime.lock").read_text()
    assert build.current_recipe(containers.ctx.engine) == build.recipe_hash()


@pytest.fixture
def start_lambda(containers: Containers) -> Iterator[str]:
    """``sam local start-lambda`` on a free loopback port; yields its endpoint URL."""
    port = free_port()
    log = (containers.env_file.parent / "start-lambda.log").open("w")
    server = subprocess.Popen(
        [
            str(sam.BIN_DIR / "sam"),
            "local",
            "start-lambda",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--warm-containers",
            "LAZY",
            *containers.sam_args(),
        ],
        cwd=sam.REPO,
        env=containers.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            "sam local start-lambda to listen",
            lambda: True if listening(port) or server.poll() is not None else None,
            timeout_s=180,
        )
        assert server.poll() is None, (containers.env_file.parent / "start-lambda.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
        # A warm container SAM left behind goes with the module's network.


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_start_lambda_serves_the_lambda_invoke_api(
    containers: Containers, clean_db: str, start_lambda: str
) -> None:
    event = json.loads((EVENTS / "sqs-mixed-batch.json").read_text())
    expected, expected_rows = in_process(event, clean_db)
    lambda_client = boto3.client(
        "lambda",
        endpoint_url=start_lambda,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(read_timeout=180, retries={"max_attempts": 1}),
    )

    timings = []
    for _ in range(2):  # the second one on the warm container: the ledger makes it add nothing
        started = time.monotonic()
        reply = lambda_client.invoke(FunctionName=sam.FUNCTION_ID, Payload=json.dumps(event))
        timings.append(time.monotonic() - started)
        assert reply["StatusCode"] == 200
        assert "FunctionError" not in reply
        assert json.loads(reply["Payload"].read()) == expected
        assert table(clean_db) == expected_rows
    print(f"start-lambda invoke: first {timings[0]:.3f} s, warm {timings[1]:.3f} s")
    # The real emulator ran both requests in the one warm container. Its lines are read from the
    # container's own log: SAM stops copying them 1 s after each response, so on a loaded
    # machine start-lambda.log may lack the END/REPORT lines (seen: only the START lines).
    sam_log = (containers.env_file.parent / "start-lambda.log").read_text()
    container_ids = set(re.findall(r"SAM_CONTAINER_ID: (\w+)", sam_log))
    assert len(container_ids) == 1, sam_log  # LAZY warm containers: one for both requests
    container = engine_client(containers.ctx.engine).containers.get(container_ids.pop())
    wait_for(
        "the emulator's two REPORT lines in the container's log",
        lambda: (
            True
            if container.logs().decode(errors="replace").count("REPORT RequestId:") >= 2
            else None
        ),
        timeout_s=60,
    )
