"""The composition root: what it builds, keeps warm and hands to each drain worker."""

from __future__ import annotations

import gc
import json
import threading
from typing import Any

import pytest

from localdev.lambda_event import sqs_record
from login_etl.connection_settings import ConnectionSettings
from login_etl.errors import ConfigurationError
from login_etl.masking import Masker
from login_etl.runtime import REFRESH_RETRY_FIRST_S, PipelineRuntime
from login_etl.secrets import SecretSource
from tests.support.memory_sink import MemorySink

ENV = {"DATABASE_URL": "postgresql://u:p@db.internal:5432/logins", "PII_HASH_KEY": "k1"}
BODY = json.dumps({"user_id": "u1", "ip": "10.0.0.1", "device_id": "111-22-3333"})


class Log:
    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        pass


class Sinks:
    """A sink factory that remembers what it built."""

    def __init__(self) -> None:
        self.built: list[tuple[ConnectionSettings, MemorySink]] = []

    def __call__(self, settings: ConnectionSettings, *, queue_retention_seconds: int) -> MemorySink:
        sink = MemorySink()
        self.built.append((settings, sink))
        return sink


def record(message_id: str = "m1") -> dict[str, Any]:
    return sqs_record(BODY, message_id=message_id, sent_timestamp_ms=1_764_547_200_000)


def test_one_sink_for_the_settings_kept_across_batches() -> None:
    sinks = Sinks()
    runtime = PipelineRuntime(dict(ENV), sink_factory=sinks)
    runtime.process([record("m1")], logger=Log())
    runtime.process([record("m2")], logger=Log())
    assert len(sinks.built) == 1
    settings, sink = sinks.built[0]
    assert (settings.host, settings.database) == ("db.internal", "logins")
    assert sink.ledger == {"m1", "m2"}


def test_new_database_settings_close_the_old_sink() -> None:
    sinks, env = Sinks(), dict(ENV)
    runtime = PipelineRuntime(env, sink_factory=sinks)
    runtime.process([record("m1")], logger=Log())
    env["DATABASE_URL"] = "postgresql://u:p@other:5432/logins"
    runtime.process([record("m2")], logger=Log())
    assert [s.host for s, _ in sinks.built] == ["db.internal", "other"]
    assert sinks.built[0][1].closed and not sinks.built[1][1].closed


def test_a_new_key_gives_new_masks_on_the_same_sink() -> None:
    sinks, env = Sinks(), dict(ENV)
    runtime = PipelineRuntime(env, sink_factory=sinks)
    runtime.process([record("m1")], logger=Log())
    env["PII_HASH_KEY"] = "k2"
    runtime.process([record("m2")], logger=Log())
    [(_, sink)] = sinks.built
    assert sink.rows[0]["masked_ip"] != sink.rows[1]["masked_ip"]


def test_each_worker_gets_its_own_sink_and_the_same_configuration() -> None:
    sinks = Sinks()
    runtime = PipelineRuntime(dict(ENV), sink_factory=sinks)
    runtime.table_shape()  # the drain's check before the first receive
    workers = [runtime, runtime.for_worker(), runtime.for_worker()]
    for index, worker in enumerate(workers):
        worker.process([record(f"m{index}")], logger=Log())
    assert len(sinks.built) == 3
    assert len({id(sink) for _, sink in sinks.built}) == 3
    assert len({settings for settings, _ in sinks.built}) == 1
    masks = {sink.rows[0]["masked_ip"] for _, sink in sinks.built}
    assert len(masks) == 1  # one key, one masker


def test_the_collector_is_paused_during_batches_and_restored_after_the_last() -> None:
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    class BlockingSink(MemorySink):
        """The first worker's batch waits inside the sink until released."""

        def table_shape(self) -> Any:
            seen.append(gc.isenabled())
            inside.set()
            assert release.wait(30)
            return super().table_shape()

    sinks = iter([BlockingSink(), MemorySink()])
    first = PipelineRuntime(dict(ENV), sink_factory=lambda settings, **_: next(sinks))
    first.settings()
    second = first.for_worker()
    assert gc.isenabled()
    worker = threading.Thread(target=first.process, args=([record("a")],), kwargs={"logger": Log()})
    worker.start()
    try:
        assert inside.wait(30)
        second.process([record("b")], logger=Log())  # starts and ends inside the first batch
        still_paused = not gc.isenabled()
    finally:
        release.set()
        worker.join(30)
    assert seen == [False]
    assert still_paused  # the first batch is still running: not re-enabled by the second
    assert gc.isenabled()


# --- a failed refresh of Secrets Manager / SSM keeps the last good settings -------------

SECRET_ENV = {
    "DATABASE_URL": "postgresql://u:p@db.internal:5432/logins",
    "PII_HASH_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:key",
}


class ScriptedSecrets(SecretSource):
    """Answers each read with the next value; an exception in the script is raised."""

    def __init__(self, *script: str | Exception, max_age: int = 300) -> None:
        super().__init__(max_age=max_age)
        self.script = list(script)
        self.reads = 0

    def secret_string(self, secret_id: str) -> str:
        self.reads += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Warnings:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def warning(self, msg: str, *, extra: dict[str, Any]) -> None:
        self.seen.append((msg, extra))


def mask_with(key: str) -> str:
    return Masker(key.encode()).mask_ip("10.0.0.1") or ""


def test_a_failed_refresh_keeps_the_last_good_key_and_a_later_one_takes_the_new() -> None:
    outage = RuntimeError("EndpointConnectionError: could not reach secretsmanager")
    source = ScriptedSecrets("key-one-Xqvm", outage, outage, "key-two")
    clock, warnings, failures = Clock(), Warnings(), []
    sinks = Sinks()
    runtime = PipelineRuntime(
        dict(SECRET_ENV),
        source,
        sink_factory=sinks,
        log=warnings,
        on_refresh_failure=lambda: failures.append(1),
        clock=clock,
    )
    runtime.process([record("m1")], logger=Log())
    clock.now += 301  # the secrets' max_age has passed: a refresh is due, and fails
    runtime.process([record("m2")], logger=Log())  # not raised: the batch is processed
    [(_, sink)] = sinks.built
    assert [row["masked_ip"] for row in sink.rows] == [mask_with("key-one-Xqvm")] * 2
    assert len(warnings.seen) == 1 and failures == [1]
    message, extra = warnings.seen[0]
    assert "keeping the last good settings" in message
    assert "Xqvm" not in message + repr(extra)
    assert extra["failed_refreshes"] == 1 and extra["retry_in_s"] == REFRESH_RETRY_FIRST_S

    # Within the back-off no read is tried (an outage must not cost every batch a timeout).
    reads = source.reads
    clock.now += REFRESH_RETRY_FIRST_S - 1
    runtime.process([record("m3")], logger=Log())
    assert source.reads == reads
    clock.now += 1  # the retry: fails again, the back-off doubles
    runtime.process([record("m4")], logger=Log())
    assert source.reads == reads + 1
    assert warnings.seen[-1][1]["retry_in_s"] == 2 * REFRESH_RETRY_FIRST_S
    clock.now += 2 * REFRESH_RETRY_FIRST_S  # Secrets Manager is back: the rotated key is used
    runtime.process([record("m5")], logger=Log())
    assert sink.rows[-1]["masked_ip"] == mask_with("key-two")
    assert len(sinks.built) == 1  # same database settings: same connection
    assert len(warnings.seen) == 2


def test_the_first_resolution_fails_closed() -> None:
    runtime = PipelineRuntime(
        dict(SECRET_ENV), ScriptedSecrets(RuntimeError("down")), sink_factory=Sinks()
    )
    with pytest.raises(ConfigurationError, match="cannot read the masking key secret"):
        runtime.process([record("m1")], logger=Log())


def test_a_changed_configuration_that_cannot_be_read_fails_closed() -> None:
    env = dict(SECRET_ENV)
    source = ScriptedSecrets("k1", RuntimeError("down"))
    runtime = PipelineRuntime(env, source, sink_factory=Sinks())
    runtime.process([record("m1")], logger=Log())
    env["PII_HASH_KEY_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:1:secret:other"
    with pytest.raises(ConfigurationError):  # the old key belongs to another configuration
        runtime.process([record("m2")], logger=Log())


def test_the_back_off_never_exceeds_max_age() -> None:
    clock, warnings = Clock(), Warnings()
    runtime = PipelineRuntime(
        dict(SECRET_ENV),
        ScriptedSecrets("k1", RuntimeError("down"), max_age=20),
        sink_factory=Sinks(),
        log=warnings,
        clock=clock,
    )
    runtime.settings()
    for _ in range(6):
        clock.now += 21
        runtime.settings()
    assert [extra["retry_in_s"] for _, extra in warnings.seen] == [5, 10, 20, 20, 20, 20]


def test_refresh_against_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with moto: the secret gone at the refresh, then back with a new value.

    max_age=0: every batch re-reads (Powertools' cache runs on the real clock)."""
    import boto3
    from moto import mock_aws

    from tests.unit.test_config import use_fake_aws_environment

    use_fake_aws_environment(monkeypatch)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="refresh-key", SecretString="key-one")["ARN"]
        env = {**SECRET_ENV, "PII_HASH_KEY_SECRET_ARN": arn}
        sinks = Sinks()
        runtime = PipelineRuntime(env, SecretSource(max_age=0), sink_factory=sinks)
        runtime.process([record("m1")], logger=Log())
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        runtime.process([record("m2")], logger=Log())  # the refresh fails: key-one still
        arn = client.create_secret(Name="refresh-key", SecretString="key-two")["ARN"]
        env["PII_HASH_KEY_SECRET_ARN"] = arn  # a new ARN: a changed configuration
        runtime.process([record("m3")], logger=Log())
    [(_, sink)] = sinks.built
    assert [row["masked_ip"] for row in sink.rows] == [
        mask_with("key-one"),
        mask_with("key-one"),
        mask_with("key-two"),
    ]
