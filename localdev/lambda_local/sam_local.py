"""What ``sam local invoke`` / ``start-lambda`` need around them here: an engine, the base image,
a network of ours and the database reachable from it. Shared by ``make invoke`` and the tests.

    with sam_local.session(database_url, network_name) as ctx:
        sam.run_sam(["local", "invoke", ..., *ctx.args(env_file)], env=ctx.env)
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from localdev.engine import Engine, Network, Relay, network, running
from localdev.env import sam
from localdev.lambda_image.build import ensure_image

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_host(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced (user, password, database and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def reachable_from(net: Network, database_url: str) -> Iterator[str]:
    """The URL a container on ``net`` uses for ``database_url``.

    A server on loopback is reached through a relay on the network's gateway; any other host is
    left as it is (the container reaches it through the engine's NAT, as the host would).
    """
    parts = urlsplit(database_url)
    host = parts.hostname or "localhost"
    if not is_loopback(host):
        yield database_url
        return
    with Relay(net.gateway, (host, parts.port or 5432)) as relay:
        yield with_host(database_url, net.gateway, relay.port)


def write_env_vars(path: Path, values: Mapping[str, str]) -> Path:
    """An ``--env-vars`` file for the function (it holds a key: owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({sam.FUNCTION_ID: dict(values)}, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class Session:
    engine: Engine
    network: Network
    database_url: str  # as the container reaches it

    @property
    def env(self) -> dict[str, str]:
        """SAM's environment: its usual one plus ``DOCKER_HOST`` of the engine."""
        return sam_env_for(self.engine)

    def args(self, env_file: Path) -> list[str]:
        """The ``sam local invoke``/``start-lambda`` options for this engine and network."""
        args = ["--env-vars", str(env_file), "--docker-network", self.network.name]
        if self.engine.project_podman:
            args.append("--skip-pull-image")  # our image is local; no registry is reachable
        return args


def sam_env_for(engine: Engine) -> dict[str, str]:
    return engine.env(sam.sam_env())


@contextlib.contextmanager
def session(database_url: str, network_name: str) -> Iterator[Session]:
    """Engine up, base image current, network created, database reachable; all undone after."""
    with (
        running() as engine,
        network(engine, network_name) as net,
        reachable_from(net, database_url) as url,
    ):
        ensure_image(engine)
        yield Session(engine, net, url)


def env_for_function(env_file: Path) -> dict[str, str]:
    """The function's variables from an ``--env-vars`` file (``events/env.json``'s shape)."""
    values: dict[str, str] = json.loads(env_file.read_text())[sam.FUNCTION_ID]
    return {name: str(value) for name, value in values.items()}


def database_url_default(values: Mapping[str, str]) -> str:
    """``DATABASE_URL`` from the caller's environment, else from the env-vars file."""
    return os.environ.get("DATABASE_URL") or values["DATABASE_URL"]
