"""A process-lifetime cache bounded by the bytes it holds, not by its number of entries.

Producers choose the keys, so an entry-bounded cache (``lru_cache(maxsize=N)``) would hold
N keys of *any* size. Full, it empties rather than evicting one by one: real traffic has few
distinct keys, which come back at once; a flood of distinct keys gains nothing from a cache.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Final

ENTRY_OVERHEAD: Final = 64
"""Bytes counted per entry for the dict's own storage (its hash/key/value slot and index,
with the headroom a dict keeps): more than CPython actually uses, so the bound is safe."""


class SizedCache[V]:
    """``str`` keys to values, at most ``max_bytes`` as :func:`entry_size` counts them."""

    __slots__ = ("_data", "_lock", "get", "max_bytes", "size")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        """The bytes of the entries held now (never more than ``max_bytes``)."""
        self._data: dict[str, V] = {}
        self._lock = threading.Lock()  # drain workers share module caches across threads
        self.get: Callable[[str], V | None] = self._data.get
        """The hit path: the dict's own ``get``, with no Python frame around it."""

    def put(self, key: str, value: V) -> None:
        """Keep ``value`` for ``key``, emptying the cache first if it would not fit.
        An entry larger than the whole bound is not kept."""
        cost = entry_size(key, value)
        if cost > self.max_bytes:
            return
        with self._lock:
            if key in self._data:
                return
            if self.size + cost > self.max_bytes:
                self._data.clear()  # the same dict: ``get`` stays bound to it
                self.size = 0
            self._data[key] = value
            self.size += cost

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._data)


def entry_size(key: str, value: object) -> int:
    """What one entry counts against the bound."""
    return sys.getsizeof(key) + sys.getsizeof(value) + ENTRY_OVERHEAD
