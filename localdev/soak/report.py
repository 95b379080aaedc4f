"""What the soak found, and how it prints it."""

from __future__ import annotations

from dataclasses import dataclass

from localdev.soak.db import Counts


@dataclass
class SoakReport:
    sent: int
    valid: int
    invalid: int
    counts: Counts
    dlq: int
    valid_in_dlq: int
    invalid_in_dlq: int
    wall_s: float
    rows_done_s: float | None  # first send -> every valid row written
    ledger_skips: int  # redelivered messages the ledger kept from being written twice
    drained: bool
    function_name: str
    faults: list[str]
    fault_summary: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and not self.problems
            and self.counts.lost == 0
            and self.counts.duplicates == 0
            and self.counts.rows == self.valid
            and self.dlq == self.invalid == self.invalid_in_dlq
        )

    @property
    def rate(self) -> float:
        return self.sent / self.wall_s if self.wall_s else 0.0

    def lines(self) -> list[str]:
        c = self.counts
        lines = [
            f"=== login-etl soak: {'PASS' if self.ok else 'FAIL'} ===",
            f"sent          {self.sent} ({self.valid} valid, {self.invalid} invalid)",
            f"rows          {c.rows} (expected {self.valid})",
            f"DLQ           {self.dlq} (expected {self.invalid}; valid among them: "
            f"{self.valid_in_dlq})",
            f"duplicates    {c.duplicates}",
            f"lost          {c.lost}",
            f"wall time     {self.wall_s:.1f} s (first send -> queue drained)",
            f"messages/s    {self.rate:.0f} end to end; "
            + (
                f"{self.valid / self.rows_done_s:.0f} rows/s until the last valid row "
                f"({self.rows_done_s:.1f} s; the rest is the invalid messages' "
                "MaxReceiveCount x VisibilityTimeout on their way to the DLQ)"
                if self.rows_done_s
                else "the valid rows never all arrived"
            ),
            f"ledger skips  {self.ledger_skips} redelivered messages not written twice",
            f"faults        {self.fault_summary}",
        ]
        lines += [f"  {fault}" for fault in self.faults]
        lines += [f"problem: {p}" for p in self.problems]
        return lines
