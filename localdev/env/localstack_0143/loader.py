"""Fill a queue on LocalStack 0.14.3 the way the exercise's image does.

The image's init script creates ``login-queue`` and sends one message per record with the
2022 boto3 of the image. The project's boto3 cannot do that (it speaks JSON to SQS, which 0.14.3
answers with HTTP 500 and ``{}``), so the same calls run in the 0.14.3 venv's own Python and
boto3 (``oldboto.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from localdev.env.localstack_0143 import venv
from localdev.traffic import exercise_queue_records

QUEUE_NAME = "login-queue"
SCRIPT = Path(__file__).resolve().parent / "oldboto.py"
SCRIPT_TIMEOUT_S = 180.0

Record = Mapping[str, str | None]


def run_old_boto(request: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``oldboto.py`` with the 0.14.3 venv's Python on one JSON request."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))},
        "no_proxy": "127.0.0.1,localhost",
    }
    result = subprocess.run(
        [str(venv.VENV_PYTHON), str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{SCRIPT.name} {request.get('op')} failed ({result.returncode}):\n{result.stderr}"
        )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def load_queue(
    endpoint: str,
    name: str = QUEUE_NAME,
    records: Sequence[Record] | None = None,
    *,
    recreate: bool = True,
) -> str:
    """(Re)create queue ``name`` and send ``records`` (default: the exercise's 100). Its URL."""
    request = {
        "op": "load",
        "endpoint": endpoint,
        "queue": name,
        "records": list(exercise_queue_records() if records is None else records),
        "recreate": recreate,
    }
    queue_url: str = run_old_boto(request)["queue_url"]
    return queue_url


def queue_attributes(endpoint: str, queue_url: str) -> dict[str, str]:
    """GetQueueAttributes(All) through the old boto3."""
    answer = run_old_boto({"op": "attributes", "endpoint": endpoint, "queue_url": queue_url})
    attributes: dict[str, str] = answer["attributes"]
    return attributes
