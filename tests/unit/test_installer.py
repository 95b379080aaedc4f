"""localdev.env.installer: uv's install command when .venv has uv, else pip's, same packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev.env import installer

VENV_PYTHON = Path("/x/venv/bin/python")


def test_with_uv_installs_into_that_venv_with_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "uv", lambda: "/x/.venv/bin/uv")
    command = installer.install(VENV_PYTHON, "--no-deps", "pkg", reinstall=True)
    assert command[:3] == ["/x/.venv/bin/uv", "pip", "install"]
    assert command[command.index("--python") + 1] == str(VENV_PYTHON)
    assert "--compile-bytecode" in command  # as pip does: this machine sets PYTHONDONTWRITEBYTECODE
    assert "--reinstall" in command
    assert command[-2:] == ["--no-deps", "pkg"]


def test_without_uv_it_is_that_venvs_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "uv", lambda: None)
    command = installer.install(VENV_PYTHON, "-r", "req.txt", reinstall=True)
    assert command[:4] == [str(VENV_PYTHON), "-m", "pip", "install"]
    assert "--force-reinstall" in command
    assert command[-2:] == ["-r", "req.txt"]
    assert installer.install(VENV_PYTHON, "pkg")[-1] == "pkg"
    assert "--force-reinstall" not in installer.install(VENV_PYTHON, "pkg")
