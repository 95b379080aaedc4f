"""Visibility heartbeat: keeps a batch's messages hidden while it is in flight.

A received message becomes visible again after the visibility timeout. If a batch
(gathering up to 10,000 messages, then one database transaction) outlives it, another
worker — or the Lambda — would receive the same messages while we still hold them.
The ledger would turn that into duplicates, but the work is wasted and the receive
count climbs towards the DLQ. So while a batch is in flight, a thread re-extends its
visibility every third of the timeout (ChangeMessageVisibilityBatch, 10 per call).

Each beat covers every record it can, whatever happens to some of them:

- a call that fails as a whole (throttled, a network blip) is counted and logged; the
  other calls of the beat still run, and the next beat asks again for its records;
- an entry SQS refuses with ``SenderFault`` (receipt handle invalid or gone, message no
  longer in flight, the 12-hour visibility limit reached) will be refused again: it is
  dropped from the lease, counted and logged (codes and counts, never ids);
- an entry refused without sender fault (an SQS-side error) stays for the next beat;
- any other exception is logged and the heartbeat keeps going.

The calls of one beat run on up to :data:`MAX_PARALLEL_CALLS` threads: 10,000 records
are 1,000 calls, which one after the other (tens of milliseconds each) would take longer
than the beat interval of a 30 s timeout; in parallel the beat's critical path is
``ceil(1000 / 16) = 63`` calls.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Protocol

from login_etl.errors import SqsError

from .sqs import MAX_PER_CALL, EntryFailure, Record

log = logging.getLogger(__name__)
_MIN_INTERVAL_S = 0.2
MAX_PARALLEL_CALLS: Final = 16
"""ChangeMessageVisibilityBatch calls in flight at once, per lease (per drain worker)."""


class Extendable(Protocol):
    def change_visibility(self, chunk: Sequence[Record], seconds: int) -> list[EntryFailure]: ...


@dataclass(slots=True)
class BeatReport:
    """What one beat did (also what it logs)."""

    calls: int = 0
    failed_calls: int = 0
    in_failed_calls: int = 0  # records of the calls that failed as a whole
    first_error: str = ""  # one call's error, as an example (SqsError text: no ids)
    extended: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # refused for good, by code
    retried: Counter[str] = field(default_factory=Counter)  # refused for now, by code


class VisibilityLease:
    """``with VisibilityLease(queue, 30) as lease: lease.add(records); ...``"""

    def __init__(self, queue: Extendable, timeout_s: int) -> None:
        self._queue = queue
        self._timeout_s = timeout_s
        self._interval_s = max(timeout_s / 3, _MIN_INTERVAL_S)
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, records: Sequence[Record]) -> None:
        with self._lock:
            self._records.extend(records)
            if self._thread is None and records:
                # Starts at the first receive: that is when the first timer starts.
                self._thread = threading.Thread(
                    target=self._beat, name="visibility-heartbeat", daemon=True
                )
                self._thread.start()

    def held(self) -> int:
        """Records the lease still extends."""
        with self._lock:
            return len(self._records)

    def release(self) -> None:
        """Stop extending. Messages not deleted reappear after the remaining timeout."""
        self._released.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> VisibilityLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _beat(self) -> None:
        while not self._released.wait(self._interval_s):
            try:
                self.extend_now()
            except Exception:  # a heartbeat that stops is worse than a log line
                log.exception("visibility heartbeat: a beat failed; trying again next beat")

    def extend_now(self) -> BeatReport:
        """One beat: extend every held record by the timeout, the calls in parallel."""
        with self._lock:
            records = list(self._records)
        chunks = [records[i : i + MAX_PER_CALL] for i in range(0, len(records), MAX_PER_CALL)]
        report = BeatReport(calls=len(chunks))
        if not chunks:
            return report
        if len(chunks) == 1:
            outcomes = [self._extend_chunk(chunks[0])]
        else:
            with ThreadPoolExecutor(
                max_workers=min(MAX_PARALLEL_CALLS, len(chunks)),
                thread_name_prefix="visibility-heartbeat-call",
            ) as pool:
                outcomes = list(pool.map(self._extend_chunk, chunks))
        gone: set[int] = set()  # id() of the records SQS will never extend again
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, SqsError):
                report.failed_calls += 1
                report.in_failed_calls += len(chunk)
                report.first_error = report.first_error or str(outcome)
                continue
            report.extended += len(chunk) - len(outcome)
            for failure in outcome:
                if failure.sender_fault:
                    report.dropped[failure.code] += 1
                    gone.add(id(chunk[failure.index]))
                else:
                    report.retried[failure.code] += 1
        if gone:
            with self._lock:
                self._records = [r for r in self._records if id(r) not in gone]
        _log_report(report)
        return report

    def _extend_chunk(self, chunk: Sequence[Record]) -> list[EntryFailure] | SqsError:
        """The refused entries of one call, or the error that failed it as a whole.

        Not fatal: at worst these messages are redelivered and the ledger reports them
        as duplicates. The next beat asks again.
        """
        try:
            return self._queue.change_visibility(chunk, self._timeout_s)
        except SqsError as error:
            return error


def _log_report(report: BeatReport) -> None:
    if report.failed_calls:
        log.warning(
            "visibility heartbeat: %d of %d calls failed (%d records); retried next beat: %s",
            report.failed_calls,
            report.calls,
            report.in_failed_calls,
            report.first_error,
        )
    if report.dropped:
        log.warning(
            "visibility heartbeat: SQS refused %d records for good (%s); no longer extended",
            sum(report.dropped.values()),
            _codes(report.dropped),
        )
    if report.retried:
        log.warning(
            "visibility heartbeat: SQS refused %d records for now (%s); retried next beat",
            sum(report.retried.values()),
            _codes(report.retried),
        )


def _codes(counts: Counter[str]) -> str:
    return ", ".join(f"{code} x{count}" for code, count in sorted(counts.items()))
