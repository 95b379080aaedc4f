"""DATABASE_URL and RDS-secret parsing: hostile passwords work or fail without a trace.

Also the bundled RDS CA bundle: intact, and every certificate an Amazon RDS CA.
"""

from __future__ import annotations

import hashlib
import ssl
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from login_etl.connection_settings import RDS_CA_BUNDLE, ConnectionSettings
from login_etl.errors import SettingsError
from tests.support.secret_guard import HOSTILE_PASSWORDS, collides_with_source, leaked

# What docs/security.md records for login_etl/certs/rds-global-bundle.pem.
RDS_BUNDLE_SHA256 = "fefac91d6800404461cece76724bc0a2383f4f556a1c9beb0813fac6f2e1e49f"
RDS_BUNDLE_CERTIFICATES = 115

_SPECIALS = st.sampled_from(list("#/?@:;&=+, '\"\\`$!*()[]{}<>|~^"))
_TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
passwords = st.text(st.one_of(_SPECIALS, _TEXT), min_size=1, max_size=40)


def url_with(password: str, *, encode: bool) -> str:
    pw = quote(password, safe="") if encode else password
    return f"postgresql://etl:{pw}@db.example.internal:6543/logins?sslmode=require"


@given(passwords.filter(lambda p: "%" not in p))
def test_an_unencoded_password_with_reserved_characters_is_read_whole(password: str) -> None:
    settings = ConnectionSettings.from_url(url_with(password, encode=False))
    assert settings.password == password
    assert (settings.user, settings.host, settings.port) == ("etl", "db.example.internal", 6543)
    assert (settings.database, settings.sslmode) == ("logins", "require")


@given(passwords)
def test_a_percent_encoded_password_is_read_whole(password: str) -> None:
    assert ConnectionSettings.from_url(url_with(password, encode=True)).password == password


def test_the_reported_leak_now_parses() -> None:
    # urllib: "Port could not be cast to integer value as 'Xqvm'" (the password's start)
    url = "postgresql://u:Xqvm#7z/Kp?w@Jv@127.0.0.1:5432/db"  # pragma: allowlist secret
    settings = ConnectionSettings.from_url(url)
    assert (settings.password, settings.host, settings.port) == (
        "Xqvm#7z/Kp?w@Jv",
        "127.0.0.1",
        5432,
    )


@pytest.mark.parametrize(
    ("url", "host", "port", "user", "password", "database"),
    [
        ("postgresql://h", "h", 5432, "postgres", None, "postgres"),
        ("postgres://u@h:1/d", "h", 1, "u", None, "d"),
        ("postgresql://u:@h/d", "h", 5432, "u", "", "d"),
        ("postgresql://u:p@[::1]:6000/d", "::1", 6000, "u", "p", "d"),
        ("postgresql://u:p@/d", "localhost", 5432, "u", "p", "d"),
        ("postgresql://a%40b:p@h/my%20db", "h", 5432, "a@b", "p", "my db"),
        ("POSTGRESQL://u:p@h/d?sslmode=verify-full", "h", 5432, "u", "p", "d"),
    ],
)
def test_url_shapes(
    url: str, host: str, port: int, user: str, password: str | None, database: str
) -> None:
    s = ConnectionSettings.from_url(url)
    assert (s.host, s.port, s.user, s.password, s.database) == (
        host,
        port,
        user,
        password,
        database,
    )


def test_sslrootcert_and_connect_timeout_from_the_query() -> None:
    s = ConnectionSettings.from_url("postgresql://u:p@h/d?sslmode=verify-ca&sslrootcert=/c/a.pem")
    assert (s.sslmode, s.sslrootcert) == ("verify-ca", "/c/a.pem")
    s = ConnectionSettings.from_url("postgresql://u:p@h/d?connect_timeout=2.5")
    assert s.connect_timeout == 2.5


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
@pytest.mark.parametrize(
    "template",
    [
        "postgresql://u:{pw}@h:{pw}/d",  # the password where the port goes
        "postgresql://u:{pw}@h:5432/d?sslmode={pw}",
        "postgresql://u:{pw}@h:5432/d?connect_timeout={pw}",
        "mysql://u:{pw}@h/d",
        "postgresql://u:{pw}@h:99999/d",
        "postgresql://u:{pw}@h:5432x/d",
        "postgresql://u:{pw}@[::1/d",
    ],
)
def test_unusable_urls_fail_without_quoting_the_password(password: str, template: str) -> None:
    url = template.format(pw=password)
    try:
        ConnectionSettings.from_url(url)
    except SettingsError as error:
        assert not leaked([password], str(error), repr(error))
    # Or it parsed (the last '@' can fall inside a copy of the password): nothing to say.


@given(passwords)
def test_no_error_of_the_url_parser_quotes_the_password(password: str) -> None:
    if collides_with_source(password):
        return  # a 4-character piece of our own message texts: cannot be told apart
    for url in (
        f"postgresql://u:{password}@h:{password}x/d",
        f"postgresql://u:{password}@h/d?sslmode={password}",
    ):
        try:
            ConnectionSettings.from_url(url)
        except SettingsError as error:
            assert not leaked([password], str(error))


def test_repr_hides_the_password() -> None:
    s = ConnectionSettings.from_url("postgresql://u:Xqvm#7z/Kp@h/d")  # pragma: allowlist secret
    assert "Xqvm" not in repr(s) and "Xqvm" not in str(s)


@pytest.mark.parametrize(
    "secret",
    [
        [],
        "text",
        {"host": "h", "username": "u"},
        {"host": "h", "username": "u", "password": 12345},
        {"host": "", "username": "u", "password": "Xqvm#7z/Kp"},
        {"host": "h", "username": "u", "password": "Xqvm#7z/Kp", "port": "Xqvm#7z/Kp"},
        {"host": "h", "username": "u", "password": "Xqvm#7z/Kp", "port": True},
        {"host": "h", "username": "u", "password": "Xqvm#7z/Kp", "dbname": 5},
    ],
)
def test_unusable_secrets_fail_without_quoting_values(secret: object) -> None:
    with pytest.raises(SettingsError) as caught:
        ConnectionSettings.from_rds_secret(secret)
    assert "Xqvm" not in str(caught.value)


def test_the_secret_path_defaults_to_verify_full_against_the_rds_bundle() -> None:
    s = ConnectionSettings.from_rds_secret({"host": "h", "username": "u", "password": "p"})
    assert (s.sslmode, s.sslrootcert) == ("verify-full", str(RDS_CA_BUNDLE))
    context = s.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    # The RDS CAs and the system's roots (RDS Proxy: Amazon Trust Services certificates).
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] >= RDS_BUNDLE_CERTIFICATES
    assert context.cert_store_stats()["x509_ca"] >= system
    explicit = ConnectionSettings.from_rds_secret(
        {"host": "h", "username": "u", "password": "p"}, sslrootcert=str(RDS_CA_BUNDLE) + "x"
    )
    with pytest.raises(SettingsError, match="cannot be used"):
        explicit.ssl_context()  # a bundle named explicitly must exist: no fall-back


def test_the_rds_ca_bundle_is_the_reviewed_one() -> None:
    """A changed bundle must be reviewed again (docs/security.md says how)."""
    data = RDS_CA_BUNDLE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == RDS_BUNDLE_SHA256
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(RDS_CA_BUNDLE))
    assert context.cert_store_stats()["x509_ca"] == RDS_BUNDLE_CERTIFICATES
    for cert in context.get_ca_certs():
        subject = dict(pair[0] for pair in cert["subject"])
        assert subject["organizationName"] == "Amazon Web Services, Inc."
        assert subject["organizationalUnitName"] == "Amazon RDS"
        assert subject["commonName"].startswith("Amazon RDS ")
