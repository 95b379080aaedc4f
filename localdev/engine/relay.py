"""A TCP relay from a container network's gateway address to a server on loopback.

The local Postgres servers (``localdev.env.postgres``, the suite's) listen on 127.0.0.1 only; a
container cannot reach that. The relay listens on the gateway (the host's own address on the
project's network, nothing wider) and copies bytes both ways to the server. The gateway address
appears only when the first container joins the network, so the socket is bound with
``IP_FREEBIND``: listening before the address exists.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

_IP_FREEBIND = 15  # linux/in.h; not exported by Python's socket module
_CHUNK = 65536


class Relay:
    """``with Relay(gateway, ("127.0.0.1", 5432)) as relay:`` → listening on gateway:relay.port."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.listen_host = listen_host
        self.target = target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        self._listener.bind((listen_host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def __enter__(self) -> Self:
        self._listener.listen(64)
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()
            self._open.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            # Postgres never half-closes: one direction ending ends the connection; the other
            # pump then fails on the closed socket and closes its own source.
            self._forget(source)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()
