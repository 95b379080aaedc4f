"""All SQL of the project, readable as SQL. Values are always bound parameters.

Identifiers that vary (the columns of ``user_logins`` that exist) come only from the
fixed ``table.ROW_COLUMNS`` list, never from input.
"""

from __future__ import annotations

from ..table import TABLE_NAME, AppVersionKind, TableShape

SCHEMA = "login_etl"
LEDGER = f"{SCHEMA}.processed_messages"
VERSION_VIEW = f"{SCHEMA}.user_logins_decoded"

# The current DDL of user_logins, exactly; the project never alters this table.
CREATE_USER_LOGINS = f"""
CREATE TABLE IF NOT EXISTS {TABLE_NAME}(
    user_id varchar(128), device_type varchar(32), masked_ip varchar(256),
    masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date)
"""

CREATE_SCHEMA = f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"

CREATE_LEDGER = f"""
CREATE TABLE IF NOT EXISTS {LEDGER} (
    message_id   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
)
"""
# For pruning by age only. BRIN, not B-tree: the ledger is appended in processed_at
# order, and a B-tree entry per message would cost every batch write more than the
# range scan of the daily prune saves. Replaces the B-tree index of earlier versions.
DROP_OLD_LEDGER_INDEX = f"DROP INDEX IF EXISTS {SCHEMA}.processed_messages_processed_at"
CREATE_LEDGER_INDEX = f"""
CREATE INDEX IF NOT EXISTS processed_messages_processed_at_brin
    ON {LEDGER} USING brin (processed_at)
"""

# SQS keeps a message at most 14 days, so older ledger entries can never match again.
PRUNE_LEDGER = f"""
DELETE FROM {LEDGER} WHERE processed_at < now() - make_interval(days => :days)
"""

# app_version (integer) = MAJOR*1_000_000 + MINOR*1_000 + PATCH  →  'x.y.z'
DECODE_APP_VERSION_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.decode_app_version(encoded bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (encoded / 1000000) || '.' || (encoded / 1000 % 1000) || '.' || (encoded % 1000)
$$
"""


DROP_VERSION_VIEW = f"DROP VIEW IF EXISTS {VERSION_VIEW}"


def create_version_view(app_version_kind: AppVersionKind) -> str:
    """The analyst view: ``user_logins`` with ``app_version`` as text ``x.y.z``."""
    decoded = (
        f"{SCHEMA}.decode_app_version(app_version)"
        if app_version_kind is AppVersionKind.INTEGER
        else "app_version"
    )
    return f"""
CREATE OR REPLACE VIEW {VERSION_VIEW} AS
SELECT l.*, {decoded}::text AS app_version_text FROM {TABLE_NAME} AS l
"""


TABLE_COLUMNS = """
SELECT column_name, data_type, character_maximum_length
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = :table
"""

LEDGER_EXISTS = "SELECT to_regclass(:name) IS NOT NULL"

SESSION_TIMEOUTS = """
SELECT set_config('statement_timeout', :statement_timeout, false),
       set_config('lock_timeout', :statement_timeout, false),
       set_config('idle_in_transaction_session_timeout', :idle_timeout, false)
"""


# Step 1 of a batch write: claim the message ids in the ledger and return the ones
# that were already there (a redelivery) — usually none, so little comes back. A
# concurrent claim of the same id waits for the other transaction, then counts as
# already there: a message is written at most once.
CLAIM_MESSAGE_IDS = f"""
WITH batch AS (
    SELECT json_array_elements_text(CAST(:message_ids AS json)) AS message_id
), claimed AS (
    INSERT INTO {LEDGER} (message_id)
    SELECT message_id FROM batch
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id
)
SELECT message_id FROM batch EXCEPT ALL SELECT message_id FROM claimed
"""


# The streaming path's claim: every message id of the batch, expecting none to be there
# yet (plain INSERT, cheaper than ON CONFLICT). A redelivered id fails it with 23505 and
# the batch is written the careful way (CLAIM_MESSAGE_IDS) instead.
CLAIM_NEW_MESSAGE_IDS = f"""
INSERT INTO {LEDGER} (message_id)
SELECT json_array_elements_text(CAST(:message_ids AS json))
"""

# Ids claimed by the streaming path whose message produced no row (rejected, or held
# back on a FIFO queue): removed again before the commit.
UNCLAIM_MESSAGE_IDS = f"""
DELETE FROM {LEDGER}
WHERE message_id IN (SELECT json_array_elements_text(CAST(:message_ids AS json)))
"""


def write_small_batch(shape: TableShape) -> str:
    """A whole small batch in ONE statement (one round trip, its own transaction).

    Claims the ids and inserts the rows of the newly claimed ones; returns the ids that
    were already in the ledger. ``:rows`` is a JSON array of ``[message_id, *row]``.
    For large batches COPY is cheaper per row than Postgres parsing JSON, so they use a
    claim (``CLAIM_NEW_MESSAGE_IDS``, or ``CLAIM_MESSAGE_IDS`` on the careful path) and
    ``copy_rows`` in an explicit transaction instead.
    """
    casts = {
        "app_version": "::integer" if shape.app_version_kind is AppVersionKind.INTEGER else "",
        "create_date": "::date",
    }
    selected = ",\n           ".join(
        f"(r->>{i + 1}){casts.get(column, '')} AS {column}"
        for i, column in enumerate(shape.columns)
    )
    columns = ", ".join(shape.columns)
    return f"""
WITH batch AS (
    SELECT r->>0 AS message_id,
           {selected}
    FROM json_array_elements(CAST(:rows AS json)) AS r
), claimed AS (
    INSERT INTO {LEDGER} (message_id)
    SELECT message_id FROM batch
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id
), inserted AS (
    INSERT INTO {TABLE_NAME} ({columns})
    SELECT {columns} FROM batch JOIN claimed USING (message_id)
)
SELECT message_id FROM batch EXCEPT ALL SELECT message_id FROM claimed
"""


def copy_rows(shape: TableShape) -> str:
    """Step 2: COPY the claimed rows (text format, see ``copyformat``)."""
    return f"COPY {TABLE_NAME} ({', '.join(shape.columns)}) FROM STDIN"
