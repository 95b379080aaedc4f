"""The LocalStack 0.14.3 virtualenv (``.local/localstack-0.14.3-venv``), built from the lock.

0.14.3 runs on Python 3.9 (the exercise image's era), so it gets a virtualenv of its own, filled
with ``pip install --no-deps --require-hashes -r requirements.txt`` (uv's ``pip install`` when
run from .venv: ``localdev.env.installer``). A stamp holding the hash of the lock and of the
venv's ``pyvenv.cfg`` (which names the interpreter and its version) makes a second start one or
two file reads; any change rebuilds the venv from scratch.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from localdev import REPO
from localdev.env import installer
from localdev.env.filelock import locked

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = REPO
STATE_DIR = REPO_ROOT / ".local"
VENV_DIR = STATE_DIR / "localstack-0.14.3-venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
LOCALSTACK_CLI = VENV_DIR / "bin" / "localstack"
LOCK = PACKAGE_DIR / "requirements.txt"
STAMP = VENV_DIR / ".localdev-install.json"
PYTHON_VERSION = (3, 9)
BUILD_TOOLS = ("setuptools", "wheel")
PYTHON_ENV = "LOCALSTACK_0143_PYTHON"  # an explicit interpreter, if neither PATH nor pyenv has one


class Python39NotFoundError(RuntimeError):
    """No usable Python 3.9 interpreter on this machine."""


def find_python39() -> str:
    """A Python 3.9: ``$LOCALSTACK_0143_PYTHON``, ``python3.9`` on PATH, else pyenv's versions."""
    wanted = ".".join(map(str, PYTHON_VERSION))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv")))
    candidates = [
        os.environ.get(PYTHON_ENV, ""),
        shutil.which(f"python{wanted}") or "",
        *sorted(
            glob.glob(f"{pyenv_root}/versions/{wanted}.*/bin/python{wanted}"),
            key=_version_key,
            reverse=True,
        ),
    ]
    for candidate in candidates:
        if candidate and _is_python39(candidate):
            return candidate
    raise Python39NotFoundError(
        f"LocalStack 0.14.3 needs Python {wanted}; none found (looked at ${PYTHON_ENV}, "
        f"python{wanted} on PATH and {pyenv_root}/versions/{wanted}.*). "
        f"Install it, e.g. `pyenv install {wanted}`, or set {PYTHON_ENV}=/path/to/python{wanted}."
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name  # .../versions/3.9.18/bin/python3.9
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def _is_python39(executable: str) -> bool:
    # A pyenv shim is on PATH even when its version is not installed; it fails when run.
    check = f"import sys; assert sys.version_info[:2] == {PYTHON_VERSION!r}"
    try:
        result = subprocess.run([executable, "-c", check], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def lock_entries(lock: str, names: tuple[str, ...]) -> str:
    """The entries (``name==version`` line and its ``--hash`` lines) of ``names`` in a lock."""
    kept: list[str] = []
    keep = False
    for line in lock.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):  # "name==version \\"
            keep = line.split("==", 1)[0].strip().lower() in names
            if keep:
                kept.append(line)
        elif keep and line.strip().startswith("--hash="):
            kept.append(line)
    missing = [n for n in names if not any(k.lower().startswith(f"{n}==") for k in kept)]
    if missing:
        raise RuntimeError(f"{LOCK} lacks {', '.join(missing)}")
    return "\n".join(kept) + "\n"


def _wanted_stamp() -> dict[str, str] | None:
    """What the stamp must say for the venv to be current (None: no venv to compare)."""
    try:
        interpreter = (VENV_DIR / "pyvenv.cfg").read_text()
    except OSError:
        return None
    return {
        "lock_sha256": hashlib.sha256(LOCK.read_bytes()).hexdigest(),
        "interpreter_sha256": hashlib.sha256(interpreter.encode()).hexdigest(),
    }


def _read_stamp() -> dict[str, str]:
    try:
        stamp: dict[str, str] = json.loads(STAMP.read_text())
        return stamp
    except (OSError, ValueError):
        return {}


def fat_jar_path() -> Path | None:
    """``localstack.services.install.INSTALL_PATH_LOCALSTACK_FAT_JAR`` (recorded at install)."""
    recorded = _read_stamp().get("fat_jar")
    return Path(recorded) if recorded else None


def is_installed() -> bool:
    wanted = _wanted_stamp()
    stamp = _read_stamp()
    return (
        wanted is not None
        and VENV_PYTHON.exists()  # follows the symlink: fails if the base interpreter is gone
        and all(stamp.get(key) == value for key, value in wanted.items())
    )


def _run(args: list[str]) -> str:
    print("+", " ".join(args), file=sys.stderr, flush=True)
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    result = subprocess.run(args, check=True, env=env, stdout=subprocess.PIPE, text=True)
    return result.stdout


def ensure_installed() -> bool:
    """Build the venv if it is missing or stale. Returns True if this call built it."""
    if is_installed():
        _ensure_fat_jar()
        return False
    with locked(STATE_DIR / "localstack-0.14.3-venv.lock"):
        if is_installed():  # built by another process while this one waited
            _ensure_fat_jar()
            return False
        started = time.monotonic()
        base = find_python39()
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        _run([base, "-m", "venv", str(VENV_DIR)])
        pip = installer.install(VENV_PYTHON, "--no-deps", "--require-hashes")
        # The build tools first, from the lock; then the rest with --no-build-isolation, so the
        # sdists (localstack-ext, dnslib, ...) build with them and nothing unhashed is fetched.
        with tempfile.TemporaryDirectory(prefix="ls0143-lock-") as tmp:
            build_lock = Path(tmp) / "build-requirements.txt"
            build_lock.write_text(lock_entries(LOCK.read_text(), BUILD_TOOLS))
            _run([*pip, "-r", str(build_lock)])
        _run([*pip, "--no-build-isolation", "-r", str(LOCK)])
        fat_jar = _run(
            [
                str(VENV_PYTHON),
                "-c",
                "from localstack.services import install; "
                "print(install.INSTALL_PATH_LOCALSTACK_FAT_JAR)",
            ]
        ).strip()
        wanted = _wanted_stamp()
        assert wanted is not None
        STAMP.write_text(json.dumps({**wanted, "fat_jar": fat_jar}, indent=2) + "\n")
        _ensure_fat_jar()
        print(
            f"LocalStack 0.14.3 venv ready in {time.monotonic() - started:.1f} s: {VENV_DIR}",
            file=sys.stderr,
        )
        return True


def _ensure_fat_jar() -> None:
    """An empty localstack-utils-fat.jar: host mode downloads it from Maven at every start
    otherwise (SQS does not use it)."""
    path = fat_jar_path()
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
