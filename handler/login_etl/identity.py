"""A message's identity across a redrive: its original ``messageId`` and ``SentTimestamp``, signed.

The format, key derivation and why it is signed: docs/contract.md and docs/drain.md. One
attribute rather than three: SQS allows 10 per message, and the producer's are kept.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Final

ATTRIBUTE: Final = "login-etl.identity"
"""The message attribute's name (SQS rules: letters, digits, ``-_.``; not ``AWS.``/``Amazon.``)."""

_DOMAIN: Final = b"login-etl redrive identity v1"
_VERSION: Final = "v1"
# Caps applied before any other work on a value a producer may have written.
MAX_VALUE_CHARS: Final = 256
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}", re.ASCII)  # SQS ids are UUIDs
_SENT: Final = re.compile(r"[0-9]{1,20}", re.ASCII)  # epoch ms (s on LocalStack 0.14)
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Identity:
    """The original message: its ``messageId`` and ``SentTimestamp`` (as SQS gave it)."""

    message_id: str
    sent_timestamp: str

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.message_id):
            raise ValueError("a message id is 1-128 letters, digits, '-' or '_'")
        if not _SENT.fullmatch(self.sent_timestamp):
            raise ValueError("a SentTimestamp is 1-20 digits")


def identity_key(masking_key: bytes) -> bytes:
    """The signing key: HMAC-SHA256(masking key, a fixed label), never the masking key itself."""
    if not masking_key:
        raise ValueError("the masking key must not be empty")
    return hmac.digest(masking_key, _DOMAIN, "sha256")


class IdentitySigner:
    """Signs and verifies :data:`ATTRIBUTE` values with one masking key."""

    __slots__ = ("_key",)

    def __init__(self, masking_key: bytes) -> None:
        self._key = identity_key(masking_key)

    def sign(self, identity: Identity, body: str) -> str:
        """The attribute value for a copy of the message ``identity`` with ``body``."""
        signature = self._mac(identity.message_id, identity.sent_timestamp, body)
        return f"{_VERSION}:{identity.message_id}:{identity.sent_timestamp}:{signature}"

    def verify(self, value: object, body: object) -> Identity | None:
        """The identity ``value`` carries if its signature holds for ``body``, else None."""
        if not isinstance(value, str) or not isinstance(body, str) or len(value) > MAX_VALUE_CHARS:
            return None
        parts = value.split(":")
        if len(parts) != 4 or parts[0] != _VERSION:
            return None
        _, message_id, sent, mac = parts
        shaped = _ID.fullmatch(message_id) and _SENT.fullmatch(sent) and _SIGNATURE.fullmatch(mac)
        if not shaped or not hmac.compare_digest(mac, self._mac(message_id, sent, body)):
            return None
        return Identity(message_id, sent)

    def verify_record(self, record: Mapping[str, Any]) -> Identity | None:
        """:meth:`verify` of a Lambda SQS record's :data:`ATTRIBUTE` (``stringValue``)."""
        attribute = attribute_of(record)
        value = attribute.get("stringValue") if isinstance(attribute, Mapping) else None
        return self.verify(value, record.get("body"))

    def _mac(self, message_id: str, sent: str, body: str) -> str:
        # The id and the timestamp cannot hold ":" or NUL (checked above), so the fields
        # cannot be shifted into one another; the body enters as its digest.
        body_digest = sha256(body.encode("utf-8", "surrogatepass")).digest()
        payload = b"\0".join((_VERSION.encode(), message_id.encode(), sent.encode(), body_digest))
        return hmac.new(self._key, payload, sha256).hexdigest()


def attribute_of(record: Mapping[str, Any]) -> object:
    """The record's :data:`ATTRIBUTE` (Lambda shape), or None if it has none."""
    attributes = record.get("messageAttributes")
    return attributes.get(ATTRIBUTE) if isinstance(attributes, Mapping) else None
