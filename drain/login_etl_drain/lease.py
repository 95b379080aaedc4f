"""Visibility heartbeat: keeps a batch's messages hidden while it is in flight.

A received message becomes visible again after the visibility timeout. If a batch
(gathering up to 10,000 messages, then one database transaction) outlives it, another
worker — or the Lambda — would receive the same messages while we still hold them.
The ledger would turn that into duplicates, but the work is wasted and the receive
count climbs towards the DLQ. So while a batch is in flight, a thread re-extends its
visibility every third of the timeout (ChangeMessageVisibilityBatch).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from .sqs import Record, SqsError

log = logging.getLogger(__name__)
_MIN_INTERVAL_S = 0.2


class Extendable(Protocol):
    def extend_visibility(self, records: Sequence[Record], seconds: int) -> None: ...


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
            with self._lock:
                records = list(self._records)
            try:
                self._queue.extend_visibility(records, self._timeout_s)
            except SqsError as error:
                # Not fatal: at worst the messages are redelivered and the ledger
                # reports them as duplicates.
                log.warning(
                    "could not extend the visibility of %d messages: %s", len(records), error
                )
