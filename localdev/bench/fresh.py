"""Fresh-interpreter measurements, the parent's side: cold start, peak RSS (run by ``child``)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from localdev import REPO
from localdev.bench.database import connect, count_rows, reset
from localdev.bench.plan import HANDLER_DIR, RANDOM_SEED
from localdev.bench.report import ColdStart
from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies

# -- fresh-interpreter measurements ------------------------------------------------


def _child_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HANDLER_DIR), str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env["DATABASE_URL"] = url
    return env


def _run_child(args: Sequence[str], url: str, stdin: str = "") -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "localdev.bench.child", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_child_env(url),
        cwd=REPO,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed:\n{done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_cold(url: str, records: Sequence[dict[str, object]], repeats: int) -> ColdStart:
    conn = connect(url)
    try:
        reset(conn)
        interpreter: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True, env=_child_env(url))
            interpreter.append(time.perf_counter() - start)
        figures: list[dict[str, float]] = []
        for i in range(repeats):
            chunk = records[i * 20 : i * 20 + 20]
            events = {"first": {"Records": chunk[:10]}, "second": {"Records": chunk[10:]}}
            figures.append(_run_child(["cold"], url, json.dumps(events)))
        reset(conn)
    finally:
        conn.close()
    return ColdStart(
        statistics.median(interpreter),
        statistics.median(f["import_s"] for f in figures),
        statistics.median(f["first_s"] for f in figures),
        statistics.median(f["second_s"] for f in figures),
    )


def bench_rss(url: str, batches: int, size: int) -> dict[str, float]:
    """Peak RSS of a fresh handler process running ``batches`` events of ``size``."""
    bodies = [m.body for m in login_bodies(batches * size, seed=RANDOM_SEED + 1, invalid_ratio=0.0)]
    conn = connect(url)
    workdir = Path(tempfile.mkdtemp(prefix="login-etl-bench-events-"))
    try:
        paths = []
        for k in range(batches):
            event = sqs_event(bodies[k * size : (k + 1) * size], seed=RANDOM_SEED * 100 + k)
            path = workdir / f"event-{k}.json"
            path.write_text(json.dumps(event))
            paths.append(str(path))
        del bodies
        reset(conn)
        figures = _run_child(["rss", *paths], url)
        if count_rows(conn) != batches * size:
            raise RuntimeError("RSS run: rows missing")
        reset(conn)
    finally:
        conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures
