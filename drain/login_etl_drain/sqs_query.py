"""SQS's query protocol, for endpoints that speak nothing else (LocalStack before 3.0).

boto3/botocore since late 2023 speak only SQS's JSON protocol, and their SQS model no
longer carries what the older query protocol needs, so this module speaks it itself:
form-encoded ``Action=…&Version=2012-11-05`` requests, signed with botocore's
:class:`~botocore.auth.SigV4Auth` and sent with botocore's HTTP session, and XML
responses parsed here. :class:`QuerySqsClient` offers the boto3 SQS client's methods
that the drain, the redrive and the local tools call, with boto3's parameter names and
response shapes, and raises botocore's :class:`~botocore.exceptions.ClientError` for an
error response, so :func:`login_etl_drain.sqs.call_sqs` treats both clients alike.

    client = QuerySqsClient("http://127.0.0.1:4566", region="us-east-1",
                            credentials=Credentials("test", "test"))
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])

Which endpoint gets which client is decided in :mod:`login_etl_drain.sqs`.
"""

from __future__ import annotations

import base64
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError
from botocore.httpsession import URLLib3Session

API_VERSION: Final = "2012-11-05"
_CONTENT_TYPE: Final = "application/x-www-form-urlencoded; charset=utf-8"
_ATTEMPTS: Final = 3
_RETRY_CODES: Final = frozenset(
    ("Throttling", "ThrottlingException", "RequestThrottled", "ServiceUnavailable")
)

# boto3's parameter name → the query protocol's, where they differ. Lists become
# ``Name.1, Name.2, …``; maps ``Name.N.Name`` / ``Name.N.Value`` (tags: Key / Value).
_LIST_NAMES: Final = {
    "AttributeNames": "AttributeName",
    # The legacy name: SQS accepts it for system attributes, and LocalStack before 3.0
    # knows no other (it ignores MessageSystemAttributeName.N and returns none).
    "MessageSystemAttributeNames": "AttributeName",
    "MessageAttributeNames": "MessageAttributeName",
}
_MAP_NAMES: Final = {
    "Attributes": "Attribute",
    "MessageAttributes": "MessageAttribute",
    "MessageSystemAttributes": "MessageSystemAttribute",
    "tags": "Tag",
}


def serialize(action: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The form fields of one request (``Action``, ``Version`` and the flattened params)."""
    fields = {"Action": action, "Version": API_VERSION}
    for name, value in params.items():
        if name == "Entries":  # the *Batch operations
            for n, entry in enumerate(value, 1):
                _flatten_structure(fields, f"{action}RequestEntry.{n}", entry)
        else:
            _flatten_member(fields, name, name, value)
    return fields


def _flatten_structure(fields: dict[str, str], prefix: str, value: Mapping[str, Any]) -> None:
    for name, member in value.items():
        _flatten_member(fields, f"{prefix}.{_MAP_NAMES.get(name, name)}", name, member)


def _flatten_member(fields: dict[str, str], key: str, name: str, value: Any) -> None:
    if name in _LIST_NAMES:
        target = _LIST_NAMES[name]  # two boto3 lists may share one (AttributeName)
        start = sum(1 for k in fields if k.startswith(f"{target}."))
        for n, item in enumerate(value, start + 1):
            fields[f"{target}.{n}"] = _scalar(item)
    elif name in _MAP_NAMES:
        base = key if key != name else _MAP_NAMES[name]
        key_name, value_name = ("Key", "Value") if name == "tags" else ("Name", "Value")
        for n, (map_key, map_value) in enumerate(value.items(), 1):
            fields[f"{base}.{n}.{key_name}"] = str(map_key)
            if isinstance(map_value, Mapping):  # a message attribute value: DataType, ...
                _flatten_structure(fields, f"{base}.{n}.{value_name}", map_value)
            else:
                fields[f"{base}.{n}.{value_name}"] = _scalar(map_value)
    elif isinstance(value, Mapping):
        _flatten_structure(fields, key, value)
    else:
        fields[key] = _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


# --- responses -------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ET.Element, name: str) -> str | None:
    found = _children(element, name)
    return None if not found else (found[0].text or "")


def _fields(element: ET.Element, names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = _text(element, name)
        if value is not None:
            out[name] = value
    return out


def _name_value_map(element: ET.Element, tag: str) -> dict[str, str]:
    return {
        _text(item, "Name") or "": _text(item, "Value") or "" for item in _children(element, tag)
    }


def _message(element: ET.Element) -> dict[str, Any]:
    message = _fields(
        element, ("MessageId", "ReceiptHandle", "MD5OfBody", "Body", "MD5OfMessageAttributes")
    )
    attributes = _name_value_map(element, "Attribute")
    if attributes:
        message["Attributes"] = attributes
    message_attributes: dict[str, dict[str, Any]] = {}
    for item in _children(element, "MessageAttribute"):
        values = _children(item, "Value")
        value = _fields(values[0], ("DataType", "StringValue", "BinaryValue")) if values else {}
        if "BinaryValue" in value:  # base64 on the wire, bytes in boto3
            value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
        message_attributes[_text(item, "Name") or ""] = value
    if message_attributes:
        message["MessageAttributes"] = message_attributes
    return message


_SENT_FIELDS: Final = (
    "MessageId",
    "MD5OfMessageBody",
    "MD5OfMessageAttributes",
    "MD5OfMessageSystemAttributes",
    "SequenceNumber",
)


def _batch(entry_fields: Sequence[str]) -> Callable[[ET.Element, str], dict[str, Any]]:
    def parse(result: ET.Element, action: str) -> dict[str, Any]:
        failed = [
            _fields(e, ("Id", "SenderFault", "Code", "Message"))
            for e in _children(result, "BatchResultErrorEntry")
        ]
        for entry in failed:
            entry["SenderFault"] = entry.get("SenderFault", "").lower() == "true"
        return {
            "Successful": [
                _fields(e, ("Id", *entry_fields)) for e in _children(result, f"{action}ResultEntry")
            ],
            "Failed": failed,
        }

    return parse


def _move_tasks(result: ET.Element, action: str) -> dict[str, Any]:
    tasks = []
    for entry in _children(result, "ListMessageMoveTasksResultEntry"):
        task: dict[str, Any] = _fields(
            entry, ("TaskHandle", "Status", "SourceArn", "DestinationArn", "FailureReason")
        )
        for name in (
            "MaxNumberOfMessagesPerSecond",
            "ApproximateNumberOfMessagesMoved",
            "ApproximateNumberOfMessagesToMove",
            "StartedTimestamp",
        ):
            value = _text(entry, name)
            if value:
                task[name] = int(value)
        tasks.append(task)
    return {"Results": tasks}


_Parser = Callable[[ET.Element, str], dict[str, Any]]
_PARSERS: Final[dict[str, _Parser]] = {
    "GetQueueUrl": lambda r, a: _fields(r, ("QueueUrl",)),
    "CreateQueue": lambda r, a: _fields(r, ("QueueUrl",)),
    "GetQueueAttributes": lambda r, a: {"Attributes": _name_value_map(r, "Attribute")},
    "ReceiveMessage": lambda r, a: {"Messages": [_message(m) for m in _children(r, "Message")]},
    "SendMessage": lambda r, a: _fields(r, _SENT_FIELDS),
    "SendMessageBatch": _batch(_SENT_FIELDS),
    "DeleteMessageBatch": _batch(()),
    "ChangeMessageVisibilityBatch": _batch(()),
    "ListQueues": lambda r, a: {"QueueUrls": [q.text or "" for q in _children(r, "QueueUrl")]},
    "ListDeadLetterSourceQueues": lambda r, a: {
        "queueUrls": [q.text or "" for q in _children(r, "QueueUrl")]
    },
    "StartMessageMoveTask": lambda r, a: _fields(r, ("TaskHandle",)),
    "ListMessageMoveTasks": _move_tasks,
}
"""Actions with a result; the rest (DeleteMessage, DeleteQueue, PurgeQueue, ...) return {}."""


def parse_response(action: str, status: int, body: bytes) -> dict[str, Any]:
    """A successful response as boto3 shapes it; an error response as ClientError."""
    try:
        root = ET.fromstring(body) if body.strip() else None  # noqa: S314 - see the import
    except ET.ParseError:
        root = None
    if status >= 300 or root is None or _local(root.tag) == "ErrorResponse":
        raise _client_error(action, status, root)
    results = [child for child in root if _local(child.tag) == f"{action}Result"]
    parsed = _PARSERS[action](results[0], action) if action in _PARSERS and results else {}
    metadata: dict[str, Any] = {"HTTPStatusCode": status}
    request_id = next((e.text for e in root.iter() if _local(e.tag) == "RequestId"), None)
    if request_id:
        metadata["RequestId"] = request_id
    return {**parsed, "ResponseMetadata": metadata}


def _client_error(action: str, status: int, root: ET.Element | None) -> ClientError:
    """What botocore raises for the same response: Code, Message and the HTTP status."""
    error: dict[str, str] = {"Code": str(status), "Message": ""}
    if root is not None:
        found = next((e for e in root.iter() if _local(e.tag) == "Error"), None)
        if found is not None:
            error.update(_fields(found, ("Type", "Code", "Message")))
    response: Any = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, action)


def is_query_error(error: ClientError) -> bool:
    """Whether an error came as a query-protocol ``ErrorResponse`` with an error code."""
    return not str(error.response.get("Error", {}).get("Code", "")).isdigit()


# --- the client ------------------------------------------------------------------------


class QuerySqsClient:
    """The boto3 SQS client's methods the project uses, over the query protocol.

    Not shared between threads (like a boto3 client in this project: one per worker).
    Retries a call whose connection could not be made, or that the server answered
    with a throttling or 5xx error, up to three attempts in all, as boto3's standard
    retry mode does.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str,
        credentials: Credentials | None,
        connect_timeout: float = 3,
        read_timeout: float = 30,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/") + "/"
        self._region = region
        self._credentials = credentials
        timeout: Any = (connect_timeout, read_timeout)  # botocore's own clients pass a pair
        self._http = URLLib3Session(timeout=timeout, proxies={})

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """One SQS action with boto3's parameter names; the response as boto3 returns it."""
        body = urlencode(serialize(action, params))
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                status, content = self._send(body)
                return parse_response(action, status, content)
            except ClientError as error:
                code = str(error.response["Error"]["Code"])
                status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
                retry = code in _RETRY_CODES or (status >= 500 and code != "InvalidAction")
                if not retry or attempt == _ATTEMPTS:
                    raise
            except (EndpointConnectionError, ConnectTimeoutError):
                if attempt == _ATTEMPTS:
                    raise
            time.sleep(random.uniform(0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    def _send(self, body: str) -> tuple[int, bytes]:
        request = AWSRequest(
            method="POST",
            url=self.endpoint_url,
            data=body.encode("utf-8"),
            headers={"Content-Type": _CONTENT_TYPE},
        )
        if self._credentials is not None:
            # Frozen per request: refreshable credentials (an assumed role) stay current.
            frozen = self._credentials.get_frozen_credentials()
            SigV4Auth(frozen, "sqs", self._region).add_auth(request)
        response = self._http.send(request.prepare())
        return int(response.status_code), bytes(response.content)

    def close(self) -> None:
        self._http.close()

    # The methods of boto3's SQS client that the project calls, by their boto3 names.

    def get_queue_url(self, **params: Any) -> dict[str, Any]:
        return self.call("GetQueueUrl", **params)

    def get_queue_attributes(self, **params: Any) -> dict[str, Any]:
        return self.call("GetQueueAttributes", **params)

    def create_queue(self, **params: Any) -> dict[str, Any]:
        return self.call("CreateQueue", **params)

    def delete_queue(self, **params: Any) -> dict[str, Any]:
        return self.call("DeleteQueue", **params)

    def purge_queue(self, **params: Any) -> dict[str, Any]:
        return self.call("PurgeQueue", **params)

    def list_queues(self, **params: Any) -> dict[str, Any]:
        return self.call("ListQueues", **params)

    def receive_message(self, **params: Any) -> dict[str, Any]:
        return self.call("ReceiveMessage", **params)

    def send_message(self, **params: Any) -> dict[str, Any]:
        return self.call("SendMessage", **params)

    def send_message_batch(self, **params: Any) -> dict[str, Any]:
        return self.call("SendMessageBatch", **params)

    def delete_message(self, **params: Any) -> dict[str, Any]:
        return self.call("DeleteMessage", **params)

    def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        return self.call("DeleteMessageBatch", **params)

    def change_message_visibility_batch(self, **params: Any) -> dict[str, Any]:
        return self.call("ChangeMessageVisibilityBatch", **params)

    def list_dead_letter_source_queues(self, **params: Any) -> dict[str, Any]:
        return self.call("ListDeadLetterSourceQueues", **params)

    def start_message_move_task(self, **params: Any) -> dict[str, Any]:
        return self.call("StartMessageMoveTask", **params)

    def list_message_move_tasks(self, **params: Any) -> dict[str, Any]:
        return self.call("ListMessageMoveTasks", **params)
