"""SQS on the local stack, for the demo, the soak and the tests: send, count, read, redeliver.

Counting is the drain's own (``login_etl_drain.sqs.queue_counts``, re-exported here), so the
tooling reads queue depths the way ``login-etl drain`` does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localdev.env import deploy
from localdev.lambda_event import received_event
from login_etl_drain.sqs import queue_counts

__all__ = ["fifo_entry", "invoke_without_delete", "queue_counts", "read_all", "send_batch"]


def send_batch(
    sqs: Any, queue_url: str, bodies: Sequence[str], *, group: str = "logins"
) -> list[str]:
    """One SendMessageBatch of up to 10 bodies; their message ids, in the bodies' order.

    On a FIFO queue each login is one event with its own MessageDeduplicationId (a new
    UUID): the stack's FIFO queues have no content-based deduplication, because two real
    logins may have equal bodies (docs/operations.md, "Sending to a FIFO queue").
    """
    entries = [
        fifo_entry(queue_url, {"Id": str(i), "MessageBody": body}, group)
        for i, body in enumerate(bodies)
    ]
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    if response.get("Failed"):
        raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
    ids = {int(entry["Id"]): str(entry["MessageId"]) for entry in response["Successful"]}
    return [ids[i] for i in range(len(bodies))]


def fifo_entry(queue_url: str, entry: dict[str, Any], group: str = "logins") -> dict[str, Any]:
    """``entry`` with a message group and a unique deduplication id if the queue is FIFO."""
    if queue_url.endswith(".fifo"):
        return entry | {"MessageGroupId": group, "MessageDeduplicationId": uuid.uuid4().hex}
    return entry


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


@dataclass(frozen=True)
class Undeleted:
    """What ``invoke_without_delete`` received and what the function answered."""

    received: list[dict[str, Any]]
    result: Any  # the function's response (its error, if function_error)
    function_error: bool

    @property
    def accepted(self) -> int:
        """Received messages the function did not report failed."""
        if not self.received:
            return 0
        failed = {f["itemIdentifier"] for f in self.result["batchItemFailures"]}
        return sum(1 for m in self.received if m["MessageId"] not in failed)


def invoke_without_delete(
    outputs: Mapping[str, str], max_messages: int, *, wait_s: int
) -> Undeleted:
    """A consumer that dies after processing: receive, invoke the function, delete nothing.

    Up to ``max_messages`` (at most 10) messages of the stack's queue go to the function in one
    direct invocation; then they are made visible again, undeleted, as after a timeout right
    after COMMIT: the event source mapping delivers them again and the function must skip them.
    """
    sqs, lam = deploy.client("sqs"), deploy.client("lambda")
    received: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=outputs["QueueUrl"],
        MaxNumberOfMessages=min(max_messages, 10),
        AttributeNames=["All"],
        VisibilityTimeout=60,
        WaitTimeSeconds=wait_s,
    ).get("Messages", [])
    if not received:
        return Undeleted([], None, function_error=False)
    event = received_event(received, outputs["QueueArn"])
    try:
        response = lam.invoke(
            FunctionName=outputs["FunctionName"], Payload=json.dumps(event).encode()
        )
        result = json.loads(response["Payload"].read())
    finally:  # the consumer "died": no delete, the messages come back
        for message in received:
            sqs.change_message_visibility(
                QueueUrl=outputs["QueueUrl"],
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
    return Undeleted(received, result, function_error=bool(response.get("FunctionError")))
