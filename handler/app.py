"""Lambda entry point (SAM: ``CodeUri: handler/``, ``Handler: app.lambda_handler``).

Wires configuration to the pipeline; all rules live in ``login_etl``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from login_etl.config import load_settings
from login_etl.masking import Masker
from login_etl.pipeline import process_batch
from login_etl.postgres import ConnectionSettings, PostgresSink
from login_etl.secrets import SecretSource
from login_etl.telemetry import logger, metrics, record_batch_metrics

_secrets = SecretSource()
_sink: PostgresSink | None = None
_sink_settings: ConnectionSettings | None = None


def _sink_for(settings: ConnectionSettings) -> PostgresSink:
    """The warm connection, replaced only when the database settings changed."""
    global _sink, _sink_settings
    if _sink is None or settings != _sink_settings:
        if _sink is not None:
            _sink.close()
        _sink, _sink_settings = PostgresSink(settings), settings
    return _sink


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = load_settings(secrets=_secrets)  # raises → the whole batch stays queued
    records = event.get("Records", [])
    result = process_batch(
        records,
        sink=_sink_for(settings.database),
        masker=Masker(settings.masking_key),
        logger=logger,
    )
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
