"""Move dead-lettered messages back to their source queue (docs/drain.md, "login-etl redrive")."""

from __future__ import annotations

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
        messages = dlq.receive_messages(10, wait_seconds=1, visibility_timeout=60)
        if not messages:
            empty_polls += 1
            continue
        empty_polls = 0
        entries = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            attributes, signed = with_identity(message, signer)
            if not signed:
                without_identity += 1
            if attributes:
                entry["MessageAttributes"] = attributes
            if fifo:
                system = message.get("Attributes", {})
                entry["MessageGroupId"] = system.get("MessageGroupId", "redrive")
                # Stable if this copy is sent again (a crash before the delete: SQS drops it
                # within 5 min); not the original id, so a message redriven twice is not.
                entry["MessageDeduplicationId"] = message["MessageId"]
            entries.append(entry)
        accepted = destination.send_batch(entries)
        # Delete only what the destination accepted; the rest reappears in the DLQ.
        to_delete = [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if str(i) in accepted
        ]
        not_deleted = dlq.delete(to_delete)  # reappears later and is moved (again) then
        moved += len(to_delete) - len(not_deleted)
        progress(moved)
    return moved, without_identity


def with_identity(
    message: Mapping[str, Any], signer: IdentitySigner
) -> tuple[dict[str, dict[str, Any]], bool]:
    """A DLQ message's copy's attributes: its own plus a signed identity (a verifying one kept,
    docs/drain.md); False: no identity (10 attributes already, or no usable id or time)."""
    attributes = _copyable(message.get("MessageAttributes", {}))
    body = message.get("Body", "")
    present = attributes.get(ATTRIBUTE, {}).get("StringValue")
    if present is not None and signer.verify(present, body) is not None:
        return attributes, True
    try:
        identity = Identity(
            str(message.get("MessageId", "")),
            str(message.get("Attributes", {}).get("SentTimestamp", "")),
        )
    except ValueError:
        return attributes, False
    if ATTRIBUTE not in attributes and len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
        return attributes, False
    attributes[ATTRIBUTE] = {"DataType": "String", "StringValue": signer.sign(identity, body)}
    return attributes, True


def _copyable(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Message attributes as SendMessage takes them (ReceiveMessage adds empty list fields)."""
    fields = ("DataType", "StringValue", "BinaryValue")
    return {str(name): {k: v[k] for k in fields if k in v} for name, v in attributes.items()}
