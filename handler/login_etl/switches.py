"""The process-wide interpreter settings the runtime changes while batches run, each a
counted switch so that concurrent batches restore it on the last exit (docs/architecture.md).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from typing import Final

# While a streamed write's thread parses, the database worker needs the GIL back after
# every reply of the server; with CPython's default switch interval (5 ms) each round
# trip would cost up to that much. 0.5 ms beat 0.2 ms (fewer forced switches) and 1-2 ms
# in interleaved runs of handler@1,000.
STREAMING_SWITCH_INTERVAL_S: Final = 0.0005


class CountedSwitch:
    """A context manager: ``apply()`` on the first entry; the undo it returned on the
    last exit."""

    def __init__(self, apply: Callable[[], Callable[[], None]]) -> None:
        self._apply = apply
        self._undo: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._active = 0

    def __enter__(self) -> None:
        with self._lock:
            if self._active == 0:
                self._undo = self._apply()
            self._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._undo()


def _pause_gc() -> Callable[[], None]:
    was_enabled = gc.isenabled()
    gc.disable()
    return gc.enable if was_enabled else lambda: None


def _shorten_switch_interval() -> Callable[[], None]:
    original = sys.getswitchinterval()
    sys.setswitchinterval(STREAMING_SWITCH_INTERVAL_S)
    return lambda: sys.setswitchinterval(original)


# A batch allocates hundreds of thousands of short-lived, acyclic objects (dicts,
# tuples, strings) that reference counting frees; the cyclic collector would only
# re-scan them (about 15 % of the CPU time at 1,000 records). Held around every batch.
GC_PAUSED: Final = CountedSwitch(_pause_gc)
# Held while a streamed write runs (``postgres.streaming``).
SHORT_SWITCH_INTERVAL: Final = CountedSwitch(_shorten_switch_interval)
