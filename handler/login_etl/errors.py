"""Every error login-etl raises on purpose, under one base class.

Each message is one line written by this project, safe to print and log: it names the rule
or the step that failed and never quotes a value, a secret or a message body. The drain's
CLI maps these classes to its exit codes in one table (``login_etl_drain.cli``); anything
else that escapes is unexpected and exits 1.
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
    """The endpoint did not understand the request: an unknown action, a bare HTTP status
    instead of an SQS error code (LocalStack 0.14's ``500 {}`` to a JSON request), an answer
    not in the protocol asked, or an action the endpoint does not implement (moto's move
    task)."""
