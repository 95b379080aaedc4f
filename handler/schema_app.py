"""Lambda entry point of the schema custom resource (``login_etl.schema_resource``)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from login_etl.schema_resource import handle
from login_etl.secrets import SecretSource
from login_etl.telemetry import logger


# log_event pinned off: the event's ResponseURL is a pre-signed URL (its signature lets
# anyone answer for the stack); an explicit False wins over POWERTOOLS_LOGGER_LOG_EVENT.
@logger.inject_lambda_context(clear_state=True, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info(
        "schema request",
        extra={
            "request_type": event.get("RequestType"),
            "resource": event.get("LogicalResourceId"),
        },
    )
    answer = handle(
        event, env=os.environ, secrets=SecretSource(), log_stream=context.log_stream_name
    )
    logger.info("schema answer", extra={"status": answer["Status"], "reason": answer.get("Reason")})
    return answer
