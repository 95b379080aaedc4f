"""The LocalStack virtualenv (``.local/localstack-venv``): created and kept in step with its inputs.

LocalStack's core imports only on Python 3.13, while this tool runs on any Python >= 3.11, so
LocalStack gets a virtualenv of its own. A stamp holding the hash of everything installed
(requirements.txt, the executor plugin's source, the interpreter) makes a second ``start`` a
single file read; any change to those inputs reinstalls.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from localdev import REPO
from localdev.env import installer
from localdev.env.filelock import locked

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = REPO
STATE_DIR = REPO_ROOT / ".local"
VENV_DIR = STATE_DIR / "localstack-venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
REQUIREMENTS = PACKAGE_DIR / "requirements.txt"
PLUGIN_DIR = PACKAGE_DIR / "hostexec"
STAMP = VENV_DIR / ".localdev-install.sha256"
LOCALSTACK_PYTHON = "python3.13"


def _runtime_python() -> ModuleType:
    """The plugin's stdlib-only interpreter finder, loaded by path: it is not installed here."""
    path = PLUGIN_DIR / "src" / "localstack_hostexec" / "runtime_python.py"
    spec = importlib.util.spec_from_file_location("_hostexec_runtime_python", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs_hash() -> str:
    digest = hashlib.sha256()
    files = [
        REQUIREMENTS,
        *sorted(p for p in PLUGIN_DIR.rglob("*") if p.is_file() and _is_source(p)),
    ]
    for path in files:
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _is_source(path: Path) -> bool:
    return (
        "__pycache__" not in path.parts
        and not any(p.endswith(".egg-info") for p in path.parts)
        and "build" not in path.relative_to(PLUGIN_DIR).parts
    )


def is_installed() -> bool:
    return VENV_PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == _inputs_hash()


def _run(args: list[str], **env: str) -> None:
    print("+", " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(
        args, check=True, env={**os.environ, **env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    )


def ensure_installed() -> bool:
    """Create/refresh the venv when its inputs changed. Returns True if it installed anything."""
    if is_installed():
        return False
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with locked(STATE_DIR / "localstack-venv.lock"):  # the suite's workers start it at once
        if is_installed():  # built by another process while this one waited
            return False
        _install()
    return True


def _install() -> None:
    started = time.monotonic()
    if not VENV_PYTHON.exists():
        base = _runtime_python().find_base_interpreter(LOCALSTACK_PYTHON)
        _run([base, "-m", "venv", str(VENV_DIR)])
    _run(installer.install(VENV_PYTHON, "-r", str(REQUIREMENTS)))
    # Built from a copy so the build leaves no build/ or *.egg-info in the work tree; without build
    # isolation because setuptools is already in the venv (a LocalStack dependency).
    with tempfile.TemporaryDirectory(prefix="hostexec-build-") as tmp:
        source = Path(tmp) / "hostexec"
        shutil.copytree(
            PLUGIN_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        _run(
            installer.install(
                VENV_PYTHON, "--no-deps", "--no-build-isolation", str(source), reinstall=True
            )
        )
    # The functions' interpreter, created now rather than on the first CreateFunction.
    _run(
        [str(VENV_PYTHON), "-m", "localstack_hostexec.runtime_python", "ensure", "python3.13"],
        HOSTEXEC_STATE_DIR=str(STATE_DIR),
    )
    STAMP.write_text(_inputs_hash() + "\n")
    print(
        f"LocalStack venv ready in {time.monotonic() - started:.1f} s: {VENV_DIR}", file=sys.stderr
    )
