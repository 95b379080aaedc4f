"""SQS from moto, in-process; fake credentials, never real AWS."""

from tests.support.drain import aws_env, moto_sqs

__all__ = ["aws_env", "moto_sqs"]
