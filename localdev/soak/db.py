"""The soak's own Postgres: a dedicated server it may stop and restart, and its counts.

The soak never shares a server with anything else: it starts one in a fresh data folder, so the
counts below are this run's rows and nothing else, and a restart hurts no one.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pg8000.native

from localdev import REPO
from localdev.env import postgres
from localdev.env.database import init_database

# Not "login-etl": the connection-kill fault terminates the function's sessions by that name.
APPLICATION_NAME = "login-etl-soak"
SOAK_ROOT = REPO / ".local" / "soak"


@dataclass(frozen=True)
class Counts:
    rows: int
    duplicates: int  # rows beyond the first per user_id (generated user_ids are unique)
    lost: int  # valid messages without a row


class SoakDatabase:
    """A dedicated embedded Postgres server in a fresh folder, schema initialised."""

    def __init__(self, root: Path = SOAK_ROOT) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="pg-", dir=root))
        self.server = postgres.start(self.folder / "data", port=0)
        init_database(self.server.url)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        """Crash-stop (no clean shutdown), as a failing instance would."""
        postgres.stop(self.server.data_dir, mode="immediate")

    def start(self) -> None:
        postgres.start(self.server.data_dir, port=self.server.port)

    def close(self) -> None:
        """Stop the server and remove its folder."""
        try:
            postgres.stop(self.server.data_dir, mode="immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def connect(self, timeout_s: float = 5) -> Any:
        return pg8000.native.Connection(
            "postgres",
            password=postgres.PASSWORD,
            host="127.0.0.1",
            port=self.server.port,
            database="postgres",
            timeout=timeout_s,
            application_name=APPLICATION_NAME,
        )

    def row_count(self) -> int | None:
        """Rows so far, or None while the server is down."""
        try:
            conn = self.connect(timeout_s=2)
        except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
            return None
        try:
            return int(conn.run("SELECT count(*) FROM user_logins")[0][0])
        except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
            return None
        finally:
            conn.close()

    def counts(self, valid_user_ids: set[str]) -> Counts:
        conn = self.connect()
        try:
            stored = [str(row[0]) for row in conn.run("SELECT user_id FROM user_logins")]
        finally:
            conn.close()
        return Counts(
            rows=len(stored),
            duplicates=len(stored) - len(set(stored)),
            lost=len(valid_user_ids - set(stored)),
        )

    def commit_times(self, message_ids: list[str]) -> dict[str, Any]:
        """When each of the given message ids was committed (absent: never written).

        ``processed_at`` is the transaction's start time: equal for one batch's records.
        """
        conn = self.connect()
        try:
            rows = conn.run(
                "SELECT message_id, processed_at FROM login_etl.ledger "
                "WHERE message_id = ANY(CAST(:ids AS text[]))",
                ids=message_ids,
            )
        finally:
            conn.close()
        return {str(row[0]): row[1] for row in rows}
