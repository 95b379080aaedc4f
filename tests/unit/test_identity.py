"""A redriven message keeps its identity: the signed attribute, and the pipeline's use of it
(on the in-memory sink; against LocalStack and Postgres: tests/e2e/drain)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from login_etl.identity import ATTRIBUTE, Identity, IdentitySigner, identity_key
from login_etl.pipeline import BatchResult, process_batch
from tests.support.memory_sink import MemorySink
from tests.unit.test_pipeline import (
    FIFO_ARN,
    MASKER,
    NOT_A_LOGIN,
    SENT_MS,
    TODAY,
    Log,
    failed,
    login,
    records,
)

KEY = b"unit-test-key"  # the masking key of MASKER
SIGNER = IdentitySigner(KEY)
REDRIVE_MS = SENT_MS + 9 * 86_400_000  # the copy is sent 9 days later
ORIGINAL_DAY = "2025-12-01"


def copy_of(
    record: dict[str, Any],
    copy_id: str,
    *,
    signer: IdentitySigner = SIGNER,
    body: str | None = None,
    value: str | None = None,
    arn: str | None = None,
) -> dict[str, Any]:
    """What a redrive copy of ``record`` looks like to the pipeline: a new id, the redrive
    day's SentTimestamp, the identity attribute (signed over the original body)."""
    original = Identity(record["messageId"], record["attributes"]["SentTimestamp"])
    signed = value if value is not None else signer.sign(original, record["body"])
    [copy] = records(
        [body if body is not None else record["body"]],
        ids=[copy_id],
        sent_ms=REDRIVE_MS,
        arn=arn or record["eventSourceARN"],
    )
    copy["messageAttributes"] = {
        "source": {"stringValue": "mobile", "dataType": "String"},  # the producer's own
        ATTRIBUTE: {"stringValue": signed, "dataType": "String"},
    }
    return copy


def run(
    batch: list[dict[str, Any]], sink: MemorySink, *, signer: Any = SIGNER
) -> tuple[BatchResult, Log]:
    log = Log()
    result = process_batch(
        batch, sink=sink, masker=MASKER, logger=log, identity=signer, today=lambda: TODAY
    )
    return result, log


def create_dates(sink: MemorySink) -> list[object]:
    return [row["create_date"] for row in sink.rows]


# --- the attribute -----------------------------------------------------------------------


def test_the_key_is_derived_from_the_masking_key_with_a_label() -> None:
    expected = hmac.digest(KEY, b"login-etl redrive identity v1", hashlib.sha256)
    assert identity_key(KEY) == expected != KEY
    assert identity_key(b"other") != expected


def test_a_signature_covers_id_timestamp_and_body() -> None:
    body = login(1)
    value = SIGNER.sign(Identity("a1b2-c3", "1764547200000"), body)
    version, message_id, sent, signature = value.split(":")
    assert (version, message_id, sent) == ("v1", "a1b2-c3", "1764547200000")
    assert SIGNER.verify(value, body) == Identity("a1b2-c3", "1764547200000")
    assert SIGNER.verify(value, login(2)) is None  # another body
    assert SIGNER.verify(value.replace("a1b2-c3", "a1b2-c4"), body) is None  # another id
    assert SIGNER.verify(value.replace(":1764547200000:", ":1764547200001:"), body) is None
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert SIGNER.verify(value.replace(signature, flipped), body) is None
    assert IdentitySigner(b"another key").verify(value, body) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        "",
        "v1",
        "v2:a:1:" + "0" * 64,
        "v1:a:1",
        "v1:a:1:zz",
        "v1:a b:1:" + "0" * 64,
        "v1:a:1x:" + "0" * 64,
        "v1:a:1:" + "0" * 64 + ":extra",
        "v1:" + "a" * 300 + ":1:" + "0" * 64,
    ],
)
def test_malformed_values_do_not_verify(value: object) -> None:
    assert SIGNER.verify(value, login(1)) is None


def test_an_identity_is_only_what_sqs_ids_and_timestamps_look_like() -> None:
    with pytest.raises(ValueError, match="message id"):
        Identity("a:b", "1")
    with pytest.raises(ValueError, match="SentTimestamp"):
        Identity("a", "17.5")


# --- the pipeline ------------------------------------------------------------------------


def test_a_verified_copy_of_a_committed_message_adds_no_row() -> None:
    """The original was committed, then (a timeout after the commit) failed until it was
    dead-lettered; its redrive copy is a duplicate of the original's ledger id."""
    sink = MemorySink()
    [original] = records([login(1)], ids=["original-1"])
    run([original], sink)
    assert sink.ledger == {"original-1"} and len(sink.rows) == 1

    result, log = run([copy_of(original, "copy-1")], sink)
    assert (result.written, result.duplicates, result.redriven) == (0, 1, 1)
    assert failed(result) == [] and len(sink.rows) == 1
    assert sink.ledger == {"original-1"}  # the copy's own id is never claimed
    assert log.lines == []


def test_a_verified_copy_is_dated_by_the_original_send_day() -> None:
    sink = MemorySink()
    [original] = records([login(1)], ids=["original-1"])
    result, _ = run([copy_of(original, "copy-1")], sink)
    assert result.written == 1 and result.redriven == 1
    assert create_dates(sink) == [ORIGINAL_DAY]  # not the redrive day
    assert sink.ledger == {"original-1"}
    # The original arriving later (a late redelivery) is now the duplicate.
    again, _ = run([original], sink)
    assert again.duplicates == 1 and len(sink.rows) == 1


@pytest.mark.parametrize("case", ["tampered", "foreign-key", "different-body", "no-signer"])
def test_an_identity_that_does_not_verify_leaves_an_ordinary_message(case: str) -> None:
    """Never lost, never merged into another message: its own id, its own day, counted,
    logged without values."""
    sink = MemorySink()
    [original] = records([login(1)], ids=["original-1"])
    run([original], sink)
    signer: Any = SIGNER
    if case == "tampered":
        genuine = SIGNER.sign(Identity("original-1", str(SENT_MS)), original["body"])
        copy = copy_of(original, "copy-1", value=genuine.replace(str(SENT_MS), str(SENT_MS - 1)))
    elif case == "foreign-key":  # e.g. a producer that made up its own key
        copy = copy_of(original, "copy-1", signer=IdentitySigner(b"a producer's key"))
    elif case == "different-body":  # a genuine attribute moved onto another login
        copy = copy_of(original, "copy-1")
        copy["body"] = login(2)
    else:  # a pipeline that cannot check signatures trusts none
        copy = copy_of(original, "copy-1")
        signer = None

    result, log = run([copy], sink, signer=signer)
    assert (result.written, result.duplicates) == (1, 0)
    assert (result.redriven, result.unverified_identities) == (0, 1)
    assert failed(result) == []
    assert sink.ledger == {"original-1", "copy-1"}
    assert create_dates(sink) == [ORIGINAL_DAY, "2025-12-10"]  # the copy's own SentTimestamp
    [line] = log.lines
    assert line["message_id"] == "copy-1" and line["reason"] == "identity_not_verified"
    text = repr(line)
    assert copy["body"] not in text
    assert copy["messageAttributes"][ATTRIBUTE]["stringValue"] not in text


def test_a_message_and_its_copy_in_one_batch_get_one_outcome() -> None:
    sink = MemorySink()
    [original] = records([login(1)], ids=["original-1"])
    [other] = records([login(2)], ids=["other"])
    batch = [original, other, copy_of(original, "copy-1")]
    result, _ = run(batch, sink)
    assert (result.written, result.duplicates) == (2, 0)
    assert failed(result) == []
    assert sink.writes == [["original-1", "other"]]  # one ledger id for the pair
    assert len(sink.rows) == 2


def test_a_rejected_message_and_its_copy_are_both_reported_by_their_delivery_ids() -> None:
    sink = MemorySink()
    [original] = records([NOT_A_LOGIN], ids=["bad-1"])
    result, log = run([copy_of(original, "copy-1"), login_record("ok"), original], sink)
    assert failed(result) == ["copy-1", "bad-1"]  # this delivery's ids, the pair together
    assert sum(result.rejections.values()) == 1
    assert [line["message_id"] for line in log.lines] == ["copy-1"]
    assert result.written == 1


def test_a_database_refusal_of_a_copy_names_the_copy() -> None:
    sink = MemorySink(refuse=lambda row: row.message_id == "original-1")
    [original] = records([login(1)], ids=["original-1"])
    result, _ = run([copy_of(original, "copy-1")], sink)
    assert failed(result) == ["copy-1"]


def test_fifo_a_copy_holds_back_its_group_under_its_delivery_id() -> None:
    sink = MemorySink()
    [original] = records([NOT_A_LOGIN], ids=["bad-1"], arn=FIFO_ARN)
    copy = copy_of(original, "copy-1", arn=FIFO_ARN)
    [later] = records([login(3)], ids=["later"], arn=FIFO_ARN)
    result, _ = run([copy, later], sink)
    assert failed(result) == ["copy-1", "later"]
    assert result.fifo_held_back == 1


def login_record(message_id: str) -> dict[str, Any]:
    [record] = records([login(7)], ids=[message_id])
    return record
