"""Run ``lambda_handler`` on a sample event against Postgres, no AWS needed.

    python -m localdev.run_event events/sqs-mixed-batch.json
    python -m localdev.run_event --db-init-only

Uses ``DATABASE_URL`` when set, otherwise starts the local embedded Postgres. Uses
``PII_HASH_KEY`` when set, otherwise a random development key kept in
``.local/pii-hash-key`` (never a real key; never committed).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import postgres

REPO = Path(__file__).resolve().parent.parent
DEV_KEY_FILE = REPO / ".local" / "pii-hash-key"


@dataclass
class LocalContext:
    """The LambdaContext fields Powertools reads."""

    function_name: str = "login-etl-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:login-etl-local"
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/login-etl-local"
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def development_key() -> str:
    if not DEV_KEY_FILE.exists():
        DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEV_KEY_FILE.write_text(secrets.token_hex(32))
        DEV_KEY_FILE.chmod(0o600)
    return DEV_KEY_FILE.read_text().strip()


def local_environment() -> dict[str, str]:
    """DATABASE_URL and PII_HASH_KEY for local runs (the caller's own values win)."""
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or postgres.start().url,
        "PII_HASH_KEY": os.environ.get("PII_HASH_KEY") or development_key(),
    }


def init_database(url: str) -> None:
    from login_etl.postgres import ConnectionSettings, connect
    from login_etl.schema import init_schema

    conn = connect(ConnectionSettings.from_url(url))
    try:
        init_schema(conn)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event", nargs="?", type=Path)
    parser.add_argument("--db-init-only", action="store_true")
    args = parser.parse_args(argv)
    os.environ.update(local_environment())
    init_database(os.environ["DATABASE_URL"])
    if args.db_init_only:
        print("db-init: done on", os.environ["DATABASE_URL"].split("@")[-1])
        return 0
    if args.event is None:
        parser.error("give an event file, e.g. events/sqs-mixed-batch.json")
    sys.path.insert(0, str(REPO / "handler"))
    import app

    event = json.loads(args.event.read_text())
    response = app.lambda_handler(event, LocalContext())
    print(json.dumps(response, indent=2))
    records = len(event.get("Records", []))
    print(
        f"{records} records, {len(response['batchItemFailures'])} reported failed", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
