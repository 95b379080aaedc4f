"""SQS from moto, in-process, and a real Postgres database for the drain."""

from tests.support.drain import aws_env, db, drain_db_url, moto_sqs

__all__ = ["aws_env", "db", "drain_db_url", "moto_sqs"]
