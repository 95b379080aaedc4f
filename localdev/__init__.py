"""Development tooling (not shipped), grouped by purpose.

- ``traffic``: generated login traffic; ``lambda_event``: the fake Lambda context and the SQS
  event builder everyone uses;
- ``env``: the local environment (Postgres, LocalStack, SAM, the deployed local stack);
- ``lambda_local``: the handler on an event file, the sample events, ``sam local invoke``;
- ``demo``, ``soak``, ``bench``: ``make demo``, ``make soak``, ``make bench``.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""The repository's root (``.local/`` below it holds the local state)."""
