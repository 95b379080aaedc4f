"""The local environment: embedded Postgres, LocalStack without Docker, SAM, the local stack."""
