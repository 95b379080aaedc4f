"""SizedCache: a process-lifetime cache bounded in bytes (login_etl/sizedcache.py)."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from login_etl.sizedcache import ENTRY_OVERHEAD, SizedCache, entry_size

keys = st.one_of(
    st.text(max_size=20),
    st.text(max_size=3000),  # some larger than the whole bound
    st.text(alphabet=st.characters(min_codepoint=0x10000), max_size=50),  # 4 bytes a char
)
puts = st.lists(st.tuples(keys, st.integers()), max_size=200)


def held_bytes(cache: SizedCache[int]) -> int:
    return sum(entry_size(k, v) for k, v in cache._data.items())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4096), puts)
def test_size_never_exceeds_the_bound_and_counts_what_is_held(
    bound: int, entries: list[tuple[str, int]]
) -> None:
    cache = SizedCache[int](bound)
    for key, value in entries:
        held = key in cache._data
        before = cache.get(key)
        cache.put(key, value)
        assert cache.size <= bound
        assert cache.size == held_bytes(cache)
        if held:  # a key already there keeps its first value
            assert cache.get(key) == before
        elif entry_size(key, value) <= bound:  # just put: held, whatever was emptied
            assert cache.get(key) == value
        else:  # larger than the whole bound: never held
            assert cache.get(key) is None


def test_empties_itself_rather_than_grow() -> None:
    cache = SizedCache[int](10 * (entry_size("k0000", 0)))
    for i in range(10):
        cache.put(f"k{i:04d}", 0)
    assert len(cache) == 10
    cache.put("k0010", 0)  # would cross the bound: starts afresh
    assert len(cache) == 1
    assert cache.get("k0010") == 0
    assert cache.get("k0000") is None


def test_get_stays_bound_to_the_live_dict_after_clearing() -> None:
    cache = SizedCache[int](entry_size("a", 1))
    lookup = cache.get
    cache.put("a", 1)
    cache.put("b", 2)  # empties, then holds b
    assert lookup("b") == 2
    cache.clear()
    assert lookup("b") is None
    assert cache.size == 0


def test_entry_size_counts_the_key_by_its_width() -> None:
    assert entry_size("\U0001f600" * 100, 0) > entry_size("e" * 100, 0)
    assert entry_size("", 0) > ENTRY_OVERHEAD


def test_threads_putting_at_once_keep_the_bound() -> None:
    cache = SizedCache[int](20_000)
    barrier = threading.Barrier(4)

    def fill(worker: int) -> None:
        barrier.wait()
        for i in range(5_000):
            cache.put(f"{worker}-{i}".ljust(40), i)
            assert cache.size <= 20_000

    threads = [threading.Thread(target=fill, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.size == held_bytes(cache) <= 20_000
