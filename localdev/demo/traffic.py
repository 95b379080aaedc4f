"""The demo's message set: realistic logins plus what real queues also carry.

- logins in the real traffic shape (``localdev.traffic``), a few of them not logins at all;
- malformed messages (not JSON, not an object, empty ``user_id``, a number where text
  belongs, a value longer than its column);
- one device shared by three users (what the analyst's duplicate query is for);
- identical bodies sent twice as two messages: two logins, both written
  (``docs/contract.md``, "Batch semantics": the ledger keys on the message id, not the body).

    plan = demo_messages(seed=42)
    plan.bodies, plan.expected_rows, plan.expected_rejects
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field

from localdev import traffic

MALFORMED = (
    "this is not JSON",
    '["a", "list", "not", "an", "object"]',
    json.dumps({"user_id": "", "app_version": "1.0.0", "device_type": "ios"}),
    json.dumps({"user_id": "8b5c2f4e-0000-4000-8000-000000000001", "ip": 3232235777}),
    json.dumps({"user_id": "8b5c2f4e-0000-4000-8000-000000000002", "device_type": "x" * 40}),
)


@dataclass
class DemoPlan:
    bodies: list[str] = field(default_factory=list)
    user_ids: set[str] = field(default_factory=set)  # of the valid logins
    expected_rows: int = 0
    expected_rejects: int = 0
    resent: int = 0
    shared_device_users: int = 0

    def add(self, body: str, *, valid: bool) -> None:
        self.bodies.append(body)
        if valid:
            self.expected_rows += 1
            self.user_ids.add(json.loads(body)["user_id"])
        else:
            self.expected_rejects += 1


def demo_messages(logins: int = 120, *, seed: int | None = None, resend: int = 3) -> DemoPlan:
    rng = random.Random(seed)
    plan = DemoPlan()
    for message in traffic.login_bodies(logins, seed=rng.randrange(2**32), invalid_ratio=0.03):
        plan.add(message.body, valid=message.valid)
    for body in MALFORMED:
        plan.add(body, valid=False)
    shared = traffic.login(rng)
    for _ in range(3):
        user = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plan.add(json.dumps(shared | {"user_id": user}), valid=True)
        plan.shared_device_users += 1
    valid_bodies = [b for b in plan.bodies[:logins] if json.loads(b).get("user_id")]
    for body in rng.sample(valid_bodies, resend):
        plan.add(body, valid=True)
        plan.resent += 1
    rng.shuffle(plan.bodies)
    return plan
