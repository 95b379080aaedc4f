"""create_date from SentTimestamp: milliseconds (SQS), seconds (LocalStack < 3.0), or today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from login_etl.dates import EARLIEST, SentDates, sent_day

TODAY = date(2026, 12, 1)
EPOCH = date(1970, 1, 1)
FIRST_S = int(datetime(EARLIEST.year, EARLIEST.month, EARLIEST.day, tzinfo=UTC).timestamp())
LAST_S = int(datetime(2026, 12, 2, 23, 59, 59, tzinfo=UTC).timestamp())  # end of tomorrow


def record(sent: object) -> dict[str, Any]:
    return {"attributes": {"SentTimestamp": sent}}


def utc_day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def dates() -> SentDates:
    return SentDates(lambda: TODAY)


@given(st.integers(FIRST_S * 1000, LAST_S * 1000 + 999))
def test_milliseconds_give_their_utc_day(ms: int) -> None:
    assert dates().for_record(record(str(ms))) == utc_day(ms / 1000)


@given(st.integers(FIRST_S, LAST_S))
def test_seconds_give_their_utc_day(seconds: int) -> None:
    sent = dates()
    assert sent.for_record(record(str(seconds))) == utc_day(seconds)
    assert sent.implausible == 0


@given(st.floats(FIRST_S, LAST_S, allow_nan=False))
def test_fractional_seconds_as_text(seconds: float) -> None:
    assert dates().for_record(record(repr(seconds))) == utc_day(int(seconds))


@pytest.mark.parametrize(
    "sent",
    [
        "0",
        "42",
        "-1",
        str(FIRST_S - 1),  # seconds before 2006 (and as ms: January 1970)
        str((LAST_S + 1) * 1000),  # the day after tomorrow, in ms
        str(10**30),
        "abc",
        "",
        "1e400",
        "nan",
        "inf",
        True,
        {"ms": 1},
        [1],
    ],
)
def test_implausible_or_malformed_values_give_today_and_are_counted(sent: object) -> None:
    dated = dates()
    assert dated.for_record(record(sent)) == TODAY.isoformat()
    assert dated.implausible == 1


@pytest.mark.parametrize("attributes", [{}, None, "x", {"SentTimestamp": None}])
def test_no_timestamp_gives_today_and_is_not_counted(attributes: object) -> None:
    dated = dates()
    assert dated.for_record({"attributes": attributes}) == TODAY.isoformat()
    assert dated.for_record({}) == TODAY.isoformat()
    assert dated.implausible == 0


def test_seconds_and_milliseconds_mixed_in_one_batch_keep_their_own_days() -> None:
    # The fast path caches days of millisecond values; seconds values a day apart share
    # their millisecond "day" (January 1970) and must not share a cached date.
    dated = dates()
    monday, tuesday = 1_764_547_200, 1_764_547_200 + 86_400  # 2025-12-01, 2025-12-02 UTC
    assert [
        dated.for_record(record(str(monday))),
        dated.for_record(record(str(tuesday))),
        dated.for_record(record(str(monday * 1000))),
        dated.for_record(record(str(tuesday * 1000 + 5))),
        dated.for_record(record(monday * 1000)),  # an int, not text
        dated.for_record(record(str(tuesday))),
    ] == ["2025-12-01", "2025-12-02", "2025-12-01", "2025-12-02", "2025-12-01", "2025-12-02"]


def test_tomorrow_is_plausible_the_day_after_is_not() -> None:
    tomorrow = datetime(2026, 12, 2, 12, tzinfo=UTC).timestamp()
    after = tomorrow + 86_400
    assert sent_day(int(tomorrow * 1000), TODAY) == (TODAY + timedelta(days=1) - EPOCH).days
    assert sent_day(int(after * 1000), TODAY) is None
    assert sent_day(int(after), TODAY) is None


@given(st.integers(FIRST_S, LAST_S))
def test_the_two_readings_never_overlap(seconds: int) -> None:
    # A plausible seconds value read as ms lands in 1970; a plausible ms value read as
    # seconds lands tens of thousands of years ahead: the rule is never ambiguous.
    assert seconds // 86_400_000 < (EARLIEST - EPOCH).days
    assert (seconds * 1000) // 86_400 > (TODAY - EPOCH).days + 1
