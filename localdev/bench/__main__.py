"""Throughput benchmark: naive baseline vs COPY vs ``lambda_handler`` at several batch sizes.

    python -m localdev.bench            # or: make bench
    python -m localdev.bench --quick    # smaller counts, a smoke test of the bench itself
    python -m localdev.bench --profile 1000   # cProfile of warm handler@1000 instead
    python -m localdev.bench --no-subprocess  # skip the cold-start and RSS runs
    python -m localdev.bench --no-ledger      # skip the ledger section (~100 s of the run)

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

Last, the ledger (``localdev.bench.ledger``), on a server of its own with larger shared
buffers (or ``BENCH_DATABASE_URL``'s, in databases of its own): the claim on an empty ring
vs one loaded with 20 M ids over 15 days, and vs the single-table ledger it replaced;
TRUNCATE of a slot while claims go on; bytes per id, and a day's ledger at 1k-100k
logins/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from localdev.bench.contenders import (
    bench_copy,
    bench_handler,
    bench_naive,
    import_app,
    premasked_csv,
)
from localdev.bench.database import bench_database, server
from localdev.bench.fresh import bench_cold, bench_rss
from localdev.bench.ledger import RATES, SHARED_BUFFERS, bench_ledger
from localdev.bench.plan import BENCH_KEY, FULL, QUICK, RANDOM_SEED, BenchPlan
from localdev.bench.profile import profile_handler
from localdev.bench.report import (
    Figure,
    LedgerFigures,
    ledger_report,
    machine_facts,
    median_figure,
    merged_figure,
    report,
)
from localdev.lambda_event import sqs_event
from localdev.traffic import login_bodies


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


def run(
    plan: BenchPlan,
    *,
    subprocesses: bool = True,
    profile: int | None = None,
    ledger: bool = True,
) -> int:
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
    bodies = [m.body for m in login_bodies(plan.pool, seed=RANDOM_SEED, invalid_ratio=0.0)]
    records = sqs_event(bodies, seed=RANDOM_SEED)["Records"]
    done()
    figures: list[Figure] = []
    with server() as (admin_url, where), bench_database(admin_url) as url:
        os.environ["DATABASE_URL"] = url
        print("\n".join(machine_facts(url, where)), flush=True)
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
        figures = [median_figure(runs.pop("naive")), median_figure(runs.pop("copy"))]
        figures += [merged_figure(parts) for parts in runs.values()]
        cold = rss = None
        if subprocesses:
            done = _step(f"cold start x {plan.cold_repeats}")
            cold = bench_cold(url, records, plan.cold_repeats)
            done()
            done = _step(f"peak RSS ({plan.rss_batches} x {plan.rss_batch_size:,})")
            rss = bench_rss(url, plan.rss_batches, plan.rss_batch_size)
            done()
    ledger_figures: LedgerFigures | None = None
    if ledger:
        own = "BENCH_DATABASE_URL" if os.environ.get("BENCH_DATABASE_URL") else "fresh"
        done = _step(f"ledger: server ({own}; shared_buffers={SHARED_BUFFERS} if fresh)")
        with server({"shared_buffers": SHARED_BUFFERS}) as (ledger_url, ledger_where):
            done()
            ledger_figures = bench_ledger(ledger_url, ledger_where, plan, _step)
    print("\n".join(report(figures, cold, rss)))
    if ledger_figures is not None:
        print("\n".join(ledger_report(ledger_figures, RATES)))
    print(f"\nload {_load()} at the end (includes the bench and its Postgres)")
    if busy:
        print(busy)
    print(f"(bench took {time.perf_counter() - began:.0f}s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument(
        "--no-subprocess", action="store_true", help="skip the cold-start and RSS runs"
    )
    parser.add_argument("--no-ledger", action="store_true", help="skip the ledger section")
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
            ledger=not args.no_ledger,
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
