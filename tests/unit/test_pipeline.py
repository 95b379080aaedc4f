"""The pipeline's own rules, on an in-memory sink (milliseconds, no database).

The same rules against Postgres: tests/integration/test_batch_semantics.py.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localdev.lambda_event import sqs_record
from login_etl.masking import Masker
from login_etl.pipeline import BatchResult, PendingRow, process_batch
from login_etl.postgres import DatabaseUnavailable
from tests.support.memory_sink import MemorySink

MASKER = Masker(b"unit-test-key")
TODAY = date(2026, 12, 1)
STANDARD_ARN = "arn:aws:sqs:us-east-1:000000000000:login-queue"
FIFO_ARN = "arn:aws:sqs:us-east-1:000000000000:login-queue.fifo"
SENT_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def login(n: int, **changes: Any) -> str:
    body = {
        "user_id": f"user-{n}",
        "app_version": "2.3.0",
        "device_type": "android",
        "ip": f"10.1.{n // 250}.{n % 250 + 1}",
        "locale": "RU",
        "device_id": f"{n:03d}-00-{n:04d}",
    }
    return json.dumps(body | changes)


NOT_A_LOGIN = json.dumps({"foo": "oops_wrong_msg_format"})


def records(
    bodies: list[str],
    *,
    arn: str = STANDARD_ARN,
    ids: list[str] | None = None,
    sent_ms: int | None = SENT_MS,
    groups: list[str] | None = None,
) -> list[dict[str, Any]]:
    ids = ids or [f"m{i}" for i in range(len(bodies))]
    groups = groups or ["logins"] * len(bodies)
    return [
        sqs_record(b, message_id=m, sent_timestamp_ms=sent_ms, queue_arn=arn, group=g)
        for b, m, g in zip(bodies, ids, groups, strict=True)
    ]


class Log:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        self.lines.append({"msg": msg, **extra})


def run(batch: list[dict[str, Any]], sink: MemorySink | None = None) -> tuple[BatchResult, Log]:
    log = Log()
    result = process_batch(
        batch, sink=sink or MemorySink(), masker=MASKER, logger=log, today=lambda: TODAY
    )
    return result, log


def failed(result: BatchResult) -> list[str]:
    return [item["itemIdentifier"] for item in result.response["batchItemFailures"]]


def test_an_empty_batch_reports_nothing_and_writes_nothing() -> None:
    sink = MemorySink()
    result, _ = run([], sink)
    assert result.response == {"batchItemFailures": []}
    assert sink.writes == []


def test_a_rejected_record_fails_alone_on_a_standard_queue() -> None:
    sink = MemorySink()
    result, log = run(records([login(0), NOT_A_LOGIN, login(2)]), sink)
    assert failed(result) == ["m1"]
    assert result.written == 2 and result.fifo_held_back == 0
    assert [r["user_id"] for r in sink.rows] == ["user-0", "user-2"]
    assert [(line["message_id"], line["reason"]) for line in log.lines] == [
        ("m1", "missing_user_id")
    ]


def test_fifo_holds_back_every_record_after_a_rejected_one() -> None:
    sink = MemorySink()
    bodies = [login(0), NOT_A_LOGIN, login(2), login(3)]
    result, log = run(records(bodies, arn=FIFO_ARN), sink)
    assert failed(result) == ["m1", "m2", "m3"]  # in arrival order
    assert result.written == 1 and result.fifo_held_back == 2
    assert dict(result.rejections) == {"missing_user_id": 1}
    assert [line["message_id"] for line in log.lines] == ["m1"]  # held back is not rejected
    assert sink.ledger == {"m0"}


def test_fifo_holds_back_only_the_group_of_the_rejected_record() -> None:
    sink = MemorySink()
    bodies = [login(0), NOT_A_LOGIN, login(2), login(3), login(4)]
    groups = ["a", "a", "b", "a", "b"]
    result, _ = run(records(bodies, arn=FIFO_ARN, groups=groups), sink)
    assert failed(result) == ["m1", "m3"]  # the rejected one and the later one of group a
    assert result.fifo_held_back == 1
    assert sink.ledger == {"m0", "m2", "m4"}


def test_fifo_a_database_refusal_holds_back_only_its_group() -> None:
    sink = MemorySink(refuse=lambda row: row.message_id == "m0")
    bodies = [login(0), login(1), login(2), login(3)]
    result, _ = run(records(bodies, arn=FIFO_ARN, groups=["a", "b", "a", "b"]), sink)
    assert failed(result) == ["m0", "m2"]
    assert dict(result.rejections) == {"database_rejected": 1}
    assert sink.ledger == {"m1", "m3"}


def test_fifo_holds_back_after_a_row_the_database_refuses() -> None:
    sink = MemorySink(refuse=lambda row: row.message_id == "m1")
    result, _ = run(records([login(0), login(1), login(2)], arn=FIFO_ARN), sink)
    assert failed(result) == ["m1", "m2"]
    assert dict(result.rejections) == {"database_rejected": 1}
    assert result.fifo_held_back == 1
    assert sink.ledger == {"m0"}


def test_rejections_and_database_refusals_are_merged() -> None:
    sink = MemorySink(refuse=lambda row: row.message_id == "m3")
    bodies = [login(0), NOT_A_LOGIN, login(2), login(3), "{not json"]
    result, log = run(records(bodies), sink)
    assert failed(result) == ["m1", "m3", "m4"]
    assert dict(result.rejections) == {
        "missing_user_id": 1,
        "invalid_json": 1,
        "database_rejected": 1,
    }
    assert sorted(line["message_id"] for line in log.lines) == ["m1", "m3", "m4"]
    refused = next(line for line in log.lines if line["message_id"] == "m3")
    assert refused["detail"] == "SQLSTATE 22001"
    assert result.written == 2 and result.fifo_held_back == 0


def test_the_same_message_twice_in_a_batch_gets_one_outcome() -> None:
    sink = MemorySink()
    batch = records([login(0), login(1), login(0)], ids=["a", "b", "a"])
    result, _ = run(batch, sink)
    assert failed(result) == []
    assert result.written == 2 and result.duplicates == 0
    assert sink.writes == [["a", "b"]]  # each id once, in arrival order
    assert len(sink.rows) == 2


def test_the_first_copy_of_a_repeated_message_decides() -> None:
    batch = records([NOT_A_LOGIN, login(1), login(0)], ids=["a", "b", "a"])
    result, log = run(batch)
    assert failed(result) == ["a"]  # once, though the id came twice
    assert len(log.lines) == 1 and result.written == 1


def test_a_redelivered_message_is_a_duplicate_not_a_failure() -> None:
    sink = MemorySink(ledger={"m1"})
    result, _ = run(records([login(0), login(1)]), sink)
    assert failed(result) == []
    assert result.written == 1 and result.duplicates == 1
    assert [r["user_id"] for r in sink.rows] == ["user-0"]


def test_a_batch_level_failure_raises_and_reports_nothing() -> None:
    sink = MemorySink(fail=DatabaseUnavailable("gone"))
    with pytest.raises(DatabaseUnavailable):
        run(records([login(0), login(1)]), sink)
    assert sink.rows == [] and sink.ledger == set()


def test_create_date_is_the_sent_day_else_today() -> None:
    sink = MemorySink()
    batch = (
        records([login(0)], ids=["sent"])
        + records([login(1)], ids=["none"], sent_ms=None)
        + records([login(2)], ids=["1970"], sent_ms=5)  # implausible: seconds or ms near 0
    )
    result, _ = run(batch, sink)
    assert [r["create_date"] for r in sink.rows] == ["2025-12-01", "2026-12-01", "2026-12-01"]
    assert result.implausible_sent_timestamps == 1


def test_rows_hold_masks_never_the_raw_values() -> None:
    sink = MemorySink()
    run(records([login(7)]), sink)
    row = sink.rows[0]
    raw = json.loads(login(7))
    assert row["masked_ip"] == MASKER.mask_ip(raw["ip"])
    assert row["masked_device_id"] == MASKER.mask_device_id(raw["device_id"])
    assert raw["ip"] not in json.dumps(sink.rows) and raw["device_id"] not in json.dumps(sink.rows)


def test_unknown_keys_are_counted_and_ignored() -> None:
    sink = MemorySink()
    result, _ = run(records([login(0, extra="x", more=1)]), sink)
    assert result.unknown_keys == 2 and result.written == 1


# A batch: per record, valid or not, refused by the database or not, and which id it has
# (few ids, so repeats are common).
batches = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.integers(0, 7)), min_size=0, max_size=30
)
GROUP_OF_ID = ["g0", "g1", "g0", "g2", "g1", "g0", "g2", "g1"]  # a message's group is fixed


@settings(max_examples=200)
@given(batch=batches, fifo=st.booleans(), redelivered=st.sets(st.integers(0, 7)))
def test_every_message_ends_written_duplicate_or_failed_exactly_once(
    batch: list[tuple[bool, bool, int]], fifo: bool, redelivered: set[int]
) -> None:
    ids = [f"m{i}" for _, _, i in batch]
    bodies = [login(n) if valid else NOT_A_LOGIN for n, (valid, _, _) in enumerate(batch)]
    # The first copy of an id decides its fate.
    first: dict[str, tuple[bool, bool]] = {}
    for (valid, refused, _), message_id in zip(batch, ids, strict=True):
        first.setdefault(message_id, (valid, refused))
    before = {f"m{i}" for i in redelivered}
    sink = MemorySink(
        ledger=set(before),
        refuse=lambda row: first[row.message_id][1],
    )
    groups = [GROUP_OF_ID[i] for _, _, i in batch]
    arn = FIFO_ARN if fifo else STANDARD_ARN
    result, _ = run(records(bodies, arn=arn, ids=ids, groups=groups), sink)

    expected_failed, expected_written, expected_duplicates = [], set(), set()
    held: set[str] = set()  # FIFO: groups with a failure so far
    for message_id, (valid, refused) in first.items():  # arrival order
        group = GROUP_OF_ID[int(message_id[1:])]
        if fifo and group in held:
            expected_failed.append(message_id)  # held back
        elif not valid or (refused and message_id not in before):
            expected_failed.append(message_id)
            held.add(group)
        elif message_id in before:
            expected_duplicates.add(message_id)
        else:
            expected_written.add(message_id)
    assert failed(result) == expected_failed
    assert sink.ledger - before == expected_written
    assert (result.written, result.duplicates) == (len(expected_written), len(expected_duplicates))
    assert sum(result.rejections.values()) + result.fifo_held_back == len(expected_failed)


def test_the_sink_sees_pending_rows_with_their_message_ids() -> None:
    seen: list[PendingRow] = []

    def record_and_accept(row: PendingRow) -> bool:
        seen.append(row)
        return False

    run(records([login(0), NOT_A_LOGIN, login(2)]), MemorySink(refuse=record_and_accept))
    assert [r.message_id for r in seen] == ["m0", "m2"]
