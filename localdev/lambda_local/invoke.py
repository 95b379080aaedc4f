"""``make invoke EVENT=events/…``: ``sam local invoke`` on a sample event, in a container.

The engine: the machine's Docker engine (or ``DOCKER_HOST``) as it is; otherwise the project's
podman (``localdev.engine``: installed as root when missing, configured under ``.local/podman``,
its service started for this command and stopped after it) with the Lambda base image built on
this machine (``localdev.lambda_image``), so SAM runs with ``--skip-pull-image``.

The env-vars file ``events/env.json`` (created from ``events/env.json.example`` on first use, with
the development key and the local database; git-ignored) is the user's. The function runs on a
network of ours (``login-etl-invoke-…``); a database on loopback is reached through a relay on
that network's gateway, so the command runs from ``.local/sam-local/env.json``: the same values
with ``DATABASE_URL`` as the container reaches it. The local Postgres (``make pg-up``'s) is
started when ``DATABASE_URL`` names it, and the schema step runs first, as in ``make run-event``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from localdev import REPO
from localdev.engine import EngineError
from localdev.env import postgres, sam
from localdev.env.database import init_database
from localdev.lambda_local import sam_local
from localdev.lambda_local.run_event import development_key

ENV_EXAMPLE = REPO / "events" / "env.json.example"
ENV_FILE = REPO / "events" / "env.json"
CONTAINER_ENV_FILE = REPO / ".local" / "sam-local" / "env.json"
NETWORK = f"login-etl-invoke-{hashlib.sha256(bytes(REPO)).hexdigest()[:8]}"
NO_ENGINE = """\
make invoke: {reason}
Without a container engine, the same event runs:
  in-process:                      make run-event EVENT={event}
  under LocalStack's SQS mapping:  make demo   (or make deploy-local and send messages)"""


def ensure_env_file() -> Path:
    if not ENV_FILE.exists():
        values = json.loads(ENV_EXAMPLE.read_text())
        function_env = values[sam.FUNCTION_ID]
        function_env["PII_HASH_KEY"] = development_key()
        function_env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or sam_local.with_host(
            function_env["DATABASE_URL"], "127.0.0.1", postgres.DEFAULT_PORT
        )
        ENV_FILE.write_text(json.dumps(values, indent=2) + "\n")
        ENV_FILE.chmod(0o600)
        print(f"make invoke: wrote {ENV_FILE.relative_to(REPO)} (development key; edit freely)")
    return ENV_FILE


def ready_database(url: str) -> str:
    """Start the local Postgres when ``url`` names it; create the schema. Returns ``url``."""
    parts = urlsplit(url)
    if sam_local.is_loopback(parts.hostname or "") and parts.port == postgres.DEFAULT_PORT:
        postgres.start()
    init_database(url)
    return url


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    event = args[0] if args else "events/sqs-mixed-batch.json"
    values = sam_local.env_for_function(ensure_env_file())
    try:
        database_url = ready_database(sam_local.database_url_default(values))
        sam.build()
        with sam_local.session(database_url, NETWORK) as ctx:
            print(f"make invoke: engine {ctx.engine.name}, network {ctx.network.name}", flush=True)
            env_file = sam_local.write_env_vars(
                CONTAINER_ENV_FILE, values | {"DATABASE_URL": ctx.database_url}
            )
            sam.run_sam(
                ["local", "invoke", sam.FUNCTION_ID, "--event", event, *ctx.args(env_file)],
                env=ctx.env,
            )
    except EngineError as error:
        print(NO_ENGINE.format(reason=error, event=event), file=sys.stderr)
        return 2
    except sam.SamError as error:
        print(f"make invoke: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
