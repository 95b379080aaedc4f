"""The "Lambda runtime" interpreters: one virtualenv per supported Lambda runtime.

AWS's managed Python runtime ships the interpreter plus boto3/botocore and nothing else, so a
function that works here only because the host happens to have a package installed would break
in AWS. Each runtime therefore gets its own virtualenv holding exactly the pinned packages below.

Stdlib only: it runs inside LocalStack (to prepare a function) and as
``python -m localstack_hostexec.runtime_python ensure python3.13`` at install time.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

# Pinned to the boto3 that localstack-core 2026.3.0 itself uses: known to speak LocalStack's
# APIs. The full closure is pinned so two machines get the same runtime.
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "python3.13": (
        "boto3==1.42.72",
        "botocore==1.42.72",
        "s3transfer==0.16.1",
        "jmespath==1.1.0",
        "python-dateutil==2.9.0.post0",
        "six==1.17.0",
        "urllib3==2.8.0",
    ),
}

SUPPORTED_RUNTIMES = tuple(RUNTIME_PACKAGES)
_STAMP = ".hostexec-requirements.sha256"
_lock = threading.Lock()


class UnsupportedRuntimeError(Exception):
    """The function's runtime cannot run as a host process."""


def state_dir() -> Path:
    """Where runtime venvs and function logs live (the repo's ``.local/``)."""
    return Path(os.environ.get("HOSTEXEC_STATE_DIR", ".local")).resolve()


def check_supported(runtime: str | None) -> str:
    if runtime not in RUNTIME_PACKAGES:
        raise UnsupportedRuntimeError(
            f"runtime {runtime!r} is not supported by the LocalStack 'host' executor "
            f"(supported: {', '.join(SUPPORTED_RUNTIMES)}); zip packages only, no container images"
        )
    return runtime


def venv_dir(runtime: str) -> Path:
    return state_dir() / f"lambda-runtime-{runtime}"


def interpreter(runtime: str) -> Path:
    return venv_dir(runtime) / "bin" / "python"


def _requirements_hash(runtime: str) -> str:
    return hashlib.sha256("\n".join(RUNTIME_PACKAGES[runtime]).encode()).hexdigest()


def find_base_interpreter(runtime: str) -> str:
    """A host interpreter of the runtime's version: on PATH, else in pyenv's versions folder."""
    name = runtime  # "python3.13" is also the executable's name
    version = runtime.removeprefix("python")
    on_path = shutil.which(name)
    if on_path and _is_version(on_path, version):
        return on_path
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for candidate in sorted(
        glob.glob(f"{pyenv_root}/versions/{version}*/bin/{name}"), reverse=True
    ):
        if _is_version(candidate, version):
            return candidate
    raise UnsupportedRuntimeError(
        f"no {name} interpreter found (looked on PATH and in {pyenv_root}/versions/{version}*); "
        f"install Python {version} to run {runtime} functions"
    )


def _is_version(executable: str, version: str) -> bool:
    # A pyenv shim exists on PATH even when that version is not installed; it fails when run.
    check = f"import sys; assert '%d.%d' % sys.version_info[:2] == {version!r}"
    try:
        result = subprocess.run([executable, "-c", check], capture_output=True, timeout=20)
        return result.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def is_ready(runtime: str) -> bool:
    stamp = venv_dir(runtime) / _STAMP
    return (
        interpreter(runtime).exists()
        and stamp.exists()
        and stamp.read_text().strip() == _requirements_hash(runtime)
    )


def ensure(runtime: str) -> Path:
    """Create (or refresh) the runtime's virtualenv; return its interpreter. Idempotent."""
    check_supported(runtime)
    with _lock, _locked_across_processes(runtime):
        if is_ready(runtime):
            return interpreter(runtime)
        target = venv_dir(runtime)
        if target.exists():
            shutil.rmtree(target)
        base = find_base_interpreter(runtime)
        subprocess.run([base, "-m", "venv", str(target)], check=True)
        subprocess.run(
            [
                str(interpreter(runtime)),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *RUNTIME_PACKAGES[runtime],
            ],
            check=True,
        )
        (target / _STAMP).write_text(_requirements_hash(runtime) + "\n")
        return interpreter(runtime)


@contextlib.contextmanager
def _locked_across_processes(runtime: str) -> Iterator[None]:
    """LocalStack's executor and ``make up`` (or two test workers) may build it at once."""
    lock_file = venv_dir(runtime).with_name(f".{runtime}.lock")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "ensure":
        print(
            "usage: python -m localstack_hostexec.runtime_python ensure RUNTIME...", file=sys.stderr
        )
        return 2
    for runtime in argv[1:]:
        print(ensure(runtime))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
