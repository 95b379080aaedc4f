"""``python -m localdev.env.localstack start|stop|status|env`` (any Python >= 3.11, stdlib only)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from localdev.env.localstack import server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.env.localstack", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "env"])
    command = parser.parse_args(argv).command

    if command == "start":
        began = time.monotonic()
        try:
            started = server.start()
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        verb = "started" if started else "already running"
        print(f"LocalStack {verb} at {server.ENDPOINT} ({time.monotonic() - began:.1f} s)")
    elif command == "stop":
        print("LocalStack stopped" if server.stop() else "LocalStack was not started by this tool")
    elif command == "status":
        print(server.status())
        return 0 if server.is_running() else 3
    else:  # env: eval "$(python -m localdev.env.localstack env)"
        for key, value in server.client_env().items():
            print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
