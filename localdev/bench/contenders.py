"""The timed contenders: the naive baseline, COPY, and ``lambda_handler`` at batch size B."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import pg8000.native

from localdev.bench.database import backend_cpu, connect, count_rows, reset
from localdev.bench.plan import (
    BENCH_APPLICATION,
    BENCH_KEY,
    COLUMNS,
    HANDLER_APPLICATION,
    HANDLER_DIR,
)
from localdev.bench.report import Figure, median_run
from localdev.lambda_event import LocalContext

# -- naive baseline (never used by the product) --------------------------------------


_NAIVE_INSERT = """
INSERT INTO user_logins
    (user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date)
VALUES (:user_id, :device_type, :masked_ip, :masked_device_id, :locale, :app_version, :day)
"""


def _naive_sha256(value: str | None) -> str | None:
    # BASELINE ONLY: an unkeyed hash is reversible by enumeration; the product uses HMAC.
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def _naive_version(value: str | None) -> int | None:
    if value is None:
        return None
    parts = [int(p) for p in value.split(".")] + [0, 0]
    return parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]


def naive_load(conn: pg8000.native.Connection, bodies: Sequence[str]) -> None:
    """BASELINE, never used by the product: one INSERT + COMMIT per message."""
    today = date.today()
    for body in bodies:
        msg = json.loads(body)
        conn.run(  # autocommit: this INSERT is its own transaction, committed here
            _NAIVE_INSERT,
            user_id=msg["user_id"],
            device_type=msg.get("device_type"),
            masked_ip=_naive_sha256(msg.get("ip")),
            masked_device_id=_naive_sha256(msg.get("device_id")),
            locale=msg.get("locale"),
            app_version=_naive_version(msg.get("app_version")),
            day=today,
        )


def bench_naive(url: str, bodies: Sequence[str], repeats: int) -> Figure:
    conn = connect(url)  # plain pg8000 defaults, as a naive loader would connect
    try:
        runs: list[tuple[float, float]] = []
        for _ in range(repeats):
            reset(conn)
            wall, cpu = time.perf_counter(), time.process_time()
            naive_load(conn, bodies)
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
            if count_rows(conn) != len(bodies):
                raise RuntimeError("naive: row count does not match the messages")
        reset(conn)
    finally:
        conn.close()
    seconds, cpu = median_run(runs)
    return Figure("naive", len(bodies), seconds, cpu, invocations=0)


# -- COPY: the physical limit --------------------------------------------------------


def premasked_csv(bodies: Sequence[str], rows: int) -> bytes:
    """CSV of ``rows`` rows, masked with the product's own rules (untimed)."""
    from login_etl.masking import Masker
    from login_etl.records import ParsedRow, to_row
    from login_etl.table import CURRENT_SHAPE

    masker = Masker(BENCH_KEY.encode())
    day = "2025-11-24"
    parsed: list[tuple[object, ...]] = []
    for body in bodies:
        result = to_row(body, CURRENT_SHAPE, masker, day)
        if not isinstance(result, ParsedRow):
            raise RuntimeError(f"copy: generated message rejected ({result.reason})")
        parsed.append(result.row)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # None → empty unquoted → NULL
    for i in range(rows):
        writer.writerow(parsed[i % len(parsed)])
    return buffer.getvalue().encode()


def bench_copy(url: str, payload: bytes, rows: int, repeats: int) -> Figure:
    statement = f"COPY user_logins ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    conn = connect(url)
    server_cpu: list[float] = []
    try:
        runs: list[tuple[float, float]] = []
        for _ in range(repeats):
            reset(conn)
            stream = io.BytesIO(payload)
            server = backend_cpu(conn, BENCH_APPLICATION)
            wall, cpu = time.perf_counter(), time.process_time()
            conn.run(statement, stream=stream)  # autocommit: includes the commit
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
            after = backend_cpu(conn, BENCH_APPLICATION)
            if server is not None and after is not None:
                server_cpu.append(after - server)
            if count_rows(conn) != rows:
                raise RuntimeError("copy: row count does not match")
        reset(conn)
    finally:
        conn.close()
    seconds, cpu = median_run(runs)
    median_server = statistics.median(server_cpu) if server_cpu else None
    return Figure("copy", rows, seconds, cpu, invocations=0, server_cpu_seconds=median_server)


# -- the handler ---------------------------------------------------------------------


def import_app() -> Any:
    """``handler/app.py`` as Lambda imports it (env must be set before)."""
    if str(HANDLER_DIR) not in sys.path:
        sys.path.insert(0, str(HANDLER_DIR))
    return importlib.import_module("app")


def bench_handler(
    app: Any,
    url: str,
    records: Sequence[dict[str, object]],
    batch: int,
    timed_records: int,
) -> Figure:
    invocations = timed_records // batch
    if (invocations + 1) * batch > len(records):
        raise RuntimeError(f"handler@{batch}: the pool is too small")
    events = [{"Records": list(records[i * batch : (i + 1) * batch])} for i in range(invocations)]
    warm_up = {"Records": list(records[len(records) - batch :])}
    contexts = [LocalContext() for _ in range(invocations + 1)]
    conn = connect(url)
    try:
        reset(conn)
        latencies: list[float] = []
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            check_response(app.lambda_handler(warm_up, contexts[-1]), batch)
            server = backend_cpu(conn, HANDLER_APPLICATION)
            cpu = time.process_time()
            for event, context in zip(events, contexts, strict=False):
                start = time.perf_counter()
                response = app.lambda_handler(event, context)
                latencies.append(time.perf_counter() - start)
                check_response(response, batch)
            cpu = time.process_time() - cpu
            after = backend_cpu(conn, HANDLER_APPLICATION)
        expected = (invocations + 1) * batch
        if count_rows(conn) != expected or count_rows(conn, "login_etl.ledger") != expected:
            raise RuntimeError(f"handler@{batch}: rows or ledger entries missing")
        reset(conn)
    finally:
        conn.close()
    return Figure(
        f"handler@{batch:,}",
        invocations * batch,
        sum(latencies),
        cpu,
        invocations=invocations,
        latencies=latencies,
        server_cpu_seconds=None if server is None or after is None else after - server,
    )


def check_response(response: dict[str, Any], batch: int) -> None:
    failed = response["batchItemFailures"]
    if failed:
        raise RuntimeError(f"handler@{batch}: {len(failed)} records reported failed")
