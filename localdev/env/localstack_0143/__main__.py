"""``python -m localdev.env.localstack_0143 start|stop|status|load`` (project venv, Python 3.13)."""

from __future__ import annotations

import argparse
import sys
import time

from localdev.env.localstack_0143 import loader, server, venv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.env.localstack_0143", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start it in the background (builds the venv once)")
    start.add_argument("--port", type=int, default=0, help="edge port (default: a free one)")
    commands.add_parser("stop", help="stop what `start` started")
    commands.add_parser("status", help="endpoint, pid, memory")
    load = commands.add_parser("load", help="(re)create login-queue with the exercise's records")
    load.add_argument("--endpoint", help="default: the server `start` started")
    load.add_argument("--queue", default=loader.QUEUE_NAME)
    args = parser.parse_args(argv)

    if args.command == "start":
        began = time.monotonic()
        try:
            running, started = server.cli_start(args.port)
        except (RuntimeError, venv.Python39NotFoundError) as e:
            print(e, file=sys.stderr)
            return 1
        verb = "started" if started else "already running"
        print(f"LocalStack 0.14.3 {verb} at {running.endpoint} ({time.monotonic() - began:.1f} s)")
        print(f"log: {running.log_file}")
    elif args.command == "stop":
        print("stopped" if server.cli_stop() else "LocalStack 0.14.3 was not started by this tool")
    elif args.command == "status":
        found = server.cli_server()
        if found is None:
            print("LocalStack 0.14.3: not running (`python -m localdev.env.localstack_0143 start`)")
            return 3
        state = "answering" if found.answers_sqs() else "NOT answering"
        print(
            f"LocalStack 0.14.3 at {found.endpoint}: pid {found.pid}, SQS {state}, "
            f"RSS {found.rss_bytes() / 2**20:.0f} MiB; log {found.log_file}"
        )
    else:  # load
        endpoint = args.endpoint
        if endpoint is None:
            target = server.cli_server()
            if target is None:
                print("not running: `start` it or pass --endpoint", file=sys.stderr)
                return 1
            endpoint = target.endpoint
        print(loader.load_queue(endpoint, args.queue))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
