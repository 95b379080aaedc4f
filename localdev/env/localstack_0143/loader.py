"""Fill a queue on LocalStack 0.14.3 the way the exercise's image does, and read it back.

The image's init script creates ``login-queue`` and sends one message per record
(``json.dumps(record)``) with the image's 2022 boto3. The same calls go here through the project's
own botocore client in the query protocol (0.14.3 speaks nothing else): the client
``login_etl_drain.sqs`` gives such an endpoint, with botocore 1.34.89's SQS model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from localdev.traffic import exercise_queue_records
from login_etl_drain.sqs import ClientOptions

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QUEUE_NAME = "login-queue"

Record = Mapping[str, str | None]


def client(endpoint: str, *, retry: bool = True) -> SQSClient:
    """A query-protocol SQS client for ``endpoint`` (0.14.3 checks no signatures)."""
    return ClientOptions(endpoint, "us-east-1", wait_seconds=20, protocol="query").make_client(
        retry=retry
    )


def load_queue(
    endpoint: str,
    name: str = QUEUE_NAME,
    records: Sequence[Record] | None = None,
    *,
    recreate: bool = True,
) -> str:
    """(Re)create queue ``name`` and send ``records`` (default: the exercise's 100). Its URL."""
    sqs = client(endpoint)
    if recreate:
        for url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
            if url.rsplit("/", 1)[-1] == name:
                sqs.delete_queue(QueueUrl=url)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for record in exercise_queue_records() if records is None else records:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
    return queue_url


def queue_attributes(endpoint: str, queue_url: str) -> dict[str, str]:
    """GetQueueAttributes(All)."""
    answer = client(endpoint).get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    return {str(name): value for name, value in answer["Attributes"].items()}
