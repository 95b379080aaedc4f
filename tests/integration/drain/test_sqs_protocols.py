"""The adapter's clients of both protocols and the protocol choice, against moto's server
over HTTP.

moto answers both protocols, so it checks the query client (the project's botocore with
botocore 1.34.89's SQS model, shipped in ``login_etl_drain/data``) independently of LocalStack;
LocalStack 0.14.3 itself (query only) is in ``tests/e2e/exercise``.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from login_etl.errors import NotUnderstood, QueueNotFound, SqsError
from login_etl_drain import cli, sqs
from login_etl_drain.sqs import ClientOptions, SqsQueue, call_sqs
from tests.support.drain import BAD_MESSAGE, Db, login_bodies

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def query_client(endpoint: str) -> Any:
    return ClientOptions(endpoint, "us-east-1", 0, protocol="query").make_client()


@pytest.fixture
def client(moto_endpoint: str) -> Any:
    return query_client(moto_endpoint)


@pytest.fixture(autouse=True)
def fresh_protocol_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs, "_QUERY_ENDPOINTS", set())


class QueryOnlyFront:
    """An endpoint that answers JSON-protocol requests as LocalStack 0.14 does (HTTP 500,
    body ``{}``) and forwards query-protocol requests to moto."""

    def __init__(self, backend: str) -> None:
        self.json_requests = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if "X-Amz-Target" in self.headers:
                    front.json_requests += 1
                    status, content = 500, b"{}"
                else:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    request = urllib.request.Request(backend + self.path, body, headers)
                    try:
                        with urllib.request.urlopen(request, timeout=30) as response:
                            status, content = response.status, response.read()
                    except urllib.error.HTTPError as error:
                        status, content = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def query_only(moto_endpoint: str) -> Iterator[QueryOnlyFront]:
    front = QueryOnlyFront(moto_endpoint)
    yield front
    front.close()


def new_queue(client: Any, name: str, **attributes: str) -> str:
    return str(client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


# --- requests and responses ------------------------------------------------------------


class FixedAnswer:
    """An endpoint that answers every request with one status and body."""

    def __init__(self) -> None:
        self.answer = (200, b"")
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, content = front.answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def fixed() -> Iterator[FixedAnswer]:
    endpoint = FixedAnswer()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


_NOT_FOUND_XML = (
    b'<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/'
    b'2012-11-05/"><Error><Type>Sender</Type><Code>AWS.SimpleQueueService.'
    b"NonExistentQueue</Code><Message>no such queue</Message></Error>"
    b"<RequestId>r</RequestId></ErrorResponse>"
)


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (500, b"{}", NotUnderstood, "invalid XML"),  # what LocalStack 0.14 says to JSON
        (502, b"<html>Bad gateway SECRET-BODY</html>", NotUnderstood, "failed: 502"),
        (500, b"not XML SECRET-BODY\nsecond line", NotUnderstood, "invalid XML"),
        (200, b"SECRET-BODY", NotUnderstood, "invalid XML"),
        (400, _NOT_FOUND_XML, QueueNotFound, "(AWS.SimpleQueueService.NonExistentQueue)"),
    ],
)
def test_query_error_answers_become_one_line_errors_without_the_body(
    fixed: FixedAnswer, status: int, body: bytes, error: type[SqsError], text: str
) -> None:
    fixed.answer = (status, body)
    client = ClientOptions(fixed.url, "us-east-1", 0, protocol="query").make_client(retry=False)
    with pytest.raises(SqsError) as raised:
        call_sqs(
            "GetQueueUrl", lambda: client.get_queue_url(QueueName="q"), queue_url=fixed.url + "/q"
        )
    assert type(raised.value) is error
    message = str(raised.value)
    assert text in message
    assert "\n" not in message and "SECRET-BODY" not in message and "<" not in message


def test_an_endpoint_that_speaks_neither_protocol_keeps_the_json_error(
    fixed: FixedAnswer,
) -> None:
    fixed.answer = (500, b"{}")  # to the JSON call, and to the query call (not XML)
    url = f"{fixed.url}/000000000000/q"
    with pytest.raises(NotUnderstood) as raised:
        SqsQueue.open(url, endpoint_url=fixed.url, region="us-east-1", wait_seconds=0)
    assert str(raised.value) == "SQS GetQueueAttributes failed: 500"
    assert not sqs._QUERY_ENDPOINTS


def test_the_query_model_is_for_its_own_sessions_only(moto_endpoint: str) -> None:
    query = ClientOptions(moto_endpoint, "us-east-1", 0, protocol="query").make_client()
    json_client = ClientOptions(moto_endpoint, "us-east-1", 0).make_client()
    assert query.meta.service_model.protocol == "query"
    assert json_client.meta.service_model.protocol == "json"
    assert (sqs.QUERY_MODEL_PATH / "sqs" / "2012-11-05" / "service-2.json.gz").is_file()
    assert (sqs.QUERY_MODEL_PATH / "NOTICE").read_text().startswith("Botocore")


def test_every_call_the_drain_and_redrive_make(client: Any) -> None:
    dlq = new_queue(client, "query-calls-dlq")
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = new_queue(client, "query-calls", VisibilityTimeout="7", RedrivePolicy=policy)
    assert client.get_queue_url(QueueName="query-calls")["QueueUrl"] == url
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "7"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
    assert client.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]

    sent = client.send_message(
        QueueUrl=url,
        MessageBody="one",
        MessageAttributes={
            "text": {"DataType": "String", "StringValue": "v"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    batch = client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "two"}, {"Id": "b", "MessageBody": "3"}]
    )
    assert sorted(e["Id"] for e in batch["Successful"]) == ["a", "b"]
    assert batch.get("Failed", []) == []  # botocore leaves out an empty list

    messages = client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        VisibilityTimeout=30,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert sorted(m["Body"] for m in messages) == ["3", "one", "two"]
    first = next(m for m in messages if m["MessageId"] == sent["MessageId"])
    assert first["MessageAttributes"] == {
        "text": {"DataType": "String", "StringValue": "v"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    assert first["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    # Real SQS and moto: milliseconds (LocalStack 0.14.3: seconds, tests/e2e/exercise).
    assert int(first["Attributes"]["SentTimestamp"]) > 1_000_000_000_000

    handles = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    changed = client.change_message_visibility_batch(
        QueueUrl=url, Entries=[h | {"VisibilityTimeout": 60} for h in handles]
    )
    assert len(changed["Successful"]) == 3
    deleted = client.delete_message_batch(
        QueueUrl=url, Entries=[*handles[:2], {"Id": "x", "ReceiptHandle": "not-a-handle"}]
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["0", "1"]
    assert [(f["Id"], f["SenderFault"]) for f in deleted["Failed"]] == [("x", True)]
    assert client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"] == {"ApproximateNumberOfMessagesNotVisible": "1"}


def test_a_missing_queue_is_the_adapters_queue_not_found(client: Any, moto_endpoint: str) -> None:
    url = f"{moto_endpoint}/123456789012/no-such-queue"
    with pytest.raises(QueueNotFound, match="does not exist"):
        call_sqs(
            "GetQueueAttributes",
            lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
            queue_url=url,
        )


# --- which protocol an endpoint gets ----------------------------------------------------


def test_an_endpoint_that_speaks_json_keeps_it(client: Any, moto_endpoint: str) -> None:
    url = new_queue(client, "speaks-json")
    queue = SqsQueue.open(url, endpoint_url=moto_endpoint, region="us-east-1", wait_seconds=0)
    assert queue.protocol == "json"
    assert queue.client.meta.service_model.protocol == "json"  # botocore's own model


def test_an_endpoint_that_refuses_json_gets_query_once(
    client: Any, query_only: QueryOnlyFront
) -> None:
    url = new_queue(client, "query-only")
    queue = SqsQueue.open(url, endpoint_url=query_only.url, region="us-east-1", wait_seconds=0)
    assert queue.protocol == "query"
    assert queue.client.meta.service_model.protocol == "query"
    assert query_only.json_requests == 1  # one attempt, no retries of a hopeless request
    assert queue.clone().protocol == "query"
    again = SqsQueue.open(url, endpoint_url=query_only.url, region="us-east-1", wait_seconds=0)
    assert again.protocol == "query"
    assert query_only.json_requests == 1  # remembered for the endpoint
    assert queue.counts() == (0, 0)


def test_a_missing_queue_on_a_query_only_endpoint_says_so(query_only: QueryOnlyFront) -> None:
    url = f"{query_only.url}/123456789012/nothing-here"
    with pytest.raises(QueueNotFound, match="nothing-here does not exist"):
        SqsQueue.open(url, endpoint_url=query_only.url, region="us-east-1", wait_seconds=0)


def test_aws_itself_is_never_asked_in_query(moto_sqs: Any) -> None:
    # mock_aws answers as AWS; a missing queue there must not trigger a protocol probe.
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/missing"
    with pytest.raises(QueueNotFound):
        SqsQueue.open(url, endpoint_url=None, region="us-east-1", wait_seconds=0)
    assert not sqs._QUERY_ENDPOINTS


def test_drain_over_the_query_protocol(
    client: Any,
    query_only: QueryOnlyFront,
    db: Db,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = new_queue(client, "query-drain", VisibilityTimeout="30")
    bodies = login_bodies(24, seed=5)
    bodies.insert(3, json.dumps(BAD_MESSAGE))
    for body in bodies:
        client.send_message(QueueUrl=url, MessageBody=body)

    code = cli.main(
        [
            "drain",
            "--queue-url",
            url,
            "--endpoint-url",
            query_only.url,
            "--region",
            "us-east-1",
            "--wait-seconds",
            "0",
            "--concurrency",
            "2",
        ]
    )

    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.err
    assert db.count() == 24
    # Two workers receive at once, and moto's ReceiveMessage is not atomic across threads: on a
    # loaded machine both can get the same message (seen: received 26, duplicates 1). SQS is
    # at-least-once anyway; the ledger must turn each extra delivery into a duplicate.
    summary = re.search(
        r"received (\d+) \| written 24 \| duplicates (\d+) \| rejected 1 ", captured.out
    )
    assert summary, captured.out
    assert int(summary[1]) == 25 + int(summary[2])
    notes = [line for line in captured.err.splitlines() if "query protocol" in line]
    assert notes == [
        "login-etl drain: note: the SQS endpoint does not speak SQS's JSON protocol "
        "(LocalStack before 3.0); using the query protocol"
    ]
    assert query_only.json_requests == 1


def test_message_attributes_of_batch_entries_go_both_ways(client: Any) -> None:
    """What the redrive's copy loop sends (SendMessageBatch entries with attributes) and
    what the drain receives (MessageAttributeNames=All), in the query protocol."""
    url = new_queue(client, "query-attributes")
    attributes = {
        "login-etl.identity": {
            "DataType": "String",
            "StringValue": "v1:a-b:1764547200000:" + "0" * 64,
        },
        "source": {"DataType": "String", "StringValue": "mobile"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
    }
    sent = client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "0", "MessageBody": "b", "MessageAttributes": attributes}]
    )
    assert sent.get("Failed", []) == [] and sent["Successful"][0]["MD5OfMessageAttributes"]
    [message] = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=1, MessageAttributeNames=["All"]
    )["Messages"]
    assert message["MessageAttributes"] == attributes
