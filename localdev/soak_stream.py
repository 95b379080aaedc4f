"""The soak's traffic: generated messages sent to the queue (optionally at a fixed rate), and
what is left in the queues afterwards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from localdev import deploy, traffic

SEND_THREADS = 4


@dataclass
class Plan:
    """What the soak sends: bodies, and which of them the handler must accept."""

    bodies: list[str]
    valid: list[bool]

    @classmethod
    def generate(cls, count: int, *, seed: int, invalid_ratio: float) -> Plan:
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

    def send(self, plan: Plan) -> None:
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

    def _send_chunk(self, plan: Plan, chunk: Sequence[int]) -> None:
        sqs = getattr(self._local, "sqs", None)
        if sqs is None:
            sqs = self._local.sqs = deploy.client("sqs")
        response = sqs.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "MessageBody": plan.bodies[i]} for i in chunk],
        )
        if response.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
        with self._lock:
            for entry in response["Successful"]:
                self.sent_ids[entry["MessageId"]] = plan.valid[int(entry["Id"])]


def read_all(sqs: Any, queue_url: str, *, hide_s: int = 300) -> list[dict[str, Any]]:
    """Every message of a (settled) queue, received and hidden for ``hide_s``, not deleted.

    Stops after two polls that bring nothing new (with ``hide_s=0`` the same messages come
    back; on a FIFO queue a group stays blocked while its messages are hidden).
    """
    messages: dict[str, dict[str, Any]] = {}
    idle_polls = 0
    while idle_polls < 2:
        page = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=hide_s,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        ).get("Messages", [])
        new = {m["MessageId"]: m for m in page if m["MessageId"] not in messages}
        idle_polls = 0 if new else idle_polls + 1
        messages.update(new)
    return list(messages.values())
