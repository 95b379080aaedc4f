"""The drain loop: the Lambda event source mapping as local worker threads (docs/drain.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from login_etl.errors import CredentialsRejected, DatabaseUnavailable, QueueNotFound, SqsError
from login_etl.pipeline import RejectionLog
from login_etl.runtime import PipelineRuntime

from .lease import VisibilityLease
from .progress import Stats
from .sqs import MAX_PER_CALL, Record, SqsQueue

log = logging.getLogger(__name__)
MAX_BATCH_SIZE = 10_000
_DEFAULT_VISIBILITY_S = 30


@dataclass(frozen=True, slots=True)
class DrainOptions:
    batch_size: int = 10
    concurrency: int = 1
    follow: bool = False
    wait_seconds: int = 2  # long poll of each ReceiveMessage (SQS allows 0-20)
    idle_polls: int = 2  # without follow: stop after this many empty long polls in a row
    visibility_timeout: int | None = None  # None: the queue's own
    max_backoff_s: float = 60.0


class StopSwitch:
    """Stop requests and the count of batches in flight, shared by all threads.

    ``begin_batch`` and ``stop`` take the same lock: once ``stop`` returns no batch can start,
    so the caller may wait for those in flight and exit while idle workers still long-poll.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._in_flight = 0
        self.error: BaseException | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self, error: BaseException | None = None) -> None:
        with self._cond:
            if self.error is None:
                self.error = error
            self._stopped.set()

    def begin_batch(self) -> bool:
        with self._cond:
            if self._stopped.is_set():
                return False
            self._in_flight += 1
            return True

    def end_batch(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        """Back off, but wake up at once on a stop request."""
        self._stopped.wait(seconds)

    def wait_idle(self, tick: Callable[[], None]) -> None:
        with self._cond:
            while self._in_flight:
                # Short waits keep the main thread responsive to signals and the display.
                self._cond.wait(0.2)
                tick()


@dataclass(eq=False)
class Drainer:
    queue: SqsQueue
    pipeline_for_worker: Callable[[int], PipelineRuntime]
    options: DrainOptions
    _: KW_ONLY
    stats: Stats
    switch: StopSwitch
    rejections: RejectionLog

    def __post_init__(self) -> None:
        if not 1 <= self.options.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch size must be 1-{MAX_BATCH_SIZE}")
        timeout = self.options.visibility_timeout or self.queue.info.visibility_timeout
        self._visibility_s = timeout or _DEFAULT_VISIBILITY_S

    def run(self, tick: Callable[[], None], *, interrupted: Callable[[], bool]) -> None:
        """Drain until done, a fatal error, or a stop request; ``tick`` refreshes the display.
        On an interrupt only the batches in flight are awaited (docs/drain.md, "Ctrl-C")."""
        # Clients are made here, in one thread: boto3 sessions are not thread-safe.
        queues = [self.queue] + [self.queue.clone() for _ in range(self.options.concurrency - 1)]
        threads = [
            threading.Thread(target=self._worker, args=(i, q), name=f"drain-{i}", daemon=True)
            for i, q in enumerate(queues)
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads) and not self.switch.stopped:
            tick()
            time.sleep(0.1)
        if interrupted():
            self.switch.wait_idle(tick)
        else:
            self.switch.stop()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    tick()

    def _worker(self, index: int, queue: SqsQueue) -> None:
        options = self.options
        idle = failures = 0
        pipeline: PipelineRuntime | None = None
        try:
            pipeline = self.pipeline_for_worker(index)
            while not self.switch.stopped:
                try:
                    handled = self._one_batch(queue, pipeline)
                except Exception as error:
                    # Worth a retry in --follow mode (the batch stays in the queue meanwhile).
                    fatal = isinstance(error, QueueNotFound | CredentialsRejected)
                    transient = not fatal and isinstance(error, DatabaseUnavailable | SqsError)
                    if not (options.follow and transient):
                        raise
                    failures += 1
                    delay = min(options.max_backoff_s, 2.0 ** min(failures, 6))
                    log.warning(
                        "batch failed, nothing deleted; retrying in %.0f s: %s", delay, error
                    )
                    self.switch.sleep(delay)
                    continue
                failures = 0
                idle = 0 if handled else idle + 1
                if not options.follow and idle >= options.idle_polls:
                    return
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.switch.stop(error)
        finally:
            if pipeline is not None:
                pipeline.close()

    def _one_batch(self, queue: SqsQueue, pipeline: PipelineRuntime) -> bool:
        """Receive, process, delete one batch. False when the queue gave nothing."""
        with VisibilityLease(queue, self._visibility_s) as lease:
            records = self._gather(queue, lease)
            if not records:
                return False
            if not self.switch.begin_batch():
                return True  # stopping: leave them; they reappear after the timeout
            try:
                result = pipeline.process(records, logger=self.rejections)
            except BaseException:
                self.stats.add_failed_batch(len(records))
                raise
            else:
                failed = set(result.failed_message_ids)
                done = [r for r in records if r["messageId"] not in failed]
                not_deleted = queue.delete(done) if done else []
                self.stats.add_batch(len(records), result, len(not_deleted))
            finally:
                self.switch.end_batch()
        return True

    def _gather(self, queue: SqsQueue, lease: VisibilityLease) -> list[Record]:
        """Up to ``batch_size`` records; only the first ReceiveMessage waits (a batch never
        waits for a full 10,000 on a slow queue)."""
        records: list[Record] = []
        size = self.options.batch_size
        while len(records) < size and not self.switch.stopped:
            got = queue.receive(
                min(MAX_PER_CALL, size - len(records)),
                wait_seconds=0 if records else self.options.wait_seconds,
                visibility_timeout=self._visibility_s,
            )
            if not got:
                break
            lease.add(got)
            records += got
        return records
