"""The soak's traffic: generated messages, sent to the queue from a few threads (optionally at a
fixed rate)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from localdev import traffic
from localdev.env import deploy
from localdev.env.sqs import send_batch

SEND_THREADS = 4


@dataclass
class SoakPlan:
    """What the soak sends: bodies, and which of them the handler must accept."""

    bodies: list[str]
    valid: list[bool]

    @classmethod
    def generate(cls, count: int, *, seed: int, invalid_ratio: float) -> SoakPlan:
        messages = traffic.login_bodies(count, seed=seed, invalid_ratio=invalid_ratio)
        return cls([m.body for m in messages], [m.valid for m in messages])

    @property
    def invalid(self) -> int:
        return self.valid.count(False)

    @property
    def valid_user_ids(self) -> set[str]:
        pairs = zip(self.bodies, self.valid, strict=True)
        return {json.loads(body)["user_id"] for body, ok in pairs if ok}


@dataclass
class Sender:
    """Sends a plan in batches of 10 from a few threads; ``sent`` grows as it goes."""

    queue_url: str
    rate: float | None = None  # messages per second; None = as fast as possible
    sent_ids: dict[str, bool] = field(default_factory=dict)  # message id -> valid
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    @property
    def sent(self) -> int:
        with self._lock:
            return len(self.sent_ids)

    def send(self, plan: SoakPlan) -> None:
        chunks = [
            list(range(start, min(start + 10, len(plan.bodies))))
            for start in range(0, len(plan.bodies), 10)
        ]
        began = time.monotonic()

        def one(numbered: tuple[int, list[int]]) -> None:
            number, chunk = numbered
            if self.rate:
                delay = began + number * 10 / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                self._send_chunk(plan, chunk)
            except Exception as error:  # noqa: BLE001 - reported, and the soak then fails
                with self._lock:
                    self.errors.append(f"{type(error).__name__}: {error}")

        with ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="soak-send") as pool:
            list(pool.map(one, enumerate(chunks)))

    def _send_chunk(self, plan: SoakPlan, chunk: Sequence[int]) -> None:
        sqs = getattr(self._local, "sqs", None)
        if sqs is None:
            sqs = self._local.sqs = deploy.client("sqs")
        ids = send_batch(sqs, self.queue_url, [plan.bodies[i] for i in chunk])
        with self._lock:
            for i, message_id in zip(chunk, ids, strict=True):
                self.sent_ids[message_id] = plan.valid[i]
