"""SQS adapter: the one module that talks to SQS; messages leave it as Lambda event records,
errors as one-line :class:`SqsError` from :func:`call_sqs` (docs/drain.md, "Any SQS endpoint")."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from login_etl.errors import (
    CredentialsRejected,
    EndpointUnreachable,
    NotUnderstood,
    QueueNotFound,
    SqsError,
)

if TYPE_CHECKING:  # type information only: mypy-boto3-sqs is a development dependency
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

Record = dict[str, Any]
"""One record of a Lambda SQS event."""
Protocol = Literal["json", "query"]

MAX_PER_CALL: Final = 10  # SQS limit for ReceiveMessage / *Batch entries
QUERY_MODEL_PATH: Final = Path(__file__).resolve().parent / "data"
"""A botocore data path: ``sqs/2012-11-05/service-2.json.gz`` of botocore 1.34.89."""
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")
_QUERY_ENDPOINTS: set[str] = set()  # endpoints found to speak only query (asked once)
# SQS's error codes, by what they mean here (see call_sqs).
# fmt: off
_NOT_FOUND: Final = frozenset(
    {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue"}
)
_NOT_UNDERSTOOD: Final = frozenset({
    "InvalidAction", "MissingAction", "UnknownOperationException", "InternalFailure",
    "UnsupportedOperation", "NotImplemented",
})
_CREDENTIALS: Final = frozenset({
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidSecurity", "IncompleteSignature", "AccessDenied",
    "AccessDeniedException",
})
# fmt: on


@dataclass(frozen=True, slots=True)
class QueueInfo:
    url: str
    arn: str
    region: str
    visibility_timeout: int


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """An entry SQS refused in a *Batch call (``sender_fault``: asking again will not help)."""

    index: int
    code: str
    sender_fault: bool


@dataclass(frozen=True, slots=True)
class ClientOptions:
    endpoint_url: str | None
    region: str | None
    wait_seconds: int
    protocol: Protocol = "json"

    def make_client(self, *, retry: bool = True) -> SQSClient:
        """A new client: one per worker, so connection pools are not shared."""
        session = botocore.session.Session()
        if self.protocol == "query":
            # This session only: every other one in the process keeps botocore's JSON model.
            session.set_config_variable("data_path", str(QUERY_MODEL_PATH))
            session.register("provide-client-params.sqs.ReceiveMessage", _legacy_attribute_names)
        if session.get_credentials() is None and _is_loopback(self.endpoint_url):
            # LocalStack and moto accept any key; never done for a real AWS endpoint.
            session.set_credentials("test", "test")
        config = Config(
            connect_timeout=3,
            # A long poll holds the response for WaitTimeSeconds; never time out before it.
            read_timeout=self.wait_seconds + 10,
            retries={"mode": "standard", "total_max_attempts": 4 if retry else 1},
        )
        client = call_sqs(
            "create the SQS client",
            lambda: session.create_client(
                "sqs", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            ),
        )
        return cast("SQSClient", client)


def _legacy_attribute_names(**kwargs: Any) -> None:
    """The query model's legacy ``AttributeNames``, all LocalStack < 3.0 knows (docs/drain.md)."""
    params: dict[str, Any] = kwargs["params"]
    if (names := params.pop("MessageSystemAttributeNames", None)) is not None:
        params["AttributeNames"] = [*params.get("AttributeNames", []), *names]


class SqsQueue:
    """One queue, one client. Not shared between threads."""

    def __init__(self, info: QueueInfo, options: ClientOptions, client: SQSClient) -> None:
        self.info = info
        self._options = options
        self.client = client

    @classmethod
    def open(
        cls, url: str, *, endpoint_url: str | None, region: str | None, wait_seconds: int = 20
    ) -> SqsQueue:
        """Check the queue exists, read its ARN and visibility timeout, pick the protocol."""
        if region is None and botocore.session.Session().get_config_variable("region") is None:
            # Neither --region nor AWS_REGION / a profile: the queue URL may name it.
            region = region_from_url(url) or ("us-east-1" if _is_loopback(url) else None)
        protocol: Protocol = "query" if endpoint_url in _QUERY_ENDPOINTS else "json"
        options, client, attributes = _choose_protocol(
            ClientOptions(endpoint_url, region, wait_seconds, protocol),
            lambda c: _attributes(c, url, "QueueArn", "VisibilityTimeout"),
        )
        arn = str(attributes["QueueArn"])
        region = arn.split(":")[3] if arn.count(":") >= 5 else (region or "")
        timeout = int(attributes.get("VisibilityTimeout", 30))
        return cls(QueueInfo(url, arn, region, timeout), options, client)

    @property
    def protocol(self) -> Protocol:
        """``json`` (AWS, LocalStack 3.0 and later, moto) or ``query`` (older endpoints)."""
        return self._options.protocol

    def clone(self) -> SqsQueue:
        """The same queue with its own client (for another worker thread)."""
        return SqsQueue(self.info, self._options, self._options.make_client())

    def _call[T](self, what: str, call: Callable[[SQSClient], T]) -> T:
        return call_sqs(what, lambda: call(self.client), queue_url=self.info.url)

    def receive(
        self, max_messages: int, *, wait_seconds: int, visibility_timeout: int
    ) -> list[Record]:
        """One ReceiveMessage call (long poll), as Lambda event records."""
        response = self._call(
            "ReceiveMessage",
            lambda c: c.receive_message(
                QueueUrl=self.info.url,
                MaxNumberOfMessages=max(1, min(MAX_PER_CALL, max_messages)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_timeout,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ),
        )
        return [to_event_record(m, self.info) for m in response.get("Messages", [])]

    def send_batch(self, entries: Sequence[Any]) -> set[str]:
        """One SendMessageBatch (at most 10 entries); the ``Id``s SQS accepted."""
        response = self._call(
            "SendMessageBatch",
            lambda c: c.send_message_batch(QueueUrl=self.info.url, Entries=list(entries)),
        )
        return {ok["Id"] for ok in response.get("Successful", [])}

    def delete(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """DeleteMessageBatch; returns the messageIds SQS did not delete."""
        failed: list[str] = []
        for chunk in chunks(records):
            response = self._call(
                "DeleteMessageBatch",
                lambda c, chunk=chunk: c.delete_message_batch(  # type: ignore[misc]
                    QueueUrl=self.info.url, Entries=_entries(chunk)
                ),
            )
            failed += [str(chunk[int(f["Id"])]["messageId"]) for f in response.get("Failed", [])]
        return failed

    def change_visibility(
        self, chunk: Sequence[Mapping[str, Any]], seconds: int
    ) -> list[EntryFailure]:
        """One ChangeMessageVisibilityBatch (at most 10 records); the entries SQS refused."""
        if len(chunk) > MAX_PER_CALL:
            raise ValueError(f"at most {MAX_PER_CALL} records per call")
        entries = [e | {"VisibilityTimeout": seconds} for e in _entries(chunk)]
        response = self._call(
            "ChangeMessageVisibilityBatch",
            lambda c: c.change_message_visibility_batch(QueueUrl=self.info.url, Entries=entries),
        )
        return [
            EntryFailure(int(f["Id"]), str(f.get("Code", "?")), bool(f.get("SenderFault")))
            for f in response.get("Failed", [])
        ]

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) as SQS approximates them."""
        return queue_counts(self.client, self.info.url)

    def source_queues(self) -> list[str]:
        """The URLs of the queues whose redrive policy names this one as their DLQ."""
        return self._call(
            "ListDeadLetterSourceQueues",
            lambda c: c.list_dead_letter_source_queues(QueueUrl=self.info.url),
        ).get("queueUrls", [])

    def start_move_task(self, destination_arn: str) -> None:
        """StartMessageMoveTask from this queue (a DLQ); :class:`NotUnderstood` if none."""
        self._call(
            "StartMessageMoveTask",
            lambda c: c.start_message_move_task(
                SourceArn=self.info.arn, DestinationArn=destination_arn
            ),
        )

    def move_task(self) -> Mapping[str, Any]:
        """The latest message move task from this queue ({} if none)."""
        tasks = self._call(
            "ListMessageMoveTasks",
            lambda c: c.list_message_move_tasks(SourceArn=self.info.arn, MaxResults=1),
        ).get("Results", [])
        return tasks[0] if tasks else {}


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
    parts = (urlsplit(url).hostname or "").split(".")
    return parts[1] if len(parts) >= 4 and parts[0] == "sqs" and "amazonaws" in parts else None


def _event_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:  # botocore gives bytes; the Lambda event carries base64
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def chunks[R](records: Sequence[R]) -> Iterator[Sequence[R]]:
    """``records`` in pieces of at most :data:`MAX_PER_CALL` (one *Batch call each)."""
    for start in range(0, len(records), MAX_PER_CALL):
        yield records[start : start + MAX_PER_CALL]


def _entries(chunk: Sequence[Mapping[str, Any]]) -> list[Any]:
    # Entry ids only need to be unique per call; the index maps failures back.
    return [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]


def _first_line(text: str) -> str:
    """The first line of an error message; nothing if it is a raw XML/HTML body."""
    lines = text.strip().splitlines()
    return "" if not lines or lines[0].startswith("<") else lines[0]


def _is_loopback(url: str | None) -> bool:
    return url is not None and urlsplit(url).hostname in _LOOPBACK


def _choose_protocol[T](
    options: ClientOptions, call: Callable[[SQSClient], T]
) -> tuple[ClientOptions, SQSClient, T]:
    """The first call in JSON, else in query (docs/drain.md, "Any SQS endpoint")."""
    if options.protocol == "json" and options.endpoint_url is not None:
        try:
            # One attempt: a server that does not speak JSON answers every retry the same.
            result = call(options.make_client(retry=False))
        except NotUnderstood as json_error:
            query = replace(options, protocol="query")
            client = query.make_client()
            try:
                result = call(client)
            except NotUnderstood:
                raise json_error from None
            except SqsError:  # an answer in query: its error is the real one
                _QUERY_ENDPOINTS.add(options.endpoint_url)
                raise
            _QUERY_ENDPOINTS.add(options.endpoint_url)
            return query, client, result
        except EndpointUnreachable:
            raise
        except SqsError:  # an SQS error or a transient one: retry as usual
            pass
        else:
            return options, options.make_client(), result
    client = options.make_client()
    return options, client, call(client)


def call_sqs[T](what: str, call: Callable[[], T], *, queue_url: str | None = None) -> T:
    """Run one SQS call; translate failures into one-line :class:`SqsError` messages."""
    try:
        return call()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "?"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = _first_line(str(error.response.get("Error", {}).get("Message", "")))
        detail = f"{code}: {text}" if text else code
        if code in _NOT_FOUND:
            raise QueueNotFound(f"queue {queue_url} does not exist ({code})") from None
        if code in _CREDENTIALS or status == 403:  # 403: an error body botocore could not parse
            raise CredentialsRejected(
                f"SQS refused the AWS credentials ({detail}); "
                "check AWS_PROFILE / AWS_ACCESS_KEY_ID and the queue's permissions"
            ) from None
        # A bare HTTP status as the code: no SQS error at all.
        kind = NotUnderstood if code.isdigit() or code in _NOT_UNDERSTOOD else SqsError
        raise kind(f"SQS {what} failed: {detail}") from None
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
    except ResponseParserError as error:  # not in the protocol asked; the rest quotes the body
        raise NotUnderstood(f"SQS {what} failed: {_first_line(str(error))}") from None
    except BotoCoreError as error:
        raise SqsError(f"SQS {what} failed: {type(error).__name__}: {error}") from None
    except NotImplementedError:
        raise NotUnderstood(f"SQS {what} failed: not implemented by this endpoint") from None


def queue_counts(client: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS approximates them."""
    visible: Final = "ApproximateNumberOfMessages"
    in_flight: Final = "ApproximateNumberOfMessagesNotVisible"
    attributes = _attributes(client, queue_url, visible, in_flight)
    return int(attributes.get(visible, 0)), int(attributes.get(in_flight, 0))


def _attributes(client: SQSClient, url: str, *names: QueueAttributeNameType) -> Mapping[Any, str]:
    return call_sqs(
        "GetQueueAttributes",
        lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"],
        queue_url=url,
    )
