"""The exactly-once ledger at scale: claims on an empty ring vs one of 20 M ids, prune, size.

Two databases, each made by the schema step (17 empty slots), on a server of their own
(``SHARED_BUFFERS``; ``BENCH_DATABASE_URL``'s server as it is configured):

- ``empty``: nothing loaded; today's slot opened.
- ``full``: ``plan.ledger_ids`` ids spread over the slots of the last ``LEDGER_DAYS``
  days, today's included (``ledger_slots`` records those days), as traffic leaves the
  ring; and, for contrast, the single-table ledger the ring replaced
  (``login_etl.processed_messages``, its primary key and BRIN index) holding the same ids.

Loading: random UUID4 texts made here (``uuid4_lines``), ``COPY ... FREEZE`` into the
table emptied in the same transaction with its primary key dropped, then ``ADD PRIMARY
KEY`` (one sort). For a slot of 1.33 M ids that takes 2.3 s, against 6.7 s for ``INSERT
... SELECT`` of ids made in SQL (``md5(i::text)::uuid::text``) then the key, 14 s for
that INSERT into the indexed table, and 9.5 s for the COPY into it. Today's slot is
loaded that slower way all the same: its index must be the one traffic grows (pages ~70 %
full, splitting at the usual rate), not a sorted build's (90 % full, so the first claims
would split page after page). The ring and the single table load in parallel, on two
connections. ``FREEZE`` leaves autovacuum nothing to do while the claims are timed.

Claims: the production statement (``sql.claim_new_message_ids(slot, legacy=False)``,
prepared) on batches of ``CLAIM_BATCH`` random UUID4 ids, each in ``BEGIN ... COMMIT``
(as the streaming write does), into today's slot, over the handler's own kind of session
(``login_etl.postgres.connect``: TCP_NODELAY, without which each 37 KB claim would wait
~40 ms for a delayed ACK; lock and statement timeouts of 10 s, so a claim that a TRUNCATE
blocked would fail). After the load the server is CHECKPOINTed (as it is every few
minutes in production) and today's slot of the full ring read into shared buffers (a
live slot is hot). The ledgers of a phase take turns, ``plan.ledger_batches`` claims
each per repeat, the order rotating, so the machine's drift falls on all of them
(``PHASES``): the empty and the full ring just after the CHECKPOINT (so each index page's
first change logs it whole), then again once most pages have been; then the TRUNCATE of
the oldest slots, claims going on; last the empty ring and the single table (whose index,
larger than the buffers, would push the full ring's out of them) and its TRUNCATE.
"""

from __future__ import annotations

import io
import json
import queue
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from typing import Final

import pg8000.native

from localdev.bench.database import bench_database, connect
from localdev.bench.plan import RANDOM_SEED, BenchPlan
from localdev.bench.report import LedgerClaims, LedgerFigures, LedgerPrune, LedgerSize
from login_etl.connection_settings import ConnectionSettings
from login_etl.dates import day_date, epoch_day
from login_etl.postgres import sql
from login_etl.postgres.connect import connect as handler_connect
from login_etl.postgres.ledger import slot_of

LEDGER_DAYS: Final = 15  # a 14-day retention and today: the most the ring holds
CLAIM_BATCH: Final = 1_000
TRUNCATED_SLOTS: Final = 3  # the oldest slots, pruned one by one while claims go on
RATES: Final = (1_000, 10_000, 100_000)  # logins per second, for the size per day
# Of the server the bench starts for this section. Postgres' default (128 MB) holds less
# than one slot of 1.33 M ids (~180 MB); RDS gives a quarter of the instance's memory.
SHARED_BUFFERS: Final = "1GB"
PHASES: Final = (  # of the claims, in this order; the ledgers of a phase take turns
    "empty and full ring, just after a CHECKPOINT",
    "again: most of today's slot's pages changed since the CHECKPOINT",
    "empty ring and single table",
)

# The single-table ledger of the versions before the ring, as they created it and claimed.
_OLD_LEDGER = f"""
CREATE TABLE {sql.LEGACY_LEDGER} (
    message_id   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
)
"""
_OLD_CLAIM = f"""
INSERT INTO {sql.LEGACY_LEDGER} (message_id)
SELECT json_array_elements_text(CAST(:message_ids AS json))
"""
_PRIMARY_KEY = """
SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass) AND contype = 'p'
"""
_WAL_LSN = "SELECT pg_current_wal_insert_lsn()"
_WAL_SINCE = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), CAST(:lsn AS pg_lsn))"
_SIZE = """
SELECT sum(pg_total_relation_size(CAST(t AS regclass))),
       sum(pg_relation_size(CAST(t AS regclass))),
       sum(pg_indexes_size(CAST(t AS regclass)))
FROM unnest(CAST(:tables AS text[])) AS t
"""

_HEX_DIGIT = bytes.maketrans(bytes(range(256)), b"0123456789abcdef" * 16)
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab" * 4)

Step = Callable[[str], Callable[[], None]]


def uuid4_lines(count: int, rng: random.Random) -> bytes:
    """``count`` random UUID4 texts (``str(uuid.uuid4())``'s form), one per line: COPY
    input, made at C speed (a random byte per hex digit; under 1 s per million)."""
    out = bytearray(rng.randbytes(37 * count).translate(_HEX_DIGIT))
    for dash in (8, 13, 18, 23):
        out[dash::37] = b"-" * count
    out[14::37] = b"4" * count  # version
    out[19::37] = out[19::37].translate(_VARIANT)  # variant 10xx
    out[36::37] = b"\n" * count
    return bytes(out)


def _claim_payloads(rng: random.Random, batches: int) -> list[str]:
    return [
        json.dumps(
            [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(CLAIM_BATCH)]
        )
        for _ in range(batches)
    ]


# -- loading -------------------------------------------------------------------------


def _bulk_load(
    conn: pg8000.native.Connection, table: str, chunks: Iterable[bytes], *, sort: bool = True
) -> None:
    """Fill ``table`` (``message_id text PRIMARY KEY``, ...) with the ids of ``chunks`` by
    COPY FREEZE: without the key, then the key built in one sort (``sort``), else into the
    key in the ids' random order, as traffic grows it (about 4 times slower)."""
    (pkey,) = conn.run(_PRIMARY_KEY, table=table)[0]
    conn.run("BEGIN")
    conn.run(f"TRUNCATE {table}")  # FREEZE needs the table emptied in this transaction
    if sort:
        conn.run(f"ALTER TABLE {table} DROP CONSTRAINT {pkey}")
    for chunk in chunks:
        conn.run(f"COPY {table} (message_id) FROM STDIN WITH (FREEZE)", stream=io.BytesIO(chunk))
    if sort:
        conn.run(f"ALTER TABLE {table} ADD PRIMARY KEY (message_id)")
    conn.run("COMMIT")


def _load_single_table(
    url: str, days: int, per_day: int, handoff: queue.SimpleQueue[bytes | None]
) -> float:
    """The single-table ledger with ``days * per_day`` ids, made here; each day's ids,
    once copied, go to ``handoff`` (None after the last) for the ring: the single table
    gets them first, as its key, built once every id is in, takes longest."""
    rng = random.Random(RANDOM_SEED + 2)
    start = time.perf_counter()

    def chunks() -> Iterator[bytes]:
        for _ in range(days):
            ids = uuid4_lines(per_day, rng)
            yield ids
            handoff.put(ids)  # once copied here
        handoff.put(None)

    try:
        with closing(connect(url)) as conn:
            conn.run("SET maintenance_work_mem = '1GB'")
            conn.run(_OLD_LEDGER)
            _bulk_load(conn, sql.LEGACY_LEDGER, chunks())
            conn.run(sql.CREATE_LEGACY_LEDGER_INDEX)  # the BRIN index the old versions pruned by
    finally:
        handoff.put(None)  # (again): if it failed, the ring stops waiting
    return time.perf_counter() - start


def _load_ring(url: str, days: Sequence[int], handoff: queue.SimpleQueue[bytes | None]) -> float:
    """Each of ``days`` (oldest first, today last) gets its slot, opened on that day,
    holding the ids of a handoff; today's, claimed into, grown in random order as traffic
    grows it."""
    start = time.perf_counter()
    with closing(connect(url)) as conn:
        conn.run("SET maintenance_work_mem = '256MB'")
        for day, ids in zip(days, iter(handoff.get, None), strict=False):
            _bulk_load(conn, sql.slot_table(slot_of(day)), [ids], sort=day != days[-1])
            conn.run(sql.OPEN_SLOT, slot=slot_of(day), day=day_date(day), today=day_date(day))
    return time.perf_counter() - start


def _load(url: str, days: Sequence[int], per_day: int) -> tuple[float, float]:
    """(seconds of the ring, of the single table), loaded in parallel."""
    handoff: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=2) as pool:
        single = pool.submit(_load_single_table, url, len(days), per_day, handoff)
        ring = pool.submit(_load_ring, url, days, handoff)
        return ring.result(), single.result()


def _prewarm(conn: pg8000.native.Connection, table: str) -> None:
    """Read ``table``'s primary key into shared buffers (an index-only scan of it all)."""
    conn.run("BEGIN")
    conn.run("SET LOCAL enable_seqscan = off")
    conn.run("SET LOCAL enable_bitmapscan = off")
    conn.run(f"SELECT count(*) FROM (SELECT message_id FROM {table} ORDER BY message_id) AS s")
    conn.run("COMMIT")


def _size(conn: pg8000.native.Connection, name: str, tables: Sequence[str], ids: int) -> LedgerSize:
    total, heap, index = conn.run(_SIZE, tables=list(tables))[0]
    return LedgerSize(name, ids, int(total), int(heap), int(index))


# -- claims --------------------------------------------------------------------------


def _handler_session(url: str) -> pg8000.native.Connection:
    return handler_connect(ConnectionSettings.from_url(url))


def _claim(
    conn: pg8000.native.Connection, claim: pg8000.native.PreparedStatement, payload: str
) -> tuple[float, float]:
    """One claim in its own transaction: (seconds of the statement, of it and COMMIT)."""
    conn.run("BEGIN")
    start = time.perf_counter()
    claim.run(message_ids=payload)
    claimed = time.perf_counter()
    conn.run("COMMIT")
    return claimed - start, time.perf_counter() - start


class _Target:
    """One ledger claimed into: its session, its prepared claim, its figures per repeat."""

    def __init__(
        self,
        name: str,
        conn: pg8000.native.Connection,
        statement: str,
        held: tuple[int, int],  # ids loaded: in the ledger, in the table claimed into
    ) -> None:
        self.name = name
        self.held = held
        self.conn = conn
        self.claim = conn.prepare(statement)
        self.statement_us: list[float] = []  # the claim statements, per id
        self.commit_us: list[float] = []  # claim + COMMIT, per id
        self.wal_bytes: list[float] = []  # WAL written (by the whole server), per id

    def forget(self) -> None:
        self.statement_us.clear()
        self.commit_us.clear()
        self.wal_bytes.clear()

    def once(self, payload: str) -> float:
        """One claim, untallied: the statement's microseconds per id."""
        return _claim(self.conn, self.claim, payload)[0] / CLAIM_BATCH * 1e6

    def repeat(self, payloads: Sequence[str]) -> None:
        """One repeat: each payload claimed in a transaction of its own."""
        (lsn,) = self.conn.run(_WAL_LSN)[0]
        statement = with_commit = 0.0
        for payload in payloads:
            seconds, total = _claim(self.conn, self.claim, payload)
            statement, with_commit = statement + seconds, with_commit + total
        ids = len(payloads) * CLAIM_BATCH
        self.statement_us.append(statement / ids * 1e6)
        self.commit_us.append(with_commit / ids * 1e6)
        self.wal_bytes.append(float(self.conn.run(_WAL_SINCE, lsn=str(lsn))[0][0]) / ids)

    def figures(self, phase: str) -> LedgerClaims:
        return LedgerClaims(
            phase,
            self.name,
            *self.held,
            list(self.statement_us),
            list(self.commit_us),
            statistics.median(self.wal_bytes),
        )


def _interleaved(
    targets: Sequence[_Target], rng: random.Random, repeats: int, batches: int
) -> None:
    for target in targets:  # warm-up, untimed: plans, caches
        target.repeat(_claim_payloads(rng, 2))
        target.forget()
    for number in range(repeats):
        turn = number % len(targets)
        for target in [*targets[turn:], *targets[:turn]]:
            target.repeat(_claim_payloads(rng, batches))


# -- prune ---------------------------------------------------------------------------


def _prune(
    pruner: pg8000.native.Connection,
    claims: _Target,
    rng: random.Random,
    batches: int,
    table: str,
    ids: int,
    slot: int | None,
) -> LedgerPrune:
    """TRUNCATE ``slot`` (None: the single table) as the ledger's maintenance does, while
    ``claims`` go on into today's slot: ``batches`` just before, ``batches`` while its lock
    is held (a blocked one would fail after the session's 10 s lock timeout), then as many
    as its COMMIT lasts."""
    before = [claims.once(payload) for payload in _claim_payloads(rng, batches)]
    payloads = _claim_payloads(rng, batches)
    pruner.run("BEGIN")
    pruner.run(sql.SHORT_LOCK_TIMEOUT)
    start = time.perf_counter()
    pruner.run(sql.TRUNCATE_LEGACY_LEDGER if slot is None else sql.truncate_slot(slot))
    statement = time.perf_counter() - start
    held = [claims.once(payload) for payload in payloads]
    if slot is not None:
        pruner.run(sql.EMPTY_SLOT, slot=slot)

    def commit() -> float:
        began = time.perf_counter()
        pruner.run("COMMIT")
        return time.perf_counter() - began

    during: list[float] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        committed = pool.submit(commit)
        while not committed.done():
            during.append(claims.once(_claim_payloads(rng, 1)[0]))
        commit_seconds = committed.result()
    return LedgerPrune(table, ids, statement, commit_seconds, before, held, during)


# -- the section ---------------------------------------------------------------------


def bench_ledger(admin_url: str, where: str, plan: BenchPlan, step: Step) -> LedgerFigures:
    """Load, claim, prune and size the ledger on two databases of ``admin_url``'s server."""
    began = time.perf_counter()
    today = epoch_day(datetime.now(UTC).date())
    days = [today - back for back in range(LEDGER_DAYS - 1, -1, -1)]  # oldest first
    per_day = plan.ledger_ids // LEDGER_DAYS
    ids = per_day * LEDGER_DAYS
    today_table = sql.slot_table(slot_of(today))
    rng = random.Random(RANDOM_SEED + 4)
    with ExitStack() as stack:
        empty_url = stack.enter_context(bench_database(admin_url))
        full_url = stack.enter_context(bench_database(admin_url))
        done = step(f"ledger: loading {ids:,} ids into the ring and into a single table")
        ring_seconds, single_seconds = _load(full_url, days, per_day)
        admin = stack.enter_context(closing(connect(full_url)))
        (shared_buffers,) = admin.run("SHOW shared_buffers")[0]
        sorted_slots = [sql.slot_table(slot_of(day)) for day in days[:-1]]
        sizes = [
            _size(admin, "today's slot, grown in random order", [today_table], per_day),
            _size(admin, "the other slots, keys sorted", sorted_slots, ids - per_day),
            _size(admin, "single table, key sorted", [sql.LEGACY_LEDGER], ids),
        ]
        admin.run("CHECKPOINT")
        _prewarm(admin, today_table)
        load_seconds = time.perf_counter() - began
        done()

        empty = stack.enter_context(closing(_handler_session(empty_url)))
        full = stack.enter_context(closing(_handler_session(full_url)))
        pruner = stack.enter_context(closing(_handler_session(full_url)))
        empty.run(sql.OPEN_SLOT, slot=slot_of(today), day=day_date(today), today=day_date(today))
        claim = sql.claim_new_message_ids(slot_of(today), legacy=False)
        empty_ring = _Target("empty ring", empty, claim, (0, 0))
        full_ring = _Target("full ring", full, claim, (ids, per_day))
        single = _Target("single table", full, _OLD_CLAIM, (ids, ids))
        claims: list[LedgerClaims] = []

        def phase(name: str, targets: Sequence[_Target]) -> None:
            _interleaved(targets, rng, plan.ledger_repeats, plan.ledger_batches)
            claims.extend(target.figures(name) for target in targets)
            for target in targets:
                target.forget()

        def prune(table: str, held: int, slot: int | None) -> LedgerPrune:
            return _prune(pruner, full_ring, rng, plan.ledger_batches, table, held, slot)

        done = step(
            f"ledger: claims, 2 phases of {plan.ledger_repeats} x {plan.ledger_batches} x "
            f"{CLAIM_BATCH:,} ids per ring, interleaved; TRUNCATE of {TRUNCATED_SLOTS} slots"
        )
        phase(PHASES[0], [empty_ring, full_ring])
        phase(PHASES[1], [empty_ring, full_ring])
        prunes = [
            prune(f"slot of today-{today - day}", per_day, slot_of(day))
            for day in days[:TRUNCATED_SLOTS]
        ]
        done()
        done = step("ledger: claims into the single table, its TRUNCATE")
        phase(PHASES[2], [empty_ring, single])
        prunes.append(prune("single table", ids, None))
        done()
    return LedgerFigures(
        server=f"{where}; shared_buffers={shared_buffers}",
        ids=ids,
        days=LEDGER_DAYS,
        per_day=per_day,
        load_seconds=load_seconds,
        ring_load_seconds=ring_seconds,
        single_load_seconds=single_seconds,
        claims=claims,
        prunes=prunes,
        sizes=sizes,
        seconds=time.perf_counter() - began,
    )
