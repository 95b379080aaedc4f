"""Which container engine ``sam local`` talks to, and the project's podman when there is none.

An engine the machine already has is used as it is: ``DOCKER_HOST`` when set, else a Docker
engine answering on ``/var/run/docker.sock``. Otherwise the project runs its own podman (checked
on Debian 12 as root; see docs/local-development.md):

- ``podman``, ``runc`` and ``debootstrap`` (for the base image) are installed with ``apt-get``
  when missing and we are root; not root: a message says what to install;
- its configuration is the project's own, named by ``CONTAINERS_CONF`` and
  ``CONTAINERS_STORAGE_CONF`` (never /etc): ``runc`` with ``cgroupfs`` (the default ``crun``
  fails on this kernel's hybrid cgroups), the ``file`` events logger (no journald in a
  container), container ulimits at this process's hard limits (podman's defaults exceed them and
  every container then fails in ``setrlimit``), images under ``.local/podman/storage`` (the cache
  of the base image) and run-time state under ``/run`` (short paths for its sockets);
- ``podman system service --time=0`` serves the Docker API on a socket of ours; ``running()``
  stops it again, and only a service it started itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from localdev import REPO

STATE_DIR = REPO / ".local" / "podman"
CONTAINERS_CONF = STATE_DIR / "containers.conf"
STORAGE_CONF = STATE_DIR / "storage.conf"
SERVICE_LOG = STATE_DIR / "service.log"
DOCKER_SOCKET = Path("/var/run/docker.sock")
# One run-time folder per checkout: two checkouts' podman services must not share state.
RUN_DIR = Path("/run") / f"login-etl-podman-{hashlib.sha256(bytes(REPO)).hexdigest()[:10]}"
APT_PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin


class EngineError(RuntimeError):
    """No container engine can be had (the message says what to do)."""


@dataclass(frozen=True)
class Engine:
    """A container engine's Docker API; ``project_podman``: the podman this module runs."""

    docker_host: str
    project_podman: bool

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for SAM (``DOCKER_HOST``) and, with our podman, for the podman CLI."""
        env = dict(os.environ if base is None else base)
        env["DOCKER_HOST"] = self.docker_host
        if self.project_podman:
            env |= podman_env()
        return env

    @property
    def name(self) -> str:
        return "podman (the project's)" if self.project_podman else f"{self.docker_host}"


def podman_env() -> dict[str, str]:
    return {"CONTAINERS_CONF": str(CONTAINERS_CONF), "CONTAINERS_STORAGE_CONF": str(STORAGE_CONF)}


def podman_socket() -> Path:
    """The service's socket: under ``.local/podman`` unless that path is too long for a socket."""
    preferred = STATE_DIR / "podman.sock"
    return preferred if len(bytes(preferred)) <= _UNIX_PATH_MAX else RUN_DIR / "podman.sock"


def answers(unix_socket: Path, timeout: float = 5) -> bool:
    """True when a Docker API (Docker or podman) answers ``GET /_ping`` on ``unix_socket``."""
    if not unix_socket.exists():
        return False
    conn = _UnixHTTPConnection(unix_socket, timeout)
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def existing_engine() -> Engine | None:
    """The machine's own engine, used as it is, or None."""
    if os.environ.get("DOCKER_HOST"):
        return Engine(os.environ["DOCKER_HOST"], project_podman=False)
    if answers(DOCKER_SOCKET):
        return Engine(f"unix://{DOCKER_SOCKET}", project_podman=False)
    return None


def install_missing(packages: Mapping[str, str] = APT_PACKAGES) -> None:
    """``apt-get install`` the packages whose command is not on PATH (root only)."""
    missing = sorted({pkg for command, pkg in packages.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineError(
            f"no container engine: no Docker engine answers and {', '.join(missing)} "
            "is not installed. Install it (Debian: sudo apt-get install podman runc debootstrap) "
            "and run again as root, or set DOCKER_HOST to a Docker engine."
        )
    print(f"engine: apt-get install {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600"]
    install = [*apt, "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, check=False).returncode == 0:
        return
    # A fresh machine may have stale or no package lists.
    subprocess.run([*apt, "update"], env=env, check=False)
    if subprocess.run(install, env=env, check=False).returncode != 0:
        raise EngineError(f"apt-get install {' '.join(missing)} failed; see its output above")


def _hard_limit(which: int, cap: int) -> int:
    hard = resource.getrlimit(which)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def write_config() -> None:
    """Write the project's podman configuration (on every start: it holds this machine's limits)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    nofile = _hard_limit(resource.RLIMIT_NOFILE, 1_048_576)
    nproc = _hard_limit(resource.RLIMIT_NPROC, 32_768)
    CONTAINERS_CONF.write_text(
        "# Written by localdev/engine/setup.py (the project's podman; /etc is left alone).\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{STATE_DIR / "events.log"}"\n'
        'runtime = "runc"\n'
        f'tmp_dir = "{RUN_DIR / "libpod"}"\n'
    )
    STORAGE_CONF.write_text(
        "# Written by localdev/engine/setup.py: images of the project's podman stay in .local/.\n"
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{STATE_DIR / "storage"}"\n'
        f'runroot = "{RUN_DIR / "storage"}"\n'
        "[storage.options.overlay]\n"
        # Else the driver bind-mounts its folder onto itself and leaves that mount behind, and
        # .local/ can no longer be removed.
        'skip_mount_home = "true"\n'
    )


def leftover_mounts() -> list[Path]:
    """Mount points below our storage and run-time folders, deepest first."""
    ours = (STATE_DIR.resolve(), RUN_DIR)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].replace("\\040", " "))
        if any(point == root or root in point.parents for root in ours):
            points.append(point)
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def unmount_leftovers() -> None:
    """Unmount what a stopped service of ours left mounted (a container's layers, its shm)."""
    for point in leftover_mounts():
        subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)


class PodmanService:
    """``podman system service`` on our socket, started by us (or already running: not ours)."""

    def __init__(self) -> None:
        self.socket = podman_socket()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        if answers(self.socket):
            return  # another command of this checkout started it; it stops it
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        with SERVICE_LOG.open("ab") as log:
            self._process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                env={**os.environ, **podman_env()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C of make reaches us, and we stop it
            )
        deadline = time.monotonic() + timeout
        while not answers(self.socket):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(SERVICE_LOG.read_text(errors="replace").splitlines()[-5:])
                raise EngineError(f"podman system service did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        self.socket.unlink(missing_ok=True)
        unmount_leftovers()


@contextlib.contextmanager
def running() -> Iterator[Engine]:
    """The engine to use while the block runs; the project's podman is stopped after it."""
    found = existing_engine()
    if found is not None:
        yield found
        return
    install_missing()
    write_config()
    service = PodmanService()
    service.start()
    try:
        yield Engine(f"unix://{service.socket}", project_podman=True)
    finally:
        service.stop()
