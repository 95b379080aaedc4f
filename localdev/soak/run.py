"""The soak (``make soak``, ``python -m localdev.soak``): its stack, its run, its teardown.

Starts LocalStack (unless running) and a dedicated Postgres server in a fresh folder (so the
counts are this run's alone and the soak may crash-stop it), deploys its own stack, sends the
messages from a few threads while ``localdev.soak.faults`` injects Postgres restarts, killed
warm connections, a held table lock and redeliveries at random (seeded) moments, waits until the
queue is empty, and prints sent / rows / DLQ / duplicates / lost / wall time / messages/s and the
faults. Pass = lost 0, duplicates 0, DLQ == the invalid messages sent. Everything it started is
torn down again, also on failure or Ctrl-C.

Why valid messages cannot reach the DLQ: every fault makes the affected batch fail at most once
per delivery, and a failed message is delivered again only after VisibilityTimeout. A valid
message is dead-lettered only after MaxReceiveCount failed deliveries, i.e. after failing for at
least (MaxReceiveCount - 1) x VisibilityTimeout = 9 x 5 s = 45 s here. Outages last at most 6 s
(plus the restart), locks 5 s, with at least 3 s between two faults, so a message fails a few
times at most (a redelivery fault adds one receive, too).
(In AWS, the same rule: keep (MaxReceiveCount - 1) x VisibilityTimeout above the longest
database outage you want to ride out.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from localdev.env import deploy, localstack, sam
from localdev.env.function_logs import read_function_logs
from localdev.env.sqs import queue_counts, read_all
from localdev.soak.db import SoakDatabase
from localdev.soak.faults import FaultInjector, FaultSettings, describe
from localdev.soak.report import SoakReport
from localdev.soak.stream import Sender, SoakPlan

STACK_PARAMS: Mapping[str, str] = {
    "BatchSize": "100",
    "BatchingWindow": "1",
    "MaxConcurrency": "5",
    "MaxReceiveCount": "10",
    "FunctionTimeout": "5",
    "VisibilityTimeout": "5",
    "DbConnectTimeout": "2",
    "DbStatementTimeoutMs": "2000",  # the lock fault holds its lock for 3-5 s
    "LogRetentionDays": "1",
}


@dataclass(frozen=True)
class SoakConfig:
    messages: int = 20_000
    seed: int = 7
    invalid_ratio: float = 0.01
    faults: FaultSettings | None = field(default_factory=FaultSettings)  # None = no faults
    rate: float | None = None  # messages/s sent; None = as fast as possible
    params: Mapping[str, str] = field(default_factory=lambda: dict(STACK_PARAMS))
    drain_timeout_s: float = 1200
    build_dir: Path = sam.BUILD_DIR
    build: bool = True


def run_soak(config: SoakConfig, *, progress: Callable[[str], None] = print) -> SoakReport:
    """Deploy, send, inject, wait, count; tears everything down again."""
    started_localstack = localstack.start()
    database: SoakDatabase | None = None
    stack_name = f"login-etl-soak-{uuid.uuid4().hex[:8]}"
    outputs: dict[str, str] = {}
    try:
        database = SoakDatabase()
        progress(f"soak: deploying stack {stack_name} ({_params(config.params)})")
        outputs = deploy.deploy(
            config.params,
            stack_name=stack_name,
            database_url=database.url,
            build_dir=config.build_dir,
            build=config.build,
            quiet=True,
        )
        return _soak(config, database, outputs, progress)
    finally:
        _teardown(stack_name, outputs, database, started_localstack, progress)


def _soak(
    config: SoakConfig,
    database: SoakDatabase,
    outputs: dict[str, str],
    progress: Callable[[str], None],
) -> SoakReport:
    plan = SoakPlan.generate(config.messages, seed=config.seed, invalid_ratio=config.invalid_ratio)
    valid_ids = plan.valid_user_ids
    sender = Sender(outputs["QueueUrl"], rate=config.rate)
    injector = (
        FaultInjector(config.faults, database, outputs, seed=config.seed)
        if config.faults is not None
        else None
    )
    progress(
        f"soak: sending {len(plan.bodies)} messages ({plan.invalid} invalid), faults "
        + _fault_plan(config.faults)
    )
    began = time.monotonic()
    sending = threading.Thread(target=sender.send, args=(plan,), name="soak-sender", daemon=True)
    sending.start()
    if injector is not None:
        injector.start()
    rows_done: list[float] = []
    try:
        drained = _wait(
            config, plan, sender, sending, injector, database, outputs, progress, rows_done
        )
    finally:
        if injector is not None:
            injector.stop()
    wall = time.monotonic() - began
    logs = read_function_logs(outputs["FunctionName"], since_ms=int((time.time() - wall) * 1000))
    sqs = deploy.client("sqs")
    dead = read_all(sqs, outputs["DeadLetterQueueUrl"])
    valid_dead = sum(1 for m in dead if sender.sent_ids.get(m["MessageId"], False))
    unknown_dead = sum(1 for m in dead if m["MessageId"] not in sender.sent_ids)
    problems = list(sender.errors) + (injector.errors if injector is not None else [])
    if unknown_dead:
        problems.append(f"{unknown_dead} DLQ message(s) were not sent by this soak")
    return SoakReport(
        sent=sender.sent,
        valid=sum(sender.sent_ids.values()),
        invalid=sender.sent - sum(sender.sent_ids.values()),
        counts=database.counts(valid_ids),
        dlq=len(dead),
        valid_in_dlq=valid_dead,
        invalid_in_dlq=len(dead) - valid_dead - unknown_dead,
        wall_s=wall,
        rows_done_s=rows_done[0] - began if rows_done else None,
        ledger_skips=logs.duplicates,
        drained=drained,
        function_name=outputs["FunctionName"],
        faults=[f.describe() for f in injector.injected] if injector is not None else [],
        fault_summary=describe(f.kind for f in injector.injected) if injector else "off",
        problems=problems,
    )


def _wait(
    config: SoakConfig,
    plan: SoakPlan,
    sender: Sender,
    sending: threading.Thread,
    injector: FaultInjector | None,
    database: SoakDatabase,
    outputs: dict[str, str],
    progress: Callable[[str], None],
    rows_done: list[float],
) -> bool:
    """Until the queue is empty (twice in a row) after the last send; prints progress.

    Appends to ``rows_done`` the moment every valid row was there.
    """
    sqs = deploy.client("sqs")
    began = time.monotonic()
    expected_rows = len(plan.bodies) - plan.invalid
    empty_polls = 0
    while time.monotonic() - began < config.drain_timeout_s:
        visible, in_flight = queue_counts(sqs, outputs["QueueUrl"])
        dead = queue_counts(sqs, outputs["DeadLetterQueueUrl"])[0]
        rows = database.row_count()
        faults = describe(f.kind for f in injector.injected) if injector else "off"
        progress(
            f"  {time.monotonic() - began:6.1f} s  sent {sender.sent:>6}/{len(plan.bodies)} | "
            f"queue {visible:>5} waiting {in_flight:>4} in flight | rows "
            f"{'down' if rows is None else rows:>6}/{expected_rows} | DLQ {dead:>4}/"
            f"{plan.invalid} | faults: {faults}"
        )
        sending_done = not sending.is_alive()
        if rows == expected_rows and not rows_done:
            rows_done.append(time.monotonic())
        if injector is not None and sending_done and (rows == expected_rows or visible == 0):
            injector.stop()  # only the invalid messages are left: nothing more to disturb
        empty_polls = empty_polls + 1 if sending_done and visible == in_flight == 0 else 0
        if empty_polls >= 2:
            return True
        time.sleep(2)
    return False


def _teardown(
    stack_name: str,
    outputs: dict[str, str],
    database: SoakDatabase | None,
    started_localstack: bool,
    progress: Callable[[str], None],
) -> None:
    steps: list[tuple[str, Callable[[], object]]] = [
        ("delete stack", lambda: deploy.delete_stack(stack_name))
    ]
    if "PiiHashKeySecretArn" in outputs:  # retained by the template on purpose
        steps.append(
            (
                "delete key secret",
                lambda: deploy.client("secretsmanager").delete_secret(
                    SecretId=outputs["PiiHashKeySecretArn"], ForceDeleteWithoutRecovery=True
                ),
            )
        )
    if database is not None:
        steps.append(("stop Postgres", database.close))
    if started_localstack:
        steps.append(("stop LocalStack", localstack.stop))
    for what, step in steps:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - tear down as much as possible
            progress(f"soak: teardown: {what} failed: {error}")


def _fault_plan(faults: FaultSettings | None) -> str:
    if faults is None:
        return "off"
    if faults.schedule:
        return "scheduled: " + ", ".join(f"{kind} at {at:.0f} s" for at, kind, _ in faults.schedule)
    return "on at random: " + ", ".join(faults.kinds)


def _params(params: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())
