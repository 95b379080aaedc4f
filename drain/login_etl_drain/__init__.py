"""``login-etl drain``: the Lambda's batch pipeline, fed from an existing SQS queue.

Modules: ``sqs`` (the SQS adapter; ``data/`` holds its query-protocol model), ``lease``
(visibility heartbeat), ``runner`` (workers, stop and retry rules), ``redrive``,
``progress`` (counters and display), ``cli``.
"""
