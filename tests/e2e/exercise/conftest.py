"""The exercise's own environment: LocalStack 0.14.3 (what fetchdocker/data-takehome-localstack
runs) on the host, with queues loaded the way that image's init script loads ``login-queue``.

The first session on a machine builds ``.local/localstack-0.14.3-venv`` from the committed lock
(~1 min); later ones only start the server (~4 s).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from localdev.env import localstack_0143 as ls0143
from localdev.env.localstack_0143 import loader


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "exercise: runs against the exercise's own LocalStack 0.14.3 (started here)"
    )


@dataclass
class LocalStack0143:
    server: ls0143.Server

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def queue_url(self, name: str) -> str:
        return f"{self.endpoint}/000000000000/{name}"

    def load_queue(
        self, name: str = ls0143.QUEUE_NAME, records: Sequence[loader.Record] | None = None
    ) -> str:
        """Delete queue ``name`` if it exists, create it, send ``records`` (default: the
        exercise's 100) one ``send_message`` each, as the image does. Returns its URL."""
        return ls0143.load_queue(self.endpoint, name, records)

    def attributes(self, queue_url: str) -> dict[str, str]:
        """GetQueueAttributes(All), with the project's query-protocol client."""
        return loader.queue_attributes(self.endpoint, queue_url)


@pytest.fixture(scope="session")
def localstack_0143() -> Iterator[LocalStack0143]:
    workdir = Path(tempfile.mkdtemp(prefix="login-etl-ls0143-"))
    try:
        server = ls0143.start(workdir)
        try:
            yield LocalStack0143(server)
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
