"""Parse and validate one SQS message body into a ``user_logins`` row.

Errors are values: :func:`to_row` returns a :class:`Rejection` carrying a reason code
and the field, never the offending value (it may be PII).

Example::

    row = to_row('{"user_id": "u1", "ip": "10.0.0.1"}', CURRENT_SHAPE, masker, "2026-01-01")
    # ParsedRow(row=('u1', None, '<64 hex>', None, None, None, '2026-01-01'), unknown_keys=0,
    #           copy_line='u1\\t\\\\N\\t<64 hex>\\t…\\t2026-01-01', message_id='')
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

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
KNOWN_KEYS: Final = frozenset(
    ("user_id", "app_version", "device_type", "ip", "locale", "device_id")
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
    get = obj.get
    user_id, device_type, locale = get("user_id"), get("device_type"), get("locale")
    ip, device_id = get("ip"), get("device_id")
    # Fast path: a body of ASCII without a single escape decodes to strings that are
    # ASCII, free of U+0000 and of surrogates, so only types and lengths are left to
    # check. Anything else takes the careful path, which names the rule broken.
    plain = (
        body.isascii()
        and "\\" not in body
        and type(user_id) is str
        and 0 < len(user_id) <= USER_ID_MAX
        and (
            device_type is None or (type(device_type) is str and len(device_type) <= SHORT_TEXT_MAX)
        )
        and (locale is None or (type(locale) is str and len(locale) <= SHORT_TEXT_MAX))
        and (ip is None or (type(ip) is str and len(ip) <= IP_MAX))
        and (device_id is None or (type(device_id) is str and len(device_id) <= DEVICE_ID_MAX))
    )
    if not plain:
        try:
            if user_id is None:
                return Rejection("missing_user_id", "user_id", "user_id is required")
            user_id = _text(user_id, "user_id", USER_ID_MAX)
            if not user_id:
                return Rejection("empty_user_id", "user_id", "user_id must not be empty")
            device_type = _optional_text(device_type, "device_type", SHORT_TEXT_MAX)
            locale = _optional_text(locale, "locale", SHORT_TEXT_MAX)
            ip = _optional_text(ip, "ip", IP_MAX)
            device_id = _optional_text(device_id, "device_id", DEVICE_ID_MAX)
        except _Reject as rejected:
            return rejected.rejection
    version = get("app_version")
    if (
        plain
        and type(version) is str
        and len(version) <= APP_VERSION_TEXT_MAX
        and shape.app_version_kind is AppVersionKind.INTEGER
    ):
        app_version: object = cached_version(version)  # the common case
        if app_version is None:
            try:
                app_version = encode_version_text(version)
            except InvalidVersion as error:
                return Rejection("invalid_app_version", "app_version", str(error))
    else:
        try:
            app_version = _app_version(version, shape)
        except _Reject as rejected:
            return rejected.rejection

    unknown = 0 if KNOWN_KEYS.issuperset(obj) else len(obj.keys() - KNOWN_KEYS)
    masked_ip, masked_device_id = masker.mask_login(ip, device_id)
    row: Row = (user_id, device_type, masked_ip, masked_device_id, locale, app_version)
    if shape.has_create_date:
        row += (create_date,)
    if not plain:
        return ParsedRow(row, unknown)
    # No value can hold a tab, line break or backslash: COPY needs no escapes. (mypy
    # cannot see that `plain` made user_id a str.)
    line = "\t".join(
        (  # type: ignore[arg-type]
            user_id,
            NULL if device_type is None else device_type,
            NULL if masked_ip is None else masked_ip,
            NULL if masked_device_id is None else masked_device_id,
            NULL if locale is None else locale,
            NULL if app_version is None else str(app_version),
        )
    )
    return ParsedRow(row, unknown, f"{line}\t{create_date}" if shape.has_create_date else line)


# What json.loads ends up calling (the C scanner), without the two Python frames around it.
_SCAN_ONCE: Callable[[str, int], tuple[object, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _text(value: object, field: str, limit: int | None) -> str:
    # Fast path for the common case; every check below gives the specific reason.
    if (
        type(value) is str
        and value.isascii()
        and (limit is None or len(value) <= limit)
        and "\x00" not in value
    ):
        return value
    if not isinstance(value, str):
        raise _Reject(Rejection("wrong_type", field, f"{field} must be a string or null"))
    if limit is not None and len(value) > limit:
        raise _Reject(Rejection("too_long", field, f"{field} exceeds {limit} characters"))
    if "\x00" in value:
        raise _Reject(Rejection("nul_character", field, f"{field} contains U+0000"))
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
            raise _Reject(
                Rejection("not_utf8", field, f"{field} is not valid Unicode text")
            ) from None
    return value


def _optional_text(value: object, field: str, limit: int | None) -> str | None:
    return None if value is None else _text(value, field, limit)


def _app_version(value: object, shape: TableShape) -> object:
    if value is None:
        return None
    if shape.app_version_kind is AppVersionKind.TEXT:
        return _text(value, "app_version", shape.app_version_max_length)
    if isinstance(value, str):  # too long, NUL, surrogates: each its own reason
        _text(value, "app_version", APP_VERSION_TEXT_MAX)
    try:
        return encode_app_version(value)
    except InvalidVersion as error:
        raise _Reject(Rejection("invalid_app_version", "app_version", str(error))) from None
