"""The SAM template's security properties, checked offline (no AWS, no LocalStack).

- After the SAM transform (samtranslator, offline), every IAM statement the stack creates: no
  ``*`` or ``service:*`` actions, no ``NotAction``/``NotResource``, and every resource is one of
  the stack's own resources or parameters — never ``*``.
- Managed policies SAM attaches on its own are listed below with the reason they are accepted.
- No NoEcho parameter has a literal default; samconfig.toml holds no secret other than the
  documented local development database password.
- ``sam validate --lint`` passes, so a broken template fails ``make test``.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform  # type: ignore[import-untyped]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

from localdev.env import sam

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
SAMCONFIG = REPO / "samconfig.toml"

# The only AWS managed policy the function's role may have, and why.
ACCEPTED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": (
        "only with SubnetIds (UseVpc): ec2:Create/Describe/DeleteNetworkInterface must be on "
        "'*' (AWS requires it for ENIs: they do not exist yet when the policy is evaluated)"
    ),
}

# Parameter sets the template is translated with: every branch that changes IAM.
VARIANTS = {
    "default": {},
    "db-secret": {
        "DbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
    },
    "existing-key-and-queue": {
        "PiiHashKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf",
        "SourceQueueArn": "arn:aws:sqs:us-east-1:123456789012:login-queue",
    },
    "fifo-vpc": {
        "QueueType": "fifo",
        "SubnetIds": "subnet-1,subnet-2",
        "SecurityGroupIds": "sg-1",
    },
}


class _NoManagedPolicyLookup:
    """samtranslator asks IAM for managed policy names only when a template uses them."""

    def load(self) -> dict[str, str]:
        return {}


def raw_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed


def translated(parameters: dict[str, str]) -> dict[str, Any]:
    template = copy.deepcopy(raw_template())
    # `sam build` replaces the local folder by an S3 URI; the transform insists on one.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # pseudo parameters, offline
    result: dict[str, Any] = transform(template, parameters, _NoManagedPolicyLookup())
    return result


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement of roles and policies, through Fn::If branches."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in _branches(props.get("Policies", [])):
                yield from _doc_statements(name, policy.get("PolicyDocument", {}))
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield from _doc_statements(name, props.get("PolicyDocument", {}))


def _branches(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _branches(item)
    elif isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from _branches(branch)
    elif isinstance(value, dict) and value != {"Ref": "AWS::NoValue"}:
        yield value


def _doc_statements(owner: str, document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for statement in _branches(document.get("Statement", [])):
        yield owner, statement


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_is_scoped(value: Any, own: set[str]) -> bool:
    """A resource names one of the stack's resources or parameters, and never ``*``."""
    if isinstance(value, str):
        return False  # a literal ARN or "*": not derived from this stack
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((function, argument),) = value.items()
    if function == "Ref":
        return argument in own
    if function == "Fn::GetAtt":
        target = argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
        return target in own
    if function == "Fn::If":
        return all(resource_is_scoped(b, own) for b in argument[1:])
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        names = re.findall(r"\$\{([^}!]+)\}", text)
        literal = re.sub(r"\$\{[^}]+\}", "", text)
        return (
            "*" not in literal
            and bool(names)
            and all(
                resource_is_scoped(variables[n], own) if n in variables else n in own for n in names
            )
        )
    return False


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_iam_statement_is_least_privilege(variant: str) -> None:
    template = translated(VARIANTS[variant])
    own = set(template["Resources"]) | set(template.get("Parameters", {}))
    found = list(statements(template))
    assert found, "the transform produced no IAM statement: the check would be vacuous"
    problems = []
    for owner, statement in found:
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{owner}: NotAction/NotResource in {statement}")
        for action in _listed(statement.get("Action", [])):
            if not isinstance(action, str) or action == "*" or action.endswith(":*"):
                problems.append(f"{owner}: action {action!r}")
        if statement.get("Principal") is not None:
            continue  # a trust policy (sts:AssumeRole by lambda.amazonaws.com): no Resource
        for resource in _listed(statement.get("Resource", "*")):
            if not resource_is_scoped(resource, own):
                problems.append(f"{owner}: resource {resource!r} is not one of the stack's own")
    assert problems == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_only_accepted_managed_policies(variant: str) -> None:
    template = translated(VARIANTS[variant])
    attached = {
        arn
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in _branches_of_strings(resource["Properties"].get("ManagedPolicyArns", []))
    }
    assert attached <= set(ACCEPTED_MANAGED_POLICIES), attached - set(ACCEPTED_MANAGED_POLICIES)


def _branches_of_strings(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _branches_of_strings(item)
    elif isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from _branches_of_strings(branch)
    elif isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        yield value["Fn::Sub"].replace("${AWS::Partition}", "aws")
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def test_vpc_rights_only_with_a_vpc() -> None:
    def managed(variant: str) -> set[Any]:
        role = translated(VARIANTS[variant])["Resources"]["LoginEtlFunctionRole"]
        return set(_branches_of_strings(role["Properties"].get("ManagedPolicyArns", [])))

    # Both branches of the condition are in the template; the VPC one is guarded by UseVpc.
    raw_role = raw_template()["Resources"]["LoginEtlFunctionRole"]["Properties"]
    assert raw_role["ManagedPolicyArns"]["Fn::If"][0] == "UseVpc"
    assert managed("default") <= set(ACCEPTED_MANAGED_POLICIES)


def test_the_function_uses_the_stack_role_and_reads_only_its_queue() -> None:
    template = translated({})
    functions = {
        n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    }
    assert {n: f["Properties"]["Role"] for n, f in functions.items()} == {
        "LoginEtlFunction": {"Fn::GetAtt": ["LoginEtlFunctionRole", "Arn"]},
        "SchemaFunction": {"Fn::GetAtt": ["SchemaFunctionRole", "Arn"]},
    }
    roles = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert roles == ["LoginEtlFunctionRole", "SchemaFunctionRole"]  # none generated by SAM
    sqs = [
        s
        for owner, s in statements(template)
        if any(a.startswith("sqs:") for a in _listed(s.get("Action", [])))
    ]
    assert {owner for owner, s in statements(template) if s in sqs} == {"LoginEtlFunctionRole"}
    assert [s["Resource"] for s in sqs] == [
        {
            "Fn::If": [
                "CreateQueue",
                {"Fn::GetAtt": ["LoginQueue", "Arn"]},
                {"Ref": "SourceQueueArn"},
            ]
        }
    ]


def test_trust_policy_is_lambda_only() -> None:
    template = translated({})
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Role":
            doc = resource["Properties"]["AssumeRolePolicyDocument"]
            principals = [s["Principal"] for s in doc["Statement"]]
            assert principals == [{"Service": ["lambda.amazonaws.com"]}]


def test_secret_reads_are_scoped_to_the_key_and_db_secrets() -> None:
    template = translated(VARIANTS["db-secret"])
    reads = [
        (owner, str(s["Resource"]))
        for owner, s in statements(template)
        if "secretsmanager:GetSecretValue" in _listed(s.get("Action", []))
    ]
    # The function reads the masking key and the database secret (when given); the schema
    # function only the database secret: it never needs the key.
    assert len(reads) == 3
    assert [o for o, r in reads if "PiiHashKeySecret" in r] == ["LoginEtlFunctionRole"]
    assert sorted(o for o, r in reads if "DbSecretArn" in r) == [
        "LoginEtlFunctionRole",
        "SchemaFunctionRole",
    ]


def test_no_echo_parameters_have_no_literal_default() -> None:
    parameters = raw_template()["Parameters"]
    no_echo = {name: p for name, p in parameters.items() if p.get("NoEcho")}
    assert no_echo, "expected at least DatabaseUrl to be NoEcho"
    assert {name: p.get("Default", "") for name, p in no_echo.items()} == dict.fromkeys(no_echo, "")
    # Parameters that carry a secret or point to one never default to a value.
    secretish = re.compile(r"(password|secret|key|token|url)", re.IGNORECASE)
    defaults = {
        name: p.get("Default", "")
        for name, p in parameters.items()
        if secretish.search(name) and p.get("Type") == "String"
    }
    assert set(defaults.values()) == {""}, defaults


def test_generated_key_secret_is_retained_and_long() -> None:
    secret = raw_template()["Resources"]["PiiHashKeySecret"]
    assert secret["DeletionPolicy"] == "Retain"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret["Properties"]  # never a literal key


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


DEV_DATABASE_URL = re.compile(r"postgresql://postgres:postgres@127\.0\.0\.1:\d+/postgres")
CREDENTIAL_SHAPES = (
    re.compile(r"://[^/\s:@]+:[^@\s]+@"),  # a URL with a password
    re.compile(r"\bA(KIA|SIA)[A-Z0-9]{16}\b"),  # an AWS access key id
    re.compile(r"(?i)(password|secret|token|api[_-]?key)\s*[=:]\s*\S+"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


def test_samconfig_holds_no_secret_but_the_local_dev_password() -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    leaks = []
    for text in _strings(config):
        remainder = DEV_DATABASE_URL.sub("", text)
        leaks += [text for shape in CREDENTIAL_SHAPES if shape.search(remainder)]
    assert leaks == []
    # The one allowed credential is exactly the documented embedded server's.
    urls = [t for t in _strings(config) if "://" in t]
    assert all(DEV_DATABASE_URL.search(u) for u in urls), urls


def test_sam_validate_lint_passes() -> None:
    env = sam.sam_env()
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    done = subprocess.run(
        [str(sam.BIN_DIR / "sam"), "validate", "--lint", "--template-file", str(TEMPLATE)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


def test_the_schema_step_runs_at_deploy_time_unless_turned_off() -> None:
    template = translated({})
    resources = template["Resources"]
    schema = resources["Schema"]
    assert schema["Type"] == "Custom::LoginEtlSchema"
    assert schema["Condition"] == resources["SchemaFunction"]["Condition"] == "ManagesSchema"
    assert schema["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["SchemaFunction", "Arn"]}
    # The database settings are properties: pointing the stack elsewhere re-runs the step.
    assert {"DbSecretArn", "DatabaseUrl", "DbSslMode", "SchemaVersion"} <= set(schema["Properties"])
    assert template["Conditions"]["ManagesSchema"] == {
        "Fn::Equals": [{"Ref": "ManageSchema"}, "true"]
    }
    assert template["Parameters"]["ManageSchema"]["Default"] == "true"
    # The consumer waits for the schema (a reference makes CloudFormation order them).
    variables = resources["LoginEtlFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["LOGIN_ETL_SCHEMA"] == {
        "Fn::If": ["ManagesSchema", {"Ref": "Schema"}, "unmanaged"]
    }


def test_the_schema_function_runs_where_the_function_runs() -> None:
    resources = translated(VARIANTS["fifo-vpc"])["Resources"]
    schema, function = (resources[n]["Properties"] for n in ("SchemaFunction", "LoginEtlFunction"))
    assert schema["Handler"] == "schema_app.handler"
    assert schema["VpcConfig"] == function["VpcConfig"]
    for name in (
        "DB_SECRET_ARN",
        "DB_SSLMODE",
        "DB_SSLROOTCERT",
        "DATABASE_URL",
        "DB_CONNECT_TIMEOUT",
    ):
        assert (
            schema["Environment"]["Variables"][name] == function["Environment"]["Variables"][name]
        )
    assert "PII_HASH_KEY_SECRET_ARN" not in schema["Environment"]["Variables"]  # no key needed


def test_the_ledger_keeps_ids_exactly_as_long_as_the_queue_keeps_messages() -> None:
    """One parameter sets the queue's retention and tells the function (the ledger's
    window); the DLQ keeps the maximum, time to inspect and redrive."""
    template = translated({})
    resources = template["Resources"]
    parameter = template["Parameters"]["QueueRetentionSeconds"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (60, 1_209_600)
    queue = resources["LoginQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == {"Ref": "QueueRetentionSeconds"}
    variables = resources["LoginEtlFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["QUEUE_RETENTION_SECONDS"] == {"Ref": "QueueRetentionSeconds"}
    assert resources["LoginDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1_209_600


def test_the_database_secret_path_verifies_the_server_by_default() -> None:
    """verify-full against the bundled RDS CAs unless DbSslRootCert names another bundle."""
    template = translated({})
    parameters = template["Parameters"]
    assert parameters["DbSslMode"]["Default"] == "verify-full"
    assert parameters["DbSslRootCert"]["Default"] == ""
    resources = template["Resources"]
    for function in ("LoginEtlFunction", "SchemaFunction"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["DB_SSLMODE"] == {"Ref": "DbSslMode"}
        assert variables["DB_SSLROOTCERT"] == {"Ref": "DbSslRootCert"}
    assert resources["Schema"]["Properties"]["DbSslRootCert"] == {"Ref": "DbSslRootCert"}


def test_the_default_visibility_timeout_follows_the_templates_own_rule() -> None:
    """VisibilityTimeout >= 6 x FunctionTimeout + BatchingWindow (AWS's advice, which the
    parameter's description repeats) for the defaults. A CloudFormation ``Rules`` assertion
    cannot hold it: rule functions compare strings and lists, no arithmetic."""
    parameters = raw_template()["Parameters"]

    def default(name: str) -> int:
        return int(parameters[name]["Default"])

    needed = 6 * default("FunctionTimeout") + default("BatchingWindow")
    assert default("VisibilityTimeout") >= needed, (default("VisibilityTimeout"), needed)


@pytest.mark.parametrize("queue", ["LoginQueue", "LoginDeadLetterQueue"])
def test_fifo_queues_have_no_content_based_deduplication(queue: str) -> None:
    """Two logins with equal bodies within 5 minutes are two logins: producers give a
    MessageDeduplicationId, and a send without one fails instead of being dropped."""
    properties = translated(VARIANTS["fifo-vpc"])["Resources"][queue]["Properties"]
    assert properties["FifoQueue"] == {"Fn::If": ["CreateFifoQueue", True, {"Ref": "AWS::NoValue"}]}
    assert properties["ContentBasedDeduplication"] == {
        "Fn::If": ["CreateFifoQueue", False, {"Ref": "AWS::NoValue"}]
    }
