"""The local stack: LocalStack on 127.0.0.1:4566 and Postgres, started in the background.

    python -m localdev.env.stack up     # idempotent; writes and prints .local/endpoints.env
    python -m localdev.env.stack down   # stops what `up` started, and nothing else

Postgres is the embedded development server (``localdev.env.postgres``) unless ``DATABASE_URL`` is
set, in which case that server is used as is. ``up`` remembers what it started in
``.local/up-started.json``, so ``down`` leaves alone a LocalStack or Postgres that was already
running (another checkout's, a test session's, the user's own).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from localdev import REPO
from localdev.env import localstack, postgres

ENDPOINTS_FILE = REPO / ".local" / "endpoints.env"
STARTED_FILE = REPO / ".local" / "up-started.json"


@dataclass(frozen=True)
class Endpoints:
    aws_endpoint_url: str
    database_url: str

    def as_env(self) -> dict[str, str]:
        return {
            **localstack.client_env(),
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "DATABASE_URL": self.database_url,
        }


def _started() -> dict[str, bool]:
    try:
        state = json.loads(STARTED_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): bool(v) for k, v in state.items()} if isinstance(state, dict) else {}


def _remember(**started: bool) -> None:
    state = _started()
    state.update({name: state.get(name, False) or value for name, value in started.items()})
    STARTED_FILE.parent.mkdir(parents=True, exist_ok=True)
    STARTED_FILE.write_text(json.dumps(state) + "\n")


def up() -> Endpoints:
    """Start LocalStack and (unless ``DATABASE_URL`` is set) Postgres; write endpoints.env."""
    database_url = os.environ.get("DATABASE_URL")
    pg_started = False
    if not database_url:
        pg_started = not postgres.is_running(postgres.DEFAULT_DATA_DIR)
        database_url = postgres.start().url
    _remember(postgres=pg_started)
    _remember(localstack=localstack.start())
    endpoints = Endpoints(localstack.ENDPOINT, database_url)
    write_endpoints(endpoints)
    return endpoints


def write_endpoints(endpoints: Endpoints) -> None:
    ENDPOINTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={value}" for key, value in endpoints.as_env().items()]
    ENDPOINTS_FILE.write_text("\n".join(lines) + "\n")
    ENDPOINTS_FILE.chmod(0o600)  # DATABASE_URL may carry a real password


def read_endpoints() -> Endpoints:
    """What the last ``up`` wrote (``DATABASE_URL`` in the environment wins)."""
    try:
        values = dict(
            line.split("=", 1) for line in ENDPOINTS_FILE.read_text().splitlines() if "=" in line
        )
    except OSError:
        raise RuntimeError(f"{ENDPOINTS_FILE} is missing: run `make up` first") from None
    return Endpoints(
        values.get("AWS_ENDPOINT_URL", localstack.ENDPOINT),
        os.environ.get("DATABASE_URL") or values["DATABASE_URL"],
    )


def down() -> list[str]:
    """Stop what ``up`` started; returns what was stopped."""
    state = _started()
    stopped = []
    if state.get("localstack") and localstack.stop():
        stopped.append("LocalStack")
    if state.get("postgres") and postgres.is_running(postgres.DEFAULT_DATA_DIR):
        postgres.stop()
        stopped.append("Postgres")
    STARTED_FILE.unlink(missing_ok=True)
    ENDPOINTS_FILE.unlink(missing_ok=True)
    return stopped


def main(argv: list[str] | None = None) -> int:
    command = (argv if argv is not None else sys.argv[1:] or ["up"])[0]
    if command == "up":
        try:
            endpoints = up()
        except RuntimeError as error:
            print(f"make up: {error}", file=sys.stderr)
            return 1
        print(f"make up: LocalStack and Postgres are running; {ENDPOINTS_FILE.relative_to(REPO)}:")
        for key, value in endpoints.as_env().items():
            print(f"  {key}={_redacted(value) if key == 'DATABASE_URL' else value}")
    elif command == "down":
        stopped = down()
        print(
            f"make down: stopped {', '.join(stopped)}" if stopped else "make down: nothing to stop"
        )
    else:
        print("usage: python -m localdev.env.stack up|down", file=sys.stderr)
        return 2
    return 0


def _redacted(url: str) -> str:
    """The URL with its password hidden, unless it is the embedded server's dev password."""
    parts = urlsplit(url)
    if parts.password in (None, postgres.PASSWORD):
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


if __name__ == "__main__":
    sys.exit(main())
