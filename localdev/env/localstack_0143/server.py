"""Start, probe and stop LocalStack 0.14.3 (``localstack start --host``, no Docker).

One server = one process group (``start_new_session``) with a work folder of its own: its
``TMPDIR``, the folders 0.14.3 would otherwise share under ``/var/lib/localstack`` (it believes it
is in a container on a machine that is one), and its log. ``stop`` ends the whole group and reaps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from localdev.env.localstack_0143 import venv
from localdev.env.ports import free_port

START_TIMEOUT_S = float(os.environ.get("LOCALSTACK_0143_START_TIMEOUT", "180"))
STOP_TIMEOUT_S = 20.0
READY_LINE = "Ready."
# Variables of the caller's shell that would change what 0.14.3 does (or, for the API key, make
# localstack-ext try to activate Pro over the network).
_SCRUBBED = {
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "AWS_ENDPOINT_URL",
    "DATA_DIR",
    "HOSTNAME_EXTERNAL",
    "LOCALSTACK_HOSTNAME",
    "LOCALSTACK_API_KEY",
    "LOCALSTACK_AUTH_TOKEN",
    "PERSISTENCE",
}


@dataclass
class Server:
    """A running (or once running) LocalStack 0.14.3."""

    pid: int
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "localstack.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def is_alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        cmdline = Path(f"/proc/{self.pid}/cmdline")  # a reused pid is not our server
        return not cmdline.exists() or b"localstack" in cmdline.read_bytes()

    def answers_sqs(self) -> bool:
        """True once SQS answers a query-protocol ListQueues (its provider loaded)."""
        from localdev.env.localstack_0143.loader import client  # the drain's own botocore

        try:
            client(self.endpoint, retry=False).list_queues()
        except (BotoCoreError, ClientError):
            return False
        return True

    def rss_bytes(self) -> int:
        """Resident memory of the server's process group (0 if it is gone)."""
        total = 0
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = status.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) != self.pid:  # field 5 of stat: the process group
                    continue
                rss_kb = _vm_rss_kb(status.with_name("status"))
            except (OSError, IndexError, ValueError):
                continue
            total += rss_kb * 1024
        return total

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the whole group, SIGKILL what is left after ``timeout_s``, reap the leader."""
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _group_alive(self.pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        if _group_alive(self.pid):
            _signal_group(self.pid, signal.SIGKILL)
        while _group_alive(self.pid) and time.monotonic() < deadline + 10:
            self._reap()
            time.sleep(0.1)
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            self.process.poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)


def _vm_rss_kb(status_file: Path) -> int:
    for line in status_file.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Only zombies left (our unreaped leader) count as gone.
    return any(_state(stat, pgid) not in {"Z", ""} for stat in Path("/proc").glob("[0-9]*/stat"))


def _state(stat: Path, pgid: int) -> str:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return fields[0] if int(fields[2]) == pgid else ""
    except (OSError, IndexError, ValueError):
        return ""


def runtime_env(port: int, workdir: Path, services: str) -> dict[str, str]:
    """0.14.3's configuration: the exercise's settings, on loopback, writing only under workdir."""
    inherited = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    tmp = workdir / "tmp"
    return {
        **inherited,
        "EDGE_PORT": str(port),
        "EDGE_BIND_HOST": "127.0.0.1",
        "SERVICES": services,
        "DEFAULT_REGION": "us-east-1",
        "DISABLE_EVENTS": "1",  # no analytics calls
        "SKIP_INFRA_DOWNLOADS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "TMPDIR": str(tmp),
        # This machine kind is itself a container, so 0.14.3 takes the container folders
        # (/var/lib/localstack/cache, shared with the modern LocalStack); on a plain host it
        # takes CACHE_DIR/VAR_LIBS_DIR under TMPDIR. Both point into workdir.
        "CONTAINER_CACHE_FOLDER": str(workdir / "cache"),
        "CONTAINER_VAR_LIBS_FOLDER": str(workdir / "var_libs"),
        "CONTAINER_TMP_FOLDER": str(tmp / "localstack"),
        "CACHE_DIR": str(workdir / "cache"),
        "VAR_LIBS_DIR": str(workdir / "var_libs"),
        "CONFIG_DIR": str(workdir / "config"),
        "no_proxy": "127.0.0.1,localhost",
    }


def start(
    workdir: Path,
    *,
    port: int = 0,
    services: str = "sqs",
    extra_env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Server:
    """Start a server (port 0: a free one) and wait until SQS answers. Builds the venv if needed."""
    venv.ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    env = runtime_env(port or free_port(), workdir, services) | dict(extra_env or {})
    server = Server(pid=0, port=int(env["EDGE_PORT"]), workdir=workdir)
    with server.log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(venv.LOCALSTACK_CLI), "start", "--host"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server.pid, server.process = process.pid, process
    try:
        _wait_ready(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: Server, timeout_s: float) -> None:
    began = time.monotonic()
    deadline = began + timeout_s
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise RuntimeError(
                f"LocalStack 0.14.3 exited during startup; {server.log_file}:\n{server.log_tail()}"
            )
        if _log_says_ready(server) and server.answers_sqs():
            return
        time.sleep(0.2)
    hint = (
        "it printed 'Ready.' but SQS does not answer (its provider failed to import? "
        "start it with DEBUG=1 to see why)"
        if _log_says_ready(server)
        else "it never printed 'Ready.'"
    )
    raise RuntimeError(
        f"LocalStack 0.14.3 not ready at {server.endpoint} after {timeout_s:.0f} s: {hint}; "
        f"{server.log_file}:\n{server.log_tail()}"
    )


def _log_says_ready(server: Server) -> bool:
    try:
        return any(line.strip() == READY_LINE for line in server.log_file.open(errors="replace"))
    except OSError:
        return False


# -- the one server of `python -m localdev.env.localstack_0143` (state in .local/) --------------

CLI_WORKDIR = venv.STATE_DIR / "localstack-0.14.3"
CLI_STATE = CLI_WORKDIR / "server.json"


def cli_server() -> Server | None:
    """The server the CLI started, if it is still alive."""
    try:
        state = json.loads(CLI_STATE.read_text())
        server = Server(pid=int(state["pid"]), port=int(state["port"]), workdir=CLI_WORKDIR)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if server.is_alive() else None


def cli_start(port: int = 0) -> tuple[Server, bool]:
    """Start the CLI's server unless it runs. Returns it and whether this call started it."""
    running = cli_server()
    if running is not None:
        return running, False
    log = CLI_WORKDIR / "localstack.log"
    log.unlink(missing_ok=True)
    server = start(CLI_WORKDIR, port=port)
    server.process = None  # it outlives this process: from here on it is known by pid only
    CLI_STATE.write_text(json.dumps({"pid": server.pid, "port": server.port}) + "\n")
    return server, True


def cli_stop() -> bool:
    server = cli_server()
    if server is None:
        CLI_STATE.unlink(missing_ok=True)
        return False
    server.stop()
    CLI_STATE.unlink(missing_ok=True)
    return True
