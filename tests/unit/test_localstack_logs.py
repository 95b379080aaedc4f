"""Worker LocalStack logs do not pile up across suite runs (localdev/env/localstack/server.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from localdev.env.localstack import server, venv


def test_only_logs_of_stopped_workers_older_than_a_minute_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(venv, "STATE_DIR", tmp_path)
    old = time.time() - 3600
    files = {
        name: tmp_path / name
        for name in (
            "localstack-40001.log",  # stopped worker, old: removed
            "localstack-40002.log",  # running worker (pid file): kept
            "localstack-40003.log",  # stopped but just written (a worker starting): kept
            "localstack.log",  # the default LocalStack's: kept
            "localstack-0.14.3-venv.log",  # not a worker's: kept
        )
    }
    for path in files.values():
        path.write_text("log\n")
        if path.name != "localstack-40003.log":
            os.utime(path, (old, old))
    (tmp_path / "localstack-40002.pid").write_text("123\n")

    server._remove_stopped_worker_logs()

    assert sorted(p.name for p in tmp_path.glob("*.log")) == sorted(
        name for name in files if name != "localstack-40001.log"
    )


def test_a_log_another_worker_removed_first_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers starting together remove the same old logs (seen when a suite ran twice in one
    checkout): the log is gone between glob and stat."""
    monkeypatch.setattr(venv, "STATE_DIR", tmp_path)
    gone = tmp_path / "localstack-40001.log"
    gone.write_text("log\n")
    globbed = list(tmp_path.glob("localstack-*.log"))
    gone.unlink()
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter(globbed))

    server._remove_stopped_worker_logs()  # no FileNotFoundError
