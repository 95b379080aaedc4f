"""login-etl: SQS login events → validate → mask → Postgres (the code map: docs/architecture.md)."""
