"""Configuration from the environment, resolved at the start of each invocation.

The variables and their defaults: docs/operations.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .connection_settings import ConnectionSettings
from .errors import ConfigurationError, SecretShapeError, SettingsError
from .secrets import SecretSource

# The variables that point at Secrets Manager / SSM (re-read when their cache expires).
SECRET_VARIABLES = ("DB_SECRET_ARN", "PII_HASH_KEY_SECRET_ARN", "PII_HASH_KEY_PARAMETER")
CONFIG_VARIABLES = (
    *SECRET_VARIABLES,
    "DATABASE_URL",
    "DB_SSLMODE",
    "DB_SSLROOTCERT",
    "DB_CONNECT_TIMEOUT",
    "DB_STATEMENT_TIMEOUT_MS",
    "PII_HASH_KEY",
    "QUEUE_RETENTION_SECONDS",
)

# SQS's limits of MessageRetentionPeriod; unset, the ledger assumes the longest.
MIN_RETENTION_SECONDS = 60
MAX_RETENTION_SECONDS = 14 * 86_400


@dataclass(frozen=True, slots=True)
class Settings:
    database: ConnectionSettings
    masking_key: bytes = field(repr=False)  # never in a repr, a traceback or a debugger
    queue_retention_seconds: int = MAX_RETENTION_SECONDS


def load_settings(
    env: Mapping[str, str] | None = None, secrets: SecretSource | None = None
) -> Settings:
    env = os.environ if env is None else env
    source = secrets or SecretSource()
    return Settings(
        database=database_settings(env, source),
        masking_key=masking_key(env, source),
        queue_retention_seconds=queue_retention_seconds(env),
    )


def queue_retention_seconds(env: Mapping[str, str]) -> int:
    text = env.get("QUEUE_RETENTION_SECONDS")
    if not text:
        return MAX_RETENTION_SECONDS
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not MIN_RETENTION_SECONDS <= seconds <= MAX_RETENTION_SECONDS:
        raise ConfigurationError(
            f"QUEUE_RETENTION_SECONDS must be whole seconds from {MIN_RETENTION_SECONDS} "
            f"to {MAX_RETENTION_SECONDS} (SQS's MessageRetentionPeriod)"
        )
    return seconds


def masking_key(env: Mapping[str, str], secrets: SecretSource) -> bytes:
    """The HMAC key. Never falls back to an unkeyed hash: no key, no processing."""
    if env.get("PII_HASH_KEY"):
        return env["PII_HASH_KEY"].encode("utf-8")
    if arn := env.get("PII_HASH_KEY_SECRET_ARN"):
        key = _fetch(secrets.secret_string, arn, "masking key secret")
    elif parameter := env.get("PII_HASH_KEY_PARAMETER"):
        key = _fetch(secrets.secure_parameter, parameter, "masking key parameter")
    else:
        raise ConfigurationError(
            "no masking key configured (set PII_HASH_KEY, PII_HASH_KEY_SECRET_ARN or "
            "PII_HASH_KEY_PARAMETER); refusing to process without one"
        )
    if not key:
        raise ConfigurationError("the configured masking key is empty; refusing to process")
    return key.encode("utf-8")


def database_settings(env: Mapping[str, str], secrets: SecretSource) -> ConnectionSettings:
    arn = env.get("DB_SECRET_ARN")
    if not arn and not env.get("DATABASE_URL"):
        raise ConfigurationError("no database configured (set DB_SECRET_ARN or DATABASE_URL)")
    try:
        if arn:
            raw = _fetch(secrets.secret_string, arn, "database secret")
            try:
                secret = json.loads(raw)
            except json.JSONDecodeError as error:
                # Not str(error): only the position, never the document's text.
                raise SettingsError(
                    f"not valid JSON (line {error.lineno}, column {error.colno})"
                ) from None
            except RecursionError:
                raise SettingsError("not valid JSON") from None
            settings = ConnectionSettings.from_rds_secret(
                secret,
                sslmode=env.get("DB_SSLMODE") or "verify-full",
                sslrootcert=env.get("DB_SSLROOTCERT") or None,
            )
        else:
            settings = ConnectionSettings.from_url(env["DATABASE_URL"])
    except SettingsError as error:
        where = "database secret" if arn else "DATABASE_URL"
        raise ConfigurationError(f"{where} is not usable: {error}") from None
    try:
        if env.get("DB_CONNECT_TIMEOUT"):
            settings = replace(settings, connect_timeout=float(env["DB_CONNECT_TIMEOUT"]))
        if env.get("DB_STATEMENT_TIMEOUT_MS"):
            settings = replace(settings, statement_timeout_ms=int(env["DB_STATEMENT_TIMEOUT_MS"]))
    except ValueError:
        raise ConfigurationError(
            "DB_CONNECT_TIMEOUT / DB_STATEMENT_TIMEOUT_MS must be numbers"
        ) from None
    return settings


def _fetch(read: Callable[[str], str], name: str, what: str) -> str:
    try:
        return read(name)
    except Exception as error:  # noqa: BLE001 - any failure here must fail closed
        raise ConfigurationError(f"cannot read the {what}: {read_failure(error)}") from None


def read_failure(error: BaseException) -> str:
    """What went wrong reading a secret, from the exception's type and AWS error code only:
    never its text, which may quote what the library was given (a parameter, a secret)."""
    names: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(names) < 4:
        if isinstance(seen, SecretShapeError):
            return str(seen)
        code, name = _aws_error_code(seen), type(seen).__name__
        names.append(f"{name} ({code})" if code and code != name else name)
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(dict.fromkeys(names))


def _aws_error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    # AWS error codes are identifiers (AccessDeniedException, ThrottlingException ...).
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else ""
