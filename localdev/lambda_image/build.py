"""Build ``public.ecr.aws/lambda/python:3.13-x86_64`` locally, once per recipe.

The recipe: a ``debootstrap --variant=minbase`` root file system of Debian trixie (the first
Debian with CPython 3.13: ``python3.13-minimal`` + ``libpython3.13-stdlib``), from the Debian
mirror apt is configured with; ``/var/runtime`` holding the wheels of ``runtime.lock`` (the
runtime interface client ``awslambdaric`` and boto3, hash-checked); ``/var/runtime/bootstrap``.
The tree is imported with ``podman import`` (no registry, no Dockerfile ``FROM``), labelled with
the sha256 of the recipe files. A label that matches means the image is current; otherwise it is
rebuilt and SAM's cached ``…:3.13-rapid-x86_64`` (the base plus SAM's emulator) is removed, so
SAM rebuilds that on top of the new base.

    python -m localdev.lambda_image.build   # build (or check) it with the project's podman
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from localdev import REPO
from localdev.engine.setup import Engine, EngineError
from localdev.env.filelock import locked

IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"
RAPID_IMAGE = "public.ecr.aws/lambda/python:3.13-rapid-x86_64"
RECIPE_LABEL = "io.login-etl.lambda-image-recipe"
HERE = Path(__file__).resolve().parent
RECIPE_FILES = (HERE / "build.py", HERE / "bootstrap", HERE / "runtime.lock")
WORK_DIR = REPO / ".local" / "lambda-image"
SUITE = "trixie"
DEBIAN_PACKAGES = ("python3.13-minimal", "libpython3.13-stdlib", "ca-certificates")
FALLBACK_MIRROR = "http://deb.debian.org/debian"
# What AWS's image sets too (its PATH starts with /var/lang/bin, where its Python lives).
IMAGE_ENV = {
    "LANG": "C.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/usr/local/bin:/usr/bin:/bin:/opt/bin",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}


def recipe_hash() -> str:
    digest = hashlib.sha256()
    for path in RECIPE_FILES:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def podman(engine: Engine, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args], env=engine.env(), capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise EngineError(f"podman {args[0]} failed: {done.stderr.strip()}")
    return done


def current_recipe(engine: Engine) -> str | None:
    """The recipe hash the local image was built from, or None when there is no such image."""
    done = podman(
        engine,
        "image",
        "inspect",
        "--format",
        f'{{{{ index .Labels "{RECIPE_LABEL}" }}}}',
        IMAGE,
        check=False,
    )
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def debian_mirror() -> str:
    """The Debian archive apt is configured with (not -security), reachable for trixie."""
    candidates: list[str] = []
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for match in re.finditer(r"^URIs:\s*(.+)$", sources.read_text(), re.MULTILINE):
            candidates += match.group(1).split()
    sources_list = Path("/etc/apt/sources.list")
    if sources_list.exists():
        for line in sources_list.read_text().splitlines():
            fields = line.split()
            if fields[:1] == ["deb"]:
                candidates += [f for f in fields[1:] if f.startswith(("http://", "https://"))][:1]
    for uri in [*candidates, FALLBACK_MIRROR]:
        uri = uri.rstrip("/")
        if not uri.endswith("/debian"):
            continue  # debian-security, other vendors' repositories
        try:
            with urllib.request.urlopen(f"{uri}/dists/{SUITE}/Release", timeout=20):  # noqa: S310
                return uri
        except (urllib.error.URLError, OSError):
            continue
    raise EngineError(f"no Debian mirror with {SUITE} is reachable (tried {candidates})")


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise EngineError(f"{what} failed ({done.returncode}):\n{tail}")


def build_root(root: Path) -> None:
    """The image's file system in ``root`` (root only: debootstrap and chroot)."""
    if os.geteuid() != 0:
        raise EngineError("building the Lambda base image needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        raise EngineError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = debian_mirror()
    print(f"lambda image: debootstrap {SUITE} from {mirror} (about a minute)", flush=True)
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            SUITE,
            str(root),
            mirror,
        ],
        "debootstrap",
    )
    runtime = root / "var" / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    # The host's pip installs the wheels for the image's interpreter (CPython 3.13, x86-64).
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-compile",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.13",
            "--implementation",
            "cp",
            "--abi",
            "cp313",
            "--target",
            str(runtime),
            "-r",
            str(HERE / "runtime.lock"),
        ],
        "pip install of runtime.lock",
    )
    shutil.copy2(HERE / "bootstrap", runtime / "bootstrap")
    (runtime / "bootstrap").chmod(0o755)
    for folder in ("var/task", "opt"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    # Byte-compiled by the image's own interpreter, as AWS ships its runtime.
    _run(
        ["chroot", str(root), "/usr/bin/python3.13", "-m", "compileall", "-q", "/var/runtime"],
        "compileall in the image",
    )
    # Package caches and lists are of no use in a read-only runtime image.
    for leftover in ("var/cache/apt", "var/lib/apt/lists"):
        shutil.rmtree(root / leftover, ignore_errors=True)
        (root / leftover).mkdir(parents=True)


def import_root(engine: Engine, root: Path, recipe: str) -> None:
    changes = [
        'ENTRYPOINT ["/var/runtime/bootstrap"]',
        "WORKDIR /var/task",
        f"LABEL {RECIPE_LABEL}={recipe}",
        *(f"ENV {name}={value}" for name, value in IMAGE_ENV.items()),
    ]
    tar = subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
    )
    try:
        done = subprocess.run(
            ["podman", "import", *(f"--change={c}" for c in changes), "-", IMAGE],
            stdin=tar.stdout,
            env=engine.env(),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
    if done.returncode != 0 or tar.returncode != 0:
        raise EngineError(f"podman import failed: {done.stderr.strip()}")


def ensure_image(engine: Engine) -> bool:
    """Make the base image current in the project's podman; True when it was (re)built.

    With an engine the machine already had, nothing is built: SAM pulls AWS's own image.
    """
    if not engine.project_podman:
        return False
    recipe = recipe_hash()
    with locked(WORK_DIR / "lock"):  # make invoke and the tests may race
        if current_recipe(engine) == recipe:
            return False
        started = time.monotonic()
        work = WORK_DIR / f"build-{recipe[:12]}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            build_root(work / "root")
            import_root(engine, work / "root", recipe)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        # SAM's emulator image sits on the old base: drop it, SAM rebuilds it on the new one.
        podman(engine, "rmi", "--force", RAPID_IMAGE, check=False)
        podman(engine, "image", "prune", "--force", check=False)
        print(f"lambda image: {IMAGE} built in {time.monotonic() - started:.0f} s", flush=True)
        return True


def main() -> int:
    from localdev.engine.setup import running

    try:
        with running() as engine:
            if not engine.project_podman:
                print(f"lambda image: an existing engine ({engine.name}); SAM pulls AWS's image")
                return 0
            built = ensure_image(engine)
            print(f"lambda image: {IMAGE} {'built' if built else 'is current'}")
    except EngineError as error:
        print(f"lambda image: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
