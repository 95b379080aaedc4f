"""Counters shared by the workers, and how they are shown (docs/drain.md, "Output"): only
counts and rates, never a message body, so never an ip or device_id."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TextIO

from login_etl.pipeline import BatchResult


@dataclass(slots=True)
class Totals:
    received: int = 0
    batches: int = 0
    written: int = 0
    duplicates: int = 0
    rejected: int = 0
    held_back: int = 0  # FIFO: after a rejection, the rest of the batch is failed too
    not_deleted: int = 0  # DeleteMessageBatch refused them (e.g. receipt handle expired)
    failed_batches: int = 0
    unverified_identities: int = 0  # redrive identity attributes that did not verify
    reasons: Counter[str] = field(default_factory=Counter)


class Stats:
    """Thread-safe totals of one drain run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = Totals()
        self.started = time.monotonic()

    def add_batch(self, received: int, result: BatchResult, not_deleted: int) -> None:
        with self._lock:
            t = self._totals
            t.received += received
            t.batches += 1
            t.written += result.written
            t.duplicates += result.duplicates
            t.rejected += sum(result.rejections.values())
            t.held_back += result.fifo_held_back
            t.not_deleted += not_deleted
            t.unverified_identities += result.unverified_identities
            t.reasons.update(result.rejections)

    def add_failed_batch(self, received: int) -> None:
        with self._lock:
            self._totals.received += received
            self._totals.failed_batches += 1

    def snapshot(self) -> Totals:
        with self._lock:
            return replace(self._totals, reasons=Counter(self._totals.reasons))

    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)


def status_line(totals: Totals, elapsed: float) -> str:
    line = (
        f"received {totals.received} | written {totals.written} | "
        f"duplicates {totals.duplicates} | rejected {totals.rejected}"
    )
    if totals.held_back:
        line += f" | held back {totals.held_back}"
    if totals.failed_batches:
        line += f" | failed batches {totals.failed_batches}"
    return line + (
        f" | {totals.batches} batches | {totals.received / elapsed:.0f} msg/s | {elapsed:.1f} s"
    )


def summary_line(totals: Totals, elapsed: float, remaining: tuple[int, int] | None) -> str:
    line = f"login-etl drain: {status_line(totals, elapsed)}"
    if totals.reasons:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(totals.reasons.items()))
        line += f" | rejections: {reasons}"
    if totals.unverified_identities:
        line += (
            f" | unverified redrive identities {totals.unverified_identities} "
            "(written as new messages)"
        )
    if totals.not_deleted:
        line += f" | not deleted {totals.not_deleted} (will be redelivered as duplicates)"
    if remaining is not None:
        line += f" | queue: {remaining[0]} visible, {remaining[1]} in flight"
    return line


class ProgressDisplay:
    def __init__(
        self,
        stats: Stats,
        stream: TextIO,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stats = stats
        self._clock = clock
        self._stream = stream
        self._tty = stream.isatty()
        # In place on a terminal: refresh often. Log lines: one per interval.
        self._interval_s = 0.25 if self._tty else interval_s
        self._last = clock()
        self._drawn = False

    def tick(self) -> None:
        now = self._clock()
        if now - self._last < self._interval_s:
            return
        self._last = now
        line = status_line(self._stats.snapshot(), self._stats.elapsed())
        self._stream.write(f"\r\x1b[2K{line}" if self._tty else f"login-etl drain: {line}\n")
        self._stream.flush()
        self._drawn = self._tty

    def clear(self) -> None:
        """Remove the in-place line before anything else is printed."""
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._drawn = False
