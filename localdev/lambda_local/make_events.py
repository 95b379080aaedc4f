"""Write the sample SQS events in ``events/``: ``python -m localdev.lambda_local.make_events``.

They are fixtures for the tests and inputs for ``sam local invoke`` and ``make run-event``;
the comments below say what the handler must do with each record.
"""

from __future__ import annotations

import json
import random

from localdev import REPO
from localdev.lambda_event import DEFAULT_QUEUE_ARN, SqsEvent, sqs_event, sqs_record
from localdev.traffic import login

EVENTS = REPO / "events"
FIFO_ARN = "arn:aws:sqs:us-east-1:000000000000:login-queue.fifo"


def _dump(obj: object) -> str:
    return json.dumps(obj)


def mixed_batch() -> SqsEvent:
    rng = random.Random(42)
    logins = [login(rng) for _ in range(7)]
    logins[0] |= {"app_version": "2.3.0", "locale": "RU"}
    logins[1] |= {"app_version": "0.96", "locale": None}
    logins[2] |= {"app_version": "2.00", "locale": None}
    logins[3] |= {"app_version": "0.60", "locale": "ID"}
    logins[4] |= {"app_version": None, "locale": "CN"}
    logins[5] |= {"ip": " ::ffff:199.172.111.135 ", "app_version": "7.31"}  # same mask as IPv4
    logins[6] |= {"ip": "2001:DB8:0:0::1", "client": "web"}  # unknown key: ignored, counted
    bodies = [_dump(b) for b in logins]
    bodies.insert(3, _dump({"foo": "oops_wrong_msg_type", "bar": "123"}))  # not a login
    bodies.append('{"user_id": "truncated json"')  # not JSON
    return sqs_event(bodies, seed=42)


def single_login() -> SqsEvent:
    body = {
        "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
        "app_version": "2.3.0",
        "device_type": "android",
        "ip": "199.172.111.135",
        "locale": "RU",
        "device_id": "593-47-5928",
    }
    return sqs_event([_dump(body)], seed=1)


def invalid_records() -> SqsEvent:
    base = {
        "user_id": "u-1",
        "app_version": "1.0",
        "device_type": "ios",
        "ip": "10.1.2.3",
        "locale": "FR",
        "device_id": "111-22-3333",
    }
    bodies = [
        "not json at all",
        _dump(["a", "list"]),
        _dump(base | {"user_id": None}),
        _dump(base | {"user_id": ""}),
        _dump(base | {"user_id": "x" * 129}),
        _dump(base | {"ip": 167772161}),
        _dump(base | {"device_id": {"nested": True}}),
        _dump(base | {"locale": "x" * 33}),
        _dump(base | {"device_type": "io\u0000s"}),
        _dump(base | {"app_version": "1.2.3.4"}),
    ]
    return sqs_event(bodies, seed=7)


def fifo_batch() -> SqsEvent:
    rng = random.Random(9)
    bodies = [_dump(login(rng)) for _ in range(5)]
    bodies[2] = _dump({"foo": "oops_wrong_msg_type", "bar": "123"})
    return sqs_event(bodies, queue_arn=FIFO_ARN, seed=9)


def without_sent_timestamp() -> SqsEvent:
    body = _dump(login(random.Random(5)))
    return {
        "Records": [
            sqs_record(
                body,
                message_id="5d1b0a52-9a8e-4e4c-9f0a-7d3c2f1e0b11",
                sent_timestamp_ms=None,
                queue_arn=DEFAULT_QUEUE_ARN,
            )
        ]
    }


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for name, build in {
        "sqs-mixed-batch.json": mixed_batch,
        "sqs-single-login.json": single_login,
        "sqs-invalid-records.json": invalid_records,
        "sqs-fifo-batch.json": fifo_batch,
        "sqs-no-sent-timestamp.json": without_sent_timestamp,
    }.items():
        (EVENTS / name).write_text(json.dumps(build(), indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
