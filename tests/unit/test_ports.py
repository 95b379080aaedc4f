"""Ports for local servers: never ephemeral ones, one per test worker (localdev.env.ports)."""

from __future__ import annotations

import os
import socket

from localdev.env import ports


def _in_free_range(port: int) -> bool:
    """Below the ephemeral range as the kernel states it, above every worker block."""
    low = int(ports._EPHEMERAL_RANGE.read_text().split()[0])
    return ports.FREE_LOW <= port < low


def test_free_ports_are_free_and_below_the_ephemeral_range() -> None:
    for _ in range(50):
        port = ports.free_port()
        assert _in_free_range(port)  # never a worker's, never one a connection may take
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_new_block_is_not_one_whose_ports_are_taken() -> None:
    """CI once drew the running suite's own block here (1 in 16), whose LocalStacks held
    ports: a block in use is not drawn while a free one is left."""
    held = []
    try:
        for block in range(ports.LOWEST, ports.FREE_LOW, 2 * 64):  # every other block
            sock = socket.socket()
            sock.bind(("127.0.0.1", block + 5))
            held.append(sock)
        for _ in range(50):
            assert (ports.new_worker_base() - ports.LOWEST) // 64 % 2 == 1
    finally:
        for sock in held:
            sock.close()


def test_workers_of_one_run_get_distinct_ports_from_one_block() -> None:
    ours = os.environ.get(ports.BASE_VARIABLE)  # this run's block: its workers bind theirs
    while str(base := ports.new_worker_base()) == ours:
        pass
    assert ports.LOWEST <= base < ports.FREE_LOW
    got = [ports.worker_port(base, f"gw{n}") for n in range(8)]
    assert got == [base + n for n in range(8)]


def test_a_taken_worker_port_or_no_base_gives_a_free_range_port() -> None:
    base = ports.new_worker_base()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))  # e.g. another run on the machine picked this block
        assert _in_free_range(ports.worker_port(base, "gw0"))
    assert _in_free_range(ports.worker_port(None, "gw0"))
    assert _in_free_range(ports.worker_port(base, "gw999"))  # beyond the block
    assert _in_free_range(ports.worker_port(base, "main"))  # not an xdist worker name
