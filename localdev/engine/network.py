"""A container network of our own, for ``sam local --docker-network``, and its gateway address.

``--docker-network host`` does not work with SAM (it publishes the emulator's port and connects
to it, which a host-network container has not got), so the function runs on a bridge network
whose gateway is this machine's own address on it: what the container reaches the host at.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from localdev.engine.setup import Engine


@dataclass(frozen=True)
class Network:
    name: str
    gateway: str  # the host's address on the network


def client(engine: Engine) -> Any:
    """A docker-py client of ``engine`` (SAM's own dependency; podman's API is Docker's)."""
    return docker.from_env(environment=engine.env(), timeout=120)


def _gateway(attrs: dict[str, Any]) -> str:
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway") and ":" not in config["Gateway"]:
            return str(config["Gateway"])
    raise RuntimeError(f"network {attrs.get('Name')} has no IPv4 gateway")


def remove(engine: Engine, name: str) -> None:
    """Remove network ``name`` and any container left on it (both ours by their name)."""
    api = client(engine)
    try:
        found = api.networks.get(name)
    except docker.errors.NotFound:
        return
    for container in found.attrs.get("Containers") or {}:
        with contextlib.suppress(docker.errors.NotFound):
            api.containers.get(container).remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        found.remove()


@contextlib.contextmanager
def network(engine: Engine, name: str) -> Iterator[Network]:
    """Network ``name`` (``login-etl-…``: ours), created fresh and removed after the block."""
    if not name.startswith("login-etl-"):
        raise ValueError("the project's networks are named login-etl-…")
    remove(engine, name)  # a leftover of an interrupted run
    created = client(engine).networks.create(name, driver="bridge")
    created.reload()
    try:
        yield Network(name, _gateway(created.attrs))
    finally:
        remove(engine, name)
