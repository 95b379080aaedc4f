"""A container engine for ``sam local``: the machine's own Docker engine, or the project's podman.

    with engine.running() as eng:          # DOCKER_HOST for SAM in eng.env()
        with engine.network(eng, "login-etl-x") as net, relay(...):
            ...

- ``setup``: which engine; podman installed (apt-get, as root), configured under
  ``.local/podman`` and its Docker-API service started/stopped;
- ``network``: a podman/Docker network of our own, its gateway address;
- ``relay``: a TCP relay from that gateway to a server on loopback (the local Postgres), so a
  container reaches it while the server itself listens on 127.0.0.1 only.
"""

from localdev.engine.network import Network, network
from localdev.engine.relay import Relay
from localdev.engine.setup import Engine, EngineError, running

__all__ = ["Engine", "EngineError", "Network", "Relay", "network", "running"]
