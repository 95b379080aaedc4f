"""Fresh-interpreter measurements for ``localdev.bench`` (cold start, peak RSS).

Run only by the benchmark, as ``python -m localdev.bench.child cold|rss`` with
``DATABASE_URL``/``PII_HASH_KEY`` set and ``handler/`` on ``PYTHONPATH``. Prints one
JSON line with its figures on stdout; the handler's own output (EMF metric lines)
goes to /dev/null.

Kept deliberately light at module level (``sys``/``time`` only) so that the timed
``import app`` in ``cold`` pays for everything the handler itself imports.
"""

from __future__ import annotations

import sys
import time


def _context() -> object:
    """Made after the timed import: ``localdev.lambda_event`` itself does not import boto3."""
    from localdev.lambda_event import LocalContext

    return LocalContext(
        "login-etl-bench",
        aws_request_id="00000000-0000-4000-8000-000000000000",
        log_stream_name="bench",
    )


def cold() -> dict[str, float]:
    """Time ``import app`` and the first invocation (connect + introspection + prepare).

    stdin: ``{"first": <event>, "second": <event>}``, two B=10 events with fresh ids.
    """
    t0 = time.perf_counter()
    import app

    t1 = time.perf_counter()
    import contextlib
    import json
    import os

    events = json.loads(sys.stdin.read())
    context = _context()
    figures: dict[str, float] = {"import_s": t1 - t0}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for name in ("first", "second"):
            start = time.perf_counter()
            response = app.lambda_handler(events[name], context)
            figures[f"{name}_s"] = time.perf_counter() - start
            if response["batchItemFailures"]:
                raise RuntimeError(f"cold-start {name} invocation reported failures")
    return figures


def rss(paths: list[str]) -> dict[str, float]:
    """Peak RSS (VmHWM) of a process that imports ``app`` and runs the given events.

    Each event file holds the JSON bytes the Lambda runtime receives for one invocation
    (written by the benchmark, so generating them costs this process nothing). Here,
    as in the runtime, the bytes are read and decoded; during the invocation the
    process holds the raw bytes, the decoded event and the handler's working set.
    """
    import contextlib
    import json
    import os
    import resource

    def peak_rss_kib() -> int:
        # VmHWM: the peak RSS of this process image. ru_maxrss is also reported, but
        # Linux carries the *spawning* process' RSS into it across exec (the benchmark
        # parent holds ~100 MiB of prepared data), so it overstates a fresh process.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    figures: dict[str, float] = {"start_kib": peak_rss_kib()}
    import app

    figures["after_import_kib"] = peak_rss_kib()
    context = _context()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for k, path in enumerate(paths, start=1):
            with open(path, "rb") as file:
                payload = file.read()
            event = json.loads(payload)
            figures[f"event_{k}_records"] = len(event["Records"])
            figures[f"event_{k}_bytes"] = len(payload)
            response = app.lambda_handler(event, context)
            if response["batchItemFailures"]:
                raise RuntimeError("RSS run: the handler reported failures")
            del payload, event, response
            figures[f"after_event_{k}_kib"] = peak_rss_kib()
    with open("/proc/self/statm") as statm:
        figures["current_kib"] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
    figures["peak_kib"] = peak_rss_kib()
    figures["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return figures


def main(argv: list[str]) -> int:
    import json

    if argv[:1] == ["cold"]:
        result = cold()
    elif argv[:1] == ["rss"]:
        result = rss(argv[1:])
    else:
        print("usage: python -m localdev.bench.child cold | rss EVENT_FILE...", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
