"""``login-etl drain`` and ``redrive``: the Lambda's pipeline fed from SQS (docs/drain.md)."""
