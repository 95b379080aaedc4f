"""Throughput benchmark: naive baseline vs COPY vs ``lambda_handler`` at several batch sizes.

    python -m localdev.bench            # or: make bench
    python -m localdev.bench --quick    # smaller counts, a smoke test of the bench itself
    python -m localdev.bench --profile 1000   # cProfile of warm handler@1000 instead
    python -m localdev.bench --no-subprocess  # skip the cold-start and RSS runs

One run, one Postgres: a fresh embedded server in a temporary directory, or the
server of ``BENCH_DATABASE_URL`` (an admin URL; the bench works only inside a
database it creates, ``login_etl_bench_*``, and drops it at the end). Every contender
reads the same deterministic messages (``localdev.traffic.login_bodies``, fixed seed,
no invalid messages), and ``user_logins`` plus the ledger are truncated between
contenders (and CHECKPOINTed, so one contender's dirty pages don't bill the next).
The contenders run in rounds, each round running every one of them once: the speed of a
shared machine drifts within minutes, and a ratio of two figures measured at different
moments would mostly measure that drift.

Contenders
  naive       baseline, never used by the product: json.loads, *unsalted* SHA-256 of
              ip/device_id, one autocommit INSERT (= INSERT + COMMIT, one WAL flush)
              per message over plain pg8000.
  copy        COPY ... FROM STDIN (csv) of rows masked *before* the clock starts: the
              physical limit of getting rows into this table over this connection.
  handler@B   ``app.lambda_handler`` on prebuilt SQS events of B records, warm (one
              untimed warm-up invocation first); includes validation, HMAC masking,
              the ledger, the commit, Powertools logging/metrics (EMF to /dev/null).

Then, each in a fresh interpreter: peak RSS of a process running B=10,000 events, and
the cold start (``import app`` + first invocation). The exit status is non-zero only
when something failed, never because a figure missed its target. The load average is
printed before and after: on a busy machine (Postgres shares the cores here) every
figure is pessimistic, the naive baseline (fsync + round-trip bound) differently from
the CPU-bound handler, so compare ratios only from quiet runs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import importlib
import io
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pg8000.native

from login_etl.table import ROW_COLUMNS

from . import postgres as local_postgres
from .run_event import LocalContext
from .traffic import login_bodies, sqs_event

REPO = Path(__file__).resolve().parent.parent
HANDLER_DIR = REPO / "handler"
SEED = 20_260_101
BENCH_KEY = "bench-only-masking-key-not-a-real-secret"
BENCH_APPLICATION = "login-etl-bench"  # the bench's own connections
HANDLER_APPLICATION = "login-etl"  # the handler's connection (postgres.connect)
COLUMNS = ROW_COLUMNS  # the seed DDL's columns, in the order the handler writes them

# Targets (printed next to the figures; a miss is reported, never an error).
TARGET_H1000_VS_NAIVE = 25.0
TARGET_H1000_VS_COPY = 0.12
TARGET_H10_VS_NAIVE = 5.0
TARGET_RSS_MIB = 128.0


@dataclass(frozen=True)
class Plan:
    """How much work each contender does."""

    pool: int  # distinct generated messages (handler needs the most)
    rounds: int  # each round runs every contender once (see run())
    naive_messages: int  # per round
    copy_rows: int  # per round
    handler_records: dict[int, int]  # batch size → timed records (all rounds together)
    rss_batches: int
    rss_batch_size: int
    cold_repeats: int


FULL = Plan(
    pool=60_000,
    rounds=3,
    naive_messages=3_000,
    copy_rows=200_000,
    handler_records={10: 21_000, 100: 21_000, 1_000: 30_000, 10_000: 60_000},
    rss_batches=3,
    rss_batch_size=10_000,
    cold_repeats=5,
)
QUICK = Plan(
    pool=24_000,
    rounds=1,
    naive_messages=500,
    copy_rows=20_000,
    handler_records={10: 1_000, 100: 2_000, 1_000: 5_000, 10_000: 10_000},
    rss_batches=1,
    rss_batch_size=10_000,
    cold_repeats=1,
)


@dataclass
class Figure:
    """One contender's result."""

    name: str
    records: int
    seconds: float  # wall time of the timed part (median repeat, or total)
    cpu_seconds: float  # this process' CPU time over the same part
    invocations: int = 0  # handler calls; 0 for a single timed run (naive, copy)
    latencies: list[float] = field(default_factory=list)  # per handler call
    server_cpu_seconds: float | None = None  # the Postgres backend's CPU time (local server)

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_share(self) -> float:
        return self.cpu_seconds / self.seconds


# -- database -----------------------------------------------------------------------


def _connect(url: str) -> pg8000.native.Connection:
    parts = urlsplit(url)
    return pg8000.native.Connection(
        parts.username or "postgres",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        password=parts.password,
        database=parts.path.lstrip("/") or "postgres",
        application_name=BENCH_APPLICATION,
    )


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@contextlib.contextmanager
def _server() -> Iterator[tuple[str, str]]:
    """(admin URL, description) of the Postgres to use, started here unless given."""
    own = os.environ.get("BENCH_DATABASE_URL")
    if own:
        yield own, "BENCH_DATABASE_URL"
        return
    workdir = Path(tempfile.mkdtemp(prefix="login-etl-bench-"))
    data_dir = workdir / "data"
    try:
        server = local_postgres.start(data_dir, port=0)
        try:
            yield server.url, f"embedded, fresh in {workdir}"
        finally:
            local_postgres.stop(data_dir, mode="immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _bench_database(admin_url: str) -> Iterator[str]:
    """A dedicated database with the project's schema; dropped afterwards."""
    from login_etl.schema import init_schema

    name = f"login_etl_bench_{secrets.token_hex(4)}"
    admin = _connect(admin_url)
    try:
        admin.run(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    url = _with_database(admin_url, name)
    try:
        conn = _connect(url)
        try:
            init_schema(conn)
        finally:
            conn.close()
        yield url
    finally:
        admin = _connect(admin_url)
        try:
            # Not DROP DATABASE ... WITH (FORCE): that needs PostgreSQL 13.
            admin.run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()",
                name=name,
            )
            admin.run(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()


def _reset(conn: pg8000.native.Connection) -> None:
    conn.run("TRUNCATE user_logins, login_etl.processed_messages")
    conn.run("CHECKPOINT")


def _count(conn: pg8000.native.Connection, table: str = "user_logins") -> int:
    return int(conn.run(f"SELECT count(*) FROM {table}")[0][0])


def _backend_cpu(conn: pg8000.native.Connection, application_name: str) -> float | None:
    """CPU seconds used so far by the backends of one application (a local server only)."""
    if os.environ.get("BENCH_DATABASE_URL") or not Path("/proc/self/stat").exists():
        return None  # a remote server's pids mean nothing here
    rows = conn.run(
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name", name=application_name
    )
    total = 0.0
    for (pid,) in rows:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime+stime
    return total


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
    conn = _connect(url)  # plain pg8000 defaults, as a naive loader would connect
    try:
        runs: list[tuple[float, float]] = []
        for _ in range(repeats):
            _reset(conn)
            wall, cpu = time.perf_counter(), time.process_time()
            naive_load(conn, bodies)
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
            if _count(conn) != len(bodies):
                raise RuntimeError("naive: row count does not match the messages")
        _reset(conn)
    finally:
        conn.close()
    seconds, cpu = _median_run(runs)
    return Figure("naive", len(bodies), seconds, cpu, invocations=0)


# -- COPY: the physical limit --------------------------------------------------------


def premasked_csv(bodies: Sequence[str], rows: int) -> bytes:
    """CSV of ``rows`` rows, masked with the product's own rules (untimed)."""
    from login_etl.masking import Masker
    from login_etl.records import ParsedRow, to_row
    from login_etl.table import SEED_SHAPE

    masker = Masker(BENCH_KEY.encode())
    day = "2025-11-24"
    parsed: list[tuple[object, ...]] = []
    for body in bodies:
        result = to_row(body, SEED_SHAPE, masker, day)
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
    conn = _connect(url)
    server_cpu: list[float] = []
    try:
        runs: list[tuple[float, float]] = []
        for _ in range(repeats):
            _reset(conn)
            stream = io.BytesIO(payload)
            server = _backend_cpu(conn, BENCH_APPLICATION)
            wall, cpu = time.perf_counter(), time.process_time()
            conn.run(statement, stream=stream)  # autocommit: includes the commit
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
            after = _backend_cpu(conn, BENCH_APPLICATION)
            if server is not None and after is not None:
                server_cpu.append(after - server)
            if _count(conn) != rows:
                raise RuntimeError("copy: row count does not match")
        _reset(conn)
    finally:
        conn.close()
    seconds, cpu = _median_run(runs)
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
    conn = _connect(url)
    try:
        _reset(conn)
        latencies: list[float] = []
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            _check(app.lambda_handler(warm_up, contexts[-1]), batch)
            server = _backend_cpu(conn, HANDLER_APPLICATION)
            cpu = time.process_time()
            for event, context in zip(events, contexts, strict=False):
                start = time.perf_counter()
                response = app.lambda_handler(event, context)
                latencies.append(time.perf_counter() - start)
                _check(response, batch)
            cpu = time.process_time() - cpu
            after = _backend_cpu(conn, HANDLER_APPLICATION)
        expected = (invocations + 1) * batch
        if _count(conn) != expected or _count(conn, "login_etl.processed_messages") != expected:
            raise RuntimeError(f"handler@{batch}: rows or ledger entries missing")
        _reset(conn)
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


def _check(response: dict[str, Any], batch: int) -> None:
    failed = response["batchItemFailures"]
    if failed:
        raise RuntimeError(f"handler@{batch}: {len(failed)} records reported failed")


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
        [sys.executable, "-m", "localdev.bench_child", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_child_env(url),
        cwd=REPO,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_child {args[0]} failed:\n{done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass
class ColdStart:
    interpreter_s: float
    import_s: float
    first_s: float
    second_s: float


def bench_cold(url: str, records: Sequence[dict[str, object]], repeats: int) -> ColdStart:
    conn = _connect(url)
    try:
        _reset(conn)
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
        _reset(conn)
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
    bodies = [m.body for m in login_bodies(batches * size, seed=SEED + 1, invalid_ratio=0.0)]
    conn = _connect(url)
    workdir = Path(tempfile.mkdtemp(prefix="login-etl-bench-events-"))
    try:
        paths = []
        for k in range(batches):
            event = sqs_event(bodies[k * size : (k + 1) * size], seed=SEED * 100 + k)
            path = workdir / f"event-{k}.json"
            path.write_text(json.dumps(event))
            paths.append(str(path))
        del bodies
        _reset(conn)
        figures = _run_child(["rss", *paths], url)
        if _count(conn) != batches * size:
            raise RuntimeError("RSS run: rows missing")
        _reset(conn)
    finally:
        conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


# -- profile -------------------------------------------------------------------------

# Builtins in which the client blocks on Postgres (reads) or the kernel (writes).
_WAITS = ("recv_into", "recv", "sendall", "send")


def profile_handler(
    app: Any, url: str, records: Sequence[dict[str, object]], batch: int, top: int = 30
) -> int:
    """cProfile of warm handler@B calls over ~20k records: Python time vs waiting."""
    import cProfile
    import pstats

    invocations = max(1, min(20_000 // batch, len(records) // batch - 1))
    events = [{"Records": list(records[i * batch : (i + 1) * batch])} for i in range(invocations)]
    warm_up = {"Records": list(records[len(records) - batch :])}
    profiler = cProfile.Profile()
    conn = _connect(url)
    try:
        _reset(conn)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            _check(app.lambda_handler(warm_up, LocalContext()), batch)
            wall, cpu = time.perf_counter(), time.process_time()
            profiler.enable()
            for event in events:
                _check(app.lambda_handler(event, LocalContext()), batch)
            profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        _reset(conn)
    finally:
        conn.close()
        app._runtime.close()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    waiting = sum(
        entry[2]
        for (_, _, name), entry in raw.items()
        if any(f"'{wait}' of '_socket.socket'" in name for wait in _WAITS)
    )
    records_done = invocations * batch
    print(
        f"\nprofile of handler@{batch:,}: {invocations} warm calls, {records_done:,} records, "
        f"{wall:.3f}s wall ({records_done / wall:,.0f} records/s under the profiler), "
        f"{cpu:.3f}s CPU of this process"
    )
    print(
        f"  profiled time {total:.3f}s = socket waits {waiting:.3f}s "
        f"({waiting / total:.0%}: Postgres executing + round trips)"
        f" + Python {total - waiting:.3f}s ({(total - waiting) / total:.0%})"
    )
    print(
        f"  wall {wall:.3f}s = CPU of this process {cpu:.3f}s ({cpu / wall:.0%}) + off-CPU "
        f"{wall - cpu:.3f}s (waiting on Postgres, or preempted by other load on the machine;"
        " profiled Python time includes preemption)"
    )
    print(f"\ntop {top} functions by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print(f"top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)
    return 0


# -- report --------------------------------------------------------------------------


def _median_figure(figures: Sequence[Figure]) -> Figure:
    """The round with the median time (each round did the same work)."""
    return sorted(figures, key=lambda f: f.seconds)[(len(figures) - 1) // 2]


def _merged_figure(figures: Sequence[Figure]) -> Figure:
    """All rounds' calls of one handler contender as one figure."""
    servers = [f.server_cpu_seconds for f in figures]
    return Figure(
        figures[0].name,
        sum(f.records for f in figures),
        sum(f.seconds for f in figures),
        sum(f.cpu_seconds for f in figures),
        invocations=sum(f.invocations for f in figures),
        latencies=[latency for f in figures for latency in f.latencies],
        server_cpu_seconds=None if None in servers else sum(s or 0.0 for s in servers),
    )


def _median_run(runs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    ordered = sorted(runs)
    return ordered[(len(ordered) - 1) // 2]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _machine_facts(url: str, where: str) -> list[str]:
    conn = _connect(url)
    try:
        version = conn.run("SHOW server_version")[0][0]
        settings = {
            name: conn.run(f"SHOW {name}")[0][0]
            for name in ("shared_buffers", "synchronous_commit", "fsync", "wal_level")
        }
    finally:
        conn.close()
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    host = urlsplit(url).hostname or "?"
    local = host in ("127.0.0.1", "localhost", "::1")
    return [
        f"date        {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"machine     {platform.machine()}, {cpu}; cores: {os.cpu_count()} "
        f"(usable {len(os.sched_getaffinity(0))}); {platform.platform()}",
        f"python      {platform.python_version()} ({platform.python_implementation()}), "
        f"pg8000 {_version('pg8000')}, aws-lambda-powertools {_version('aws-lambda-powertools')}",
        f"postgres    {version} ({where}; {'same machine' if local else host}); "
        + ", ".join(f"{k}={v}" for k, v in settings.items()),
        f"messages    localdev.traffic.login_bodies(seed={SEED}, invalid_ratio=0.0)",
    ]


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _verdict(value: float, target: float, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return "MET" if met else "MISSED"


def report(
    figures: Sequence[Figure], cold: ColdStart | None, rss: dict[str, float] | None
) -> list[str]:
    by_name = {f.name: f for f in figures}
    naive, copy = by_name["naive"], by_name["copy"]
    lines = [
        "",
        f"{'contender':<15}{'records':>9}{'calls':>7}{'seconds':>9}{'records/s':>12}"
        f"{'x naive':>9}{'x copy':>8}{'call p50':>10}{'call p90':>10}{'client CPU':>12}"
        f"{'server us/rec':>15}",
        "-" * 116,
    ]
    for f in figures:
        if f.invocations:
            calls = f"{f.invocations:>7,}"
            p50 = f"{_percentile(f.latencies, 0.5) * 1000:>8.2f}ms"
            p90 = f"{_percentile(f.latencies, 0.9) * 1000:>8.2f}ms"
        else:
            calls, p50, p90 = f"{'-':>7}", f"{'-':>10}", f"{'-':>10}"
        server = (
            "-" if f.server_cpu_seconds is None else f"{f.server_cpu_seconds / f.records * 1e6:.1f}"
        )
        lines.append(
            f"{f.name:<15}{f.records:>9,}{calls}{f.seconds:>9.3f}{f.rate:>12,.0f}"
            f"{f.rate / naive.rate:>8.1f}x{f.rate / copy.rate:>7.3f}x{p50}{p90}"
            f"{f.cpu_share:>11.0%}{server:>15}"
        )
    lines += [
        "",
        "  naive  = BASELINE, never used by the product: json.loads + unsalted SHA-256 + one",
        "           autocommit INSERT per message (INSERT + COMMIT: 1 round trip, 1 WAL flush);",
        "           the median round",
        "  copy   = COPY FROM STDIN (csv) of rows masked before timing (incl. commit); the",
        "           median round",
        "  handler@B = lambda_handler, warm, B records per SQS event; records/s = records /",
        "           sum of call times over all rounds; includes validation, HMAC, ledger,",
        "           commit, Powertools",
        "  rounds = every contender runs once per round, so the machine's drift (other",
        "           tenants) falls on all of them alike",
        "  client CPU = CPU time of this process / wall time (the rest is waiting on Postgres",
        "           or the OS; Postgres runs on the same cores unless BENCH_DATABASE_URL)",
        "  server us/rec = CPU time of the Postgres backend serving the contender, per record",
        "           (from /proc, 10 ms ticks; WAL writer and checkpointer not included; '-'",
        "           for a remote server). 1e6 / it = records/s one Postgres core absorbs.",
    ]
    targets = [
        ("handler@1,000", "naive", TARGET_H1000_VS_NAIVE),
        ("handler@1,000", "copy", TARGET_H1000_VS_COPY),
        ("handler@10", "naive", TARGET_H10_VS_NAIVE),
    ]
    lines += ["", "targets"]
    for name, against, target in targets:
        if name not in by_name:
            continue
        base = naive if against == "naive" else copy
        ratio = by_name[name].rate / base.rate
        lines.append(
            f"  {name + ' / ' + against:<24}{ratio:>9.3f}x      "
            f"{f'target >= {target:g}x':<20}{_verdict(ratio, target)}"
        )
    if rss is not None:
        peak = rss["peak_kib"] / 1024
        lines.append(
            f"  {'peak RSS @10,000':<24}{peak:>9.1f} MiB    "
            f"{f'target <= {TARGET_RSS_MIB:g} MiB':<20}"
            f"{_verdict(peak, TARGET_RSS_MIB, at_most=True)}"
        )
        steps = [k for k in rss if k.startswith("after_event_")]
        size = int(rss["event_1_records"])
        lines += [
            "",
            f"peak RSS: VmHWM of a fresh interpreter that imports app and runs {len(steps)} events",
            f"  of {size:,} records (distinct message ids, all written). Includes the interpreter,",
            "  every import, the warm connection and, per invocation, the event's raw JSON bytes",
            "  as the runtime receives them "
            f"({rss['event_1_bytes'] / 2**20:.1f} MiB, read from a file prepared by the bench)",
            "  + the decoded event + the handler's working set. Not included: Lambda's runtime",
            "  client and extensions. (ru_maxrss of the child "
            f"= {rss['ru_maxrss_kib'] / 1024:.1f} MiB inherits the spawning",
            "  bench process' RSS across exec on Linux, so VmHWM is the figure used.)",
            f"  interpreter start {rss['start_kib'] / 1024:.1f} MiB -> after import app"
            f" {rss['after_import_kib'] / 1024:.1f} MiB -> after each event "
            + " / ".join(f"{rss[k] / 1024:.1f}" for k in steps)
            + f" MiB; RSS at the end {rss['current_kib'] / 1024:.1f} MiB",
        ]
    if cold is not None:
        lines += [
            "",
            "cold start (fresh interpreter each, median; Lambda's own runtime init not included)",
            f"  interpreter start (python -c pass, wall)   {cold.interpreter_s * 1000:8.1f} ms",
            f"  import app                                 {cold.import_s * 1000:8.1f} ms",
            f"  first invocation, B=10 (connect, auth,     {cold.first_s * 1000:8.1f} ms",
            "    session timeouts, table introspection, prepare, write, commit)",
            f"  second invocation, B=10 (warm)             {cold.second_s * 1000:8.1f} ms",
        ]
    return lines


# -- main ----------------------------------------------------------------------------


def _step(message: str) -> Callable[[], None]:
    start = time.perf_counter()
    print(f"  {message} ...", end="", flush=True)
    return lambda: print(f" {time.perf_counter() - start:.1f}s", flush=True)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def _busy_warning() -> str | None:
    one = os.getloadavg()[0]
    if one >= 0.5:
        return (
            f"WARNING     load average {one:.2f} before the bench started: something else is "
            "running on this machine, so the figures are pessimistic and noisy"
        )
    return None


def run(plan: Plan, *, subprocesses: bool = True, profile: int | None = None) -> int:
    os.environ.update(
        {
            "PII_HASH_KEY": BENCH_KEY,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_SERVICE_NAME": "login-etl-bench",
        }
    )
    for name in ("DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER"):
        os.environ.pop(name, None)
    began = time.perf_counter()
    print("login-etl benchmark", flush=True)
    load_before = _load()
    busy = _busy_warning()
    done = _step(f"generating {plan.pool:,} messages")
    bodies = [m.body for m in login_bodies(plan.pool, seed=SEED, invalid_ratio=0.0)]
    records = sqs_event(bodies, seed=SEED)["Records"]
    done()
    figures: list[Figure] = []
    with _server() as (admin_url, where), _bench_database(admin_url) as url:
        os.environ["DATABASE_URL"] = url
        print("\n".join(_machine_facts(url, where)), flush=True)
        print(f"load        {load_before} before the bench", flush=True)
        if busy:
            print(busy, flush=True)
        if profile is not None:
            return profile_handler(import_app(), url, records, profile)
        done = _step(f"masking {plan.copy_rows:,} rows for COPY (untimed)")
        copy_payload = premasked_csv(bodies, plan.copy_rows)
        done()
        # Rounds: each runs every contender once, so a drift of the machine's speed (other
        # tenants) falls on all contenders alike instead of on whichever ran at that time.
        runs: dict[str, list[Figure]] = {}
        app = import_app()
        try:
            for round_number in range(1, plan.rounds + 1):
                done = _step(f"round {round_number}/{plan.rounds}: naive, copy, handler@B")
                naive = bench_naive(url, bodies[: plan.naive_messages], repeats=1)
                runs.setdefault("naive", []).append(naive)
                copy = bench_copy(url, copy_payload, plan.copy_rows, repeats=1)
                runs.setdefault("copy", []).append(copy)
                for batch, timed in plan.handler_records.items():
                    figure = bench_handler(app, url, records, batch, timed // plan.rounds)
                    runs.setdefault(figure.name, []).append(figure)
                done()
        finally:
            app._runtime.close()
        del copy_payload
        figures = [_median_figure(runs.pop("naive")), _median_figure(runs.pop("copy"))]
        figures += [_merged_figure(parts) for parts in runs.values()]
        cold = rss = None
        if subprocesses:
            done = _step(f"cold start x {plan.cold_repeats}")
            cold = bench_cold(url, records, plan.cold_repeats)
            done()
            done = _step(f"peak RSS ({plan.rss_batches} x {plan.rss_batch_size:,})")
            rss = bench_rss(url, plan.rss_batches, plan.rss_batch_size)
            done()
    print("\n".join(report(figures, cold, rss)))
    print(f"\nload {_load()} at the end (includes the bench and its Postgres)")
    if busy:
        print(busy)
    print(f"(bench took {time.perf_counter() - began:.0f}s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument(
        "--no-subprocess", action="store_true", help="skip the cold-start and RSS runs"
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="B",
        help="instead of the bench: cProfile handler@B (warm) and show where the time goes",
    )
    args = parser.parse_args(argv)
    try:
        return run(
            QUICK if args.quick else FULL,
            subprocesses=not args.no_subprocess,
            profile=args.profile,
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
