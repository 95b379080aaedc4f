"""Faults through the deployed stack (LocalStack's real SQS event source mapping).

- Postgres crash-stopped in the middle of a stream and restarted 5 s later: every valid message
  is a row exactly once, only the invalid ones reach the DLQ.
- The masking key secret missing at cold start: the function fails closed with a clear error,
  the messages stay in the queue (not written, not deleted) and are written once the secret
  exists.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from pathlib import Path

import pytest

from localdev import traffic
from localdev.env.sqs import queue_counts as depth
from localdev.soak.db import SoakDatabase
from localdev.soak.faults import FaultSettings
from localdev.soak.run import STACK_PARAMS, SoakConfig, run_soak
from tests.conftest import wait_for
from tests.e2e.conftest import Deployer, client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
LAMBDA_LOGS = REPO / ".local" / "lambda-logs"
OUTAGE_S = 5.0


def function_log(function_name: str) -> str:
    path = LAMBDA_LOGS / f"{function_name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_postgres_stopped_mid_stream(localstack_endpoint: str, built_function: Path) -> None:
    # (MaxReceiveCount - 1) x VisibilityTimeout = 5 x 3 s = 15 s > the 5 s outage.
    params = dict(STACK_PARAMS) | {
        "MaxReceiveCount": "6",
        "VisibilityTimeout": "3",
        "FunctionTimeout": "3",
    }
    report = run_soak(
        SoakConfig(
            messages=600,
            seed=5,
            invalid_ratio=0.02,
            faults=FaultSettings(schedule=[(3.0, "postgres_restart", OUTAGE_S)]),
            rate=60,  # 10 s of traffic; the outage is in its middle
            params=params,
            drain_timeout_s=150,
            build_dir=built_function,
            build=False,
        )
    )
    print("\n".join(report.lines()))
    assert [f.split()[2] for f in report.faults] == ["postgres_restart"]
    log = function_log(report.function_name)
    assert "cannot connect to Postgres" in log  # the outage was seen by the function
    assert report.drained and report.problems == []
    assert (report.counts.rows, report.counts.duplicates, report.counts.lost) == (
        report.valid,
        0,
        0,
    )
    assert report.dlq == report.invalid == report.invalid_in_dlq > 0


def test_missing_masking_key_secret_fails_closed(deploy_stack: Deployer) -> None:
    database = SoakDatabase()
    name = f"login-etl-e2e-missing-key-{uuid.uuid4().hex[:8]}"
    # A partial ARN (no random suffix): Secrets Manager resolves it once the secret exists.
    key_arn = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}"
    secrets = client("secretsmanager")
    try:
        outputs = deploy_stack(
            database.url,
            PiiHashKeySecretArn=key_arn,
            MaxReceiveCount="100",  # the messages must outlive the test in the queue
            VisibilityTimeout="2",
            FunctionTimeout="2",
        )
        rng = random.Random(41)
        bodies = [json.dumps(traffic.login(rng)) for _ in range(5)]
        sqs = client("sqs")
        for body in bodies:
            sqs.send_message(QueueUrl=outputs["QueueUrl"], MessageBody=body)

        def refused_twice() -> bool | None:
            log = function_log(outputs["FunctionName"])
            return log.count("cannot read the masking key secret") >= 2 or None

        wait_for("the function to refuse (twice)", refused_twice, timeout_s=60)
        log = function_log(outputs["FunctionName"])
        assert "ResourceNotFoundException" in log
        assert "batch failed; every record stays in the queue" in log
        assert database.row_count() == 0
        visible, in_flight = depth(sqs, outputs["QueueUrl"])
        assert visible + in_flight == len(bodies)  # not deleted
        assert depth(sqs, outputs["DeadLetterQueueUrl"]) == (0, 0)

        secrets.create_secret(Name=name, SecretString="fixed-masking-key")
        began = time.monotonic()
        wait_for(
            "the rows after the fix",
            lambda: database.row_count() == len(bodies) or None,
            timeout_s=60,
        )
        print(f"written {time.monotonic() - began:.1f} s after the secret was created")
        wait_for(
            "the queue to drain",
            lambda: depth(sqs, outputs["QueueUrl"]) == (0, 0) or None,
            timeout_s=30,
        )
        stored = database.counts({json.loads(b)["user_id"] for b in bodies})
        assert (stored.rows, stored.duplicates, stored.lost) == (len(bodies), 0, 0)
    finally:
        with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
            secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        database.close()
