"""``make demo``: realistic login traffic through the deployed stack, then a summary.

Expects ``make up``, ``make db-init`` and ``make deploy-local`` to have run (``make demo`` does
that first). Sends the demo's message set (``localdev.demo.traffic``) to the stack's queue and
simulates one real-world redelivery: a consumer that committed a batch but never got to delete
it (a timeout right after COMMIT) — those messages become visible again and the function must
skip them. Then it waits, showing progress, until the queue is drained and the rejects are in
the dead-letter queue, and prints what happened.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

from localdev.demo.summary import Outcome, print_summary
from localdev.demo.traffic import DemoPlan, demo_messages
from localdev.env import database, deploy, stack
from localdev.env.function_logs import read_function_logs
from localdev.env.sqs import invoke_without_delete, queue_counts, send_batch

LOST_DELETES = 4  # messages of the simulated "committed, then timed out" invocation
WAIT_TIMEOUT_S = 180


def send(sqs: Any, queue_url: str, bodies: list[str]) -> list[str]:
    ids = []
    for start in range(0, len(bodies), 10):
        ids += send_batch(sqs, queue_url, bodies[start : start + 10])
    return ids


def commit_without_delete(outputs: dict[str, str], count: int) -> int:
    """Invoke the function on ``count`` messages, then make them visible again, undeleted.

    Returns how many the function accepted: each must come back as a skipped duplicate.
    """
    undeleted = invoke_without_delete(outputs, count, wait_s=2)
    if undeleted.function_error:
        raise RuntimeError(f"the function failed: {undeleted.result}")
    return undeleted.accepted


def rows_written(database_url: str, user_ids: set[str]) -> int:
    conn = database.connect(database_url)
    try:
        rows = conn.run(
            "SELECT count(*) FROM user_logins WHERE user_id = ANY(CAST(:ids AS text[]))",
            ids=sorted(user_ids),
        )
        return int(rows[0][0])
    finally:
        conn.close()


def wait_until_done(
    outputs: dict[str, str], plan: DemoPlan, database_url: str, dead_before: int
) -> bool:
    sqs = deploy.client("sqs")
    started = time.monotonic()
    last_line = ""
    while time.monotonic() - started < WAIT_TIMEOUT_S:
        waiting, in_flight = queue_counts(sqs, outputs["QueueUrl"])
        dead = queue_counts(sqs, outputs["DeadLetterQueueUrl"])[0] - dead_before
        written = rows_written(database_url, plan.user_ids)
        line = (
            f"  {time.monotonic() - started:5.1f} s  queue: {waiting:3d} waiting, "
            f"{in_flight:3d} in flight | rows written {written:3d}/{plan.expected_rows} | "
            f"DLQ {dead}/{plan.expected_rejects}"
        )
        if line[11:] != last_line[11:]:
            print(line, flush=True)
            last_line = line
        if waiting == in_flight == 0 and dead >= plan.expected_rejects:
            return True
        time.sleep(1)
    return False


def main() -> int:
    began = time.time()
    endpoints = stack.read_endpoints()
    outputs = deploy.stack_outputs()
    if "DeadLetterQueueUrl" not in outputs:
        print("demo: the stack uses an existing queue (SourceQueueArn); deploy without it")
        return 1
    plan = demo_messages()
    sqs = deploy.client("sqs")
    print(f"demo: sending {len(plan.bodies)} messages to {outputs['QueueUrl'].rsplit('/', 1)[-1]}")
    dead_before = queue_counts(sqs, outputs["DeadLetterQueueUrl"])[0]  # from earlier runs
    deploy.set_polling(outputs["FunctionName"], enabled=False)
    try:
        message_ids = send(sqs, outputs["QueueUrl"], plan.bodies)
        redelivered = commit_without_delete(outputs, LOST_DELETES)
    finally:
        deploy.set_polling(outputs["FunctionName"], enabled=True)
    print(
        f"demo: {LOST_DELETES} messages were processed and committed, but not deleted "
        "(as after a timeout): they are visible again"
    )
    print("demo: waiting for the event source mapping to drain the queue ...")
    done = wait_until_done(outputs, plan, endpoints.database_url, dead_before)
    logs = read_function_logs(outputs["FunctionName"], since_ms=int(began * 1000))
    outcome = Outcome(
        plan=plan,
        message_ids=message_ids,
        written=rows_written(endpoints.database_url, plan.user_ids),
        dead_lettered=queue_counts(sqs, outputs["DeadLetterQueueUrl"])[0] - dead_before,
        expected_duplicates=redelivered,
        duplicates=logs.duplicates,
        deliveries=Counter({m: logs.deliveries[m] for m in message_ids if m in logs.deliveries}),
        seconds=time.time() - began,
    )
    print_summary(outcome, outputs, endpoints.database_url)
    return 0 if done and outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
