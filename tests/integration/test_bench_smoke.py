"""`make bench` keeps working: its quick mode end to end, against the suite's server."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_bench_quick_runs_and_reports_every_figure(server_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["BENCH_DATABASE_URL"] = server_url  # its own database on this server, dropped after
    done = subprocess.run(
        [sys.executable, "-m", "localdev.bench", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for line in ("naive ", "copy ", "handler@10 ", "handler@1,000 ", "handler@10,000 "):
        assert f"\n{line}" in out
    for target in ("handler@1,000 / copy", "handler@10 / naive", "peak RSS @10,000"):
        assert target in out
    assert "import app" in out and "first invocation" in out
    # The ledger section: claims on the empty and the loaded ring, prune, size per day.
    for line in ("  empty ring ", "  full ring ", "  single table ", "slot of today-14"):
        assert f"\n{line}" in out, line
    assert "100,000 logins/s" in out
