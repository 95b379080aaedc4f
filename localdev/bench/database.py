"""The bench's Postgres: a fresh server (or ``BENCH_DATABASE_URL``), its own database, resets."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pg8000.native

from localdev.bench.plan import BENCH_APPLICATION
from localdev.env import postgres as local_postgres
from localdev.env.database import drop_database, empty_tables, with_database


def connect(url: str) -> pg8000.native.Connection:
    parts = urlsplit(url)
    return pg8000.native.Connection(
        parts.username or "postgres",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        password=parts.password,
        database=parts.path.lstrip("/") or "postgres",
        application_name=BENCH_APPLICATION,
    )


@contextlib.contextmanager
def server(settings: Mapping[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """(admin URL, description) of the Postgres to use, started here unless given.

    ``settings`` (name: value, from the bench's code): set on a server started here,
    restarted to apply them; a given server keeps its own.
    """
    own = os.environ.get("BENCH_DATABASE_URL")
    if own:
        yield own, "BENCH_DATABASE_URL"
        return
    workdir = Path(tempfile.mkdtemp(prefix="login-etl-bench-"))
    data_dir = workdir / "data"
    try:
        server = local_postgres.start(data_dir, port=0)
        try:
            if settings:
                admin = connect(server.url)
                try:
                    for name, value in settings.items():
                        admin.run(f"ALTER SYSTEM SET {name} = '{value}'")
                finally:
                    admin.close()
                local_postgres.stop(data_dir)  # some (shared_buffers) take a restart
                server = local_postgres.start(data_dir, port=0)
            yield server.url, f"embedded, fresh in {workdir}"
        finally:
            local_postgres.stop(data_dir, mode="immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A dedicated database with the project's schema; dropped afterwards."""
    from login_etl.postgres.schema import init_schema

    name = f"login_etl_bench_{secrets.token_hex(4)}"
    admin = connect(admin_url)
    try:
        admin.run(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    url = with_database(admin_url, name)
    try:
        conn = connect(url)
        try:
            init_schema(conn)
        finally:
            conn.close()
        yield url
    finally:
        admin = connect(admin_url)
        try:
            drop_database(admin, name)
        finally:
            admin.close()


def reset(conn: pg8000.native.Connection) -> None:
    empty_tables(conn)
    conn.run("CHECKPOINT")


def count_rows(conn: pg8000.native.Connection, table: str = "user_logins") -> int:
    return int(conn.run(f"SELECT count(*) FROM {table}")[0][0])


def backend_cpu(conn: pg8000.native.Connection, application_name: str) -> float | None:
    """CPU seconds used so far by the backends of one application (a local server only)."""
    if os.environ.get("BENCH_DATABASE_URL") or not Path("/proc/self/stat").exists():
        return None  # a remote server's pids mean nothing here
    rows = conn.run(
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name", name=application_name
    )
    total = 0.0
    for (pid,) in rows:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime+stime
    return total
