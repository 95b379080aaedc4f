"""Parse and validate one SQS message body into a ``user_logins`` row.

Errors are values: :func:`to_row` returns a :class:`Rejection` carrying a reason code
and the field, never the offending value (it may be PII). The rule tables :data:`FIELDS`
and :data:`CONTENT_RULES`, read by both the fast and the careful path: docs/contract.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

from .copyformat import NULL
from .errors import InvalidVersion
from .masking import Masker
from .table import AppVersionKind, TableShape
from .versions import APP_VERSION_TEXT_MAX, cached_version, encode_app_version, encode_version_text

# Every cap is checked before a value is parsed, stripped, masked or cached (len() only:
# free on the fast path). docs/contract.md gives the reasons for the numbers.
BODY_MAX: Final = 1_048_576  # SQS's largest message body (1 MiB); characters <= bytes
USER_ID_MAX: Final = 128  # varchar(128)
SHORT_TEXT_MAX: Final = 32  # device_type, locale: varchar(32)
IP_MAX: Final = 64  # the longest IPv6 text with a zone id (45 + 1 + 15) and some room
DEVICE_ID_MAX: Final = 256  # far above any device identifier; masked, never stored


class Field(NamedTuple):  # a tuple: the hot loop unpacks it at C speed
    name: str
    cap: int  # characters, as sent
    required: bool = False  # null, missing or "" is rejected


# In the order they are checked: a record breaking several rules is rejected for the first.
FIELDS: Final = (
    Field("user_id", USER_ID_MAX, required=True),
    Field("device_type", SHORT_TEXT_MAX),
    Field("locale", SHORT_TEXT_MAX),
    Field("ip", IP_MAX),
    Field("device_id", DEVICE_ID_MAX),
)
KNOWN_KEYS: Final = frozenset((*(field.name for field in FIELDS), "app_version"))


def _lone_surrogate(value: str) -> bool:  # from "\ud800" escapes; not encodable as UTF-8
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# (reason, what the detail says, whether a value breaks it), checked after type and cap.
# Only an escape yields U+0000 or a surrogate in a JSON string (a raw control character is
# invalid JSON), so a plain body keeps every rule here (test_record_rules checks each one).
CONTENT_RULES: Final[tuple[tuple[str, str, Callable[[str], bool]], ...]] = (
    ("nul_character", "contains U+0000", lambda value: "\x00" in value),
    ("not_utf8", "is not valid Unicode text", _lone_surrogate),
)

Row = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was not written. ``reason`` is a stable code for metrics."""

    reason: str
    field: str | None = None
    detail: str = ""


class _Reject(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection


@dataclass(slots=True)  # not frozen: frozen __init__ is slower on this per-record path
class ParsedRow:
    row: Row
    unknown_keys: int
    # The row in COPY text format (copyformat), rendered here when no value can need an
    # escape; None otherwise.
    copy_line: str | None = None
    message_id: str = ""  # set by the pipeline: the message the row came from


def to_row(
    body: object, shape: TableShape, masker: Masker, create_date: str
) -> ParsedRow | Rejection:
    """Validate ``body`` and build the row for ``shape`` (masked, never raw PII)."""
    if not isinstance(body, str):
        return Rejection("invalid_json", detail="body is not a string")
    if len(body) > BODY_MAX:
        return Rejection("body_too_large", detail=f"body exceeds {BODY_MAX} characters")
    try:  # json.loads' semantics, calling its C scanner directly when it can
        try:
            obj, end = _SCAN_ONCE(body, 0)
        except StopIteration:  # no value at 0: leading whitespace, or not JSON at all
            end = -1
        if end != len(body):  # json.loads skips whitespace, or raises with its message
            obj = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, huge ints, deep nesting
        return Rejection("invalid_json", detail="body is not valid JSON")
    if not isinstance(obj, dict):
        return Rejection("not_an_object", detail="body is JSON but not an object")
    # A plain body (ASCII, no backslash) decodes to strings that keep every content rule.
    plain = body.isascii() and "\\" not in body
    get = obj.get
    values: list[object] = []
    try:
        for name, cap, required in FIELDS:
            value = get(name)
            if not (plain and type(value) is str and len(value) <= cap and (value or not required)):
                if value is not None:
                    value = _text(value, name, cap)
                if required and value is None:  # null or missing
                    raise _Reject(Rejection(f"missing_{name}", name, f"{name} is required"))
                if required and not value:
                    raise _Reject(Rejection(f"empty_{name}", name, f"{name} must not be empty"))
            values.append(value)
        version = get("app_version")
        if version is None:
            pass
        elif shape.app_version_kind is AppVersionKind.INTEGER:
            if type(version) is str:  # the text rules first: each its own reason
                if not (plain and len(version) <= APP_VERSION_TEXT_MAX):
                    _text(version, "app_version", APP_VERSION_TEXT_MAX)
                encoded = cached_version(version)
                version = encode_version_text(version) if encoded is None else encoded
            else:  # a JSON integer n means n.0.0
                version = encode_app_version(version)
        else:
            limit = shape.app_version_max_length
            if not (plain and type(version) is str and (limit is None or len(version) <= limit)):
                _text(version, "app_version", limit)
    except _Reject as rejected:
        return rejected.rejection
    except InvalidVersion as error:
        return Rejection("invalid_app_version", "app_version", str(error))

    user_id, device_type, locale, ip, device_id = values
    unknown = 0 if KNOWN_KEYS.issuperset(obj) else len(obj.keys() - KNOWN_KEYS)
    masked_ip, masked_device_id = masker.mask_login(ip, device_id)  # type: ignore[arg-type]
    row: Row = (user_id, device_type, masked_ip, masked_device_id, locale, version)
    if shape.has_create_date:
        row += (create_date,)
    if not plain:
        return ParsedRow(row, unknown)
    # No value can hold a tab, line break or backslash: COPY needs no escapes.
    line = "\t".join(
        (  # type: ignore[arg-type]
            user_id,
            NULL if device_type is None else device_type,
            NULL if masked_ip is None else masked_ip,
            NULL if masked_device_id is None else masked_device_id,
            NULL if locale is None else locale,
            NULL if version is None else str(version),
        )
    )
    return ParsedRow(row, unknown, f"{line}\t{create_date}" if shape.has_create_date else line)


# What json.loads ends up calling (the C scanner), without the two Python frames around it.
_SCAN_ONCE: Callable[[str, int], tuple[object, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _text(value: object, field: str, cap: int | None) -> str:
    """``value`` if it is a string keeping every rule, else the first rule it breaks."""
    if not isinstance(value, str):
        raise _Reject(Rejection("wrong_type", field, f"{field} must be a string or null"))
    if cap is not None and len(value) > cap:
        raise _Reject(Rejection("too_long", field, f"{field} exceeds {cap} characters"))
    for reason, what, breaks in CONTENT_RULES:
        if breaks(value):
            raise _Reject(Rejection(reason, field, f"{field} {what}"))
    return value
