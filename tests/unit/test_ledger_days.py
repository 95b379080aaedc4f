"""The ledger ring's arithmetic: which slot a day uses, how long a slot is kept, and
how a batch's ids split by day. (Its SQL runs in tests/integration/test_ledger.py.)"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from login_etl.config import MAX_RETENTION_SECONDS, MIN_RETENTION_SECONDS, queue_retention_seconds
from login_etl.errors import ConfigurationError
from login_etl.postgres.ledger import SLOTS, BatchDays, slot_of, window_days

retentions = st.integers(MIN_RETENTION_SECONDS, MAX_RETENTION_SECONDS)
days = st.integers(0, 100_000)


@given(retentions, days)
def test_every_day_that_can_still_be_delivered_has_a_slot_of_its_own(
    retention: int, today: int
) -> None:
    """The window's days, today and tomorrow (an SQS clock ahead of ours) never share
    a slot, so opening one never empties another that is still needed."""
    live = range(today - window_days(retention), today + 2)
    assert len({slot_of(day) for day in live}) == len(live) <= SLOTS


@given(retentions, st.integers(0, 86_399_999))
def test_the_window_covers_the_retention_from_any_time_of_the_sent_day(
    retention: int, sent_ms_of_day: int
) -> None:
    """A message sent at any moment of day 0 can be delivered until sent + retention:
    its slot is kept at least through that day."""
    last_delivery_day = (sent_ms_of_day + retention * 1000) // 86_400_000
    assert window_days(retention) >= last_delivery_day + 1  # one day of margin


def test_the_window_of_common_retentions() -> None:
    assert [window_days(d * 86_400) for d in (1, 4, 14)] == [2, 5, 15]
    assert window_days(60) == 2


@pytest.mark.parametrize("seconds", [0, -1, MAX_RETENTION_SECONDS + 1])
def test_a_retention_sqs_cannot_have_is_refused(seconds: int) -> None:
    with pytest.raises(ValueError, match="14 days"):
        window_days(seconds)


@given(
    st.lists(st.tuples(st.uuids().map(str), st.integers(20_000, 20_003)), unique_by=lambda t: t[0])
)
def test_split_keeps_every_id_once_under_its_day_in_order(pairs: list[tuple[str, int]]) -> None:
    ids, day_of = [p[0] for p in pairs], dict(pairs)
    batch = BatchDays.of(ids, [p[1] for p in pairs])
    parts = batch.split(ids)
    assert sorted(m for _, part in parts for m in part) == sorted(ids)
    for day, part in parts:
        assert part and all(day_of[m] == day for m in part)
        assert part == [m for m in ids if m in set(part)]  # arrival order kept
    assert batch.distinct() == set(day_of.values())
    assert (batch.single is not None) == (len(set(day_of.values())) == 1)


def test_one_day_per_id() -> None:
    with pytest.raises(ValueError, match="one day per message id"):
        BatchDays.of(["a", "b"], [1])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(None, MAX_RETENTION_SECONDS), ("", MAX_RETENTION_SECONDS), ("345600", 345600)],
)
def test_queue_retention_from_the_environment(text: str | None, seconds: int) -> None:
    env = {} if text is None else {"QUEUE_RETENTION_SECONDS": text}
    assert queue_retention_seconds(env) == seconds


@pytest.mark.parametrize("text", ["59", "1209601", "4d", "3.5"])
def test_an_impossible_queue_retention_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="QUEUE_RETENTION_SECONDS"):
        queue_retention_seconds({"QUEUE_RETENTION_SECONDS": text})
