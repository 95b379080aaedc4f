"""``login-etl drain``: the Lambda's batch pipeline, fed from an existing SQS queue.

Modules: ``sqs`` (the SQS adapter), ``lease`` (visibility heartbeat), ``runner``
(workers, stop and retry rules), ``progress`` (counters and display), ``cli``.
"""
