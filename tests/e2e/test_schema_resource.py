"""The schema step at deploy time: the stack's custom resource, run by our LocalStack.

LocalStack's community CloudFormation has no provider for custom resources; ours
(``localdev/env/localstack/hostexec``, ``custom_resource.py``) invokes the ServiceToken
function the way CloudFormation does, and the host executor runs it.
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.env.sam import SamError
from tests.conftest import LEDGER_TABLES, Databases, Db
from tests.e2e.conftest import Deployer, client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(280)]

SCHEMA_TABLES = {
    "public.user_logins",
    *LEDGER_TABLES,
    "login_etl.user_logins_decoded",
}


def tables(url: str) -> set[str]:
    rows = Db(url).query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema IN ('public', 'login_etl')"
    )
    return {r[0] for r in rows}


def stack_resources(outputs: dict[str, str]) -> dict[str, dict[str, Any]]:
    stack = outputs["FunctionName"].removesuffix("-login-etl")
    found = client("cloudformation").describe_stack_resources(StackName=stack)
    return {r["LogicalResourceId"]: r for r in found["StackResources"]}


def test_deploy_creates_the_schema_and_an_update_runs_it_again(
    deploy_stack: Deployer, databases: Databases
) -> None:
    first = databases.create(init=False)
    assert tables(first) == set()
    outputs = deploy_stack(first)
    assert tables(first) == SCHEMA_TABLES
    schema = stack_resources(outputs)["Schema"]
    assert schema["ResourceStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert schema["PhysicalResourceId"].startswith("login-etl-schema:")
    Db(first).query("INSERT INTO login_etl.ledger_00 (message_id) VALUES ('kept')")

    # An update that points the stack at another database: the schema step runs there, and
    # the old database keeps everything (the replaced resource's Delete drops nothing).
    second = databases.create(init=False)
    stack = outputs["FunctionName"].removesuffix("-login-etl")
    updated = deploy_stack(second, stack_name=stack)
    assert updated["FunctionName"] == outputs["FunctionName"]
    assert tables(second) == SCHEMA_TABLES
    assert tables(first) == SCHEMA_TABLES
    assert Db(first).query("SELECT message_id FROM login_etl.ledger") == [["kept"]]
    assert stack_resources(updated)["Schema"]["PhysicalResourceId"].endswith(
        second.rsplit("/", 1)[1]
    )


def test_an_unreachable_database_fails_the_deployment_with_the_reason(
    deploy_stack: Deployer,
) -> None:
    with pytest.raises(SamError):
        deploy_stack("postgresql://postgres:postgres@127.0.0.1:9/postgres")
    stacks = client("cloudformation").list_stacks()["StackSummaries"]
    name = max(
        (s for s in stacks if s["StackName"].startswith("login-etl-e2e-")),
        key=lambda s: s["CreationTime"],
    )["StackName"]
    events = client("cloudformation").describe_stack_events(StackName=name)["StackEvents"]
    reasons = [
        e.get("ResourceStatusReason") or "" for e in events if e["LogicalResourceId"] == "Schema"
    ]
    assert any("database: cannot connect to Postgres at 127.0.0.1:9" in r for r in reasons), reasons


def test_manage_schema_false_leaves_the_schema_to_the_user(
    deploy_stack: Deployer, databases: Databases
) -> None:
    url = databases.create()  # the user ran the schema step
    outputs = deploy_stack(url, ManageSchema="false")
    resources = stack_resources(outputs)
    assert "Schema" not in resources and "SchemaFunction" not in resources
