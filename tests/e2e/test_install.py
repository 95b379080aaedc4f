"""``login-etl`` installed like a Python tool: the wheel, a fresh venv (pip) and pipx.

Built from a copy of the work tree (what a clean checkout holds), installed with the
versions the project pins (as constraints), run from outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import REPO, Databases, Db
from tests.support.drain import BAD_MESSAGE, login_bodies

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

_NOT_SHIPPED = (".git", ".venv", ".local", ".aws-sam", ".pytest_cache", ".mypy_cache", "build")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the repo's venv or pythonpath: nothing leaks into the install."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not k.startswith("AWS_")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
    )
    return env | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"} | extra


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a constraints file with the project's pins)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(*_NOT_SHIPPED, "__pycache__", "*.egg-info")
    )
    python = sys._base_executable  # the 3.13 the suite runs on, outside its venv
    run(python, "-m", "pip", "wheel", "--no-deps", "-w", tmp / "dist", source, cwd=tmp,
        env=clean_env())  # fmt: skip
    [wheel] = (tmp / "dist").glob("login_etl-*.whl")
    pins = (REPO / "handler" / "requirements.txt").read_text().splitlines()
    pins += [
        line
        for line in (REPO / "requirements-dev.txt").read_text().splitlines()
        if line.startswith(("boto3==", "botocore==", "s3transfer=="))
    ]
    constraints = tmp / "constraints.txt"
    constraints.write_text("\n".join(p for p in pins if p and not p.startswith("#")) + "\n")
    return wheel, constraints


def top_level_names(site_packages: Path) -> set[str]:
    return {p.name for p in site_packages.iterdir()}


def test_pip_install_gives_a_working_drain(
    built: tuple[Path, Path],
    tmp_path: Path,
    localstack_endpoint: str,
    databases: Databases,
) -> None:
    wheel, constraints = built
    venv = tmp_path / "venv"
    run(sys._base_executable, "-m", "venv", venv, cwd=tmp_path, env=clean_env())
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", constraints, wheel,
        cwd=tmp_path, env=clean_env())  # fmt: skip
    [site] = (venv / "lib").glob("python3.*/site-packages")
    names = top_level_names(site)
    assert {"login_etl", "login_etl_drain", "pg8000", "aws_lambda_powertools", "boto3"} <= names
    assert not names & {"localdev", "tests", "app", "handler", "drain"}
    # The query-protocol SQS model ships as package data, with botocore's notice.
    data = site / "login_etl_drain" / "data"
    assert (data / "sqs" / "2012-11-05" / "service-2.json.gz").is_file()
    assert (data / "NOTICE").is_file() and (data / "LICENSE.txt").is_file()

    usage = run(venv / "bin" / "login-etl", "drain", "--help", cwd=tmp_path, env=clean_env())
    assert "--queue-url" in usage

    # One drain: 11 messages on the suite's LocalStack into a fresh current-DDL database.
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=localstack_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    url = sqs.create_queue(QueueName=f"installed-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for body in [*login_bodies(10, seed=11), json.dumps(BAD_MESSAGE)]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    database_url = databases.create()
    out = run(
        venv / "bin" / "login-etl", "drain", "--queue-url", url,
        "--endpoint-url", localstack_endpoint, "--region", "us-east-1",
        "--database-url", database_url, "--wait-seconds", "1",
        cwd=tmp_path, env=clean_env(PII_HASH_KEY="install-test-key"),
    )  # fmt: skip
    assert "written 10 | duplicates 0 | rejected 1" in out
    assert Db(database_url).count() == 10
    sqs.delete_queue(QueueUrl=url)


def test_pipx_install_gives_the_command(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel, constraints = built
    env = clean_env(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
    )
    run(sys.executable, "-m", "pipx", "install", "--python", sys._base_executable,
        "--pip-args", f"--constraint {constraints}", wheel, cwd=tmp_path, env=env)  # fmt: skip
    usage = run(tmp_path / "bin" / "login-etl", "redrive", "--help", cwd=tmp_path, env=env)
    assert "--dlq-url" in usage
    [site] = (tmp_path / "pipx" / "venvs" / "login-etl" / "lib").glob("python3.*/site-packages")
    assert "localdev" not in top_level_names(site)
