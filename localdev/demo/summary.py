"""What ``make demo`` prints at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from localdev.demo.traffic import DemoPlan
from localdev.env import database

DUPLICATES_SQL = """\
SELECT masked_device_id, count(*) AS logins, count(DISTINCT user_id) AS users
FROM user_logins
WHERE masked_device_id IS NOT NULL
GROUP BY masked_device_id
HAVING count(*) > 1
ORDER BY users DESC, logins DESC
LIMIT 5;"""

THIS_RUN_SQL = "SELECT * FROM user_logins WHERE user_id = ANY(CAST(:ids AS text[]))"

SAMPLE_SQL = """\
SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version,
       app_version_text, create_date
FROM login_etl.user_logins_decoded
WHERE user_id = ANY(CAST(:ids AS text[]))
LIMIT 5"""


@dataclass
class Outcome:
    plan: DemoPlan
    message_ids: list[str]
    written: int
    dead_lettered: int
    expected_duplicates: int
    duplicates: int
    deliveries: Counter[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return (
            self.written == self.plan.expected_rows
            and self.dead_lettered == self.plan.expected_rejects
            and self.duplicates == self.expected_duplicates
        )


def _query(database_url: str, sql: str, **params: Any) -> tuple[list[str], list[list[Any]]]:
    conn = database.connect(database_url)
    try:
        rows = conn.run(sql, **params)
        return [str(c["name"]) for c in conn.columns or []], rows
    finally:
        conn.close()


def _table(columns: list[str], rows: list[list[Any]], width: int = 18) -> str:
    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = [" | ".join(cell(c).ljust(width) for c in columns)]
    lines.append("-+-".join("-" * width for _ in columns))
    lines += [" | ".join(cell(v).ljust(width) for v in row) for row in rows]
    return "\n".join("  " + line.rstrip() for line in lines)


def print_summary(outcome: Outcome, outputs: dict[str, str], database_url: str) -> None:
    plan = outcome.plan
    mark = "ok" if outcome.ok else "UNEXPECTED"
    print(f"\n=== login-etl demo: {mark} ({outcome.seconds:.0f} s) ===")
    print(f"sent                  {len(outcome.message_ids)} messages")
    print(
        f"written               {outcome.written} rows (expected {plan.expected_rows}; "
        f"incl. {plan.resent} identical bodies sent twice = two logins each)"
    )
    print(f"rejected -> DLQ       {outcome.dead_lettered} (expected {plan.expected_rejects})")
    print(
        f"duplicates skipped    {outcome.duplicates} (redelivered after a commit: "
        f"{outcome.expected_duplicates}; the ledger kept them from being written twice)"
    )
    if outcome.deliveries:
        counts = Counter(outcome.deliveries.values())
        spread = ", ".join(f"{n} message(s) x {d}" for d, n in sorted(counts.items()))
        print(f"rejected deliveries   {spread} (MaxReceiveCount, then the DLQ)")
    print(f"\nDead-letter queue: {outputs['DeadLetterQueueUrl']}")
    print("\nA few stored rows (ip and device_id are HMAC-SHA256 masks, never stored raw):")
    columns, rows = _query(database_url, SAMPLE_SQL, ids=sorted(plan.user_ids))
    print(_table(columns, rows, width=14))
    print("\nDuplicate finding, as an analyst would run it (same device, several logins/users):")
    print("  " + DUPLICATES_SQL.replace("\n", "\n  "))
    print("Its result on this demo's rows (other runs and benchmarks share the database):")
    # The CTE shadows the table, so the analyst's query text runs unchanged on this run's rows.
    scoped = f"WITH user_logins AS ({THIS_RUN_SQL})\n{DUPLICATES_SQL.rstrip(';')}"
    columns, rows = _query(database_url, scoped, ids=sorted(plan.user_ids))
    print(_table(columns, rows, width=20))
    print(
        '\nMore: psql "$DATABASE_URL" (see .local/endpoints.env); '
        "function log: .local/lambda-logs/" + outputs["FunctionName"] + ".log"
    )
