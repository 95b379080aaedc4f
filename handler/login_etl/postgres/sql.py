"""All SQL of the project, readable as SQL. Values are always bound parameters.

Identifiers that vary (the columns of ``user_logins`` that exist) come only from the
fixed ``table.ROW_COLUMNS`` list, never from input; the table's own name is the one the
session resolved (``qualified``: its schema and name, each quoted), so the statements
write to the table whose shape was read, whatever ``search_path`` says.
"""

from __future__ import annotations

from ..table import TABLE_NAME, AppVersionKind, TableShape

SCHEMA = "login_etl"
VERSION_VIEW = f"{SCHEMA}.user_logins_decoded"


def qualified(schema: str, name: str) -> str:
    """``schema.name`` as SQL: each part always double-quoted, inner quotes doubled."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


# The current DDL of user_logins, exactly; the project never alters this table. The
# schema step creates it only when the unqualified name resolves to nothing.
CREATE_USER_LOGINS = f"""
CREATE TABLE IF NOT EXISTS {TABLE_NAME}(
    user_id varchar(128), device_type varchar(32), masked_ip varchar(256),
    masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date)
"""

CREATE_SCHEMA = f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"

# The ledger: a ring of LEDGER_SLOTS daily tables (docs/operations.md, The ledger).
LEDGER_SLOTS = 17
LEDGER = f"{SCHEMA}.ledger"  # a view over every slot (and the legacy table), for reading
LEDGER_SLOT_DAYS = f"{SCHEMA}.ledger_slots"
# The single-table ledger of versions before the ring (docs/operations.md, The schema
# step). Old versions of the function still running during an update keep writing it,
# so it is not renamed.
LEGACY_LEDGER = f"{SCHEMA}.processed_messages"
# The ids of messages without a usable SentTimestamp (docs/operations.md, The ledger).
UNDATED_LEDGER = f"{SCHEMA}.ledger_undated"
UNDATED_SLOT = -1  # the "slot" of the undated table in the functions below
UNDATED_EXPIRY_ROWS = 10_000  # per DELETE: at least one SQS batch's worth of claims


def slot_table(slot: int) -> str:
    """The table of ledger slot ``slot`` (0 .. LEDGER_SLOTS - 1, or UNDATED_SLOT)."""
    if slot == UNDATED_SLOT:
        return UNDATED_LEDGER
    return f"{SCHEMA}.ledger_{slot:02d}"


CREATE_LEDGER_SLOT_DAYS = f"""
CREATE TABLE IF NOT EXISTS {LEDGER_SLOT_DAYS} (
    slot      smallint PRIMARY KEY,
    day       date,  -- the SentTimestamp day whose ids the slot holds; NULL: empty
    opened_on date   -- the day the slot was first used for it: kept for the window from then
)
"""
FILL_LEDGER_SLOT_DAYS = f"""
INSERT INTO {LEDGER_SLOT_DAYS} (slot) SELECT generate_series(0, :last)
ON CONFLICT (slot) DO NOTHING
"""


def create_slot_table(slot: int) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {slot_table(slot)} (
    message_id   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()  -- the writing transaction's start
)
"""


CREATE_UNDATED_LEDGER = f"""
CREATE TABLE IF NOT EXISTS {UNDATED_LEDGER} (
    message_id   text PRIMARY KEY,
    claimed_on   date NOT NULL,  -- the day it was claimed (UTC): kept for the window from then
    processed_at timestamptz NOT NULL DEFAULT now()
)
"""
CREATE_UNDATED_LEDGER_INDEX = f"""
CREATE INDEX IF NOT EXISTS ledger_undated_claimed_on ON {UNDATED_LEDGER} (claimed_on)
"""
# One bounded chunk, autocommitted; rows another session is deleting are skipped.
EXPIRE_UNDATED = f"""
DELETE FROM {UNDATED_LEDGER} WHERE message_id IN (
    SELECT message_id FROM {UNDATED_LEDGER} WHERE claimed_on < CAST(:cutoff AS date)
    LIMIT :limit FOR UPDATE SKIP LOCKED)
"""


def create_ledger_view(legacy: bool) -> str:
    """``login_etl.ledger``: every id the ledger holds, the day of its slot (NULL: the
    undated or the legacy table) and when it was written."""
    parts = [
        f"SELECT m.message_id, d.day, m.processed_at FROM {slot_table(slot)} AS m"
        f" JOIN {LEDGER_SLOT_DAYS} AS d ON d.slot = {slot}"
        for slot in range(LEDGER_SLOTS)
    ]
    parts.append(f"SELECT message_id, NULL::date, processed_at FROM {UNDATED_LEDGER}")
    if legacy:
        parts.append(f"SELECT message_id, NULL::date, processed_at FROM {LEGACY_LEDGER}")
    union = "\nUNION ALL ".join(parts)
    return f"CREATE VIEW {LEDGER} (message_id, day, processed_at) AS\n{union}"


DROP_LEDGER_VIEW = f"DROP VIEW IF EXISTS {LEDGER}"

# Only the legacy table is pruned by age, and only until it is empty. BRIN, not B-tree:
# it was appended in processed_at order (the index of the version before the ring).
DROP_OLD_LEDGER_INDEX = f"DROP INDEX IF EXISTS {SCHEMA}.processed_messages_processed_at"
CREATE_LEGACY_LEDGER_INDEX = f"""
CREATE INDEX IF NOT EXISTS processed_messages_processed_at_brin
    ON {LEGACY_LEDGER} USING brin (processed_at)
"""
LEGACY_LEDGER_HAS_IDS = f"SELECT EXISTS (SELECT 1 FROM {LEGACY_LEDGER})"
LEGACY_LEDGER_HAS_IDS_SINCE = f"""
SELECT EXISTS (SELECT 1 FROM {LEGACY_LEDGER} WHERE processed_at >= CAST(:since AS date))
"""
TRUNCATE_LEGACY_LEDGER = f"TRUNCATE {LEGACY_LEDGER}"

# Maintenance of the ring (ledger.py), each in its own short transaction.
SLOT_DAY = f"SELECT day FROM {LEDGER_SLOT_DAYS} WHERE slot = :slot"
LOCK_SLOT_DAY = f"SELECT day FROM {LEDGER_SLOT_DAYS} WHERE slot = :slot FOR UPDATE"
OPEN_SLOT = f"""
UPDATE {LEDGER_SLOT_DAYS} SET day = CAST(:day AS date), opened_on = CAST(:today AS date)
WHERE slot = :slot
"""
# Other sessions' maintenance skips the rows this one has locked (it is doing it).
EXPIRED_SLOTS = f"""
SELECT slot FROM {LEDGER_SLOT_DAYS} WHERE opened_on < CAST(:cutoff AS date)
ORDER BY slot FOR UPDATE SKIP LOCKED
"""
EMPTY_SLOT = f"UPDATE {LEDGER_SLOT_DAYS} SET day = NULL, opened_on = NULL WHERE slot = :slot"
# A TRUNCATE waits for every other lock on its table (an analyst's long query on the
# ledger view): at most this long, then it is left for the next maintenance.
SHORT_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', '1000', true)"


def truncate_slot(slot: int) -> str:
    return f"TRUNCATE {slot_table(slot)}"


# app_version (integer) = MAJOR*1_000_000 + MINOR*1_000 + PATCH  →  'x.y.z'
DECODE_APP_VERSION_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.decode_app_version(encoded bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (encoded / 1000000) || '.' || (encoded / 1000 % 1000) || '.' || (encoded % 1000)
$$
"""


DROP_VERSION_VIEW = f"DROP VIEW IF EXISTS {VERSION_VIEW}"


def create_version_view(app_version_kind: AppVersionKind, table: str) -> str:
    """The analyst view: ``table`` (``user_logins``, qualified) with ``app_version`` as
    text ``x.y.z``."""
    decoded = (
        f"{SCHEMA}.decode_app_version(app_version)"
        if app_version_kind is AppVersionKind.INTEGER
        else "app_version"
    )
    return f"""
CREATE OR REPLACE VIEW {VERSION_VIEW} AS
SELECT l.*, {decoded}::text AS app_version_text FROM {table} AS l
"""


# The table the unqualified name means on this connection (its search_path, as an
# INSERT would resolve it), or no row.
RESOLVE_TABLE = """
SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(:name)
"""
TABLE_COLUMNS = """
SELECT column_name, data_type, character_maximum_length
FROM information_schema.columns
WHERE table_schema = :schema AND table_name = :table
"""
# COPY data and every parameter are sent as UTF-8; the server converts them to the
# database's encoding (a character it cannot hold: 22P05, one row's error).
CLIENT_ENCODING_UTF8 = "SELECT set_config('client_encoding', 'UTF8', false)"

LEDGER_EXISTS = "SELECT to_regclass(:name) IS NOT NULL"

SESSION_TIMEOUTS = """
SELECT set_config('statement_timeout', :statement_timeout, false),
       set_config('lock_timeout', :statement_timeout, false),
       set_config('idle_in_transaction_session_timeout', :idle_timeout, false)
"""


def _claimed_columns(slot: int) -> tuple[str, str]:
    """The columns a claim fills and their values: the undated table also keeps the
    day of the claim (``:claimed_on``)."""
    if slot == UNDATED_SLOT:
        return "message_id, claimed_on", "message_id, CAST(:claimed_on AS date)"
    return "message_id", "message_id"


def _claiming(ids: str, slot: int, legacy: bool, table: str = "", columns: str = "") -> str:
    """Claim the ids of ``batch`` (``ids``: its SELECT) in slot ``slot``'s table; return the
    ones already claimed (a redelivery, or a concurrent claim once its transaction ends).
    With ``table``, also insert the ``columns`` of the newly claimed rows into it."""
    ledger, unseen = slot_table(slot), ""
    ledger_columns, ledger_values = _claimed_columns(slot)
    if legacy:  # every claim also looks there: an id found in it counts as already claimed
        unseen = (
            f"WHERE NOT EXISTS (SELECT 1 FROM {LEGACY_LEDGER} AS l"
            " WHERE l.message_id = batch.message_id)"
        )
    statement = f"""
WITH batch AS (
    {ids}
), claimed AS (
    INSERT INTO {ledger} ({ledger_columns})
    SELECT {ledger_values} FROM batch {unseen}
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id"""
    if table:
        statement += f"""
), inserted AS (
    INSERT INTO {table} ({columns})
    SELECT {columns} FROM batch JOIN claimed USING (message_id)"""
    return (
        statement + "\n)\nSELECT message_id FROM batch EXCEPT ALL SELECT message_id FROM claimed\n"
    )


def claim_message_ids(slot: int, legacy: bool) -> str:
    """Step 1 of a batch write: claim the ids in slot ``slot``'s table (``_claiming``)."""
    ids = "SELECT json_array_elements_text(CAST(:message_ids AS json)) AS message_id"
    return _claiming(ids, slot, legacy)


def claim_new_message_ids(slot: int, legacy: bool) -> str:
    """The streaming path's claim: a plain INSERT (cheaper than ON CONFLICT) that a
    redelivered id fails with 23505. An id the legacy table holds is selected twice, so
    it fails the same way."""
    table = slot_table(slot)
    columns, values = _claimed_columns(slot)
    ids = "SELECT json_array_elements_text(CAST(:message_ids AS json)) AS message_id"
    if not legacy and slot != UNDATED_SLOT:
        return f"INSERT INTO {table} (message_id) {ids}"
    if legacy:
        ids = f"""{ids}
    UNION ALL SELECT l.message_id FROM {LEGACY_LEDGER} AS l
    WHERE l.message_id IN (SELECT json_array_elements_text(CAST(:message_ids AS json)))"""
    return f"""
INSERT INTO {table} ({columns})
SELECT {values} FROM ({ids}) AS batch
"""


def unclaim_message_ids(slot: int) -> str:
    """Ids claimed by the streaming path whose message produced no row (rejected, or
    held back on a FIFO queue): removed again before the commit."""
    return f"""
DELETE FROM {slot_table(slot)}
WHERE message_id IN (SELECT json_array_elements_text(CAST(:message_ids AS json)))
"""


def write_small_batch(shape: TableShape, table: str, slot: int, legacy: bool) -> str:
    """A whole small batch of one SentTimestamp day in ONE statement (one round trip, its
    own transaction): claim the ids, insert the newly claimed rows into ``table``, return
    the ids already claimed. ``:rows``: a JSON array of ``[message_id, *row]``. (Above
    ``SMALL_BATCH_ROWS``, COPY is cheaper per row than Postgres parsing JSON.)"""
    casts = {
        "app_version": "::integer" if shape.app_version_kind is AppVersionKind.INTEGER else "",
        "create_date": "::date",
    }
    selected = ",\n           ".join(
        f"(r->>{i + 1}){casts.get(column, '')} AS {column}"
        for i, column in enumerate(shape.columns)
    )
    ids = f"""SELECT r->>0 AS message_id,
           {selected}
    FROM json_array_elements(CAST(:rows AS json)) AS r"""
    return _claiming(ids, slot, legacy, table, ", ".join(shape.columns))


def copy_rows(shape: TableShape, table: str) -> str:
    """Step 2: COPY the claimed rows into ``table`` (``user_logins``, qualified; text
    format, see ``copyformat``)."""
    return f"COPY {table} ({', '.join(shape.columns)}) FROM STDIN"
