"""Running the SAM CLI from this repo: the right interpreter on PATH, and nothing sent home.

``sam build`` resolves the function's dependencies with the runtime's own interpreter, so a
``python3.13`` must be on PATH (``localdev/env/find-python313`` finds one, also in pyenv). SAM CLI
also phones home: telemetry (off with ``SAM_CLI_TELEMETRY=0``) and a weekly version check against
pypi.org (no switch; it is skipped while the last check, kept in its config folder, is recent).
Its config folder is therefore ``.local/sam-cli`` with a fresh check time on every run.

    run_sam(["build"], env=sam_env())
    run_sam(["deploy", "--config-env", "local"], env=sam_env(local=True), tool="samlocal")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from localdev import REPO
from localdev.env.filelock import locked
from localdev.env.localstack import client_env

BIN_DIR = Path(sys.executable).parent  # sam and samlocal live beside the venv's python
SAM_HOME = REPO / ".local" / "sam-cli"
FUNCTION_ID = "LoginEtlFunction"  # the function's logical id in template.yaml
BUILD_DIR = REPO / ".aws-sam" / "build"


class SamError(RuntimeError):
    """A SAM CLI command failed (its own output says why)."""


def python313() -> str:
    """Path of a Python 3.13 interpreter (Lambda's python3.13 runtime), from find-python313."""
    done = subprocess.run(
        [str(Path(__file__).with_name("find-python313"))],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SamError(done.stderr.strip() or "no Python 3.13 found")
    return done.stdout.strip()


def _quiet_sam_home() -> Path:
    SAM_HOME.mkdir(parents=True, exist_ok=True)
    metadata = SAM_HOME / "metadata.json"
    try:
        config: dict[str, object] = json.loads(metadata.read_text())
    except (OSError, ValueError):
        config = {}
    config |= {"telemetryEnabled": False, "lastVersionCheck": time.time()}
    metadata.write_text(json.dumps(config))
    return SAM_HOME


def sam_env(*, local: bool = False, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a SAM CLI command; ``local`` points it at the LocalStack endpoint."""
    env = dict(os.environ if base is None else base)
    python_dir = str(Path(python313()).parent)
    env |= {
        "PATH": os.pathsep.join([python_dir, str(BIN_DIR), env.get("PATH", "")]),
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(_quiet_sam_home()),
        "SAM_CLI_POLL_DELAY": "0.5",
    }
    if local:
        env |= client_env()
        env.pop("AWS_PROFILE", None)  # a real profile must never be used against LocalStack
    return env


def run_sam(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    tool: str = "sam",
    quiet: bool = False,
) -> str:
    """Run ``sam``/``samlocal`` in the repo; returns its output when ``quiet``, else streams it."""
    command = [str(BIN_DIR / tool), *args]
    if quiet:
        done = subprocess.run(
            command, cwd=REPO, env=dict(env), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SamError(
                f"{tool} {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done.stdout
    if subprocess.run(command, cwd=REPO, env=dict(env), check=False).returncode != 0:
        raise SamError(f"{tool} {args[0]} failed; see its output above")
    return ""


def build(build_dir: Path = BUILD_DIR, *, quiet: bool = False) -> Path:
    """``sam build`` into ``build_dir``; returns the function's artifact folder."""
    cache_dir = build_dir.parent / "cache"
    args = ["build", "--build-dir", str(build_dir), "--cached", "--cache-dir", str(cache_dir)]
    # sam build stages dependencies in the checkout's .aws-sam/deps whatever --build-dir
    # says: two builds at once (parallel test workers) remove each other's folders.
    with locked(REPO / ".local" / "sam-build.lock"):
        run_sam(args, env=sam_env(), quiet=quiet)
    return build_dir / FUNCTION_ID
