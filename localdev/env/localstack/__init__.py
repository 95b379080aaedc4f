"""Docker-free LocalStack for local development and end-to-end tests.

Usage from a test fixture::

    from localdev.env import localstack

    started = localstack.start()        # installs on first use, ~1-2 s when already installed
    boto3.client("sqs", endpoint_url=localstack.ENDPOINT, ...)
    if started:
        localstack.stop()

From a shell: ``python -m localdev.env.localstack start|stop|status|env``.
"""

from localdev.env.localstack.server import ENDPOINT, client_env, is_running, start, status, stop

__all__ = ["ENDPOINT", "client_env", "is_running", "start", "status", "stop"]
