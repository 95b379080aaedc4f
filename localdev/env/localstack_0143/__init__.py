"""LocalStack 0.14.3 -- what the exercise's image runs -- on the host, without Docker.

    from localdev.env import localstack_0143 as ls0143

    server = ls0143.start(workdir)            # builds .local/localstack-0.14.3-venv on first use
    url = ls0143.load_queue(server.endpoint)   # login-queue with the exercise's 100 records
    sqs = ls0143.client(server.endpoint)       # the project's botocore, query protocol
    ...
    server.stop()

From a shell: ``python -m localdev.env.localstack_0143 start|stop|status|load``.
"""

from localdev.env.localstack_0143.loader import QUEUE_NAME, client, load_queue, queue_attributes
from localdev.env.localstack_0143.server import Server, start

__all__ = ["QUEUE_NAME", "Server", "client", "load_queue", "queue_attributes", "start"]
