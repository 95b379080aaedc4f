"""``make soak``: N login messages through the deployed stack on LocalStack, faults injected.

    python -m localdev.soak                      # 20,000 messages, ~1% invalid, faults on
    python -m localdev.soak --messages 2000 --seed 3 --no-faults

Starts LocalStack (unless running) and a dedicated Postgres server in a fresh folder (so the
counts are this run's alone and the soak may crash-stop it), deploys its own stack, sends the
messages from a few threads while ``localdev.soak_faults`` injects Postgres restarts, killed
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

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from localdev import deploy, localstack, sam
from localdev.demo_summary import read_function_logs
from localdev.queues import queue_depth
from localdev.soak_db import Counts, SoakDatabase
from localdev.soak_faults import FaultInjector, FaultSettings, describe
from localdev.soak_stream import Plan, Sender, read_all

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


@dataclass
class SoakReport:
    sent: int
    valid: int
    invalid: int
    counts: Counts
    dlq: int
    valid_in_dlq: int
    invalid_in_dlq: int
    wall_s: float
    rows_done_s: float | None  # first send -> every valid row written
    ledger_skips: int  # redelivered messages the ledger kept from being written twice
    drained: bool
    function_name: str
    faults: list[str]
    fault_summary: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and not self.problems
            and self.counts.lost == 0
            and self.counts.duplicates == 0
            and self.counts.rows == self.valid
            and self.dlq == self.invalid == self.invalid_in_dlq
        )

    @property
    def rate(self) -> float:
        return self.sent / self.wall_s if self.wall_s else 0.0

    def lines(self) -> list[str]:
        c = self.counts
        lines = [
            f"=== login-etl soak: {'PASS' if self.ok else 'FAIL'} ===",
            f"sent          {self.sent} ({self.valid} valid, {self.invalid} invalid)",
            f"rows          {c.rows} (expected {self.valid})",
            f"DLQ           {self.dlq} (expected {self.invalid}; valid among them: "
            f"{self.valid_in_dlq})",
            f"duplicates    {c.duplicates}",
            f"lost          {c.lost}",
            f"wall time     {self.wall_s:.1f} s (first send -> queue drained)",
            f"messages/s    {self.rate:.0f} end to end; "
            + (
                f"{self.valid / self.rows_done_s:.0f} rows/s until the last valid row "
                f"({self.rows_done_s:.1f} s; the rest is the invalid messages' "
                "MaxReceiveCount x VisibilityTimeout on their way to the DLQ)"
                if self.rows_done_s
                else "the valid rows never all arrived"
            ),
            f"ledger skips  {self.ledger_skips} redelivered messages not written twice",
            f"faults        {self.fault_summary}",
        ]
        lines += [f"  {fault}" for fault in self.faults]
        lines += [f"problem: {p}" for p in self.problems]
        return lines


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
    plan = Plan.generate(config.messages, seed=config.seed, invalid_ratio=config.invalid_ratio)
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
    plan: Plan,
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
        visible, in_flight = queue_depth(sqs, outputs["QueueUrl"])
        dead = queue_depth(sqs, outputs["DeadLetterQueueUrl"])[0]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--invalid-ratio", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=None, help="messages/s (default: max)")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for drain")
    args = parser.parse_args(argv)
    config = SoakConfig(
        messages=args.messages,
        seed=args.seed,
        invalid_ratio=args.invalid_ratio,
        faults=None if args.no_faults else FaultSettings(),
        rate=args.rate,
        drain_timeout_s=args.timeout,
    )
    try:
        report = run_soak(config, progress=lambda line: print(line, flush=True))
    except (deploy.DeployError, sam.SamError, RuntimeError) as error:
        print(f"soak: {error}", file=sys.stderr)
        return 1
    print("\n".join(["", *report.lines()]))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
