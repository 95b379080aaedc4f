"""The Postgres adapter: the write path (``PostgresSink``), connecting and the schema step.

Read in this order: ``sink`` (the order of fallbacks), ``transaction``, ``streaming``,
``isolate``; ``ledger`` (the exactly-once ledger: a table per day, its maintenance);
then ``session``/``connect``/``introspect`` (a connection and what it knows),
``errors`` (SQLSTATE classes), ``sql`` (every statement) and ``schema``.
"""

from .connect import connect
from .errors import DatabaseUnavailable
from .introspect import read_table_shape
from .sink import PostgresSink
from .transaction import SMALL_BATCH_ROWS

__all__ = ["SMALL_BATCH_ROWS", "DatabaseUnavailable", "PostgresSink", "connect", "read_table_shape"]
