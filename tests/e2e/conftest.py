"""Fixtures for end-to-end tests: the SAM build, LocalStack, stacks deployed and torn down.

The suite's Postgres (``tests/conftest.py``) serves the deployed functions too: they run as
host processes (localdev/env/localstack), so 127.0.0.1 is the same machine.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(REPO_ROOT))

from localdev.env import deploy, sam  # noqa: E402
from localdev.env.filelock import locked  # noqa: E402
from tests.conftest import RUN_DIR  # noqa: E402

# Small on purpose: a rejected message is retried every VISIBILITY_S and dead-lettered after
# MAX_RECEIVE_COUNT deliveries, so the whole flow takes seconds.
FAST_PARAMS = {
    "FunctionTimeout": "3",
    "VisibilityTimeout": "3",
    "MaxReceiveCount": "2",
    "BatchSize": "10",
    "BatchingWindow": "1",
    "MaxConcurrency": "2",
    "DbConnectTimeout": "2",
}


@pytest.fixture(scope="session")
def built_function() -> Path:
    """``sam build`` of template.yaml, once per test run; returns the build folder.

    The first worker that needs it builds into the run's folder (``RUN_DIR``); the others wait
    for that build and use it (each worker built its own before: 6 to 15 s each, on CPU the
    other workers needed). Tests do not change it.
    """
    build_dir = RUN_DIR / "sam" / "build"
    done = RUN_DIR / "sam" / "built"
    done.parent.mkdir(parents=True, exist_ok=True)
    with locked(RUN_DIR / "sam" / "build.lock"):
        if not done.exists():
            shutil.rmtree(build_dir, ignore_errors=True)  # a build that failed part-way
            sam.build(build_dir, quiet=True)
            done.touch()
    return build_dir


Deployer = Callable[..., dict[str, str]]


@contextlib.contextmanager
def _stacks(built_function: Path) -> Iterator[Deployer]:
    """Deploys stacks with FAST_PARAMS (+ overrides); deletes them, and their key secrets."""
    deployed: list[tuple[str, dict[str, str]]] = []

    def deploy_one(
        database_url: str, *, stack_name: str | None = None, **overrides: str
    ) -> dict[str, str]:
        """A new stack, or with ``stack_name`` an update of one this fixture deployed."""
        if stack_name is None:
            name = f"login-etl-e2e-{uuid.uuid4().hex[:8]}"
            deployed.append((name, {}))
        else:
            name = stack_name
            assert any(n == name for n, _ in deployed), "only stacks of this test"
        outputs = deploy.deploy(
            FAST_PARAMS | overrides,
            stack_name=name,
            database_url=database_url,
            build_dir=built_function,
            build=False,
            quiet=True,
        )
        index = next(i for i, (n, _) in enumerate(deployed) if n == name)
        deployed[index] = (name, outputs)
        return outputs

    yield deploy_one
    secrets = deploy.client("secretsmanager")
    for name, outputs in reversed(deployed):
        try:
            deploy.delete_stack(name)
            if "PiiHashKeySecretArn" in outputs:  # retained by design (DeletionPolicy: Retain)
                secrets.delete_secret(
                    SecretId=outputs["PiiHashKeySecretArn"], ForceDeleteWithoutRecovery=True
                )
        except Exception as error:  # noqa: BLE001 - clean up as much as possible
            print(f"teardown of {name} failed: {error}")


@pytest.fixture
def deploy_stack(localstack_endpoint: str, built_function: Path) -> Iterator[Deployer]:
    """The test's own stacks (torn down after it)."""
    with _stacks(built_function) as deploy_one:
        yield deploy_one


@pytest.fixture(scope="module")
def deploy_module_stack(localstack_endpoint: str, built_function: Path) -> Iterator[Deployer]:
    """Stacks the tests of one module share (torn down after the module): for tests that
    each send their own messages and read back only those."""
    with _stacks(built_function) as deploy_one:
        yield deploy_one


def client(service: str) -> Any:
    return deploy.client(service)
