"""Ports for local servers: never ephemeral ones, one per test worker (localdev.env.ports)."""

from __future__ import annotations

import socket

from localdev.env import ports


def _ephemeral_range() -> tuple[int, int]:
    low, high = ports._EPHEMERAL_RANGE.read_text().split()
    return int(low), int(high)


def test_free_ports_are_free_and_below_the_ephemeral_range() -> None:
    low, _ = _ephemeral_range()
    blocks_end = ports._lowest() + ports._WORKER_BLOCKS * ports._WORKER_BLOCK
    for _ in range(50):
        port = ports.free_port()
        assert blocks_end <= port < low  # never a worker's, never one a connection may take
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_workers_of_one_run_get_distinct_ports_from_one_block() -> None:
    base = ports.new_worker_base()
    assert ports._lowest() <= base < ports._lowest() + ports._WORKER_BLOCKS * ports._WORKER_BLOCK
    got = [ports.worker_port(base, f"gw{n}") for n in range(8)]
    assert got == [base + n for n in range(8)]


def test_a_taken_worker_port_or_no_base_gives_another_free_port() -> None:
    base = ports.new_worker_base()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))  # e.g. another run on the machine picked this block
        port = ports.worker_port(base, "gw0")
        assert port != base
    assert ports.worker_port(None, "gw0") >= ports._lowest()
    assert ports.worker_port(base, "gw999") != base + 999  # beyond the block
