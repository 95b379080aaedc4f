"""``create_date``: the UTC day a login entered the queue, from the record's ``SentTimestamp``.

Milliseconds (SQS), else seconds (LocalStack before 3.0), if the day is plausible; else
today: docs/contract.md (create_date).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final

UNDATED: Final = -1
"""The day of a record without a plausible ``SentTimestamp``: claimed outside the ledger's
day slots (docs/operations.md, The ledger), dated today by :meth:`SentDates.iso`."""

EARLIEST: Final = date(2006, 1, 1)
"""Before SQS was generally available (July 2006): no real message was sent earlier."""

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_EARLIEST_DAY: Final = EARLIEST.toordinal() - _EPOCH_ORDINAL
_MS_PER_DAY: Final = 86_400_000
_S_PER_DAY: Final = 86_400
SENT_TIMESTAMP_MAX: Final = 32
"""Longest ``SentTimestamp`` text read; a longer one is implausible unread (docs/contract.md)."""


def epoch_day(value: date) -> int:
    """Days since 1970-01-01."""
    return value.toordinal() - _EPOCH_ORDINAL


def day_date(day: int) -> date:
    """The date of ``day`` days since 1970-01-01."""
    return date.fromordinal(_EPOCH_ORDINAL + day)


def sent_day(sent: object, today: date) -> int | None:
    """Days since the epoch of a ``SentTimestamp`` (ms, else s), or None if implausible."""
    found = _day_and_unit(sent, epoch_day(today) + 1)
    return None if found is None else found[0]


def _day_and_unit(sent: object, latest: int) -> tuple[int, int] | None:
    if isinstance(sent, str) and len(sent) > SENT_TIMESTAMP_MAX:
        return None
    try:
        value = int(sent)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        if not isinstance(sent, str):
            return None  # None, a list, an infinite or NaN float ...
        try:  # a fractional value as text: "1764547200.5" → 1764547200
            value = int(float(sent))
        except (ValueError, OverflowError):
            return None
    for unit in (_MS_PER_DAY, _S_PER_DAY):
        day = value // unit
        if _EARLIEST_DAY <= day <= latest:
            return day, unit
    return None


class SentDates:
    """The sent day of one batch's records; one date computation per distinct day.

    :meth:`day`: days since the epoch (the ledger's key) or :data:`UNDATED`; :meth:`iso`:
    its ``create_date``.
    """

    __slots__ = ("_iso", "_ms_days", "_today", "_today_day", "implausible")

    def __init__(self, today: Callable[[], date]) -> None:
        # Plausible days of millisecond timestamps only: the fast path of nearly every
        # record. A seconds value never hits it (its ms "day" is in January 1970).
        self._ms_days: set[int] = set()
        self._iso: dict[int, str] = {}
        self._today = today
        self._today_day: int | None = None
        self.implausible = 0
        """Records whose ``SentTimestamp`` was there but not plausible (dated today)."""

    def _today_epoch_day(self) -> int:
        if self._today_day is None:
            self._today_day = epoch_day(self._today())
        return self._today_day

    def day(self, record: Mapping[str, Any]) -> int:
        attributes = record.get("attributes")
        # dict, not Mapping: an ABC isinstance check costs more than the rest of this method.
        sent = attributes.get("SentTimestamp") if isinstance(attributes, dict) else None
        if sent is None:
            return UNDATED
        try:  # too long: -1, never a plausible day, so _careful refuses it unread
            day = int(sent) // _MS_PER_DAY if len(sent) <= SENT_TIMESTAMP_MAX else -1
        except (TypeError, ValueError):  # len() of a JSON number too
            return self._careful(sent)
        return day if day in self._ms_days else self._careful(sent)

    def iso(self, day: int) -> str:
        text = self._iso.get(day)
        if text is None:
            dated = self._today_epoch_day() if day == UNDATED else day
            text = self._iso[day] = day_date(dated).isoformat()
        return text

    def for_record(self, record: Mapping[str, Any]) -> str:
        return self.iso(self.day(record))

    def _careful(self, sent: object) -> int:
        found = _day_and_unit(sent, self._today_epoch_day() + 1)
        if found is None:
            self.implausible += 1
            return UNDATED
        day, unit = found
        if unit == _MS_PER_DAY:
            self._ms_days.add(day)
        return day
