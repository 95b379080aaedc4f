"""Powertools Logger and Metrics, and the per-batch metrics that go with them.

Never put a raw ``ip`` or ``device_id`` (or an unknown key's value) in either.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .pipeline import BatchResult

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "login-etl")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LoginEtl")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def record_batch_metrics(result: BatchResult) -> None:
    metrics.add_metric(name="AcceptedRecords", unit=MetricUnit.Count, value=result.written)
    metrics.add_metric(
        name="RejectedRecords", unit=MetricUnit.Count, value=sum(result.rejections.values())
    )
    # The rest only when non-zero: each metric costs per-invocation serialisation time.
    for name, value in (
        ("DuplicatesSkipped", result.duplicates),
        ("FifoHeldBack", result.fifo_held_back),
        ("UnknownKeys", result.unknown_keys),
        ("ImplausibleSentTimestamps", result.implausible_sent_timestamps),
        ("RedrivenRecords", result.redriven),
        ("UnverifiedIdentities", result.unverified_identities),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for reason, count in result.rejections.items():
        with single_metric(
            name="RejectedByReason", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="reason", value=reason)
