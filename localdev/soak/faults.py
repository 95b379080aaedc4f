"""Faults the soak injects while traffic flows through the deployed stack.

- ``postgres_restart``: the database crash-stops (``pg_ctl -m immediate``) and comes back on the
  same port a few seconds later; warm connections are dead, new ones are refused meanwhile.
- ``kill_connections``: ``pg_terminate_backend`` on every session named ``login-etl`` (the
  function's warm connections), as a failover or an idle-connection reaper would.
- ``lock_table``: another session holds an EXCLUSIVE lock on ``user_logins`` (reads pass,
  writes wait) for longer than the function's statement/lock timeout.
- ``redelivery``: a consumer receives a few messages, processes them (the function, invoked
  directly) and "dies" before deleting them: they become visible again and are delivered a
  second time by the event source mapping, which must add no row.

One injector thread runs them one after another, at random (seeded) moments and durations, or at
fixed moments (``schedule``) for tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from localdev.env.sqs import invoke_without_delete
from localdev.soak.db import SoakDatabase

KINDS = ("postgres_restart", "kill_connections", "lock_table", "redelivery")


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float  # seconds after the injector started
    duration_s: float
    detail: str

    def describe(self) -> str:
        return f"{self.at_s:6.1f} s  {self.kind:<17} {self.duration_s:4.1f} s  {self.detail}"


@dataclass(frozen=True)
class FaultSettings:
    kinds: Sequence[str] = KINDS
    every_s: tuple[float, float] = (3.0, 8.0)  # pause between two faults
    outage_s: tuple[float, float] = (2.0, 6.0)  # Postgres down
    lock_s: tuple[float, float] = (3.0, 5.0)  # lock held (> the statement timeout)
    redeliver: int = 10  # messages per redelivery fault
    # Fixed (at_s, kind, duration_s) instead of random faults; for tests.
    schedule: Sequence[tuple[float, str, float]] = ()


@dataclass
class FaultInjector:
    settings: FaultSettings
    database: SoakDatabase
    outputs: dict[str, str]
    seed: int = 0
    injected: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 60) -> None:
        """Ask the injector to stop and wait for the fault in progress to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.database.start()  # whatever happened, the database is up afterwards

    def summary(self) -> Counter[str]:
        return Counter(f.kind for f in self.injected)

    def _plan(self) -> list[tuple[float, str, float]]:
        """Random faults: every kind once early on (shuffled), then at random."""
        if self.settings.schedule:
            return sorted(self.settings.schedule)
        rng = random.Random(self.seed)
        kinds = list(self.settings.kinds)
        rng.shuffle(kinds)
        plan: list[tuple[float, str, float]] = []
        at = rng.uniform(*self.settings.every_s) / 2
        for number in range(10_000):
            kind = kinds[number] if number < len(kinds) else rng.choice(kinds)
            span = {"postgres_restart": self.settings.outage_s, "lock_table": self.settings.lock_s}
            duration = rng.uniform(*span.get(kind, (0.0, 0.0)))
            plan.append((round(at, 1), kind, round(duration, 1)))
            at += duration + rng.uniform(*self.settings.every_s)
        return plan

    def _run(self) -> None:
        for at, kind, duration in self._plan():
            if self._stop.wait(max(0.0, at - (time.monotonic() - self._began))):
                return
            began = time.monotonic()
            try:
                detail = getattr(self, f"_{kind}")(duration)
            except Exception as error:  # noqa: BLE001 - a failed injection is reported
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                continue
            self.injected.append(
                Fault(kind, round(began - self._began, 1), time.monotonic() - began, detail)
            )

    def _postgres_restart(self, duration: float) -> str:
        self.database.stop()
        try:
            self._stop.wait(duration)  # a stop request shortens the outage, never skips start
        finally:
            self.database.start()
        return "crash-stop, then restart on the same port"

    def _kill_connections(self, _duration: float) -> str:
        conn = self.database.connect()
        try:
            killed = conn.run(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'login-etl' AND pid <> pg_backend_pid()"
            )[0][0]
        finally:
            conn.close()
        return f"{killed} warm connection(s) terminated"

    def _lock_table(self, duration: float) -> str:
        conn = self.database.connect(timeout_s=duration + 10)
        try:
            conn.run("BEGIN")
            conn.run("LOCK TABLE user_logins IN EXCLUSIVE MODE")
            self._stop.wait(duration)
            waiting = conn.run(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'login-etl' AND wait_event_type = 'Lock'"
            )[0][0]
            conn.run("ROLLBACK")
        finally:
            conn.close()
        return f"EXCLUSIVE lock on user_logins; {waiting} writer(s) waiting at release"

    def _redelivery(self, _duration: float) -> str:
        undeleted = invoke_without_delete(self.outputs, self.settings.redeliver, wait_s=1)
        if not undeleted.received:
            return "queue empty: nothing to redeliver"
        rejected = len(undeleted.received) - undeleted.accepted
        outcome = (
            "the function failed"
            if undeleted.function_error
            else f"{undeleted.accepted} accepted, {rejected} rejected"
        )
        return f"{len(undeleted.received)} received, {outcome}, made visible again undeleted"


def describe(kinds: Any) -> str:
    counts = Counter(kinds)
    return ", ".join(f"{kind} x{counts[kind]}" for kind in KINDS if counts[kind]) or "none"
