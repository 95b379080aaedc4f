"""The composition root: the one place that assembles the pipeline (docs/architecture.md)."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from .config import CONFIG_VARIABLES, SECRET_VARIABLES, Settings, load_settings
from .connection_settings import ConnectionSettings
from .errors import ConfigurationError
from .identity import IdentitySigner
from .masking import Masker
from .pipeline import BatchResult, LoginSink, RejectionLog, process_batch
from .postgres import PostgresSink
from .secrets import SecretSource
from .switches import GC_PAUSED
from .table import TableShape


class ClosableSink(LoginSink, Protocol):
    def close(self) -> None: ...


class SinkFactory(Protocol):
    def __call__(
        self, settings: ConnectionSettings, *, queue_retention_seconds: int
    ) -> ClosableSink: ...


# After a failed refresh, the next try waits this long, doubling per failure up to
# ``max_age`` (a Secrets Manager outage must not cost every batch the read's timeouts).
REFRESH_RETRY_FIRST_S: Final = 5.0

_log = logging.getLogger(__name__)


class PipelineRuntime:
    """Resolves configuration lazily and keeps it, the masker and the sink warm.

    Re-resolution, refresh failures and their back-off: docs/operations.md. One runtime
    serves one thread at a time.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        secrets: SecretSource | None = None,
        *,
        sink_factory: SinkFactory = PostgresSink,
        log: RejectionLog | None = None,
        on_refresh_failure: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._env = os.environ if env is None else env
        self._secrets = secrets or SecretSource()
        self._sink_factory = sink_factory
        self._log: RejectionLog = log or _log
        self._on_refresh_failure = on_refresh_failure
        self._clock = clock
        self._settings: Settings | None = None
        self._fingerprint: tuple[str | None, ...] = ()
        self._resolved_at = 0.0
        self._refresh_due = 0.0
        self._refresh_failures = 0
        self._masker: Masker | None = None
        self._identity: IdentitySigner | None = None  # checks redrive copies (identity.py)
        self._sink: ClosableSink | None = None

    def settings(self) -> Settings:
        fingerprint = tuple(self._env.get(name) for name in CONFIG_VARIABLES)
        uses_secrets = any(self._env.get(name) for name in SECRET_VARIABLES)
        now = self._clock()
        changed = self._settings is None or fingerprint != self._fingerprint
        if not changed and not (uses_secrets and now >= self._refresh_due):
            assert self._settings is not None
            return self._settings
        try:
            settings = load_settings(self._env, self._secrets)
        except ConfigurationError as error:
            if changed:
                raise  # nothing good in hand for this configuration: fail closed
            return self._keep_last_good(error, now)
        if self._settings is None or settings.masking_key != self._settings.masking_key:
            self._masker = Masker(settings.masking_key)
            self._identity = IdentitySigner(settings.masking_key)
        if self._settings is not None and (
            settings.database != self._settings.database
            or settings.queue_retention_seconds != self._settings.queue_retention_seconds
        ):
            self.close()
        self._settings, self._fingerprint = settings, fingerprint
        self._resolved_at = self._clock()
        self._refresh_due = self._resolved_at + self._secrets.max_age
        self._refresh_failures = 0
        return settings

    def _keep_last_good(self, error: ConfigurationError, now: float) -> Settings:
        assert self._settings is not None
        self._refresh_failures += 1
        delay = min(
            float(self._secrets.max_age),
            REFRESH_RETRY_FIRST_S * 2 ** min(self._refresh_failures - 1, 16),
        )
        self._refresh_due = now + delay
        self._log.warning(
            f"settings refresh failed ({error}); keeping the last good settings",
            extra={
                "error": str(error),  # ConfigurationError's text quotes no secret
                "failed_refreshes": self._refresh_failures,
                "settings_age_s": round(now - self._resolved_at),
                "retry_in_s": round(delay, 1),
            },
        )
        if self._on_refresh_failure is not None:
            self._on_refresh_failure()
        return self._settings

    def table_shape(self) -> TableShape:
        """Connect now and read the table's shape: a missing table fails before any work."""
        return self._open_sink().table_shape()

    def process(self, records: Iterable[Mapping[str, Any]], *, logger: RejectionLog) -> BatchResult:
        sink = self._open_sink()
        assert self._masker is not None
        with GC_PAUSED:
            return process_batch(
                records, sink=sink, masker=self._masker, logger=logger, identity=self._identity
            )

    def for_worker(self) -> PipelineRuntime:
        """A runtime for another thread: the same configuration, its own connection."""
        worker = copy.copy(self)  # every field is immutable or shared on purpose
        worker._refresh_failures = 0
        worker._sink = None
        return worker

    def close(self) -> None:
        """Close the warm connection (the next batch opens a new one)."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _open_sink(self) -> ClosableSink:
        settings = self.settings()
        if self._sink is None:
            self._sink = self._sink_factory(
                settings.database, queue_retention_seconds=settings.queue_retention_seconds
            )
        return self._sink
