"""The composition root: what it builds, keeps warm and hands to each drain worker."""

from __future__ import annotations

import gc
import json
import threading
from typing import Any

from localdev.lambda_event import sqs_record
from login_etl.connection_settings import ConnectionSettings
from login_etl.runtime import PipelineRuntime
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
