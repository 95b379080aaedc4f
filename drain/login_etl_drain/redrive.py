"""Move dead-lettered messages back to their source queue after a fix.

Uses SQS's own message-move task (``StartMessageMoveTask``) where the endpoint supports
it; otherwise a receive → send → delete loop that never deletes a message before its
copy was accepted by the destination (a crash in between leaves a duplicate, which the
handler's ledger cannot catch — the copy has a new messageId — but never a loss).

    login-etl redrive --dlq-url URL [--to-queue-url URL] [--endpoint-url URL] [--region R]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .sqs import SqsError, SqsQueue, call_sqs

_UNSUPPORTED = {
    "UnsupportedOperation",
    "InvalidAction",
    "UnknownOperationException",
    "InternalFailure",
    "NotImplemented",
}


@dataclass(frozen=True, slots=True)
class RedriveResult:
    method: str  # "move-task" or "copy"
    before: int  # messages in the DLQ before (approximate)
    moved: int
    after: int  # messages left in the DLQ (approximate)


def redrive(
    dlq: SqsQueue,
    destination: SqsQueue,
    *,
    method: str = "auto",
    timeout_s: float = 300,
    progress: Callable[[int], None] = lambda moved: None,
) -> RedriveResult:
    before = _visible(dlq)
    if method in ("auto", "move-task"):
        try:
            moved = _move_task(dlq, destination, timeout_s, progress)
            return RedriveResult("move-task", before, moved, _visible(dlq))
        except _Unsupported:
            if method == "move-task":
                raise SqsError("this endpoint does not support StartMessageMoveTask") from None
    moved = _copy_loop(dlq, destination, timeout_s, progress)
    return RedriveResult("copy", before, moved, _visible(dlq))


class _Unsupported(Exception):
    pass


def _visible(queue: SqsQueue) -> int:
    return queue.counts()[0]


def _move_task(
    dlq: SqsQueue, destination: SqsQueue, timeout_s: float, progress: Callable[[int], None]
) -> int:
    client = dlq.client
    try:
        client.start_message_move_task(SourceArn=dlq.info.arn, DestinationArn=destination.info.arn)
    except Exception as error:  # noqa: BLE001 - classify, then re-raise as SqsError
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        # A bare HTTP status as the code: no SQS error at all, e.g. LocalStack 0.14's
        # "500 {}" for an action it does not know.
        if (
            code in _UNSUPPORTED
            or str(code).isdigit()
            or isinstance(error, AttributeError | NotImplementedError)
        ):
            raise _Unsupported from None
        raise SqsError(f"StartMessageMoveTask failed: {code or error}") from None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tasks = call_sqs(
            "ListMessageMoveTasks",
            lambda: client.list_message_move_tasks(SourceArn=dlq.info.arn, MaxResults=1),
        )["Results"]
        task: Mapping[str, Any] = tasks[0] if tasks else {}
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
    dlq: SqsQueue, destination: SqsQueue, timeout_s: float, progress: Callable[[int], None]
) -> int:
    moved, empty_polls = 0, 0
    deadline = time.monotonic() + timeout_s
    fifo = destination.info.fifo
    while empty_polls < 2 and time.monotonic() < deadline:
        messages = call_sqs(
            "ReceiveMessage",
            lambda: dlq.client.receive_message(
                QueueUrl=dlq.info.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"],
            ),
        ).get("Messages", [])
        if not messages:
            empty_polls += 1
            continue
        empty_polls = 0
        entries = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            if fifo:
                attributes = message.get("Attributes", {})
                entry["MessageGroupId"] = attributes.get("MessageGroupId", "redrive")
                entry["MessageDeduplicationId"] = message["MessageId"]
            entries.append(entry)
        sent = call_sqs(
            "SendMessageBatch",
            lambda entries=entries: destination.client.send_message_batch(  # type: ignore[misc]
                QueueUrl=destination.info.url, Entries=entries
            ),
        )
        accepted = {int(ok["Id"]) for ok in sent.get("Successful", [])}
        # Delete only what the destination accepted; the rest reappears in the DLQ.
        to_delete = [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if i in accepted
        ]
        not_deleted = dlq.delete(to_delete)  # reappears later and is moved (again) then
        moved += len(to_delete) - len(not_deleted)
        progress(moved)
    return moved
