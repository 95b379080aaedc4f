"""Lambda entry point (SAM ``Handler: app.lambda_handler``); all rules live in ``login_etl``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from login_etl.runtime import PipelineRuntime
from login_etl.telemetry import logger, metrics, record_batch_metrics


def _count_refresh_failure() -> None:
    metrics.add_metric(name="SettingsRefreshFailures", unit=MetricUnit.Count, value=1)


# Lives across warm invocations: resolved settings, the masker and the connection.
_runtime = PipelineRuntime(log=logger, on_refresh_failure=_count_refresh_failure)


@metrics.log_metrics
# log_event pinned off: Powertools would log the whole event, raw ip and device_id in
# every body, and an explicit argument wins over POWERTOOLS_LOGGER_LOG_EVENT=true.
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    try:
        result = _runtime.process(records, logger=logger)
    except Exception:
        # Batch-level failure (no key, database gone, schema missing): raising makes
        # the event source mapping retry the whole batch; nothing is reported written.
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        logger.exception(
            "batch failed; every record stays in the queue", extra={"records": len(records)}
        )
        raise
    record_batch_metrics(result)
    logger.info(
        "batch processed",
        extra={
            "records": len(records),
            "written": result.written,
            "duplicates": result.duplicates,
            "rejected": dict(result.rejections),
            "failed": len(result.failed_message_ids),
        },
    )
    return result.response  # type: ignore[return-value]
