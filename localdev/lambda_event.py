"""What Lambda hands the handler, built locally: the context and the SQS event.

    context = LocalContext()                          # the LambdaContext fields Powertools reads
    event = sqs_event(bodies, queue_arn=DEFAULT_QUEUE_ARN)  # one record per body, ids fixed
    event = received_event(messages, queue_arn)       # ReceiveMessage's messages, as the mapping

Every record comes from the drain adapter's ``to_event_record`` (``login_etl_drain.sqs``), the
one mapping of an SQS message to a record of the Lambda SQS event; ``sqs_record`` only makes
up the message (id, receipt handle, attributes) a queue would have handed out. The adapter
(and with it boto3) is imported when a record is built, not with this module: the bench's
fresh interpreters use the context alone and measure their memory.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:login-queue"
SENDER_ID = "AIDAIENQZJOLO23YVJ4VO"

SqsRecord = dict[str, Any]
SqsEvent = dict[str, list[SqsRecord]]


@dataclass
class LocalContext:
    """The LambdaContext fields Powertools reads; the ARN and log group follow the name."""

    function_name: str = "login-etl-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = ""
    aws_request_id: str = ""  # empty: a fresh uuid4
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            self.invoked_function_arn
            or f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        )
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def received_record(message: Mapping[str, Any], queue_arn: str) -> SqsRecord:
    """A ReceiveMessage message (``AttributeNames=["All"]``) as the mapping hands it to Lambda."""
    from login_etl_drain.sqs import QueueInfo, to_event_record

    queue = QueueInfo(url="", arn=queue_arn, region=queue_arn.split(":")[3], visibility_timeout=0)
    return to_event_record(message, queue)


def received_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> SqsEvent:
    """The Lambda SQS event of received messages (for invoking a deployed function directly)."""
    return {"Records": [received_record(m, queue_arn) for m in messages]}


def sqs_record(
    body: str,
    *,
    message_id: str,
    sent_timestamp_ms: int | None,
    queue_arn: str = DEFAULT_QUEUE_ARN,
    receive_count: int = 1,
    group: str = "logins",
) -> SqsRecord:
    """One record exactly as the Lambda SQS event source mapping delivers it."""
    attributes: dict[str, str] = {
        "ApproximateReceiveCount": str(receive_count),
        "SenderId": SENDER_ID,
        "ApproximateFirstReceiveTimestamp": str((sent_timestamp_ms or 0) + 37),
    }
    if sent_timestamp_ms is not None:
        attributes["SentTimestamp"] = str(sent_timestamp_ms)
    if queue_arn.endswith(".fifo"):
        attributes |= {
            "MessageGroupId": group,
            "SequenceNumber": "1",
            "MessageDeduplicationId": message_id,
        }
    message = {
        "MessageId": message_id,
        "ReceiptHandle": f"AQEB{uuid.uuid5(uuid.NAMESPACE_URL, message_id).hex}==",
        "Body": body,
        "Attributes": attributes,
        "MD5OfBody": hashlib.md5(
            body.encode("utf-8", "surrogatepass"), usedforsecurity=False
        ).hexdigest(),
    }
    return received_record(message, queue_arn)


def sqs_event(
    bodies: Sequence[str],
    *,
    queue_arn: str = DEFAULT_QUEUE_ARN,
    first_sent_ms: int = 1_764_000_000_000,
    seed: int = 0,
) -> SqsEvent:
    """An SQS event for the handler, one record per body, message ids deterministic."""
    rng = random.Random(seed)
    return {
        "Records": [
            sqs_record(
                body,
                message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                sent_timestamp_ms=first_sent_ms + i * 250,
                queue_arn=queue_arn,
            )
            for i, body in enumerate(bodies)
        ]
    }
