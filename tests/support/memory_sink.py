"""An in-memory ``LoginSink``: the pipeline's rules without a database.

It keeps the contract of ``pipeline.LoginSink`` (and of ``PostgresSink``): ``rows`` is
read once to the end; a row whose message id is in the ledger is a duplicate; a row the
"database" refuses (``refuse``) is a ``database_rejected`` rejection and, with
``groups`` (FIFO), no later row of its message group is written; all of a batch or none of it
lands (``fail`` raises before anything is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from login_etl.pipeline import PendingRow, WriteOutcome
from login_etl.records import Rejection
from login_etl.table import CURRENT_SHAPE, TableShape


@dataclass
class MemorySink:
    shape: TableShape = CURRENT_SHAPE
    refuse: Callable[[PendingRow], bool] = lambda row: False
    fail: Exception | None = None  # raised by the next write, which keeps nothing
    ledger: set[str] = field(default_factory=set)
    rows: list[dict[str, object]] = field(default_factory=list)  # column -> value
    writes: list[list[str]] = field(default_factory=list)  # message_ids of each write
    closed: bool = False

    def table_shape(self) -> TableShape:
        return self.shape

    def write(
        self,
        message_ids: Sequence[str],
        rows: Iterable[PendingRow],
        *,
        days: Sequence[int],
        groups: Mapping[str, str] | None,
    ) -> WriteOutcome:
        assert len(days) == len(message_ids), "one SentTimestamp day per message id"
        self.writes.append(list(message_ids))
        pending = list(rows)
        unknown = [r.message_id for r in pending if r.message_id not in message_ids]
        assert not unknown, f"rows for ids that are not in message_ids: {unknown}"
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        outcome = WriteOutcome()
        kept: list[PendingRow] = []
        held: set[str] = set()  # FIFO: groups with a refused row
        for row in pending:
            if groups is not None and groups[row.message_id] in held:
                continue  # held back
            if row.message_id in self.ledger:
                outcome.duplicates.add(row.message_id)
            elif self.refuse(row):
                outcome.rejected[row.message_id] = Rejection(
                    "database_rejected", detail="SQLSTATE 22001"
                )
                if groups is not None:
                    held.add(groups[row.message_id])
            else:
                kept.append(row)
        for row in kept:  # the commit
            self.ledger.add(row.message_id)
            self.rows.append(dict(zip(self.shape.columns, row.row, strict=True)))
            outcome.written.add(row.message_id)
        return outcome

    def close(self) -> None:
        self.closed = True
