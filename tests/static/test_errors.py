"""One error base class in one module, and one table from error to exit code."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from login_etl import errors
from login_etl.errors import LoginEtlError
from login_etl_drain import cli

REPO = Path(__file__).resolve().parents[2]
PRODUCT_CODE = sorted((REPO / "handler").rglob("*.py")) + sorted((REPO / "drain").rglob("*.py"))
ERRORS_MODULE = REPO / "handler" / "login_etl" / "errors.py"
EXCEPTION_BASES = {"Exception", "RuntimeError", "ValueError", "LookupError", "OSError"}


def _public_errors() -> list[type[LoginEtlError]]:
    return [
        value
        for _, value in inspect.getmembers(errors, inspect.isclass)
        if issubclass(value, LoginEtlError) and value.__module__ == errors.__name__
    ]


def _is_exception_class(node: ast.ClassDef) -> bool:
    names = {b.id for b in node.bases if isinstance(b, ast.Name)}
    return bool(names & (EXCEPTION_BASES | {"LoginEtlError"})) or any(
        n.endswith(("Error", "Exception")) for n in names
    )


def test_every_public_error_class_is_defined_in_login_etl_errors() -> None:
    elsewhere = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
        for path in PRODUCT_CODE
        if path != ERRORS_MODULE
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef)
        and _is_exception_class(node)
        and not node.name.startswith("_")  # private control-flow signals stay local
    ]
    assert elsewhere == []


def test_every_error_of_login_etl_errors_derives_from_the_one_base() -> None:
    tree = ast.parse(ERRORS_MODULE.read_text())
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len(classes) >= 10
    assert {c.__name__ for c in _public_errors()} == set(classes)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConfigurationError("x"), cli.EXIT_CONFIG),
        (errors.SettingsError("x"), cli.EXIT_CONFIG),
        (errors.QueueNotFound("x"), cli.EXIT_SQS),
        (errors.NotUnderstood("x"), cli.EXIT_SQS),
        (errors.SchemaError("x"), cli.EXIT_DATABASE),
        (errors.DatabaseUnavailable("x"), cli.EXIT_DATABASE),
        (RuntimeError("x"), cli.EXIT_FAILED),
    ],
)
def test_the_cli_maps_each_error_to_its_exit_code_in_one_table(
    error: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli._fail("drain", error) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("login-etl drain: error: ")
    # Only an unexpected error names its type; ours are one line of our own words.
    assert ("RuntimeError: x" in err) == (code == cli.EXIT_FAILED)


def test_the_exit_codes_are_distinct() -> None:
    codes = [cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_CONFIG, cli.EXIT_SQS]
    codes.append(cli.EXIT_DATABASE)
    assert len(set(codes)) == len(codes)
