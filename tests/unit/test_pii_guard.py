"""The session's PII guard (tests/support/pii_guard.py) can fail: a pytest run in a subprocess
whose pipeline logs a raw value must end red; the same run without the leak, green."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import pii_guard

REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.support.pii_guard import PiiGuard

def pytest_configure(config):
    config.pluginmanager.register(PiiGuard(), "pii-guard")
"""

# One batch through the real pipeline; with LEAK, a rejection's detail carries the raw
# ip (as a careless change to records.py could do) and the pipeline logs it.
TEST = """
import json
import logging

from localdev.lambda_event import sqs_record
from login_etl import pipeline
from login_etl.masking import Masker
from login_etl.records import Rejection
from login_etl.telemetry import logger as powertools_logger
from tests.support.memory_sink import MemorySink

LEAK = {leak}
LOGGER = {logger}


def test_one_batch(monkeypatch):
    to_row = pipeline.to_row

    def careless(body, *args):
        parsed = to_row(body, *args)
        if LEAK:
            return Rejection("invalid_ip", field="ip", detail="bad ip " + json.loads(body)["ip"])
        return parsed

    monkeypatch.setattr(pipeline, "to_row", careless)
    body = json.dumps({{"user_id": "u1", "ip": "172.16.254.7", "device_id": "123-45-6789"}})
    record = sqs_record(body, message_id="m1", sent_timestamp_ms=1764547200000)
    result = pipeline.process_batch(
        [record], sink=MemorySink(), masker=Masker(b"k"), logger=LOGGER
    )
    assert result.written == (0 if LEAK else 1)
"""


def run_guarded(tmp_path: Path, *, leak: bool, logger: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_batch.py").write_text(TEST.format(leak=leak, logger=logger))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "handler", "drain")),
        "POWERTOOLS_SERVICE_NAME": "login-etl",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


LOGGERS = {"powertools": "powertools_logger", "stdlib": "logging.getLogger('login_etl_drain.x')"}


@pytest.mark.parametrize("logger", LOGGERS.values(), ids=LOGGERS.keys())
def test_the_guard_fails_a_session_whose_pipeline_logs_a_raw_ip(
    tmp_path: Path, logger: str
) -> None:
    run = run_guarded(tmp_path, leak=True, logger=logger)
    assert "1 passed" in run.stdout  # the test itself passes: only the guard sees the leak
    assert "PII guard: leaked values (first 5): ['172.16.254.7']" in run.stdout
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr


@pytest.mark.parametrize("logger", LOGGERS.values(), ids=LOGGERS.keys())
def test_the_same_session_without_the_leak_passes_and_saw_the_values(
    tmp_path: Path, logger: str
) -> None:
    run = run_guarded(tmp_path, leak=False, logger=logger)
    assert run.returncode == 0, run.stdout + run.stderr
    # both values entered the masker through the pipeline's own call (mask_login)
    assert "PII guard: 2 raw ip/device_id values seen" in run.stdout
    assert "0 leaked" in run.stdout


def test_the_machines_own_addresses_are_not_recorded_but_others_are() -> None:
    from tests.support.pii_guard import PiiGuard

    guard = PiiGuard()
    guard.record("127.0.0.1", "::1", "10.1.2.3", "123-45-6789")
    assert guard.raw_values == {"10.1.2.3", "123-45-6789"}


def test_a_value_inside_a_longer_address_is_not_a_leak() -> None:
    from tests.support.pii_guard import PiiGuard

    guard = PiiGuard()
    guard.record("7.0.0.1", "10.1.2.3")
    guard.lines.append("cannot connect to Postgres at 127.0.0.1:5432; ip=10.1.2.3")
    assert guard.leaked() == ["10.1.2.3"]


# Under xdist: one worker masks the value, another logs it. Only the controller, which
# takes in what every worker saw, can find that leak.
MASKS = """
import os
from login_etl.masking import Masker

def test_masks():
    Masker(b"k").mask_login("172.16.254.9", None)
    print("worker", os.environ["PYTEST_XDIST_WORKER"])
"""
LOGS = """
import logging
import os

def test_logs():
    logging.getLogger("login_etl_drain.x").warning("bad ip 172.16.254.9")
    print("worker", os.environ["PYTEST_XDIST_WORKER"])
"""


def test_the_guard_finds_a_value_masked_in_one_worker_and_logged_in_another(
    tmp_path: Path,
) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_masks.py").write_text(MASKS)
    (tmp_path / "test_logs.py").write_text(LOGS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "handler", "drain")),
        "POWERTOOLS_SERVICE_NAME": "login-etl",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rP"]
    run = subprocess.run(
        [*command, "-n", "2", "--dist", "loadfile", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    workers = {line.split()[1] for line in run.stdout.splitlines() if line.startswith("worker ")}
    assert workers == {"gw0", "gw1"}, run.stdout  # the two tests ran in different workers
    assert "2 passed" in run.stdout
    assert "PII guard: leaked values (first 5): ['172.16.254.9']" in run.stdout
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr


def _stands_alone(value: str, text: str) -> bool:
    """The guard's rule as it was first written, one value at a time: no address character on
    either side (the oracle for the one-pass ``standing_alone``)."""
    edge = r"[0-9A-Za-z:.\-]"
    return re.search(rf"(?<!{edge}){re.escape(value)}(?!{edge})", text) is not None


PII_VALUES = st.from_regex(pii_guard.PII_SHAPE, fullmatch=True)
TEXT_PIECES = st.one_of(PII_VALUES, st.sampled_from(list(" =:.-,;/\n\"'xX0719aF")), st.text())


@given(value=PII_VALUES, pieces=st.lists(TEXT_PIECES, max_size=12))
def test_a_value_is_found_exactly_when_it_stands_alone_in_the_text(
    value: str, pieces: list[str]
) -> None:
    text = "".join(pieces)
    assert (value in pii_guard.standing_alone({value}, text)) == _stands_alone(value, text)


@given(value=PII_VALUES, before=TEXT_PIECES, after=TEXT_PIECES)
def test_a_value_between_any_two_pieces_is_found_as_the_rule_says(
    value: str, before: str, after: str
) -> None:
    text = before + value + after
    assert (value in pii_guard.standing_alone({value}, text)) == _stands_alone(value, text)
