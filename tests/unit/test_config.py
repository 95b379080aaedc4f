"""Configuration: masking key and database settings (docs/contract.md).

Secrets Manager and SSM are moto's in-process fakes; no network is used.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from login_etl.config import database_settings, load_settings, masking_key
from login_etl.connection_settings import RDS_CA_BUNDLE
from login_etl.errors import ConfigurationError
from login_etl.secrets import SecretSource

REGION = "us-east-1"
RDS_SECRET = {
    "engine": "postgres",
    "host": "db.example.internal",
    "port": 6543,
    "username": "etl_user",
    "password": "p@ss:w/rd?#%",
    "dbname": "logins",
}
URL = "postgresql://url_user:url_pass@url-host:5433/url_db"  # pragma: allowlist secret


@dataclass
class Aws:
    secrets: Any
    ssm: Any

    def secret(self, name: str, value: str) -> str:
        """Create a secret (the name gets a unique suffix: the fake lives per module)."""
        response = self.secrets.create_secret(Name=f"{name}-{uuid.uuid4().hex}", SecretString=value)
        return str(response["ARN"])

    def parameter(self, name: str, value: str) -> str:
        name = f"{name}-{uuid.uuid4().hex}"
        self.ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        return name


def use_fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; no endpoint override, profile or max-age settings."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG", "AWS_SHARED")):
            monkeypatch.delenv(name)
    for name in ("SECRETS_MAX_AGE_SECONDS", "POWERTOOLS_PARAMETERS_MAX_AGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")


class NoAwsSource(SecretSource):
    """For configurations that must not touch AWS: records any attempt."""

    def __init__(self) -> None:
        super().__init__(max_age=300)
        self.calls: list[str] = []

    def secret_string(self, secret_id: str) -> str:
        self.calls.append(secret_id)
        raise AssertionError("unexpected Secrets Manager call")

    def secure_parameter(self, name: str) -> str:
        self.calls.append(name)
        raise AssertionError("unexpected SSM call")


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[NoAwsSource]:
    """Clean AWS environment, and a secret source that fails the test if it is used."""
    use_fake_aws_environment(monkeypatch)
    source = NoAwsSource()
    yield source
    assert source.calls == []


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[Aws]:
    # One in-process fake per module (starting moto per test is slow); names are unique.
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_aws_environment(monkeypatch)
        with mock_aws():
            yield Aws(
                secrets=boto3.client("secretsmanager", region_name=REGION),
                ssm=boto3.client("ssm", region_name=REGION),
            )


@pytest.fixture
def aws(moto_aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    use_fake_aws_environment(monkeypatch)
    return moto_aws


def test_no_endpoint_override_inside_tests(aws: Aws) -> None:
    assert not [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]


# --- masking key ------------------------------------------------------------------------


def test_key_from_env_is_utf8_bytes(no_aws: NoAwsSource) -> None:
    assert masking_key({"PII_HASH_KEY": "cl\u00e9-\U0001f511"}, no_aws) == (
        b"cl\xc3\xa9-\xf0\x9f\x94\x91"
    )


def test_key_from_secrets_manager(aws: Aws) -> None:
    arn = aws.secret("login-etl/pii-key", "from-secret-\u00e9")
    key = masking_key({"PII_HASH_KEY_SECRET_ARN": arn}, SecretSource())
    assert key == "from-secret-\u00e9".encode()


def test_key_from_secrets_manager_by_name(aws: Aws) -> None:
    arn = aws.secret("login-etl/pii-key-2", "by-name")
    name = aws.secrets.describe_secret(SecretId=arn)["Name"]
    assert masking_key({"PII_HASH_KEY_SECRET_ARN": name}, SecretSource()) == b"by-name"


def test_key_from_ssm_secure_string(aws: Aws) -> None:
    name = aws.parameter("/login-etl/pii-key", "from-ssm")
    assert masking_key({"PII_HASH_KEY_PARAMETER": name}, SecretSource()) == b"from-ssm"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"PII_HASH_KEY": ""},
        {"PII_HASH_KEY_SECRET_ARN": ""},
        {"PII_HASH_KEY_PARAMETER": ""},
        {"DATABASE_URL": URL, "HASH_KEY": "close-but-wrong-name"},
    ],
)
def test_no_key_fails_closed_with_clear_message(no_aws: NoAwsSource, env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        masking_key(env, no_aws)
    message = str(caught.value)
    assert "PII_HASH_KEY" in message
    assert "key" in message.lower()


def test_load_settings_without_key_fails_closed(no_aws: NoAwsSource) -> None:
    with pytest.raises(ConfigurationError):
        load_settings({"DATABASE_URL": URL}, no_aws)


def test_load_settings_reads_os_environ_by_default(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("PII_HASH_KEY", "env-key")
    settings = load_settings()
    assert settings.masking_key == b"env-key"
    assert settings.database.host == "url-host"
    monkeypatch.delenv("PII_HASH_KEY")
    with pytest.raises(ConfigurationError):
        load_settings()


@pytest.mark.parametrize(
    "env",
    [
        {"PII_HASH_KEY_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:x-AbCd"},
        {"PII_HASH_KEY_SECRET_ARN": "does-not-exist"},
        {"PII_HASH_KEY_PARAMETER": "/does/not/exist"},
    ],
)
def test_missing_secret_or_parameter_fails_closed(aws: Aws, env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        masking_key(env, SecretSource())


def test_binary_secret_without_secret_string_fails_closed(aws: Aws) -> None:
    arn = aws.secrets.create_secret(Name="binary-key", SecretBinary=b"\x00\x01")["ARN"]
    with pytest.raises(ConfigurationError):
        masking_key({"PII_HASH_KEY_SECRET_ARN": arn}, SecretSource())


class EmptySecrets(SecretSource):
    """A secret and a parameter that exist but hold an empty string."""

    def secret_string(self, secret_id: str) -> str:
        return ""

    def secure_parameter(self, name: str) -> str:
        return ""


@pytest.mark.parametrize(
    "env", [{"PII_HASH_KEY_SECRET_ARN": "empty-secret"}, {"PII_HASH_KEY_PARAMETER": "/empty"}]
)
def test_empty_key_from_aws_fails_closed(no_aws: NoAwsSource, env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        masking_key(env, EmptySecrets())


# --- database settings ------------------------------------------------------------------


def test_db_secret_wins_over_database_url_and_verifies_against_the_rds_cas(aws: Aws) -> None:
    arn = aws.secret("login-etl/db", json.dumps(RDS_SECRET))
    db = database_settings({"DB_SECRET_ARN": arn, "DATABASE_URL": URL}, SecretSource())
    assert (db.host, db.port, db.user, db.password, db.database) == (
        "db.example.internal",
        6543,
        "etl_user",
        "p@ss:w/rd?#%",
        "logins",
    )
    assert db.sslmode == "verify-full"
    assert db.sslrootcert == str(RDS_CA_BUNDLE)


def test_db_secret_port_as_string(aws: Aws) -> None:
    arn = aws.secret("login-etl/db2", json.dumps({**RDS_SECRET, "port": "5439"}))
    assert database_settings({"DB_SECRET_ARN": arn}, SecretSource()).port == 5439


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        json.dumps({k: v for k, v in RDS_SECRET.items() if k != "host"}),
        json.dumps({k: v for k, v in RDS_SECRET.items() if k != "password"}),
    ],
)
def test_unusable_db_secret_fails(aws: Aws, value: str) -> None:
    arn = aws.secret("login-etl/db-bad", value)
    with pytest.raises(ConfigurationError) as caught:
        database_settings({"DB_SECRET_ARN": arn, "DATABASE_URL": URL}, SecretSource())
    assert RDS_SECRET["password"] not in str(caught.value)


def test_missing_db_secret_fails_without_falling_back_to_url(aws: Aws) -> None:
    with pytest.raises(ConfigurationError):
        database_settings({"DB_SECRET_ARN": "no-such-secret", "DATABASE_URL": URL}, SecretSource())


def test_database_url_parsing(no_aws: NoAwsSource) -> None:
    fake = "p%40ss%2Fw%3Ard%23"
    url = f"postgresql://app%40corp:{fake}@db.local:6543/my%20db?sslmode=require"
    db = database_settings({"DATABASE_URL": url}, no_aws)
    assert db.host == "db.local"
    assert db.port == 6543
    assert db.user == "app@corp"
    assert db.password == "p@ss/w:rd#"
    assert db.database == "my db"
    assert db.sslmode == "require"


def test_database_url_plain(no_aws: NoAwsSource) -> None:
    db = database_settings({"DATABASE_URL": URL}, no_aws)
    assert (db.host, db.port, db.user, db.password, db.database) == (
        "url-host",
        5433,
        "url_user",
        "url_pass",
        "url_db",
    )
    assert db.sslmode != "require"


def test_database_url_default_port(no_aws: NoAwsSource) -> None:
    db = database_settings({"DATABASE_URL": "postgresql://u:p@h/db"}, no_aws)
    assert db.port == 5432
    assert db.host == "h"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:p@h:3306/db",
        "http://u:p@h/db",
        "u:p@h:5432/db",
        "h:5432",
        "postgresql://u:p@h:notaport/db",
        "postgresql://u:p@h:5432/db?sslmode=sometimes",
    ],
)
def test_bad_database_url_fails(no_aws: NoAwsSource, url: str) -> None:
    with pytest.raises(ConfigurationError):
        database_settings({"DATABASE_URL": url}, no_aws)


def test_bad_database_url_error_does_not_echo_the_password(no_aws: NoAwsSource) -> None:
    with pytest.raises(ConfigurationError) as caught:
        database_settings({"DATABASE_URL": "mysql://u:hunter2pw@h/db"}, no_aws)
    assert "hunter2pw" not in str(caught.value)


@pytest.mark.parametrize("env", [{}, {"DATABASE_URL": ""}, {"DB_SECRET_ARN": ""}])
def test_no_database_configured_fails(no_aws: NoAwsSource, env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        database_settings(env, no_aws)
    assert "DATABASE_URL" in str(caught.value)


def test_load_settings_combines_both(aws: Aws) -> None:
    db_arn = aws.secret("login-etl/db3", json.dumps(RDS_SECRET))
    key_arn = aws.secret("login-etl/key3", "k3")
    settings = load_settings({"DB_SECRET_ARN": db_arn, "PII_HASH_KEY_SECRET_ARN": key_arn})
    assert settings.masking_key == b"k3"
    assert settings.database.host == "db.example.internal"


# --- caching -----------------------------------------------------------------------------


def test_secret_is_cached_within_max_age(aws: Aws) -> None:
    arn = aws.secret("login-etl/cached-key", "cached")
    source = SecretSource(max_age=300)
    env = {"PII_HASH_KEY_SECRET_ARN": arn}
    assert masking_key(env, source) == b"cached"
    aws.secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert masking_key(env, source) == b"cached"  # no second call to Secrets Manager
    # a fresh source does call AWS, and sees the deletion: the cache above was real
    with pytest.raises(ConfigurationError):
        masking_key(env, SecretSource(max_age=300))


def test_secret_without_cache_is_read_again(aws: Aws) -> None:
    arn = aws.secret("login-etl/uncached-key", "v1")
    source = SecretSource(max_age=0)
    env = {"PII_HASH_KEY_SECRET_ARN": arn}
    assert masking_key(env, source) == b"v1"
    aws.secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ConfigurationError):
        masking_key(env, source)


def test_parameter_is_cached_within_max_age(aws: Aws) -> None:
    name = aws.parameter("/login-etl/cached", "p1")
    source = SecretSource(max_age=300)
    env = {"PII_HASH_KEY_PARAMETER": name}
    assert masking_key(env, source) == b"p1"
    aws.ssm.delete_parameter(Name=name)
    assert masking_key(env, source) == b"p1"
    with pytest.raises(ConfigurationError):
        masking_key(env, SecretSource(max_age=300))


def test_db_secret_is_cached_within_max_age(aws: Aws) -> None:
    arn = aws.secret("login-etl/db-cached", json.dumps(RDS_SECRET))
    source = SecretSource(max_age=300)
    env = {"DB_SECRET_ARN": arn}
    first = database_settings(env, source)
    aws.secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert database_settings(env, source) == first


def test_max_age_default_comes_from_environment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "0")
    arn = aws.secret("login-etl/env-max-age", "v")
    source = SecretSource()
    env = {"PII_HASH_KEY_SECRET_ARN": arn}
    assert masking_key(env, source) == b"v"
    aws.secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ConfigurationError):
        masking_key(env, source)


# --- error texts quote no secret -----------------------------------------------------------


class TalkativeSource(SecretSource):
    """A library error whose text quotes what it was handed (as some parsers do)."""

    def secret_string(self, secret_id: str) -> str:
        try:
            raise KeyError("while decoding 'Xqvm#7z/Kp?w@Jv'")
        except KeyError as inner:
            raise ValueError("transform failed for value Xqvm#7z/Kp?w@Jv") from inner


def test_read_errors_name_types_not_texts(no_aws: NoAwsSource) -> None:
    for env in ({"PII_HASH_KEY_SECRET_ARN": "k"}, {"DB_SECRET_ARN": "d"}):
        with pytest.raises(ConfigurationError) as caught:
            load_settings({**env, "DATABASE_URL": URL, "PII_HASH_KEY": ""}, TalkativeSource())
        assert "Xqvm" not in str(caught.value)
        assert "ValueError <- KeyError" in str(caught.value)


def test_read_errors_name_the_aws_error_code(aws: Aws) -> None:
    with pytest.raises(ConfigurationError) as caught:
        masking_key({"PII_HASH_KEY_SECRET_ARN": "no-such-secret-xyz"}, SecretSource())
    assert str(caught.value) == (
        "cannot read the masking key secret: GetParameterError <- ResourceNotFoundException"
    )


@pytest.mark.parametrize(
    "value",
    [
        '{"password": "Xqvm#7z/Kp?w@Jv", "host": ',  # truncated
        '{"password": "Xqvm#7z/Kp?w@Jv", "host": "h", "username": "u", "port": "Xqvm#7z"}',
        '["Xqvm#7z/Kp?w@Jv"]',
        '"Xqvm#7z/Kp?w@Jv"',
        "Xqvm#7z/Kp?w@Jv",
        "[" * 100_000,
    ],
)
def test_unusable_db_secret_messages_quote_nothing(aws: Aws, value: str) -> None:
    arn = aws.secret("login-etl/db-quotes", value)
    with pytest.raises(ConfigurationError) as caught:
        database_settings({"DB_SECRET_ARN": arn}, SecretSource())
    assert "Xqvm" not in str(caught.value)
    assert str(caught.value).startswith("database secret is not usable: ")


def test_a_debug_log_does_not_get_the_secret_from_botocore(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore logs response bodies at DEBUG: the secret source keeps that logger quieter."""
    import logging

    arn = aws.secret("login-etl/debug-key", "Zk#Pw@Hv%Qm/Ru?Xb")
    name = aws.parameter("/login-etl/debug-key", "Wq#Lm@Tz%Np/Ky?Vd")
    logging.getLogger("botocore.parsers").setLevel(logging.NOTSET)
    with caplog.at_level(logging.DEBUG):
        assert masking_key({"PII_HASH_KEY_SECRET_ARN": arn}, SecretSource(max_age=0))
        assert masking_key({"PII_HASH_KEY_PARAMETER": name}, SecretSource(max_age=0))
    assert "GetSecretValue" in caplog.text or "secretsmanager" in caplog.text  # DEBUG was on
    assert "Zk#Pw" not in caplog.text and "Wq#Lm" not in caplog.text


def test_settings_print_neither_key_nor_password(no_aws: NoAwsSource) -> None:
    url = "postgresql://u:Xqvm#7z/Kp@h/d"  # pragma: allowlist secret
    settings = load_settings({"DATABASE_URL": url, "PII_HASH_KEY": "Zk#Pw@Hv%Qm"}, no_aws)
    assert "Xqvm" not in repr(settings) and "Zk#Pw" not in repr(settings)


def test_db_secret_ca_bundle_and_sslmode_from_the_environment(aws: Aws) -> None:
    arn = aws.secret("login-etl/db-ca", json.dumps(RDS_SECRET))
    env = {"DB_SECRET_ARN": arn, "DB_SSLROOTCERT": "/opt/ca/my-ca.pem", "DB_SSLMODE": "verify-ca"}
    db = database_settings(env, SecretSource())
    assert (db.sslmode, db.sslrootcert) == ("verify-ca", "/opt/ca/my-ca.pem")
    # The template sets both variables always; empty means the defaults.
    db = database_settings(
        {"DB_SECRET_ARN": arn, "DB_SSLROOTCERT": "", "DB_SSLMODE": ""}, SecretSource()
    )
    assert (db.sslmode, db.sslrootcert) == ("verify-full", str(RDS_CA_BUNDLE))
