"""LocalStack Lambda runtime executor that runs Python functions as host processes (no Docker)."""
