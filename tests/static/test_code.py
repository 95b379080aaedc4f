"""Static security checks: parameterised SQL, no secrets in the repository."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT_CODE = sorted((REPO / "handler").rglob("*.py")) + sorted((REPO / "drain").rglob("*.py"))
# Receivers that are pg8000 connections or prepared statements.
DB_HANDLE = re.compile(r"(conn|connection|claim|claim_new|unclaim|small_batch|statement)$")
SQL_CALLS = {"run", "prepare", "execute_unnamed", "execute_simple", "execute_named"}
# Transaction control and savepoints carry no values.
PLAIN_STATEMENTS = re.compile(
    r"(BEGIN|COMMIT|ROLLBACK|SAVEPOINT \w+|RELEASE SAVEPOINT \w+|ROLLBACK TO SAVEPOINT \w+)"
)


def _sql_argument_is_safe(node: ast.expr) -> bool:
    """SQL text must be a constant from login_etl.sql, or a value-free literal."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id in ("sql", "self", "session")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return isinstance(node.func.value, ast.Name) and node.func.value.id == "sql"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return PLAIN_STATEMENTS.fullmatch(node.value) is not None
    return False  # f-strings, concatenation, %-formatting, .format(), bare names


def test_every_sql_call_in_product_code_takes_fixed_sql_and_bound_values() -> None:
    offenders = []
    for path in PRODUCT_CODE:
        if path.name == "sql.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and DB_HANDLE.search(ast.unparse(node.func.value))
                # a prepared statement's run() takes only bound values (no positional SQL)
                and node.args
                and (not _sql_argument_is_safe(node.args[0]) or len(node.args) > 1)
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_sql_module_interpolates_only_identifiers_never_values() -> None:
    """f-strings in sql.py may only interpolate names of schema objects and columns."""
    tree = ast.parse((REPO / "handler/login_etl/postgres/sql.py").read_text())
    # names of schema objects, and the column list built from table.ROW_COLUMNS
    allowed = {
        "TABLE_NAME",
        "SCHEMA",
        "LEDGER",
        "LEDGER_SLOT_DAYS",
        "LEGACY_LEDGER",
        "UNDATED_LEDGER",
        "ledger",  # a ledger table's name (slot_table)
        "ledger_columns",
        "values",  # the claim's column values (message_id, the claim's bound day)
        "ledger_values",
        "slot",
        "slot_table",
        "table",
        "unseen",
        "ids",
        "union",
        "VERSION_VIEW",
        "decoded",
        "columns",
        "shape",
        "column",
        "selected",
        "casts",
        "i",
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.FormattedValue):
            names = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
            assert names <= allowed, f"sql.py line {node.lineno} interpolates {names - allowed}"


def test_the_check_sees_the_product_sql_calls() -> None:
    """Every module of the write path is scanned, and the scan recognises its calls."""
    package = sorted((REPO / "handler/login_etl/postgres").glob("*.py"))
    assert set(package) <= set(PRODUCT_CODE)
    calls = [
        n
        for path in package
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in SQL_CALLS
        and DB_HANDLE.search(ast.unparse(n.func.value))
    ]
    assert len(calls) >= 20


def test_the_checker_catches_an_f_string() -> None:
    bad = ast.parse('conn.run(f"SELECT {value}")').body[0]
    assert isinstance(bad, ast.Expr) and isinstance(bad.value, ast.Call)
    assert not _sql_argument_is_safe(bad.value.args[0])


SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS secret access key": re.compile(
        r"aws_secret_access_key\s*[=:]\s*['\"]?(?!test\b|testing\b)[A-Za-z0-9/+]{40}"
    ),
    "credentials in a URL": re.compile(
        r"postgres(?:ql)?://[^:/\s]+:(?!postgres@|x@|p@|password@)[^@\s{$]+@"
    ),
    "hex key literal": re.compile(r"PII_HASH_KEY\s*[=:]\s*['\"]?[0-9a-f]{32,}"),
}


ALLOW_MARKER = "pragma: allowlist secret"


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("the secrets scan needs a git checkout")
    return [REPO / name for name in out.split("\0") if name]


def test_no_secret_values_in_the_repository() -> None:
    findings = []
    for path in tracked_files():
        if not path.is_file() or path.suffix in {".png", ".whl"}:
            continue
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        for label, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                if ALLOW_MARKER in lines[line - 1]:
                    continue  # a fake value in a test, marked as such (detect-secrets style)
                findings.append(f"{path.relative_to(REPO)}:{line}: {label}")
    assert findings == []


def test_the_scan_would_find_a_planted_secret() -> None:
    planted = "key = 'AKIA" + "ABCDEFGHIJKLMNOP'\npostgresql://app:" + "s3cr3t@db:5432/x"
    assert SECRET_PATTERNS["AWS access key id"].search(planted)
    assert SECRET_PATTERNS["credentials in a URL"].search(planted)


def test_local_secrets_are_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", ".local/pii-hash-key", "events/env.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == [".local/pii-hash-key", "events/env.json"]
