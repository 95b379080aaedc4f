"""``app_version`` encoding for an integer ``user_logins.app_version`` column.

``"MAJOR[.MINOR[.PATCH]]"`` becomes ``MAJOR*1_000_000 + MINOR*1_000 + PATCH``
(docs/contract.md); parses are cached for the process in a cache bounded in bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from .errors import InvalidVersion
from .sizedcache import SizedCache

INT4_MAX = 2_147_483_647
MAJOR_FACTOR = 1_000_000
MINOR_FACTOR = 1_000
PART_MAX = 999

APP_VERSION_TEXT_MAX: Final = 100
"""Longest version text taken, whitespace included (legacy ``varchar(100)``, docs/contract.md)."""
CACHE_MAX_BYTES: Final = 64 * 1024
"""The parse cache's bound: some 450 short versions, or 280 padded to the cap."""

# ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
_VERSION = re.compile(r"([0-9]+)(?:\.([0-9]+)(?:\.([0-9]+))?)?", re.ASCII)

_CACHE: Final = SizedCache[int](CACHE_MAX_BYTES)
cached_version: Final[Callable[[str], int | None]] = _CACHE.get
"""The encoding of a text already parsed, else None: the hot path's lookup
(``records.to_row``, for texts within :data:`APP_VERSION_TEXT_MAX`)."""


def encode_app_version(value: object) -> int:
    """Encode a version string (or a JSON integer ``n`` meaning ``n.0.0``)."""
    if isinstance(value, int) and not isinstance(value, bool):  # JSON true is not a version
        if value < 0:
            raise InvalidVersion("app_version must not be negative")
        return _fit(value * MAJOR_FACTOR)
    if not isinstance(value, str):
        raise InvalidVersion("app_version must be a string or an integer")
    return encode_version_text(value)


def encode_version_text(value: str) -> int:
    """Encode a version string; the parse is cached (failures are not)."""
    if len(value) > APP_VERSION_TEXT_MAX:
        raise InvalidVersion(f"app_version exceeds {APP_VERSION_TEXT_MAX} characters")
    encoded = _CACHE.get(value)
    if encoded is not None:
        return encoded
    match = _VERSION.fullmatch(value.strip())
    if match is None:
        raise InvalidVersion("app_version must look like MAJOR[.MINOR[.PATCH]]")
    major_text, minor_text, patch_text = match.groups()
    major_text = major_text.lstrip("0") or "0"
    if len(major_text) > 4:  # more than 2147 cannot fit; avoids parsing huge digit runs
        raise InvalidVersion("app_version does not fit an integer column")
    minor, patch = _part(minor_text), _part(patch_text)
    if minor > PART_MAX or patch > PART_MAX:
        raise InvalidVersion("app_version MINOR and PATCH must be 0-999")
    encoded = _fit(int(major_text) * MAJOR_FACTOR + minor * MINOR_FACTOR + patch)
    _CACHE.put(value, encoded)
    return encoded


def _part(text: str | None) -> int:
    significant = (text or "").lstrip("0")
    if len(significant) > 3:  # out of range: skip int() on long digit runs
        return PART_MAX + 1
    return int(significant or "0")


def _fit(encoded: int) -> int:
    if encoded > INT4_MAX:
        raise InvalidVersion("app_version does not fit an integer column")
    return encoded


def decode_app_version(encoded: int) -> str:
    """Inverse of :func:`encode_app_version` (the canonical ``x.y.z`` form)."""
    major, rest = divmod(encoded, MAJOR_FACTOR)
    minor, patch = divmod(rest, MINOR_FACTOR)
    return f"{major}.{minor}.{patch}"
