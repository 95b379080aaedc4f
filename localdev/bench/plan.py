"""How much work each contender does (``FULL``, ``QUICK``) and the fixed inputs of a run."""

from __future__ import annotations

from dataclasses import dataclass

from localdev import REPO
from login_etl.table import ROW_COLUMNS

HANDLER_DIR = REPO / "handler"
RANDOM_SEED = 20_260_101
BENCH_KEY = "bench-only-masking-key-not-a-real-secret"
BENCH_APPLICATION = "login-etl-bench"  # the bench's own connections
HANDLER_APPLICATION = "login-etl"  # the handler's connection (postgres.connect)
COLUMNS = ROW_COLUMNS  # the current DDL's columns, in the order the handler writes them

# Targets (printed next to the figures; a miss is reported, never an error).
TARGET_H1000_VS_NAIVE = 25.0
TARGET_H1000_VS_COPY = 0.12
TARGET_H10_VS_NAIVE = 5.0
TARGET_RSS_MIB = 128.0


@dataclass(frozen=True)
class BenchPlan:
    """How much work each contender does."""

    pool: int  # distinct generated messages (handler needs the most)
    rounds: int  # each round runs every contender once (see run())
    naive_messages: int  # per round
    copy_rows: int  # per round
    handler_records: dict[int, int]  # batch size → timed records (all rounds together)
    rss_batches: int
    rss_batch_size: int
    cold_repeats: int
    ledger_ids: int  # loaded into the full ring (and into the single-table ledger)
    ledger_repeats: int  # claim repeats per ledger, interleaved
    ledger_batches: int  # claims of 1,000 ids per ledger and repeat


FULL = BenchPlan(
    pool=60_000,
    rounds=3,
    naive_messages=3_000,
    copy_rows=200_000,
    handler_records={10: 21_000, 100: 21_000, 1_000: 30_000, 10_000: 60_000},
    rss_batches=3,
    rss_batch_size=10_000,
    cold_repeats=5,
    ledger_ids=20_000_000,
    ledger_repeats=15,
    ledger_batches=4,
)
QUICK = BenchPlan(
    pool=24_000,
    rounds=1,
    naive_messages=500,
    copy_rows=20_000,
    handler_records={10: 1_000, 100: 2_000, 1_000: 5_000, 10_000: 10_000},
    rss_batches=1,
    rss_batch_size=10_000,
    cold_repeats=1,
    ledger_ids=200_000,
    ledger_repeats=3,
    ledger_batches=2,
)
