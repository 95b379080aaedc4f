"""Installing packages into the project's virtualenvs: with uv when it is at hand, else pip.

``make setup`` puts uv (pinned in requirements-dev.txt) into ``.venv``; run from there, the
LocalStack virtualenvs are filled by ``uv pip install`` (about 15 s with the bytecode instead of
pip's 40 s for LocalStack's core on 2 cores). Run from any other Python, the same command goes
through pip. Either way the packages come from the same pinned requirements and lock files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def uv() -> str | None:
    """The uv beside the running interpreter (``.venv/bin/uv``), if there is one."""
    return shutil.which("uv", path=str(Path(sys.executable).parent))


def install(python: Path, *args: str, reinstall: bool = False) -> list[str]:
    """The command that installs ``args`` (pip's options) into the virtualenv of ``python``."""
    tool = uv()
    if tool is not None:
        return (
            # Bytecode at install, as pip does: PYTHONDONTWRITEBYTECODE (set on this machine
            # kind) would otherwise make every LocalStack start compile its imports again.
            [tool, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
            + (["--reinstall"] if reinstall else [])
            + list(args)
        )
    return (
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + (["--force-reinstall"] if reinstall else [])
        + list(args)
    )
