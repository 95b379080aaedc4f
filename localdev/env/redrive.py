"""``make redrive``: move the local stack's dead-lettered messages back to its queue.

    python -m localdev.env.redrive                       # the deployed local stack's DLQ → queue
    python -m localdev.env.redrive --dlq-url U [--to-queue-url V]

A thin wrapper over ``login-etl redrive`` that reads the queue URLs from the stack
outputs on LocalStack; against AWS use ``login-etl redrive --dlq-url …`` directly.
"""

from __future__ import annotations

import argparse
import os
import sys

from login_etl_drain.cli import main as login_etl

from .deploy import STACK_NAME, stack_outputs
from .localstack import ENDPOINT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="redrive the local stack's DLQ")
    parser.add_argument("--dlq-url")
    parser.add_argument("--to-queue-url")
    parser.add_argument("--stack-name", default=STACK_NAME)
    args = parser.parse_args(argv)
    dlq_url, to_url = args.dlq_url, args.to_queue_url
    key_variables = ("PII_HASH_KEY", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER")
    if not any(os.environ.get(name) for name in key_variables):
        # The copies' identities are signed with the stack's masking key: its generated
        # secret, in LocalStack's Secrets Manager.
        try:
            secret = stack_outputs(args.stack_name).get("PiiHashKeySecretArn")
        except Exception:  # noqa: BLE001 - no stack: redrive says which key is missing
            secret = None
        if secret:
            os.environ["PII_HASH_KEY_SECRET_ARN"] = secret
            os.environ.setdefault("AWS_ENDPOINT_URL", ENDPOINT)
    if dlq_url is None:
        outputs = stack_outputs(args.stack_name)
        if "DeadLetterQueueUrl" not in outputs:
            print(
                "make redrive: the stack has no DeadLetterQueueUrl (SourceQueueArn?); "
                "pass DLQ=<url>",
                file=sys.stderr,
            )
            return 2
        dlq_url, to_url = outputs["DeadLetterQueueUrl"], to_url or outputs["QueueUrl"]
    command = ["redrive", "--dlq-url", dlq_url, "--endpoint-url", ENDPOINT, "--region", "us-east-1"]
    if to_url:
        command += ["--to-queue-url", to_url]
    return login_etl(command)


if __name__ == "__main__":
    sys.exit(main())
