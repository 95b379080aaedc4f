"""The visibility heartbeat keeps beating through failures and extends 10,000 records in
one beat by running its calls in parallel (counted, never timed)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from login_etl.errors import SqsError
from login_etl_drain import lease as lease_module
from login_etl_drain.lease import MAX_PARALLEL_CALLS, VisibilityLease
from login_etl_drain.sqs import EntryFailure, Record, SqsQueue
from tests.conftest import wait_for
from tests.support.drain import login_bodies, make_queue, send_batched


def _receive_all(queue: SqsQueue, count: int) -> list[Record]:
    records: list[Record] = []
    while len(records) < count:
        got = queue.receive(10, wait_seconds=0, visibility_timeout=30)
        assert got, "moto gave fewer messages than were sent"
        records += got
    return records


def test_a_failed_call_and_refused_entries_do_not_stop_the_heartbeat(
    moto_sqs: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """35 records = 4 calls per beat. The call holding the first record always fails
    (throttled); 3 records of the third chunk were deleted, so SQS refuses their entries
    (ReceiptHandleIsInvalid, SenderFault). Every beat still extends the other 2 chunks and
    the 7 live records of the third; the 3 gone ones are asked for once, then dropped."""
    url, _ = make_queue(moto_sqs, "lease-failures", visibility_timeout=30)
    send_batched(moto_sqs, url, login_bodies(35, seed=1))
    queue = SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=0)
    records = _receive_all(queue, 35)
    deleted = records[20:23]
    assert queue.delete(deleted) == []

    attempts: Counter[str] = Counter()
    real = queue.client.change_message_visibility_batch
    poisoned = records[0]["receiptHandle"]

    def flaky(QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        handles = [e["ReceiptHandle"] for e in Entries]
        attempts.update(handles)
        if poisoned in handles:
            raise ClientError(
                {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}},
                "ChangeMessageVisibilityBatch",
            )
        return real(QueueUrl=QueueUrl, Entries=Entries)

    monkeypatch.setattr(queue.client, "change_message_visibility_batch", flaky)
    caplog.set_level(logging.WARNING, logger="login_etl_drain.lease")
    live = [r["receiptHandle"] for r in records[10:] if r not in deleted]
    with VisibilityLease(queue, 1) as lease:  # a beat every 1/3 s
        lease.add(records)
        wait_for(
            "three beats past the failing call",
            lambda: min(attempts[h] for h in live) >= 3 or None,
            timeout_s=60,
            every_s=0.05,
        )
        assert lease.held() == 32  # the 3 deleted ones dropped, the failing chunk kept
    assert all(attempts[r["receiptHandle"]] == 1 for r in deleted)
    assert attempts[poisoned] >= 3  # the failing call is asked again each beat
    text = caplog.text
    assert "calls failed (10 records)" in text and "Throttling" in text
    assert "refused 3 records for good (ReceiptHandleIsInvalid x3)" in text
    assert not any(r["messageId"] in text or r["receiptHandle"] in text for r in records)


class _CountingQueue:
    """A fake queue: counts calls and how many run at once; the first
    ``MAX_PARALLEL_CALLS`` calls must all be in flight together to return."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.running = 0
        self.peak = 0
        self.extended: Counter[str] = Counter()
        self._gate = threading.Barrier(MAX_PARALLEL_CALLS, timeout=30)

    def change_visibility(self, chunk: Sequence[Record], seconds: int) -> list[EntryFailure]:
        with self._lock:
            self.calls += 1
            first_wave = self.calls <= MAX_PARALLEL_CALLS
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if first_wave:
                try:
                    self._gate.wait()  # proves MAX_PARALLEL_CALLS calls are in flight at once
                except threading.BrokenBarrierError:
                    raise SqsError("calls did not run in parallel") from None
            with self._lock:
                self.extended.update(r["receiptHandle"] for r in chunk)
            return []
        finally:
            with self._lock:
                self.running -= 1


def test_ten_thousand_records_are_extended_in_one_beat_by_parallel_calls() -> None:
    queue = _CountingQueue()
    records = [{"messageId": str(i), "receiptHandle": f"h{i}"} for i in range(10_000)]
    lease = VisibilityLease(queue, 30)
    lease._records = list(records)  # held, without starting the timer thread
    report = lease.extend_now()
    assert (report.calls, report.failed_calls, report.extended) == (1000, 0, 10_000)
    assert queue.calls == 1000
    assert set(queue.extended) == {r["receiptHandle"] for r in records}
    assert set(queue.extended.values()) == {1}
    # Bounded: never more than MAX_PARALLEL_CALLS at once, and that many did run at once,
    # so the beat's critical path is ceil(1000 / 16) = 63 calls, not 1,000.
    assert queue.peak == MAX_PARALLEL_CALLS
    assert -(-1000 // MAX_PARALLEL_CALLS) == 63


def test_a_beat_that_raises_unexpectedly_is_logged_and_the_next_one_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    beats: list[int] = []

    def extend_now(self: VisibilityLease) -> Any:
        beats.append(len(beats))
        if len(beats) == 1:
            raise RuntimeError("a bug, not an SQS error")
        return lease_module.BeatReport()

    monkeypatch.setattr(VisibilityLease, "extend_now", extend_now)
    with VisibilityLease(_CountingQueue(), 1) as lease:
        lease.add([{"messageId": "m", "receiptHandle": "h"}])
        wait_for("a second beat", lambda: len(beats) >= 2 or None, timeout_s=30, every_s=0.05)
    assert "a beat failed" in caplog.text
