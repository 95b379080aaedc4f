"""``login-etl drain`` and ``login-etl redrive`` (docs/drain.md): arguments, checks, exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import FrameType

from login_etl.config import masking_key
from login_etl.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    LoginEtlError,
    SchemaError,
    SettingsError,
    SqsError,
)
from login_etl.identity import IdentitySigner
from login_etl.postgres.schema import init_database
from login_etl.runtime import PipelineRuntime
from login_etl.secrets import SecretSource

from .progress import ProgressDisplay, Stats, summary_line
from .redrive import redrive
from .runner import MAX_BATCH_SIZE, Drainer, DrainOptions, StopSwitch
from .sqs import SqsQueue

PROG = "login-etl"
EXIT_OK = 0
EXIT_FAILED = 1  # an unexpected error during the run (nothing of that batch was deleted)
EXIT_USAGE = 2
EXIT_CONFIG = 3  # no masking key, no database configured, unusable URL
EXIT_SQS = 4  # queue missing, endpoint unreachable, credentials refused
EXIT_DATABASE = 5  # database unreachable, table or ledger missing

# The one table from login_etl.errors to exit codes; any other exception is EXIT_FAILED.
_EXIT_CODES: tuple[tuple[type[LoginEtlError], int], ...] = (
    (ConfigurationError, EXIT_CONFIG),
    (SettingsError, EXIT_CONFIG),
    (SqsError, EXIT_SQS),
    (SchemaError, EXIT_DATABASE),
    (DatabaseUnavailable, EXIT_DATABASE),
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    return drain(args) if args.command == "drain" else redrive_command(args)


def redrive_command(args: argparse.Namespace) -> int:
    """Move the DLQ's messages back to the source queue (after the cause was fixed)."""
    signer = None
    if args.method != "move-task":
        # The copies' identities are signed with a key derived from the masking key.
        try:
            signer = IdentitySigner(masking_key(dict(os.environ), SecretSource()))
        except ConfigurationError as error:
            hint = "redrive signs each copy's identity with it; --method move-task needs none"
            return _fail("redrive", error, hint=f"{hint} but gives new ids")
    try:
        dlq = SqsQueue.open(args.dlq_url, endpoint_url=args.endpoint_url, region=args.region)
        destination_url = args.to_queue_url
        if not destination_url:  # the DLQ's only source queue
            sources = dlq.source_queues()
            if len(sources) != 1:
                raise SqsError(
                    f"the dead-letter queue has {len(sources)} source queues; pass --to-queue-url"
                )
            destination_url = sources[0]
        destination = SqsQueue.open(
            destination_url, endpoint_url=args.endpoint_url, region=args.region
        )
        _note_protocol("redrive", dlq)
        result = redrive(
            dlq,
            destination,
            method=args.method,
            signer=signer,
            progress=lambda moved: _say("redrive", f"{moved} moved"),
        )
    except SqsError as error:
        return _fail("redrive", error)
    print(
        f"{PROG} redrive: {result.moved} moved to {destination_url} ({result.method}); "
        f"dead-letter queue: {result.before} before, {result.after} left",
        flush=True,
    )
    if result.method == "move-task":
        _say(
            "redrive",
            "note: SQS's move task gives each message a new id and send time (create_date = "
            "today; a message written before it was dead-lettered is written again); "
            "--method copy keeps them",
        )
    if result.without_identity:
        _say(
            "redrive",
            f"warning: {result.without_identity} copies carry no identity (10 message "
            "attributes already, or no SentTimestamp): they count as new messages",
        )
    return EXIT_OK


def _say(command: str, text: str) -> None:
    """One line on stderr: ``login-etl <command>: <text>``."""
    print(f"{PROG} {command}: {text}", file=sys.stderr, flush=True)


def _note_protocol(command: str, queue: SqsQueue) -> None:
    """Say once per run that the endpoint gets the query protocol, and why."""
    if queue.protocol == "query":
        _say(
            command,
            "note: the SQS endpoint does not speak SQS's JSON protocol (LocalStack before 3.0); "
            "using the query protocol",
        )


def drain(args: argparse.Namespace) -> int:
    _configure_logging(args.verbose)
    # --follow waits like the Lambda poller (20 s); a one-off drain wants to end soon.
    wait_seconds = args.wait_seconds if args.wait_seconds is not None else 20 if args.follow else 2
    options = DrainOptions(
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        follow=args.follow,
        wait_seconds=wait_seconds,
        idle_polls=args.idle_polls,
        visibility_timeout=args.visibility_timeout,
    )
    try:
        runtime, queue = _checked_start(args, options.wait_seconds)
    except LoginEtlError as error:
        return _fail("drain", error)
    _note_protocol("drain", queue)

    stats, switch = Stats(), StopSwitch()
    display = ProgressDisplay(stats, sys.stderr, interval_s=args.progress_interval)
    drainer = Drainer(
        queue,
        # Worker 0 reuses the connection the schema check opened; the others each open
        # their own (a pg8000 connection is not shared between threads).
        lambda index: runtime if index == 0 else runtime.for_worker(),
        options,
        stats=stats,
        switch=switch,
        rejections=logging.getLogger("login_etl_drain.rejections"),
    )
    with _stop_on_signals(switch) as received:
        drainer.run(display.tick, interrupted=lambda: bool(received))
    display.clear()
    remaining: tuple[int, int] | None = None
    with suppress(SqsError):
        remaining = queue.counts()
    print(summary_line(stats.snapshot(), stats.elapsed(), remaining), flush=True)
    if switch.error is not None:
        return _fail("drain", switch.error)
    return 128 + received[0] if received else EXIT_OK  # 130 after Ctrl-C, as shells expect


def _checked_start(args: argparse.Namespace, wait_seconds: int) -> tuple[PipelineRuntime, SqsQueue]:
    """Settings, table shape and queue now: a mistake fails before any receive."""
    env = dict(os.environ)  # the handler's variables; --database-url wins over DB_SECRET_ARN
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        env.pop("DB_SECRET_ARN", None)
    # A failed secret refresh keeps the last good settings and says so on stderr.
    runtime = PipelineRuntime(env, log=logging.getLogger("login_etl_drain.settings"))
    settings = runtime.settings()
    if args.init_db:
        init_database(settings.database)
    try:
        runtime.table_shape()
        queue = SqsQueue.open(
            args.queue_url,
            endpoint_url=args.endpoint_url,
            region=args.region,
            wait_seconds=wait_seconds,
        )
    except BaseException:
        runtime.close()
        raise
    return runtime, queue


@contextmanager
def _stop_on_signals(switch: StopSwitch) -> Iterator[list[int]]:
    """SIGINT/SIGTERM: stop taking batches, finish the ones in flight, then exit."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received:
            _say("drain", "still finishing the batch in flight")
            return
        received.append(signum)
        print(f"\n{PROG} drain: stopping after the batch in flight", file=sys.stderr)
        switch.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fail(command: str, error: BaseException, *, hint: str = "") -> int:
    """One line on stderr and the exit code of ``_EXIT_CODES`` (EXIT_FAILED otherwise)."""
    code = next((c for kind, c in _EXIT_CODES if isinstance(error, kind)), EXIT_FAILED)
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, LoginEtlError):
        text = f"{type(error).__name__}: {text}"  # an unexpected error: say what it was
    _say(command, f"error: {text}{f' ({hint})' if hint else ''}")
    return code


def _configure_logging(verbose: bool) -> None:
    # Rejections: one line per rejected record: message id, reason code and field, never the value.
    rejected = "rejected %(message_id)s reason=%(reason)s field=%(field)s"
    for name, text, level in (
        ("login_etl_drain", "%(levelname)s %(message)s", logging.INFO),
        ("login_etl_drain.rejections", rejected, logging.WARNING if verbose else logging.ERROR),
    ):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG} drain: {text}"))
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="login-etl tools")
    commands = parser.add_subparsers(dest="command")
    d = commands.add_parser(
        "drain",
        help="run the pipeline against an existing SQS queue",
        description=(
            "Receive from an SQS queue like the Lambda event source mapping, run the same "
            "pipeline, delete what was written. Database and masking key come from the same "
            "variables as the handler (DATABASE_URL or DB_SECRET_ARN; PII_HASH_KEY, "
            "PII_HASH_KEY_SECRET_ARN or PII_HASH_KEY_PARAMETER)."
        ),
    )
    d.add_argument("--queue-url", required=True)
    d.add_argument("--endpoint-url", help="e.g. http://localhost:4566 for LocalStack")
    d.add_argument("--region", help="default: AWS_REGION, the queue URL, us-east-1 on localhost")
    d.add_argument("--database-url", help="postgresql://user:password@host:port/db (or env)")

    # An integer option checked against its range; with a default, the help ends with it.
    def int_option(flag: str, low: int, high: int, text: str, default: int | None = None) -> None:
        def parse(value: str) -> int:
            number = int(value)
            if not low <= number <= high:
                raise argparse.ArgumentTypeError(f"must be {low}-{high}")
            return number

        if default is not None:
            text += f" (default {default})"
        d.add_argument(flag, type=parse, default=default, help=text)

    int_option(
        "--batch-size", 1, MAX_BATCH_SIZE, f"records per pipeline batch, 1-{MAX_BATCH_SIZE}", 10
    )
    int_option("--concurrency", 1, 64, "parallel workers, each with its own connection", 1)
    d.add_argument("--follow", action="store_true", help="keep polling; stop with Ctrl-C")
    int_option("--wait-seconds", 0, 20, "long-poll wait per receive (default 2, 20 with --follow)")
    int_option(
        "--idle-polls", 1, 1000, "without --follow: stop after this many empty polls in a row", 2
    )
    int_option(
        "--visibility-timeout",
        1,
        43_200,
        "seconds a received batch stays hidden (default: the queue's); renewed while a batch "
        "is in flight",
    )
    d.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        help="seconds between progress lines when stderr is not a terminal (default 10)",
    )
    d.add_argument(
        "--init-db",
        action="store_true",
        help="create the ledger and view (and user_logins if absent) first; never alters "
        "an existing user_logins",
    )
    d.add_argument("--verbose", "-v", action="store_true", help="one line per rejected record")
    r = commands.add_parser(
        "redrive",
        help="move dead-lettered messages back to their source queue",
        description=(
            "After fixing the cause of rejections: move the DLQ's messages back. By default "
            "receive/send/delete (a message is deleted from the DLQ only after the "
            "destination accepted its copy); each copy carries its original message id and "
            "send time, signed with a key derived from the masking key (PII_HASH_KEY, "
            "PII_HASH_KEY_SECRET_ARN or PII_HASH_KEY_PARAMETER, as for drain), so a message "
            "already written is not written again and create_date stays its send day. "
            "--method move-task uses SQS's message-move task (new ids, no identity)."
        ),
    )
    r.add_argument("--dlq-url", required=True)
    r.add_argument("--to-queue-url", help="default: the DLQ's only source queue")
    r.add_argument("--endpoint-url", help="e.g. http://localhost:4566 for LocalStack")
    r.add_argument("--region")
    r.add_argument(
        "--method",
        choices=["copy", "move-task", "auto"],
        default="copy",
        help="copy (default): keeps identities; move-task: SQS's move task, new ids; "
        "auto: the move task where the endpoint has one, else copy",
    )
    return parser
