"""The figures of a run and the report printed from them (table, targets, RSS, cold start,
the ledger)."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
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


@dataclass
class LedgerClaims:
    """Claims of 1,000 ids into one ledger: per repeat, microseconds per id."""

    phase: str  # the ledgers of a phase take turns
    name: str
    ledger_ids: int  # ids loaded into the ledger (before any claim)
    table_ids: int  # of them, in the table claimed into (today's slot, or the single table)
    statement_us: list[float]  # the claim statement alone
    commit_us: list[float]  # claim + COMMIT
    wal_bytes_per_id: float  # median repeat (WAL is the server's: includes other writers)


@dataclass
class LedgerPrune:
    """One TRUNCATE, and the claims into today's slot meanwhile (us per id, each claim)."""

    table: str
    ids: int
    statement_seconds: float
    commit_seconds: float
    before_us: list[float]  # claims just before it
    held_us: list[float]  # claims while its transaction (and lock) was open
    during_us: list[float]  # claims begun while its COMMIT ran


@dataclass
class LedgerSize:
    """What some ledger tables take (``pg_total_relation_size``, heap, indexes), in bytes."""

    name: str
    ids: int
    total: int
    heap: int
    index: int


@dataclass
class LedgerFigures:
    """The ledger section (``localdev.bench.ledger``)."""

    server: str
    ids: int
    days: int
    per_day: int
    load_seconds: float  # databases made, loaded, sized, CHECKPOINTed, prewarmed
    ring_load_seconds: float
    single_load_seconds: float  # in parallel with the ring's
    claims: list[LedgerClaims]  # by phase: empty ring first
    prunes: list[LedgerPrune]  # slots, then the single table
    sizes: list[LedgerSize]  # today's slot first: its size per id is a day's
    seconds: float


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


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):7.2f}{statistics.median(values):7.2f}{max(values):7.2f}"


def _claims_table(figures: LedgerFigures) -> list[str]:
    lines = [
        f"{'ledger':<18}{'ids loaded':>12}{'in table':>12}{'claim us/id min med max':>25}"
        f"{'x empty':>9}{'+COMMIT':>9}{'WAL B/id':>10}",
        "-" * 95,
    ]
    phase, base = "", 0.0
    for claims in figures.claims:
        if claims.phase != phase:
            phase = claims.phase
            lines.append(phase)
        median = statistics.median(claims.statement_us)
        if claims.ledger_ids == 0:
            base = median  # ratios are to the empty ring of the same phase
        lines.append(
            f"  {claims.name:<16}{claims.ledger_ids:>12,}{claims.table_ids:>12,}"
            f"{_spread(claims.statement_us):>25}{median / base:>8.2f}x"
            f"{statistics.median(claims.commit_us):>9.2f}{claims.wal_bytes_per_id:>10,.0f}"
        )
    return lines


def _paired(figures: LedgerFigures) -> list[str]:
    """Per phase: each repeat's ratio to the empty ring's of the same repeat."""
    lines = []
    for index in range(0, len(figures.claims), 2):
        empty, other = figures.claims[index : index + 2]
        paired = [o / e for o, e in zip(other.statement_us, empty.statement_us, strict=True)]
        noise = max(empty.statement_us) / min(empty.statement_us)
        lines.append(
            f"  {other.name + ' / empty ring':<27} min {min(paired):.2f}x, median "
            f"{statistics.median(paired):.2f}x, max {max(paired):.2f}x"
            f"   (empty ring: slowest / fastest repeat {noise:.2f}x)"
        )
    return lines


def _prune_table(figures: LedgerFigures) -> list[str]:
    lines = [
        f"{'TRUNCATE of':<20}{'ids':>12}{'statement':>11}{'COMMIT':>10}"
        f"{'claims: before':>16}{'lock held':>11}{'during COMMIT: n med max':>26}",
        "-" * 106,
    ]
    for prune in figures.prunes:
        during = (
            f"{len(prune.during_us):>5}{_spread(prune.during_us)[7:]}"
            if prune.during_us
            else f"{0:>5}{'-':>7}{'-':>7}"
        )
        lines.append(
            f"{prune.table:<20}{prune.ids:>12,}{prune.statement_seconds * 1000:>8.1f} ms"
            f"{prune.commit_seconds * 1000:>7.0f} ms{statistics.median(prune.before_us):>16.2f}"
            f"{statistics.median(prune.held_us):>11.2f}{during:>26}"
        )
    return lines


def _sizes(figures: LedgerFigures, rates: Sequence[int]) -> list[str]:
    lines = [
        f"{'size':<40}{'ids':>12}{'B/id':>8}{'heap':>8}{'index':>8}",
        "-" * 76,
    ]
    for size in figures.sizes:
        lines.append(
            f"{size.name:<40}{size.ids:>12,}{size.total / size.ids:>8.1f}"
            f"{size.heap / size.ids:>8.1f}{size.index / size.ids:>8.1f}"
        )
    day = figures.sizes[0]
    per_id = day.total / day.ids
    lines.append(f"  a day of ledger at {per_id:.1f} B/id (today's slot's):")
    for rate in rates:
        lines.append(
            f"{rate:>12,} logins/s {rate * 86_400 / 1e6:>9,.1f} M ids a day"
            f" {rate * 86_400 * per_id / 2**30:>10,.1f} GiB"
        )
    return lines


def ledger_report(figures: LedgerFigures, rates: Sequence[int]) -> list[str]:
    return [
        "",
        f"ledger      {figures.ids:,} ids over the slots of {figures.days} days "
        f"({figures.per_day:,} a slot, today's included);",
        "            claims of 1,000 random UUID4 ids into today's slot",
        f"server      {figures.server}",
        *_claims_table(figures),
        "",
        "  paired by repeat:",
        *_paired(figures),
        "  claim us/id = sql.claim_new_message_ids(slot, legacy=False), prepared, each claim",
        "           in BEGIN ... COMMIT, per id; min/median/max over the repeats (each the same",
        "           work); x empty = median / the empty ring's of the same phase; +COMMIT =",
        "           claim and COMMIT (its WAL flush), median repeat. A claim touches only",
        "           today's slot: the other days cost it only cache",
        "  WAL B/id = WAL per id claimed, median repeat: a page's first change after a",
        "           checkpoint logs the whole page (8 KiB), so the more index pages the claims",
        "           land on, the more WAL (Postgres checkpoints every 5 min by default)",
        "  single table = the ledger before the ring (login_etl.processed_messages, primary",
        "           key + BRIN), the ring's ids, its plain INSERT claim",
        "",
        "prune: TRUNCATE, then its COMMIT (which removes the files), as the ledger's",
        "       maintenance does, while claims of 1,000 ids go on into today's slot (us/id)",
        *_prune_table(figures),
        "  before = claims just before it (median); lock held = while its transaction is open",
        "           (a claim it blocked would fail after the session's 10 s lock timeout);",
        "           during COMMIT = claims begun while its COMMIT ran (how many, median, max)",
        "",
        *_sizes(figures, rates),
        "",
        f"ledger section {figures.seconds:.0f}s: load {figures.load_seconds:.0f}s (ring "
        f"{figures.ring_load_seconds:.0f}s, single table {figures.single_load_seconds:.0f}s, in"
        " parallel), then claims and prune",
    ]
