"""``--profile B``: cProfile of warm handler@B calls, Python time vs waiting on Postgres."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from typing import Any

from localdev.bench.contenders import check_response
from localdev.bench.database import connect, reset
from localdev.lambda_event import LocalContext

# -- profile -------------------------------------------------------------------------

# Builtins in which the client blocks on Postgres (reads) or the kernel (writes).
_WAITS = ("recv_into", "recv", "sendall", "send")


def profile_handler(
    app: Any, url: str, records: Sequence[dict[str, object]], batch: int, top: int = 30
) -> int:
    """cProfile of warm handler@B calls over ~20k records: Python time vs waiting."""
    import cProfile
    import pstats

    invocations = max(1, min(20_000 // batch, len(records) // batch - 1))
    events = [{"Records": list(records[i * batch : (i + 1) * batch])} for i in range(invocations)]
    warm_up = {"Records": list(records[len(records) - batch :])}
    profiler = cProfile.Profile()
    conn = connect(url)
    try:
        reset(conn)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            check_response(app.lambda_handler(warm_up, LocalContext()), batch)
            wall, cpu = time.perf_counter(), time.process_time()
            profiler.enable()
            for event in events:
                check_response(app.lambda_handler(event, LocalContext()), batch)
            profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        reset(conn)
    finally:
        conn.close()
        app._runtime.close()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    waiting = sum(
        entry[2]
        for (_, _, name), entry in raw.items()
        if any(f"'{wait}' of '_socket.socket'" in name for wait in _WAITS)
    )
    records_done = invocations * batch
    print(
        f"\nprofile of handler@{batch:,}: {invocations} warm calls, {records_done:,} records, "
        f"{wall:.3f}s wall ({records_done / wall:,.0f} records/s under the profiler), "
        f"{cpu:.3f}s CPU of this process"
    )
    print(
        f"  profiled time {total:.3f}s = socket waits {waiting:.3f}s "
        f"({waiting / total:.0%}: Postgres executing + round trips)"
        f" + Python {total - waiting:.3f}s ({(total - waiting) / total:.0%})"
    )
    print(
        f"  wall {wall:.3f}s = CPU of this process {cpu:.3f}s ({cpu / wall:.0%}) + off-CPU "
        f"{wall - cpu:.3f}s (waiting on Postgres, or preempted by other load on the machine;"
        " profiled Python time includes preemption)"
    )
    print(f"\ntop {top} functions by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print(f"top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)
    return 0
