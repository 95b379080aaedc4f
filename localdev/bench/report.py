"""The figures of a run and the report printed from them (table, targets, RSS, cold start)."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from localdev.bench.database import connect
from localdev.bench.plan import (
    RANDOM_SEED,
    TARGET_H10_VS_NAIVE,
    TARGET_H1000_VS_COPY,
    TARGET_H1000_VS_NAIVE,
    TARGET_RSS_MIB,
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


@dataclass
class ColdStart:
    interpreter_s: float
    import_s: float
    first_s: float
    second_s: float


def median_figure(figures: Sequence[Figure]) -> Figure:
    """The round with the median time (each round did the same work)."""
    return sorted(figures, key=lambda f: f.seconds)[(len(figures) - 1) // 2]


def merged_figure(figures: Sequence[Figure]) -> Figure:
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


def median_run(runs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    ordered = sorted(runs)
    return ordered[(len(ordered) - 1) // 2]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine_facts(url: str, where: str) -> list[str]:
    conn = connect(url)
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
        f"messages    localdev.traffic.login_bodies(seed={RANDOM_SEED}, invalid_ratio=0.0)",
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
