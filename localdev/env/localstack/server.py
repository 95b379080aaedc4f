"""Start, stop and probe the local LocalStack runtime process (no Docker, no CLI).

LocalStack's CLI insists on an auth token and Docker, so the runtime is started directly with
``python -m localstack.runtime.main``. It runs in its own session (process group); the host
executor's function processes join that group, so ``stop`` ends them all with one ``killpg``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from localdev.env.localstack import venv

DEFAULT_PORT = 4566
PORT = int(os.environ.get("LOCALSTACK_PORT", str(DEFAULT_PORT)))
ENDPOINT = f"http://127.0.0.1:{PORT}"
HEALTH_URL = f"{ENDPOINT}/_localstack/health"
# One LocalStack per port (the suite's xdist workers each run one): its files carry the port
# unless it is the default one.
_NAME = "localstack" if PORT == DEFAULT_PORT else f"localstack-{PORT}"
PID_FILE = venv.STATE_DIR / f"{_NAME}.pid"
LOG_FILE = venv.STATE_DIR / f"{_NAME}.log"
VOLUME_DIR = venv.STATE_DIR / f"{_NAME}-volume"
START_TIMEOUT_S = float(os.environ.get("LOCALSTACK_START_TIMEOUT", "90"))

# Only loopback: keeps every request (ours and the functions') off the network.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def runtime_env() -> dict[str, str]:
    """LocalStack's configuration (``README.md`` beside this file says why each is needed)."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "AWS_ENDPOINT_URL"}
    }
    return {
        **inherited,
        "GATEWAY_SERVER": "hypercorn",  # the default server ignores the bind address
        "GATEWAY_LISTEN": f"127.0.0.1:{PORT}",
        # URLs LocalStack hands out (queue URLs...) point at loopback, not at a public DNS name.
        "LOCALSTACK_HOST": f"127.0.0.1:{PORT}",
        "SQS_ENDPOINT_STRATEGY": "path",
        "DNS_ADDRESS": "0",  # no DNS server on port 53
        "PERSISTENCE": "0",
        "DISABLE_EVENTS": "1",  # no analytics calls
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "LOCALSTACK_VOLUME_DIR": str(VOLUME_DIR),
        "LAMBDA_RUNTIME_EXECUTOR": "host",  # localdev/env/localstack/hostexec
        "HOSTEXEC_STATE_DIR": str(venv.STATE_DIR),
    }


def health() -> dict[str, object] | None:
    try:
        with _opener.open(HEALTH_URL, timeout=1) as response:
            state: dict[str, object] = json.loads(response.read())
            return state
    except (OSError, urllib.error.URLError, ValueError):
        return None


def is_running() -> bool:
    return health() is not None


def _pid() -> int | None:
    """The pid from the pid file, if that process is alive and is our LocalStack."""
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"localstack.runtime.main" not in cmdline.read_bytes():
        return None  # the pid was reused by something else
    return pid


def _log_tail(lines: int = 30) -> str:
    try:
        return "\n".join(LOG_FILE.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start() -> bool:
    """Start LocalStack unless it is already up. Returns True if this call started it."""
    if is_running():
        return False
    pid = _pid()
    if pid is None:
        venv.ensure_installed()
        if PORT != DEFAULT_PORT:
            _remove_stopped_worker_logs()
        VOLUME_DIR.mkdir(parents=True, exist_ok=True)
        with LOG_FILE.open("ab") as log:
            process = subprocess.Popen(
                [str(venv.VENV_PYTHON), "-m", "localstack.runtime.main"],
                cwd=venv.REPO_ROOT,
                env=runtime_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pid = process.pid
        PID_FILE.write_text(f"{pid}\n")
    _wait_healthy(pid)
    return True


def _remove_stopped_worker_logs() -> None:
    """Worker LocalStacks get a new port each run: drop the logs of those no longer running.

    A log written in the last minute is kept: a worker starting beside us opens its log before it
    writes its pid file. Workers starting together remove the same old logs: one already gone
    is skipped.
    """
    for log in venv.STATE_DIR.glob("localstack-*.log"):
        port = log.stem.removeprefix("localstack-")
        stopped = not (venv.STATE_DIR / f"localstack-{port}.pid").exists()
        with contextlib.suppress(FileNotFoundError):
            if port.isdigit() and stopped and time.time() - log.stat().st_mtime > 60:
                log.unlink(missing_ok=True)


def _wait_healthy(pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if is_running():
            return
        try:
            os.kill(pid, 0)
            finished = os.waitpid(pid, os.WNOHANG)[0] == pid  # reap if it was our child
        except ChildProcessError:
            finished = False  # alive, but started by an earlier `start`
        except OSError:
            finished = True
        if finished:
            PID_FILE.unlink(missing_ok=True)
            raise RuntimeError(f"LocalStack exited during startup; see {LOG_FILE}:\n{_log_tail()}")
        time.sleep(0.2)
    # Never left running: a LocalStack that is not healthy now will not be used by anyone.
    _signal_group(pid, signal.SIGKILL)
    _reap(pid)
    PID_FILE.unlink(missing_ok=True)
    raise RuntimeError(
        f"LocalStack not healthy at {HEALTH_URL} after {START_TIMEOUT_S:.0f} s; "
        f"see {LOG_FILE}:\n{_log_tail()}"
    )


def stop(timeout_s: float = 15) -> bool:
    """Stop the LocalStack that ``start`` started, and its function processes."""
    pid = _pid()
    if pid is None:
        PID_FILE.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)  # LocalStack shuts down its environments on SIGTERM
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        _reap(pid)
        time.sleep(0.2)
    if _group_alive(pid):
        _signal_group(pid, signal.SIGKILL)
    _reap(pid)
    PID_FILE.unlink(missing_ok=True)
    if PORT != DEFAULT_PORT:  # a worker's LocalStack: its state is not kept
        shutil.rmtree(VOLUME_DIR, ignore_errors=True)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def status() -> str:
    pid = _pid()
    state = health()
    if state is None:
        return f"LocalStack: not running at {ENDPOINT}" + (
            f" (pid {pid} alive, not healthy)" if pid else ""
        )
    services = state.get("services", {})
    running = (
        sorted(name for name, s in services.items() if s in {"running", "available"})
        if isinstance(services, dict)
        else []
    )
    return (
        f"LocalStack {state.get('version', '?')}: running at {ENDPOINT}"
        f" (pid {pid or 'not started by this tool'}); log {LOG_FILE}\n"
        f"services: {', '.join(running)}"
    )


def client_env() -> dict[str, str]:
    """What a shell (aws CLI, boto3, samlocal) needs to talk to this LocalStack."""
    return {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
