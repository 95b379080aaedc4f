"""Run by the 0.14.3 venv's Python 3.9 with its own boto3 1.24 (query protocol), not imported.

Reads one JSON request on stdin, prints one JSON answer:

- ``{"op": "load", "endpoint": URL, "queue": NAME, "records": [...], "recreate": true}``:
  what the exercise image's init script does -- ``create_queue(QueueName=NAME)``, then one
  ``send_message(QueueUrl=..., MessageBody=json.dumps(record))`` per record -- after deleting
  a queue of that name if ``recreate``. Answers ``{"queue_url": ...}``.
- ``{"op": "attributes", "endpoint": URL, "queue_url": URL}``: ``{"attributes": {...}}`` (All).

Stdlib + boto3 only, and Python 3.9 syntax: it never runs under the project's Python.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3


def _client(endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def load(request: dict[str, Any]) -> dict[str, Any]:
    sqs = _client(request["endpoint"])
    name = request["queue"]
    if request.get("recreate", True):
        existing = sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
        for url in existing:
            if url.rsplit("/", 1)[-1] == name:
                sqs.delete_queue(QueueUrl=url)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for record in request["records"]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
    return {"queue_url": queue_url}


def attributes(request: dict[str, Any]) -> dict[str, Any]:
    sqs = _client(request["endpoint"])
    answer = sqs.get_queue_attributes(QueueUrl=request["queue_url"], AttributeNames=["All"])
    return {"attributes": answer["Attributes"]}


def main() -> int:
    request = json.load(sys.stdin)
    ops = {"load": load, "attributes": attributes}
    json.dump(ops[request["op"]](request), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
