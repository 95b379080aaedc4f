"""Free loopback TCP ports for the servers localdev starts, and one per test worker's LocalStack.

Ports are chosen below the kernel's ephemeral range (``ip_local_port_range``), never with
``bind(0)``: that hands out an ephemeral port, which nothing holds until the server binds it;
meanwhile an outgoing connection may take it as its local port, or another ``bind(0)`` may hand
it to another server. A worker's LocalStack port is chosen when the suite starts and bound
minutes later: in one run a worker's LocalStack never answered on its port, and a socket holding
the port reproduces that (docs/local-development.md).

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
_SPAN: Final = 8_000  # ports below the ephemeral range that we use
_WORKER_BLOCK: Final = 64  # ports per block (one per worker)
_WORKER_BLOCKS: Final = 16  # blocks at the bottom of the span; free_port uses the rest


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


EPHEMERAL_LOW: Final = _ephemeral_low()
LOWEST: Final = EPHEMERAL_LOW - _SPAN  # the first worker block
FREE_LOW: Final = LOWEST + _WORKER_BLOCKS * _WORKER_BLOCK  # the first port free_port may pick
_ROOM: Final = LOWEST >= 1024  # False on an unusual ephemeral range: bind(0) then


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free now, outside the ephemeral range and the workers' blocks."""
    for _ in range(200 if _ROOM else 0):
        port = random.randrange(FREE_LOW, EPHEMERAL_LOW)
        if _is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        ephemeral: int = sock.getsockname()[1]
        return ephemeral


def new_worker_base() -> int:
    """The first port of a block for one test run's workers: a block at random whose ports are
    all free now, so a run does not take a block whose LocalStacks another run has started (any
    block if none is free)."""
    for _ in range(2 * _WORKER_BLOCKS):
        base = LOWEST + random.randrange(_WORKER_BLOCKS) * _WORKER_BLOCK
        if all(_is_free(port) for port in range(base, base + _WORKER_BLOCK)):
            return base
    return base


def worker_port(base: int | None, worker: str) -> int:
    """The LocalStack port of xdist worker ``worker`` (``gw3``: ``base + 3``); a free one from
    :func:`free_port` if there is no base, the number does not fit a block, or it is taken."""
    number = worker.removeprefix("gw")
    if _ROOM and base is not None and number.isdigit() and int(number) < _WORKER_BLOCK:
        port = base + int(number)
        if _is_free(port):
            return port
    return free_port()
