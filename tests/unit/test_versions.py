"""``app_version`` encoding for an integer column (docs/contract.md).

``"MAJOR[.MINOR[.PATCH]]"`` -> ``MAJOR*1_000_000 + MINOR*1_000 + PATCH``; surrounding
whitespace allowed; missing parts are 0; each part decimal digits; MINOR and PATCH
0-999; the result must fit a Postgres integer (2**31 - 1); a JSON integer n means n.0.0.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from login_etl import versions
from login_etl.errors import InvalidVersion
from login_etl.sizedcache import entry_size
from login_etl.versions import decode_app_version, encode_app_version

PG_INT_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.3.0", 2_003_000),
        ("0.60", 60_000),
        ("2.00", 2_000_000),
        ("1", 1_000_000),
        (" 2.3 ", 2_003_000),
        ("\t2.3.0\n", 2_003_000),
        ("0", 0),
        ("0.0.0", 0),
        ("1.2.3", 1_002_003),
        ("10.999.999", 10_999_999),
        ("2147.483.647", PG_INT_MAX),  # the largest value that fits
        ("2147.483", 2_147_483_000),
        (7, 7_000_000),  # JSON integer n means n.0.0
        (0, 0),
        (2147, 2_147_000_000),
    ],
)
def test_encoding_table(value: object, expected: int) -> None:
    assert encode_app_version(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "1.2.3.4",  # too many parts
        2.5,  # JSON float
        2.0,  # JSON float, even when integral
        True,  # JSON true is not the integer 1
        False,
        -1,
        "-1",
        "1.1000",  # MINOR > 999
        "1.0.1000",  # PATCH > 999
        "",
        "   ",
        "1..2",
        "1.",
        ".1",
        "1.2.",
        "v1.2.3",
        "1.2.3-beta",
        "1,2",
        "+1.2",
        "1 .2",
        "1. 2",
        "\u0661.\u0662",  # Arabic-Indic digits
        "\uff11.\uff12",  # fullwidth digits
        "\u00b2.3",  # superscript two: str.isdigit() is True for it
        "2147.483.648",  # one more than 2**31 - 1
        "2148",
        "99999999999",
        "9" * 5000,  # huge digit runs are rejected, not parsed forever
        "1." + "9" * 5000,
        2148,  # 2148.0.0 overflows
        10**30,
        None,
        [1, 2],
        {"major": 1},
    ],
)
def test_rejects(value: object) -> None:
    with pytest.raises(InvalidVersion):
        encode_app_version(value)


@pytest.mark.parametrize("value", ["s3cr3t-v4lue", "2147.483.648", "1.1000", "9.9.9.9"])
def test_error_message_does_not_echo_the_value(value: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        encode_app_version(value)
    assert value not in str(caught.value)


def test_invalid_version_is_a_value_error() -> None:
    assert issubclass(InvalidVersion, ValueError)


def test_parts_are_decimal_with_leading_zeros_allowed() -> None:
    # "each part decimal digits": "0.60" has MINOR 60, "2.03" has MINOR 3
    assert encode_app_version("2.03") == 2_003_000
    assert encode_app_version("02.3") == 2_003_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.000001", 1_001_000),
        ("1.0000001", 1_001_000),
        ("1.0.0000000005", 1_000_005),
        ("00000000001.2.3", 1_002_003),
    ],
)
def test_long_zero_padded_part_within_range_is_accepted(value: str, expected: int) -> None:
    # "each part decimal digits; MINOR and PATCH 0-999; the result must fit a Postgres
    # integer": the value of a part decides, not how many zeros pad it. "1.000001" is
    # accepted as MINOR 1, so "1.0000001" (also MINOR 1) must be too.
    assert encode_app_version(value) == expected


# --- properties ------------------------------------------------------------------------

majors = st.integers(0, 2147)
parts = st.integers(0, 999)


def fits(major: int, minor: int, patch: int) -> bool:
    return major * 1_000_000 + minor * 1_000 + patch <= PG_INT_MAX


@settings(max_examples=200, deadline=None)
@given(majors, parts, parts)
def test_decode_inverts_encode(major: int, minor: int, patch: int) -> None:
    text = f"{major}.{minor}.{patch}"
    if not fits(major, minor, patch):
        with pytest.raises(InvalidVersion):
            encode_app_version(text)
        return
    encoded = encode_app_version(text)
    assert encoded == major * 1_000_000 + minor * 1_000 + patch
    assert 0 <= encoded <= PG_INT_MAX
    assert decode_app_version(encoded) == text


@settings(max_examples=200, deadline=None)
@given(majors, parts, parts, majors, parts, parts)
def test_order_preserving(a1: int, b1: int, c1: int, a2: int, b2: int, c2: int) -> None:
    if not (fits(a1, b1, c1) and fits(a2, b2, c2)):
        return
    v1 = encode_app_version(f"{a1}.{b1}.{c1}")
    v2 = encode_app_version(f"{a2}.{b2}.{c2}")
    assert ((a1, b1, c1) < (a2, b2, c2)) == (v1 < v2)
    assert ((a1, b1, c1) == (a2, b2, c2)) == (v1 == v2)


@settings(max_examples=100, deadline=None)
@given(majors, parts)
def test_missing_parts_are_zero(major: int, minor: int) -> None:
    if not fits(major, minor, 0):
        return
    assert encode_app_version(f"{major}.{minor}") == encode_app_version(f"{major}.{minor}.0")
    if fits(major, 0, 0):
        assert encode_app_version(str(major)) == encode_app_version(f"{major}.0.0")
        assert encode_app_version(major) == encode_app_version(f"{major}.0.0")


@settings(max_examples=100, deadline=None)
@given(majors, parts, parts, st.sampled_from(["", " ", "\t", "\n ", "  "]))
def test_surrounding_whitespace_allowed(major: int, minor: int, patch: int, pad: str) -> None:
    text = f"{major}.{minor}.{patch}"
    if not fits(major, minor, patch):
        return
    assert encode_app_version(f"{pad}{text}{pad}") == encode_app_version(text)


@settings(max_examples=100, deadline=None)
@given(majors, st.integers(1000, 10**6), parts)
def test_minor_or_patch_above_999_rejected(major: int, big: int, other: int) -> None:
    with pytest.raises(InvalidVersion):
        encode_app_version(f"{major}.{big}.{other}")
    with pytest.raises(InvalidVersion):
        encode_app_version(f"{major}.{other}.{big}")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(), st.none()))
def test_anything_either_encodes_to_a_pg_integer_or_raises_invalid_version(value: object) -> None:
    try:
        encoded = encode_app_version(value)
    except InvalidVersion:
        return
    assert type(encoded) is int
    assert 0 <= encoded <= PG_INT_MAX


# --- the length cap and the parse cache -------------------------------------------------


@pytest.mark.parametrize("value", ["1.2.3".center(101), "1.2.3" + " " * 100_000, "0" * 101 + "1"])
def test_text_over_100_characters_rejected_before_parsing(value: str) -> None:
    with pytest.raises(InvalidVersion, match="exceeds 100 characters"):
        encode_app_version(value)
    assert versions.cached_version(value) is None


def test_text_of_100_characters_accepted_and_cached() -> None:
    value = "4.5.6".center(100)
    assert encode_app_version(value) == 4_005_006
    assert versions.cached_version(value) == 4_005_006


def test_cache_stays_within_its_byte_bound_over_many_distinct_long_versions() -> None:
    versions._CACHE.clear()
    for i in range(5_000):
        text = f"{i % 2000}.{i // 2000}.{i % 999}".center(100)
        assert encode_app_version(text) == (i % 2000) * 1_000_000 + (i // 2000) * 1_000 + i % 999
        assert versions._CACHE.size <= versions.CACHE_MAX_BYTES
    held = sum(entry_size(k, v) for k, v in versions._CACHE._data.items())
    assert versions._CACHE.size == held
    assert len(versions._CACHE) > 100  # still a cache: hundreds of padded versions fit


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(majors, parts, st.integers(0, 95)), max_size=300))
def test_cache_bound_holds_for_any_sequence_of_versions(
    entries: list[tuple[int, int, int]],
) -> None:
    for major, minor, pad in entries:
        text = " " * pad + f"{major}.{minor}"
        if fits(major, minor, 0) and len(text) <= 100:
            encode_app_version(text)
        assert versions._CACHE.size <= versions.CACHE_MAX_BYTES
