"""`make test`'s xdist workers: the tests of a module that need LocalStack run in one worker
(each worker runs its own), every test that needs one of the single servers of
tests/conftest.py (SERVER_GROUPS) runs in the same worker, the rest anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Stand-ins with the real fixtures' names: the grouping goes by the names a test needs.
TESTS = """
import os
import pytest

@pytest.fixture
def localstack_endpoint():
    return "stand-in"

@pytest.fixture
def containers():
    return "stand-in"

@pytest.fixture
def endpoint_user(localstack_endpoint):  # needs it through another fixture
    return localstack_endpoint

@pytest.mark.parametrize("i", range(8))
def test_needs_localstack(i, localstack_endpoint):
    print("ran", f"localstack-{__name__}", os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("i", range(4))
def test_needs_it_indirectly(i, endpoint_user):
    print("ran", f"localstack-{__name__}", os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("i", range(4))
def test_needs_the_containers(i, containers):
    print("ran", "sam-local", os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("i", range(12))
def test_needs_nothing(i):
    print("ran", "free", os.environ["PYTEST_XDIST_WORKER"])
    print("port", os.environ["PYTEST_XDIST_WORKER"], os.environ["LOCALSTACK_PORT"])
"""


def test_tests_of_one_server_group_run_in_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
    )
    for module in ("test_one", "test_two"):
        (tmp_path / f"{module}.py").write_text(TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "handler"))}
    command = [sys.executable, "-m", "pytest", "-q", "-rP", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*command, "-n", "3", "--dist", "loadgroup", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ran = [line.split()[1:] for line in run.stdout.splitlines() if line.startswith("ran ")]
    assert len(ran) == 2 * 28
    for group in ("localstack-test_one", "localstack-test_two", "sam-local"):
        assert sum(g == group for g, _ in ran) == (8 if group == "sam-local" else 12)
        assert len({worker for g, worker in ran if g == group}) == 1, group
    assert len({worker for group, worker in ran if group == "free"}) > 1
    # Each worker its own LocalStack port (the free tests ran in more than one worker).
    lines = run.stdout.splitlines()
    ports = {tuple(line.split()[1:]) for line in lines if line.startswith("port ")}
    assert len(ports) > 1
    assert len({worker for worker, _ in ports}) == len({port for _, port in ports}) == len(ports)
