"""The Postgres adapter: the write path (``PostgresSink``), connecting and the schema step.

Its modules: the code map in docs/architecture.md."""

from .connect import connect
from .errors import DatabaseUnavailable
from .introspect import read_table
from .sink import PostgresSink
from .transaction import SMALL_BATCH_ROWS

__all__ = ["SMALL_BATCH_ROWS", "DatabaseUnavailable", "PostgresSink", "connect", "read_table"]
