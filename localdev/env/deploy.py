"""Deploy template.yaml to the local LocalStack: ``sam build`` + ``samlocal deploy``.

    python -m localdev.env.deploy [K=V ...]     # also reads PARAMS="K=V ..." (make deploy-local)

Parameters are merged, later wins: samconfig.toml's ``local`` parameter_overrides, then
``DatabaseUrl`` from ``make up`` (.local/endpoints.env or ``DATABASE_URL``), then ``PARAMS`` and
the arguments. (``sam deploy --parameter-overrides`` alone would replace the config's set.)

From Python (the e2e tests)::

    outputs = deploy({"MaxReceiveCount": "2"}, stack_name="login-etl-e2e", database_url=url)
    delete_stack("login-etl-e2e")
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from localdev import REPO
from localdev.env import sam
from localdev.env.localstack import ENDPOINT

SAMCONFIG = REPO / "samconfig.toml"
CONFIG_ENV = "local"
STACK_NAME = "login-etl"


class DeployError(RuntimeError):
    """The parameters are inconsistent or the deployment failed."""


def parse_overrides(tokens: Iterable[str]) -> dict[str, str]:
    """``["K=V", ...]`` → ``{"K": "V"}`` (a value may contain ``=``)."""
    overrides = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise DeployError(f"parameter override {token!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides


def config_overrides(config_env: str = CONFIG_ENV) -> dict[str, str]:
    """The parameter_overrides of ``[<config_env>.deploy.parameters]`` in samconfig.toml."""
    config = tomllib.loads(SAMCONFIG.read_text())
    raw = config.get(config_env, {}).get("deploy", {}).get("parameters", {})
    value = raw.get("parameter_overrides", [])
    tokens = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    return parse_overrides(tokens)


def merged_overrides(
    overrides: Mapping[str, str], *, database_url: str | None, config_env: str = CONFIG_ENV
) -> dict[str, str]:
    merged = config_overrides(config_env)
    if database_url:
        merged["DatabaseUrl"] = database_url
    merged.update(overrides)
    _check_timeouts(merged)
    return merged


def _check_timeouts(params: Mapping[str, str]) -> None:
    # CloudFormation cannot compare two parameters, and a too-short visibility timeout only
    # fails late (CreateEventSourceMapping); say it up front.
    if "VisibilityTimeout" in params and "FunctionTimeout" in params:
        visibility, timeout = int(params["VisibilityTimeout"]), int(params["FunctionTimeout"])
        if visibility < timeout:
            raise DeployError(
                f"VisibilityTimeout={visibility} must be >= FunctionTimeout={timeout} "
                "(AWS recommends 6 x FunctionTimeout)"
            )


def _cli_value(params: Mapping[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return " ".join(f"{key}={quoted(value)}" for key, value in params.items())


def deploy(
    overrides: Mapping[str, str] | None = None,
    *,
    stack_name: str = STACK_NAME,
    database_url: str | None = None,
    build_dir: Path = sam.BUILD_DIR,
    build: bool = True,
    quiet: bool = False,
) -> dict[str, str]:
    """Build (unless ``build`` is False), deploy to LocalStack, return the stack's outputs."""
    params = merged_overrides(overrides or {}, database_url=database_url)
    if build:
        sam.build(build_dir, quiet=quiet)
    sam.run_sam(
        [
            "deploy",
            "--config-file",
            str(SAMCONFIG),  # else SAM looks for it beside the built template
            "--config-env",
            CONFIG_ENV,
            "--template-file",
            str(build_dir / "template.yaml"),
            "--stack-name",
            stack_name,
            "--parameter-overrides",
            _cli_value(params),
            "--no-progressbar",
        ],
        env=sam.sam_env(local=True),
        tool="samlocal",
        quiet=quiet,
    )
    outputs = stack_outputs(stack_name)
    enable_mappings(outputs["FunctionName"])
    return outputs


def enable_mappings(function_name: str, timeout_s: float = 30) -> None:
    """Make sure the function's SQS mappings poll.

    LocalStack 2026.3.0 re-creates a mapping's poller on every UpdateEventSourceMapping and the
    old poller's shutdown can mark the new one Disabled, so a stack *update* may leave the
    mapping off. Enabling it again is what ``Enabled: true`` in the template asks for anyway.
    """
    lam = client("lambda")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        mappings = lam.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
        pending = [m for m in mappings if m["State"] != "Enabled"]
        if not pending:
            return
        for mapping in pending:
            if mapping["State"] == "Disabled":
                lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        time.sleep(0.5)
    raise DeployError(f"the event source mapping of {function_name} did not become Enabled")


def set_polling(function_name: str, *, enabled: bool) -> None:
    """Switch the function's SQS mappings on or off; off waits until they are Disabled."""
    if enabled:
        enable_mappings(function_name)
        return
    lam = client("lambda")
    for mapping in lam.list_event_source_mappings(FunctionName=function_name)[
        "EventSourceMappings"
    ]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        while lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] != "Disabled":
            time.sleep(0.2)


def client(service: str) -> Any:
    """A boto3 client for the local LocalStack (test credentials, us-east-1)."""
    import boto3

    # `service` is any name (not a Literal), so the boto3 stubs' overloads do not apply.
    return cast(Any, boto3).client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def cloudformation() -> Any:
    return client("cloudformation")


def stack_outputs(stack_name: str = STACK_NAME) -> dict[str, str]:
    stack = cloudformation().describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def delete_stack(stack_name: str, timeout_s: float = 120) -> None:
    """Delete the stack and wait until it is gone (no error if it does not exist)."""
    cfn = cloudformation()
    cfn.delete_stack(StackName=stack_name)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError:
            return  # gone
        if status == "DELETE_COMPLETE":
            return
        if status == "DELETE_FAILED":
            raise DeployError(f"deleting stack {stack_name} failed")
        time.sleep(0.5)
    raise DeployError(f"stack {stack_name} not deleted after {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    from localdev.env.stack import read_endpoints

    tokens = shlex.split(os.environ.get("PARAMS", "")) + list(
        sys.argv[1:] if argv is None else argv
    )
    try:
        outputs = deploy(parse_overrides(tokens), database_url=read_endpoints().database_url)
    except (DeployError, sam.SamError, RuntimeError) as error:
        print(f"deploy-local: {error}", file=sys.stderr)
        return 1
    print(f"deploy-local: stack {STACK_NAME} is up on {ENDPOINT}")
    for key, value in sorted(outputs.items()):
        print(f"  {key:<20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
