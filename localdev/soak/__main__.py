"""``make soak``: N login messages through the deployed stack on LocalStack, faults injected.

    python -m localdev.soak                      # 20,000 messages, ~1% invalid, faults on
    python -m localdev.soak --messages 2000 --seed 3 --no-faults

What it does, and why valid messages cannot reach the DLQ: ``localdev.soak.run``.
"""

from __future__ import annotations

import argparse
import sys

from localdev.env import deploy, sam
from localdev.soak.faults import FaultSettings
from localdev.soak.run import SoakConfig, run_soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.soak", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--invalid-ratio", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=None, help="messages/s (default: max)")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for drain")
    args = parser.parse_args(argv)
    config = SoakConfig(
        messages=args.messages,
        seed=args.seed,
        invalid_ratio=args.invalid_ratio,
        faults=None if args.no_faults else FaultSettings(),
        rate=args.rate,
        drain_timeout_s=args.timeout,
    )
    try:
        report = run_soak(config, progress=lambda line: print(line, flush=True))
    except (deploy.DeployError, sam.SamError, RuntimeError) as error:
        print(f"soak: {error}", file=sys.stderr)
        return 1
    print("\n".join(["", *report.lines()]))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
