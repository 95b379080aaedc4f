"""The built Lambda artifact (``sam build``) works on its own, as in the Lambda runtime.

What ``sam local invoke`` would check with Docker: each sample event in events/ through the
BUILT folder (``.aws-sam/build/LoginEtlFunction``-shaped), in a fresh python3.13 with only the
standard library, that folder and a boto3 like the runtime's on ``sys.path`` — so a dependency
missing from handler/requirements.txt fails here. Its batchItemFailures and rows must equal
those of the in-process handler.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.env import sam
from localdev.lambda_event import LocalContext
from tests.conftest import EVENTS, Databases, table, truncate

pytestmark = pytest.mark.e2e

PII_KEY = "artifact-test-key"
RUNTIME_SITE = (  # boto3 as the Lambda runtime ships it (created by localdev/env/localstack)
    Path(__file__).resolve().parents[2]
    / ".local/lambda-runtime-python3.13/lib/python3.13/site-packages"
)
SAMPLE_EVENTS = sorted(p.name for p in EVENTS.glob("sqs-*.json"))

# Runs in `python3.13 -I -S`: no site-packages, no PYTHON* variables, no cwd on sys.path.
INVOKE = """
import json, sys
task_root, runtime_site, event_file = sys.argv[1:4]
sys.path[:0] = [task_root]            # /var/task first, as in Lambda
if runtime_site:
    sys.path.append(runtime_site)     # /var/runtime (boto3) after the stdlib
import app

class Context:
    function_name = "LoginEtlFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:LoginEtlFunction"
    aws_request_id = "artifact-test"
    log_group_name = "/aws/lambda/LoginEtlFunction"
    log_stream_name = "artifact"
    def get_remaining_time_in_millis(self):
        return 30000

with open(event_file) as f:
    event = json.load(f)
response = app.lambda_handler(event, Context())
print("RESULT " + json.dumps({"response": response, "modules": sorted(
    name for name in ("pg8000", "aws_lambda_powertools", "login_etl")
    if sys.modules[name].__file__.startswith(task_root))}))
"""


@pytest.fixture(scope="module")
def artifact_db(databases: Databases) -> str:
    return databases.create()


@pytest.fixture
def clean_db(artifact_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", artifact_db)
    monkeypatch.setenv("PII_HASH_KEY", PII_KEY)
    for name in ("DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    truncate(artifact_db)
    # The in-process handler keeps its warm connection; it reconnects when the settings change.
    yield artifact_db


def invoke_artifact(function_dir: Path, event_file: Path, database_url: str) -> dict[str, Any]:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url,
        "PII_HASH_KEY": PII_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "LoginEtl",
        "LAMBDA_TASK_ROOT": str(function_dir),
    }
    runtime_site = str(RUNTIME_SITE) if RUNTIME_SITE.is_dir() else ""
    done = subprocess.run(
        [sam.python313(), "-I", "-S", "-c", INVOKE, str(function_dir), runtime_site, event_file],
        cwd=function_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result_lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result_lines, done.stdout
    result: dict[str, Any] = json.loads(result_lines[-1].removeprefix("RESULT "))
    return result


def test_build_output_is_the_function_folder(built_function: Path) -> None:
    function_dir = built_function / sam.FUNCTION_ID
    assert (function_dir / "app.py").is_file()
    assert (function_dir / "login_etl" / "pipeline.py").is_file()
    assert (function_dir / "pg8000").is_dir()
    assert not (function_dir / "boto3").exists(), "boto3 comes with the runtime, not the zip"


@pytest.mark.parametrize("event_name", SAMPLE_EVENTS)
def test_built_artifact_matches_in_process_handler(
    built_function: Path, clean_db: str, event_name: str
) -> None:
    import app

    event_file = EVENTS / event_name
    event = json.loads(event_file.read_text())
    expected = app.lambda_handler(event, LocalContext())
    expected_rows = table(clean_db)

    truncate(clean_db)
    result = invoke_artifact(built_function / sam.FUNCTION_ID, event_file, clean_db)

    assert result["response"] == expected
    assert result["modules"] == ["aws_lambda_powertools", "login_etl", "pg8000"]
    assert table(clean_db) == expected_rows
    assert len(expected_rows) + len(expected["batchItemFailures"]) >= 1
