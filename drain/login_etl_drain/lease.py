"""Visibility heartbeat: re-extend a batch in flight every third of the timeout; what a
failure does and why the calls run in parallel: docs/drain.md, "In flight"."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from login_etl.errors import SqsError

from .sqs import Record, SqsQueue, chunks

log = logging.getLogger(__name__)
_MIN_INTERVAL_S = 0.2
MAX_PARALLEL_CALLS: Final = 16  # ChangeMessageVisibilityBatch calls at once, per lease


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

    def __init__(self, queue: SqsQueue, timeout_s: int) -> None:
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

    def __exit__(self, *exc_info: object) -> None:
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
            calls = list(chunks(self._records))
        report = BeatReport(calls=len(calls))
        with ThreadPoolExecutor(
            max_workers=max(1, min(MAX_PARALLEL_CALLS, len(calls))),
            thread_name_prefix="visibility-heartbeat-call",
        ) as pool:
            jobs = [pool.submit(self._queue.change_visibility, c, self._timeout_s) for c in calls]
        gone: set[int] = set()  # id() of the records SQS will never extend again
        for chunk, job in zip(calls, jobs, strict=True):
            # Not fatal: at worst these messages are redelivered and the ledger skips them.
            if isinstance(error := job.exception(), SqsError):
                report.failed_calls += 1
                report.in_failed_calls += len(chunk)
                report.first_error = report.first_error or str(error)
                continue
            failures = job.result()  # any other error: raised, this beat fails (see _beat)
            report.extended += len(chunk) - len(failures)
            for failure in failures:
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


def _log_report(report: BeatReport) -> None:
    if report.failed_calls:
        log.warning(
            "visibility heartbeat: %d of %d calls failed (%d records); retried next beat: %s",
            report.failed_calls,
            report.calls,
            report.in_failed_calls,
            report.first_error,
        )
    for counts, what in (
        (report.dropped, "for good (%s); no longer extended"),
        (report.retried, "for now (%s); retried next beat"),
    ):
        if counts:
            codes = ", ".join(f"{code} x{n}" for code, n in sorted(counts.items()))
            log.warning(
                f"visibility heartbeat: SQS refused %d records {what}", sum(counts.values()), codes
            )
