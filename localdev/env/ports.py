"""Free loopback TCP ports for the servers localdev starts, and one per test worker's LocalStack.

Ports are chosen below the kernel's ephemeral range (``ip_local_port_range``), never with
``bind(0)``: that hands out an ephemeral port, which nothing holds until the server binds it.
Meanwhile an outgoing connection may take it as its local port, or another ``bind(0)`` may hand
it to another server. Both were seen: a worker's LocalStack, whose port is chosen when the suite
starts, found it taken minutes later, was answered by someone else's server, and never listened.

The range below is split: the workers' LocalStack ports (``worker_port``: a block the pytest
controller picks once, one port per worker, so workers never collide) and the rest
(``free_port``: random, checked free).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Final

BASE_VARIABLE: Final = "LOGIN_ETL_WORKER_PORT_BASE"  # set by the controller, read by workers
_EPHEMERAL_RANGE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
_WORKER_BLOCKS: Final = 16  # blocks of _WORKER_BLOCK ports, just below the free_port range
_WORKER_BLOCK: Final = 64
_SPAN: Final = 8_000  # ports below the ephemeral range that we use


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _lowest() -> int:
    return _ephemeral_low() - _SPAN


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port() -> int:
    """A port free now, outside the ephemeral range and the workers' blocks."""
    low = _lowest() + _WORKER_BLOCKS * _WORKER_BLOCK
    if _lowest() < 1024:  # an unusual ephemeral range: no room below it
        return _ephemeral()
    for _ in range(200):
        port = random.randrange(low, _ephemeral_low())
        if _is_free(port):
            return port
    return _ephemeral()


def new_worker_base() -> int:
    """The first port of a block for one test run's workers (picked at random among blocks,
    so two runs on one machine rarely share one)."""
    return _lowest() + random.randrange(_WORKER_BLOCKS) * _WORKER_BLOCK


def worker_port(base: int | None, worker: str) -> int:
    """The LocalStack port of xdist worker ``worker`` (``gw3``: ``base + 3``); a random free
    one if there is no base, the worker number does not fit the block, or the port is taken."""
    number = worker.removeprefix("gw")
    if base is not None and _lowest() >= 1024 and number.isdigit():
        port = base + int(number)
        if int(number) < _WORKER_BLOCK and _is_free(port):
            return port
    return free_port()
