"""The one sorting of database errors (``postgres.errors.classify``) and who uses it.

Every write step (the streamed COPY, the one transaction, the bisection, the ledger's
maintenance) settles a driver error through ``Session.step``, which asks ``classify``;
the table below pins what each kind of error means.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pg8000.exceptions import DatabaseError, InterfaceError

from login_etl.postgres.errors import DRIVER_ERRORS, Handling, classify, sqlstate

POSTGRES = Path(__file__).resolve().parents[2] / "handler" / "login_etl" / "postgres"


def server_error(code: str) -> DatabaseError:
    """What pg8000 raises for an ErrorResponse: the fields by their one-letter code."""
    return DatabaseError({"S": "ERROR", "C": code, "M": "message"})


TABLE: dict[str, tuple[Exception, Handling]] = {
    # the connection broke: retry once on a new one
    "08006 connection failure": (server_error("08006"), Handling.RETRY),
    "08003 connection does not exist": (server_error("08003"), Handling.RETRY),
    "08P01 protocol violation": (server_error("08P01"), Handling.RETRY),
    "57P01 admin shutdown (pg_terminate_backend)": (server_error("57P01"), Handling.RETRY),
    "57P02 crash shutdown": (server_error("57P02"), Handling.RETRY),
    "57P03 cannot connect now": (server_error("57P03"), Handling.RETRY),
    "InterfaceError (pg8000: network error)": (InterfaceError("network error"), Handling.RETRY),
    "OSError: reset": (ConnectionResetError(104, "reset"), Handling.RETRY),
    "OSError: socket timeout": (TimeoutError("timed out"), Handling.RETRY),
    "OSError: broken pipe": (BrokenPipeError(32, "broken pipe"), Handling.RETRY),
    # one row's values: isolate the row
    "22001 string data right truncation": (server_error("22001"), Handling.ISOLATE),
    "22P05 untranslatable character": (server_error("22P05"), Handling.ISOLATE),
    "22007 invalid datetime format": (server_error("22007"), Handling.ISOLATE),
    "23505 unique violation (a redelivered id)": (server_error("23505"), Handling.ISOLATE),
    "23514 check violation": (server_error("23514"), Handling.ISOLATE),
    "23502 not null violation": (server_error("23502"), Handling.ISOLATE),
    "P0001 raised by a trigger": (server_error("P0001"), Handling.ISOLATE),
    # anything else: the batch fails
    "57014 statement timeout": (server_error("57014"), Handling.FAIL),
    "55P03 lock timeout": (server_error("55P03"), Handling.FAIL),
    "57P04 database dropped": (server_error("57P04"), Handling.FAIL),
    "40001 serialization failure": (server_error("40001"), Handling.FAIL),
    "40P01 deadlock": (server_error("40P01"), Handling.FAIL),
    "42P01 undefined table": (server_error("42P01"), Handling.FAIL),
    "42501 insufficient privilege": (server_error("42501"), Handling.FAIL),
    "53100 disk full": (server_error("53100"), Handling.FAIL),
    "25P02 in failed transaction": (server_error("25P02"), Handling.FAIL),
    "0A000 cached plan must not change result type": (server_error("0A000"), Handling.FAIL),
    "XX000 internal error": (server_error("XX000"), Handling.FAIL),
    "a DatabaseError without a SQLSTATE": (DatabaseError("no fields"), Handling.FAIL),
    "a DatabaseError without arguments": (DatabaseError(), Handling.FAIL),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_each_kind_of_driver_error_has_one_handling(case: str) -> None:
    error, handling = TABLE[case]
    assert isinstance(error, DRIVER_ERRORS)
    assert classify(error) is handling


def test_the_table_covers_every_handling_and_the_sqlstate_is_read_from_the_fields() -> None:
    assert {handling for _, handling in TABLE.values()} == set(Handling)
    assert sqlstate(server_error("23505")) == "23505"
    assert sqlstate(InterfaceError("network error")) == ""
    assert sqlstate(ConnectionResetError(104, "reset")) == ""


# A decision about a driver error outside errors.py: a SQLSTATE compared or a prefix
# tested, or an except clause on the driver's classes that does not go to classify.
SORTING = re.compile(
    r"sqlstate\([^)]*\)\s*(==|!=|in\b|\.startswith)|except \(?(DatabaseError|InterfaceError)"
)


def test_no_write_step_sorts_driver_errors_itself() -> None:
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(POSTGRES.glob("*.py"))
        if path.name != "errors.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SORTING.search(line)
    ]
    assert offenders == []


def test_every_write_strategy_settles_its_failures_in_a_session_step() -> None:
    for module in ("transaction.py", "streaming.py", "session.py"):
        assert "step(" in (POSTGRES / module).read_text(), module
    assert "classify(" in (POSTGRES / "transaction.py").read_text()  # the bisection's refused row
    assert "classify(" in (POSTGRES / "ledger.py").read_text()  # a TRUNCATE that waited too long
