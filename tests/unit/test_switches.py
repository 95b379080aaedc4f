"""The process-wide switches (``login_etl.switches``): counted across threads, restored
to what they were."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable

from login_etl.switches import (
    GC_PAUSED,
    SHORT_SWITCH_INTERVAL,
    STREAMING_SWITCH_INTERVAL_S,
    CountedSwitch,
)


def test_a_counted_switch_applies_on_the_first_entry_and_undoes_on_the_last_exit() -> None:
    events: list[str] = []

    def apply() -> Callable[[], None]:
        events.append("apply")
        return lambda: events.append("undo")

    switch = CountedSwitch(apply)
    with switch:
        with switch:
            assert events == ["apply"]
        assert events == ["apply"]  # the outer holder is still inside
    assert events == ["apply", "undo"]
    with switch:
        pass
    assert events == ["apply", "undo", "apply", "undo"]


def test_the_switch_interval_is_short_while_held_by_any_thread_and_restored_after() -> None:
    original = sys.getswitchinterval()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with SHORT_SWITCH_INTERVAL:
            inside.set()
            assert release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(30)
        with SHORT_SWITCH_INTERVAL:
            assert sys.getswitchinterval() == STREAMING_SWITCH_INTERVAL_S
        assert sys.getswitchinterval() == STREAMING_SWITCH_INTERVAL_S  # still held
    finally:
        release.set()
        holder.join(30)
    assert sys.getswitchinterval() == original


def test_a_collector_disabled_before_stays_disabled_after() -> None:
    assert gc.isenabled()
    gc.disable()
    try:
        with GC_PAUSED:
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with GC_PAUSED:
        assert not gc.isenabled()
    assert gc.isenabled()
