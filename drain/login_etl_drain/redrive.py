"""Move dead-lettered messages back to their source queue (docs/drain.md, "login-etl redrive")."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from login_etl.errors import NotUnderstood, SqsError
from login_etl.identity import ATTRIBUTE, Identity, IdentitySigner

from .sqs import SqsQueue

MAX_MESSAGE_ATTRIBUTES = 10  # SQS's limit per message


@dataclass(frozen=True, slots=True)
class RedriveResult:
    method: str  # "move-task" or "copy"
    before: int  # messages in the DLQ before (approximate)
    moved: int
    after: int  # messages left in the DLQ (approximate)
    without_identity: int = 0  # copies sent without one: no room (10 attributes) or data


def redrive(
    dlq: SqsQueue,
    destination: SqsQueue,
    *,
    method: str = "copy",
    signer: IdentitySigner | None = None,
    timeout_s: float = 300,
    progress: Callable[[int], None] = lambda moved: None,
) -> RedriveResult:
    """``signer`` (the masking key's) is required for the copy loop."""
    if method in ("copy", "auto") and signer is None:
        raise ValueError("the copy loop signs identities: it needs the masking key's signer")
    before = dlq.counts()[0]
    if method in ("auto", "move-task"):
        try:
            dlq.start_move_task(destination.info.arn)
        except NotUnderstood:  # e.g. LocalStack 0.14's "500 {}" for an action it lacks
            if method == "move-task":
                raise SqsError("this endpoint does not support StartMessageMoveTask") from None
        else:
            moved = _await_move_task(dlq, timeout_s, progress)
            return RedriveResult("move-task", before, moved, dlq.counts()[0])
    assert signer is not None
    moved, without = _copy_loop(dlq, destination, signer, timeout_s, progress)
    return RedriveResult("copy", before, moved, dlq.counts()[0], without)


def _await_move_task(dlq: SqsQueue, timeout_s: float, progress: Callable[[int], None]) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = dlq.move_task()
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        progress(moved)
        status = task.get("Status")
        if status == "COMPLETED":
            return moved
        if status in ("FAILED", "CANCELLED"):
            raise SqsError(f"message move task {status}: {task.get('FailureReason', '')}")
        time.sleep(1)
    raise SqsError(f"message move task did not finish within {timeout_s:.0f} s")


def _copy_loop(
    dlq: SqsQueue,
    destination: SqsQueue,
    signer: IdentitySigner,
    timeout_s: float,
    progress: Callable[[int], None],
) -> tuple[int, int]:
    moved, empty_polls, without_identity = 0, 0, 0
    deadline = time.monotonic() + timeout_s
    fifo = destination.info.arn.endswith(".fifo")
    while empty_polls < 2 and time.monotonic() < deadline:
        records = dlq.receive(10, wait_seconds=1, visibility_timeout=60)
        if not records:
            empty_polls += 1
            continue
        empty_polls = 0
        entries = []
        for index, record in enumerate(records):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": record["body"]}
            attributes, signed = with_identity(record, signer)
            if not signed:
                without_identity += 1
            if attributes:
                entry["MessageAttributes"] = attributes
            if fifo:
                entry["MessageGroupId"] = record["attributes"].get("MessageGroupId", "redrive")
                # The DLQ message's id, not the original's: why, docs/drain.md ("On a FIFO queue").
                entry["MessageDeduplicationId"] = record["messageId"]
            entries.append(entry)
        accepted = destination.send_batch(entries)
        # Delete only what the destination accepted; the rest reappears in the DLQ.
        to_delete = [r for i, r in enumerate(records) if str(i) in accepted]
        not_deleted = dlq.delete(to_delete)  # reappears later and is moved (again) then
        moved += len(to_delete) - len(not_deleted)
        progress(moved)
    return moved, without_identity


def with_identity(
    record: Mapping[str, Any], signer: IdentitySigner
) -> tuple[dict[str, dict[str, Any]], bool]:
    """A DLQ record's copy's attributes: its own plus a signed identity (a verifying one kept,
    docs/drain.md); False: no identity (10 attributes already, or no usable id or time)."""
    attributes = _copyable(record.get("messageAttributes", {}))
    if signer.verify_record(record) is not None:
        return attributes, True
    try:
        sent = str(record.get("attributes", {}).get("SentTimestamp", ""))
        identity = Identity(str(record.get("messageId", "")), sent)
    except ValueError:
        return attributes, False
    if ATTRIBUTE not in attributes and len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
        return attributes, False
    body = record.get("body", "")
    attributes[ATTRIBUTE] = {"DataType": "String", "StringValue": signer.sign(identity, body)}
    return attributes, True


def _copyable(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A record's message attributes as SendMessage takes them: ``to_event_record`` reversed."""
    copies: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        copy = copies[str(name)] = {"DataType": value["dataType"]}
        if "stringValue" in value:
            copy["StringValue"] = value["stringValue"]
        if "binaryValue" in value:  # base64 in a record; SendMessage takes the bytes
            copy["BinaryValue"] = base64.b64decode(value["binaryValue"])
    return copies
