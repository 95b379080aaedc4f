"""The pieces around ``sam local`` that need no engine: URLs, the relay, the image's recipe."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest

from localdev.engine import setup
from localdev.engine.network import Network
from localdev.engine.relay import Relay
from localdev.lambda_image import build
from localdev.lambda_local import sam_local


def test_with_host_keeps_credentials_database_and_query() -> None:
    url = "postgresql://postgres:postgres@127.0.0.1:54329/postgres?sslmode=disable"
    assert sam_local.with_host(url, "10.89.0.1", 40000) == (
        "postgresql://postgres:postgres@10.89.0.1:40000/postgres?sslmode=disable"
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("localhost", True), ("::1", True),
     ("10.89.0.1", False), ("db.example.internal", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert sam_local.is_loopback(host) is loopback


def test_a_database_off_loopback_is_passed_on_unchanged() -> None:
    url = "postgresql://u:p@db.example.internal:5432/logins"
    with sam_local.reachable_from(Network("login-etl-x", "10.89.0.1"), url) as reached:
        assert reached == url


def test_a_loopback_database_is_reached_through_a_relay_on_the_gateway() -> None:
    # 127.0.0.2 stands in for the gateway: a host address other than the server's.
    with EchoServer() as port:
        url = f"postgresql://u:p@127.0.0.1:{port}/db"
        with sam_local.reachable_from(Network("login-etl-x", "127.0.0.2"), url) as reached:
            assert reached.startswith("postgresql://u:p@127.0.0.2:")
            relay_port = int(reached.rsplit(":", 1)[1].split("/")[0])
            assert round_trip(("127.0.0.2", relay_port), b"startup packet") == b"startup packet"


def test_the_relay_binds_an_address_that_does_not_exist_yet() -> None:
    # A network's gateway appears when its first container starts (IP_FREEBIND).
    with Relay("10.254.254.254", ("127.0.0.1", 9)) as relay:
        assert relay.port > 0


def test_the_relay_carries_both_directions_and_many_connections() -> None:
    with EchoServer() as port, Relay("127.0.0.1", ("127.0.0.1", port)) as relay:
        for size in (1, 70_000, 300_000):
            payload = bytes(range(256)) * (size // 256 + 1)
            assert round_trip(("127.0.0.1", relay.port), payload[:size]) == payload[:size]


def test_the_recipe_hash_covers_every_recipe_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = []
    for original in build.RECIPE_FILES:
        copy = tmp_path / original.name
        copy.write_bytes(original.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(build, "RECIPE_FILES", tuple(copies))
    before = build.recipe_hash()
    for copy in copies:
        copy.write_bytes(copy.read_bytes() + b"\n")
        assert build.recipe_hash() != before, copy.name
        before = build.recipe_hash()


def test_every_lock_entry_is_pinned_with_a_hash() -> None:
    text = (build.HERE / "runtime.lock").read_text()
    requirements = re.findall(r"^([a-z0-9_.-]+==[^ ]+) \\$", text, re.MULTILINE)
    hashes = re.findall(r"^    --hash=sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    assert "awslambdaric==4.2.2" in requirements
    assert len(hashes) == len(requirements) >= 3


def test_podman_config_stays_within_the_hard_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource

    monkeypatch.setattr(setup, "STATE_DIR", tmp_path)
    monkeypatch.setattr(setup, "CONTAINERS_CONF", tmp_path / "containers.conf")
    monkeypatch.setattr(setup, "STORAGE_CONF", tmp_path / "storage.conf")
    setup.write_config()
    text = (tmp_path / "containers.conf").read_text()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = 1_048_576 if hard == resource.RLIM_INFINITY else min(hard, 1_048_576)
    assert f'"nofile={expected}:{expected}"' in text
    assert 'runtime = "runc"' in text and 'cgroup_manager = "cgroupfs"' in text
    assert str(tmp_path / "storage") in (tmp_path / "storage.conf").read_text()


def test_an_existing_docker_host_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    found = setup.existing_engine()
    assert found == setup.Engine("tcp://127.0.0.1:2375", project_podman=False)
    assert "CONTAINERS_CONF" not in found.env({})


class EchoServer:
    def __enter__(self) -> int:
        self.sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)


def round_trip(address: tuple[str, int], payload: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as conn:
        sender = threading.Thread(target=conn.sendall, args=(payload,))
        sender.start()
        received = b""
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join()
        return received
