"""One SQS batch: parse/validate → mask → store → batch response (docs/architecture.md).

Pure orchestration: no AWS or database import; the store is any :class:`LoginSink`.
Not Powertools' ``BatchProcessor`` and Idempotency utility: they work per message, while
here a batch is ONE transaction, its ledger claims atomic with its rows, in a constant
number of round trips (docs/contract.md, Batch semantics); the partial response is the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from .dates import SentDates
from .identity import IdentitySigner, attribute_of
from .masking import Masker
from .records import ParsedRow, Rejection, to_row
from .table import TableShape

# A row waiting to be written: to_row's result with its message_id set (one object per
# record instead of two: allocation is a measurable share of the per-record time).
PendingRow = ParsedRow


@dataclass(slots=True)
class WriteOutcome:
    """What the sink did with the rows it was given."""

    written: set[str] = field(default_factory=set)
    duplicates: set[str] = field(default_factory=set)  # already in the ledger
    rejected: dict[str, Rejection] = field(default_factory=dict)  # refused by the database


class RejectionLog(Protocol):
    """The part of a logger the pipeline uses (Powertools Logger or logging.Logger)."""

    def warning(self, msg: str, *, extra: dict[str, Any]) -> Any: ...


class LoginSink(Protocol):
    def table_shape(self) -> TableShape: ...

    def write(
        self,
        message_ids: Sequence[str],
        rows: Iterable[PendingRow],
        *,
        days: Sequence[int],
        groups: Mapping[str, str] | None,
    ) -> WriteOutcome:
        """Write the rows not yet in the ledger, all in one transaction.

        ``message_ids``: every message of the batch (distinct, arrival order), known before
        anything is parsed, so the sink may claim them while ``rows`` is still produced;
        ``days``: each one's ``SentTimestamp`` day (``dates.SentDates.day``), which a
        redelivery keeps. ``rows`` is iterated exactly once, to the end, and holds a row for
        some ids only: only those end up in the ledger. ``groups`` (FIFO only): each id's
        ``MessageGroupId``; after a row the database refuses, no later row of its group may
        be written (held back, neither written nor rejected). Raises on a batch-level
        failure (database unreachable, timeout): then nothing may be reported as written.
        """
        ...


@dataclass(slots=True)
class BatchResult:
    """Outcome of one batch, in the order the records arrived."""

    failed_message_ids: list[str] = field(default_factory=list)
    written: int = 0
    duplicates: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    fifo_held_back: int = 0
    unknown_keys: int = 0
    implausible_sent_timestamps: int = 0  # dated today instead (see dates.py)
    redriven: int = 0  # records claimed under a verified original identity (identity.py)
    unverified_identities: int = 0  # an identity attribute that did not verify

    @property
    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response."""
        return {"batchItemFailures": [{"itemIdentifier": m} for m in self.failed_message_ids]}


def process_batch(
    records: Iterable[Mapping[str, Any]],
    *,
    sink: LoginSink,
    masker: Masker,
    logger: RejectionLog,
    identity: IdentitySigner | None = None,
    today: Callable[[], date] = lambda: datetime.now(UTC).date(),
) -> BatchResult:
    """Validate, mask and write one batch of SQS records (Lambda event shape).

    Which records fail and why, FIFO groups and redrive copies: docs/contract.md.
    """
    records = list(records)
    result = BatchResult()
    if not records:
        return result
    fifo = str(records[0].get("eventSourceARN", "")).endswith(".fifo")
    shape = sink.table_shape()
    dates = SentDates(today)
    # Each ledger id once, in arrival order: the same message twice in one batch gets
    # one outcome for both. ``ids`` are the ledger ids: the messageIds of this delivery,
    # but a verified redrive copy's original id.
    deliveries = ids = [str(record["messageId"]) for record in records]
    record_days = [dates.day(record) for record in records]
    # Nearly every record has no message attributes at all: one truthiness test each.
    if any(record.get("messageAttributes") for record in records) and any(
        attribute_of(record) is not None for record in records
    ):
        ids, record_days = _redrive_identities(
            records, deliveries, record_days, dates, identity, logger, result
        )
    order = list(dict.fromkeys(ids))
    repeats = len(order) != len(ids)
    days = record_days
    if repeats:  # the day of each id in ``order`` (a repeat has the same attributes)
        first_days: dict[str, int] = {}
        for message_id, day in zip(ids, record_days, strict=True):
            first_days.setdefault(message_id, day)
        days = list(first_days.values())
    rejected: dict[str, Rejection] = {}
    # FIFO: each message's group (a record without one counts as one group of its own
    # kind, ""), and the groups with a rejected message, whose later messages wait.
    groups: dict[str, str] | None = None
    if fifo:
        groups = {}
        for record, message_id in zip(records, ids, strict=True):
            attributes = record.get("attributes")
            group = attributes.get("MessageGroupId") if isinstance(attributes, Mapping) else None
            groups.setdefault(message_id, "" if group is None else str(group))
    held_groups: set[str] = set()

    def accepted_rows() -> Iterator[PendingRow]:
        """Parse lazily: the sink consumes this while the database works on the batch."""
        seen: set[str] = set()
        unknown_keys = 0
        for record, message_id, day in zip(records, ids, record_days, strict=True):
            if repeats:
                if message_id in seen:
                    continue
                seen.add(message_id)
            if groups is not None and groups[message_id] in held_groups:
                continue  # held back: its group's order must wait for the rejected one
            parsed = to_row(record.get("body"), shape, masker, dates.iso(day))
            if isinstance(parsed, ParsedRow):
                unknown_keys += parsed.unknown_keys
                parsed.message_id = message_id
                yield parsed
            else:
                rejected[message_id] = parsed
                if groups is not None:
                    held_groups.add(groups[message_id])
        result.unknown_keys = unknown_keys
        result.implausible_sent_timestamps = dates.implausible

    outcome = sink.write(order, accepted_rows(), days=days, groups=groups)
    rejected.update(outcome.rejected)

    # Ledger id -> this delivery's message ids (more than one: a message and its copy).
    delivered: dict[str, list[str]] = {}
    if ids is not deliveries:
        for message_id, delivery in zip(ids, deliveries, strict=True):
            listed = delivered.setdefault(message_id, [])
            if delivery not in listed:
                listed.append(delivery)
    for message_id, rejection in rejected.items():
        result.rejections[rejection.reason] += 1
        logger.warning(
            "record rejected",
            extra={
                "message_id": delivered.get(message_id, [message_id])[0],
                "reason": rejection.reason,
                "field": rejection.field,
                "detail": rejection.detail,
            },
        )
    ok = outcome.written | outcome.duplicates
    for message_id in order:
        if message_id not in ok:
            result.failed_message_ids += delivered.get(message_id, [message_id])
            if message_id not in rejected:
                result.fifo_held_back += 1
    result.written = len(outcome.written)
    result.duplicates = len(outcome.duplicates)
    return result


def _redrive_identities(
    records: Sequence[Mapping[str, Any]],
    deliveries: list[str],
    record_days: list[int],
    dates: SentDates,
    identity: IdentitySigner | None,
    logger: RejectionLog,
    result: BatchResult,
) -> tuple[list[str], list[int]]:
    """Ledger ids and days of a batch in which some records carry an identity attribute.

    A verified one gives the original id and the original ``SentTimestamp``'s day; one
    that does not verify (tampered, another key, another body, or no key to check it)
    leaves the record an ordinary message: its own id and day, logged without values.
    """
    ids, days = list(deliveries), list(record_days)
    for index, record in enumerate(records):
        if attribute_of(record) is None:
            continue
        found = identity.verify_record(record) if identity is not None else None
        if found is None:
            result.unverified_identities += 1
            logger.warning(
                "redrive identity not verified; processed under its own message id",
                extra={
                    "message_id": deliveries[index],
                    "reason": "identity_not_verified",
                    "field": "messageAttributes",
                    "detail": "",
                },
            )
            continue
        result.redriven += 1
        ids[index] = found.message_id
        days[index] = dates.day({"attributes": {"SentTimestamp": found.sent_timestamp}})
    return ids, days
