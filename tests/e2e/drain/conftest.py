"""The drain against our LocalStack and a real Postgres database."""

from tests.support.drain import aws_env, db, drain_db_url

__all__ = ["aws_env", "db", "drain_db_url"]
