"""Every error login-etl raises on purpose, under one base class (docs/architecture.md).

Each message is one line of our own, safe to print and log: never a value, a secret or a
body. ``login_etl_drain.cli`` maps the classes to exit codes in one table (docs/drain.md).
"""

from __future__ import annotations


class LoginEtlError(Exception):
    """The base class: catch this to handle any error of login-etl's own."""


# Configuration (exit 3) ------------------------------------------------------------------
class ConfigurationError(LoginEtlError, RuntimeError):
    """Required configuration is missing or unreadable: refuse to process."""


class SettingsError(LoginEtlError, ValueError):
    """Connection settings that cannot be used; the text quotes no value."""


class SecretShapeError(LoginEtlError, ValueError):
    """A secret or parameter exists but holds no string; the text is ours, quotes nothing."""


# Records: caught per record and logged as the rejection reason ---------------------------
class InvalidVersion(LoginEtlError, ValueError):
    """The value cannot be encoded; the message names the rule, never the value."""


# Database (exit 5) -----------------------------------------------------------------------
class SchemaError(LoginEtlError, RuntimeError):
    """The database lacks what the handler needs; raised at batch level."""


class DatabaseUnavailable(LoginEtlError, RuntimeError):
    """The database could not be reached or the write failed as a whole."""


class ConnectionLost(LoginEtlError):
    """The connection broke mid-write; the sink may retry once on a new one."""


class RowRejected(LoginEtlError):
    """A row's values were refused (rolled back, connection intact): isolate the row."""


# SQS, for the drain and redrive (exit 4) -------------------------------------------------
class SqsError(LoginEtlError, RuntimeError):
    """An SQS call failed; the message is one line, safe to print."""


class QueueNotFound(SqsError):
    """The queue does not exist."""


class EndpointUnreachable(SqsError):
    """No connection, or no answer in time."""


class CredentialsRejected(SqsError):
    """No credentials, or SQS refused them."""


class NotUnderstood(SqsError):
    """The endpoint did not understand the request (what that covers: docs/drain.md)."""
