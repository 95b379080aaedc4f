"""Run ``lambda_handler`` on a sample event against Postgres, no AWS needed.

    python -m localdev.lambda_local.run_event events/sqs-mixed-batch.json
    python -m localdev.lambda_local.run_event --db-init-only

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
from pathlib import Path

from localdev import REPO
from localdev.env import postgres
from localdev.env.database import init_database
from localdev.lambda_event import LocalContext

DEV_KEY_FILE = REPO / ".local" / "pii-hash-key"


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
