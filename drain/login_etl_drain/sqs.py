"""SQS adapter: the only module of the drain that talks to SQS.

It receives messages the way the Lambda event source mapping does and hands them on
as records of the Lambda SQS event (``messageId``, ``receiptHandle``, ``body``,
``attributes``, ``md5OfBody``, ``eventSourceARN``, ...), so ``process_batch`` sees
exactly what it sees in Lambda. Every boto3 / botocore error leaves this module as an
:class:`SqsError` with a one-line message (never a message body).

    queue = SqsQueue.open("http://127.0.0.1:4566/000000000000/login-queue",
                          endpoint_url="http://127.0.0.1:4566", region="us-east-1")
    records = queue.receive(10, wait_seconds=20, visibility_timeout=30)
    queue.delete(records)
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from .sqs_query import QuerySqsClient, is_query_error

Record = dict[str, Any]
"""One record of a Lambda SQS event."""

MAX_PER_CALL: Final = 10  # SQS limit for ReceiveMessage / *Batch entries
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")
_NOT_FOUND: Final = frozenset(
    ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue")
)
_UNKNOWN_REQUEST: Final = frozenset(
    ("InvalidAction", "MissingAction", "UnknownOperationException", "InternalFailure")
)
_CREDENTIALS: Final = frozenset(
    (
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidSecurity",
        "IncompleteSignature",
        "AccessDenied",
        "AccessDeniedException",
    )
)


class SqsError(RuntimeError):
    """An SQS call failed; the message is one line, safe to print."""


class QueueNotFound(SqsError):
    pass


class EndpointUnreachable(SqsError):
    pass


class CredentialsRejected(SqsError):
    pass


@dataclass(frozen=True, slots=True)
class QueueInfo:
    url: str
    arn: str
    region: str
    visibility_timeout: int

    @property
    def fifo(self) -> bool:
        return self.arn.endswith(".fifo")


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """An entry of a *Batch call that SQS refused: its index in the call, SQS's code, and
    whether SQS blames the request (``SenderFault``: asking again will not help)."""

    index: int
    code: str
    sender_fault: bool


@dataclass(frozen=True, slots=True)
class ClientOptions:
    endpoint_url: str | None
    region: str | None
    wait_seconds: int
    protocol: Protocol = "json"

    def make_client(self, *, retry: bool = True) -> Any:
        """A new client: one per worker, so connection pools are not shared."""
        session = boto3.session.Session(region_name=self.region)
        key = secret = None  # None: boto3's own chain (env, profile, instance role)
        if session.get_credentials() is None and _is_loopback(self.endpoint_url):
            # LocalStack and moto accept any key; spare users of the exercise's image from
            # configuring fake credentials. Never done for a real AWS endpoint.
            key = secret = "test"
        # A long poll holds the response for WaitTimeSeconds; never time out before it.
        read_timeout = self.wait_seconds + 10
        if self.protocol == "query" and self.endpoint_url is not None:
            credentials = Credentials(key, secret) if key and secret else session.get_credentials()
            return QuerySqsClient(
                self.endpoint_url,
                region=self.region or session.region_name or "us-east-1",
                credentials=credentials,
                read_timeout=read_timeout,
            )
        config = Config(
            connect_timeout=3,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": 3}
            if retry
            else {"mode": "standard", "total_max_attempts": 1},
        )
        return call_sqs(
            "create the SQS client",
            lambda: session.client(
                "sqs",
                endpoint_url=self.endpoint_url,
                config=config,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
            ),
        )


Protocol = Literal["json", "query"]
_QUERY_ENDPOINTS: set[str] = set()
"""Endpoints found to speak only the query protocol in this process (asked once)."""


class SqsQueue:
    """One queue, one client. Not shared between threads."""

    def __init__(self, info: QueueInfo, options: ClientOptions, client: Any = None) -> None:
        self.info = info
        self._options = options
        self._client = client if client is not None else options.make_client()

    @classmethod
    def open(
        cls, url: str, *, endpoint_url: str | None, region: str | None, wait_seconds: int = 20
    ) -> SqsQueue:
        """Check the queue exists and read what records need (ARN) and the visibility timeout.

        This first call also picks the protocol: an endpoint other than AWS's own that
        does not understand SQS's JSON protocol (LocalStack before 3.0) gets the query
        protocol from then on (:attr:`protocol` says which).
        """
        if region is None and boto3.session.Session().region_name is None:
            # Neither --region nor AWS_REGION / a profile: the queue URL may name it.
            region = region_from_url(url) or ("us-east-1" if _is_loopback(url) else None)
        options = ClientOptions(endpoint_url, region, wait_seconds)
        if endpoint_url in _QUERY_ENDPOINTS:
            options = replace(options, protocol="query")

        def first_call(client: Any) -> dict[str, Any]:
            return dict(
                client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"]
                )["Attributes"]
            )

        options, client, attributes = call_sqs(
            "GetQueueAttributes", lambda: _choose_protocol(options, first_call), queue_url=url
        )
        arn = str(attributes["QueueArn"])
        info = QueueInfo(
            url=url,
            arn=arn,
            region=arn.split(":")[3] if arn.count(":") >= 5 else (region or ""),
            visibility_timeout=int(attributes.get("VisibilityTimeout", 30)),
        )
        return cls(info, options, client)

    @property
    def protocol(self) -> Protocol:
        """``json`` (AWS, LocalStack 3.0 and later, moto) or ``query`` (older endpoints)."""
        return self._options.protocol

    @property
    def client(self) -> Any:
        """The SQS client (boto3's, or :class:`QuerySqsClient` with the same methods)."""
        return self._client

    def clone(self) -> SqsQueue:
        """The same queue with its own client (for another worker thread)."""
        return SqsQueue(self.info, self._options)

    def receive(
        self, max_messages: int, *, wait_seconds: int, visibility_timeout: int
    ) -> list[Record]:
        """One ReceiveMessage call (long poll), as Lambda event records."""
        response = call_sqs(
            "ReceiveMessage",
            lambda: self._client.receive_message(
                QueueUrl=self.info.url,
                MaxNumberOfMessages=max(1, min(MAX_PER_CALL, max_messages)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_timeout,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ),
            queue_url=self.info.url,
        )
        return [to_event_record(m, self.info) for m in response.get("Messages", [])]

    def delete(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """DeleteMessageBatch; returns the messageIds SQS did not delete."""
        failed: list[str] = []
        for chunk in _chunks(records):
            response = call_sqs(
                "DeleteMessageBatch",
                lambda chunk=chunk: self._client.delete_message_batch(  # type: ignore[misc]
                    QueueUrl=self.info.url, Entries=_entries(chunk)
                ),
                queue_url=self.info.url,
            )
            failed += [str(chunk[int(f["Id"])]["messageId"]) for f in response.get("Failed", [])]
        return failed

    def change_visibility(
        self, chunk: Sequence[Mapping[str, Any]], seconds: int
    ) -> list[EntryFailure]:
        """One ChangeMessageVisibilityBatch (at most 10 records): keep them hidden
        ``seconds`` more. Returns the entries SQS refused; raises SqsError if the call
        failed as a whole."""
        if len(chunk) > MAX_PER_CALL:
            raise ValueError(f"at most {MAX_PER_CALL} records per call")
        response = call_sqs(
            "ChangeMessageVisibilityBatch",
            lambda: self._client.change_message_visibility_batch(
                QueueUrl=self.info.url,
                Entries=[e | {"VisibilityTimeout": seconds} for e in _entries(chunk)],
            ),
            queue_url=self.info.url,
        )
        return [
            EntryFailure(int(f["Id"]), str(f.get("Code", "?")), bool(f.get("SenderFault")))
            for f in response.get("Failed", [])
        ]

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) as SQS approximates them."""
        return queue_counts(self._client, self.info.url)


def to_event_record(message: Mapping[str, Any], queue: QueueInfo) -> Record:
    """A ReceiveMessage message → a record of the Lambda SQS event (same keys, same casing)."""
    record: Record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _event_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": queue.region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def region_from_url(url: str) -> str | None:
    """``https://sqs.eu-west-1.amazonaws.com/...`` → ``eu-west-1``."""
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 4 and parts[0] == "sqs" and "amazonaws" in parts:
        return parts[1]
    return None


def _event_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:  # boto3 gives bytes; the Lambda event carries base64
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def _chunks(records: Sequence[Mapping[str, Any]]) -> Iterator[Sequence[Mapping[str, Any]]]:
    for start in range(0, len(records), MAX_PER_CALL):
        yield records[start : start + MAX_PER_CALL]


def _entries(chunk: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # Entry ids only need to be unique per call; the index maps failures back.
    return [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]


def _first_line(text: str) -> str:
    """The first line of an error message; nothing if it is a raw XML/HTML body."""
    lines = text.strip().splitlines()
    return "" if not lines or lines[0].startswith("<") else lines[0]


def _is_loopback(url: str | None) -> bool:
    return url is not None and urlsplit(url).hostname in _LOOPBACK


def _choose_protocol[T](
    options: ClientOptions, call: Callable[[Any], T]
) -> tuple[ClientOptions, Any, T]:
    """Make the first call in JSON; if the endpoint does not understand it, in query.

    Only an endpoint other than AWS's own is asked in query, and only when the JSON
    call failed without an SQS error code (LocalStack 0.14: HTTP 500, body ``{}``). If
    the query call is not understood either, the JSON call's error stands.
    """
    if options.protocol == "query" or options.endpoint_url is None:
        client = options.make_client()
        return options, client, call(client)
    try:
        # One attempt: a server that does not speak JSON answers every retry the same.
        result = call(options.make_client(retry=False))
    except ClientError as json_error:
        if not _protocol_mismatch(json_error):
            client = options.make_client()  # an SQS error or a transient one: retry as usual
            return options, client, call(client)
        query = replace(options, protocol="query")
        client = query.make_client()
        try:
            result = call(client)
        except ClientError as query_error:
            if is_query_error(query_error):  # it speaks query: its error is the real one
                _QUERY_ENDPOINTS.add(str(options.endpoint_url))
                raise
            raise json_error from None
        _QUERY_ENDPOINTS.add(str(options.endpoint_url))
        return query, client, result
    return options, options.make_client(), result


def _protocol_mismatch(error: ClientError) -> bool:
    """A JSON-protocol call refused without an SQS error code, or as an unknown action."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code.isdigit() or code in _UNKNOWN_REQUEST


def call_sqs[T](what: str, call: Callable[[], T], *, queue_url: str | None = None) -> T:
    """Run one SQS call; translate failures into one-line :class:`SqsError` messages."""
    try:
        return call()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "?"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = _first_line(str(error.response.get("Error", {}).get("Message", "")))
        if code in _NOT_FOUND:
            raise QueueNotFound(f"queue {queue_url} does not exist ({code})") from None
        if code in _CREDENTIALS or status == 403:  # 403: an error body botocore could not parse
            raise CredentialsRejected(
                f"SQS refused the AWS credentials ({code}{': ' + text if text else ''}); "
                "check AWS_PROFILE / AWS_ACCESS_KEY_ID and the queue's permissions"
            ) from None
        raise SqsError(f"SQS {what} failed: {code}{': ' + text if text else ''}") from None
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        raise EndpointUnreachable(f"cannot reach the SQS endpoint: {error}") from None
    except ReadTimeoutError as error:
        raise EndpointUnreachable(f"the SQS endpoint stopped answering: {error}") from None
    except NoCredentialsError:
        raise CredentialsRejected(
            "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        ) from None
    except NoRegionError:
        raise SqsError("no AWS region: pass --region or set AWS_REGION") from None
    except BotoCoreError as error:
        raise SqsError(f"SQS {what} failed: {type(error).__name__}: {error}") from None


def queue_counts(client: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS approximates them."""
    attributes = call_sqs(
        "GetQueueAttributes",
        lambda: client.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"],
        queue_url=queue_url,
    )
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )
