"""``make invoke EVENT=events/…``: ``sam local invoke`` on a sample event (needs Docker).

SAM runs the built function in the ``public.ecr.aws/lambda/python:3.13`` image. The
env-vars file ``events/env.json`` (created from ``events/env.json.example`` on first use, with
the development key and the ``make up`` database; git-ignored) supplies ``DATABASE_URL`` and
``PII_HASH_KEY``; ``--docker-network host`` lets the container reach Postgres on 127.0.0.1.

Without a Docker engine it stops with a clear message; ``make run-event`` (in-process) and
``make deploy-local`` (LocalStack, host processes) run the same code without one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from localdev import REPO
from localdev.env import sam
from localdev.lambda_local.run_event import development_key

ENV_EXAMPLE = REPO / "events" / "env.json.example"
ENV_FILE = REPO / "events" / "env.json"
NO_DOCKER = """\
make invoke: no Docker engine is reachable ({reason}).
`sam local invoke` runs the function in a container, so it needs one (Docker Desktop, dockerd,
or podman with DOCKER_HOST set). Without Docker, the same event runs:
  in-process:                      make run-event EVENT={event}
  under LocalStack's SQS mapping:  make demo   (or make deploy-local and send messages)"""


def docker_problem() -> str | None:
    """Why no Docker engine can be used, or None when one answers."""
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 15 s"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"`docker info` exited {done.returncode}"
    return None


def ensure_env_file() -> Path:
    if not ENV_FILE.exists():
        values = json.loads(ENV_EXAMPLE.read_text())
        function_env = values[sam.FUNCTION_ID]
        function_env["PII_HASH_KEY"] = development_key()
        if os.environ.get("DATABASE_URL"):
            function_env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        ENV_FILE.write_text(json.dumps(values, indent=2) + "\n")
        ENV_FILE.chmod(0o600)
        print(f"make invoke: wrote {ENV_FILE.relative_to(REPO)} (development key; edit freely)")
    return ENV_FILE


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    event = args[0] if args else "events/sqs-mixed-batch.json"
    reason = docker_problem()
    if reason is not None:
        print(NO_DOCKER.format(reason=reason, event=event), file=sys.stderr)
        return 2
    env_file = ensure_env_file()
    try:
        sam.build()
        sam.run_sam(
            [
                "local",
                "invoke",
                sam.FUNCTION_ID,
                "--event",
                event,
                "--env-vars",
                str(env_file),
                "--docker-network",
                "host",
            ],
            env=sam.sam_env(),
        )
    except sam.SamError as error:
        print(f"make invoke: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
