"""Realistic login traffic, generated (the exercise's own messages are not ours to ship).

Shape of real messages (``docs/contract.md``, "Input and output"): all values strings or null;
``locale`` null about 30% of the time; ``app_version`` ``x.y.z`` or ``x.y``, sometimes with
trailing zeros (``"2.00"``, ``"0.60"``); now and then a message that is not a login at all.

    messages = login_bodies(1000, seed=7, invalid_ratio=0.01)
    event = localdev.lambda_event.sqs_event([m.body for m in messages])
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass

LOCALES = ("RU", "PH", "ID", "CN", "FR", "PT", "BR", "US", "DE", "JP", "IN", "MX", "NG", "PL")
NON_LOGINS = (
    {"foo": "oops_wrong_msg_type", "bar": "123"},
    {"event": "logout", "ts": "2026-01-01T00:00:00Z"},
)


@dataclass(frozen=True)
class Message:
    body: str
    valid: bool  # whether the handler must accept it


def _version(rng: random.Random) -> str:
    major, minor = rng.randint(0, 9), rng.randint(0, 99)
    if rng.random() < 0.45:
        return f"{major}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
    return f"{major}.{minor:02d}" if rng.random() < 0.3 else f"{major}.{minor}"


def login(rng: random.Random) -> dict[str, str | None]:
    return {
        "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "app_version": _version(rng),
        "device_type": rng.choice(("android", "ios")),
        "ip": ".".join(str(rng.randint(1, 254)) for _ in range(4)),
        "locale": None if rng.random() < 0.3 else rng.choice(LOCALES),
        "device_id": (
            f"{rng.randint(0, 999):03d}-{rng.randint(0, 99):02d}-{rng.randint(0, 9999):04d}"
        ),
    }


def login_bodies(count: int, *, seed: int = 0, invalid_ratio: float = 0.01) -> list[Message]:
    """``count`` message bodies, about ``invalid_ratio`` of them not logins."""
    rng = random.Random(seed)
    messages = []
    for _ in range(count):
        if rng.random() < invalid_ratio:
            messages.append(Message(json.dumps(rng.choice(NON_LOGINS)), valid=False))
        else:
            messages.append(Message(json.dumps(login(rng)), valid=True))
    return messages


EXERCISE_QUEUE_SIZE = 100
EXERCISE_NON_LOGIN_INDEX = 12  # where the exercise data's one non-login message sits


def exercise_queue_records(
    seed: int = 0, *, count: int = EXERCISE_QUEUE_SIZE
) -> list[dict[str, str | None]]:
    """What the exercise's image loads into ``login-queue``: ``count`` login records of the
    real data's shape (see ``login``) and, at index 12, its one non-login message. Deterministic
    for a random seed; the records are dicts, each sent as ``json.dumps(record)``."""
    rng = random.Random(seed)
    records = [login(rng) for _ in range(count)]
    if count > EXERCISE_NON_LOGIN_INDEX:
        records[EXERCISE_NON_LOGIN_INDEX] = dict(NON_LOGINS[0])
    return records
