"""The record rules are written once (records.FIELDS, records.CONTENT_RULES) and the fast
path (a plain body: ASCII, no backslash) and the careful path give the same result.

The careful path is reached from outside by adding one unknown key with a non-ASCII value:
the known keys are the same, so the row must be too (one more unknown key is counted).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from login_etl import records
from login_etl.copyformat import copy_line
from login_etl.masking import Masker
from login_etl.records import ParsedRow, Rejection, to_row
from login_etl.table import CURRENT_SHAPE, LEGACY_SHAPE, TableShape

MASKER = Masker(b"test-key")
DAY = "2026-01-02"
SHAPES = [CURRENT_SHAPE, LEGACY_SHAPE]
CAREFUL_KEY = "\u2603 careful path"  # longer than any generated key: never a duplicate


def careful(body: str) -> str:
    """``body`` (a JSON object) with one more unknown key that makes it not plain."""
    extra = json.dumps({CAREFUL_KEY: "\u00e9"}, ensure_ascii=False)
    return extra if body.strip() == "{}" else body.rstrip()[:-1] + ", " + extra[1:]


def both_paths(body: str, shape: TableShape) -> tuple[ParsedRow | Rejection, ...]:
    """to_row of ``body`` and of its careful variant; asserts the variant took that path."""
    fast, slow = (to_row(raw, shape, MASKER, DAY) for raw in (body, careful(body)))
    assert not isinstance(slow, ParsedRow) or slow.copy_line is None  # the careful path
    return fast, slow


def assert_same(fast: ParsedRow | Rejection, slow: ParsedRow | Rejection) -> None:
    if isinstance(fast, Rejection):
        assert slow == fast
        return
    assert isinstance(slow, ParsedRow), slow
    assert slow.row == fast.row
    assert slow.unknown_keys == fast.unknown_keys + 1
    if fast.copy_line is not None:  # what the fast path renders is what COPY's escaping gives
        assert fast.copy_line == copy_line(fast.row)


# --- the two paths agree -----------------------------------------------------------------

CAPS = {field.name: field.cap for field in records.FIELDS} | {"app_version": 100}
plain_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), max_size=12
)  # what real traffic sends
values = st.one_of(
    st.none(),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    st.sampled_from(["", " ", "\t", " \n ", "0", "42", "-1", "1e3", "2.3.0", " 2.3 ", "0.60"]),
    st.sampled_from(["2147.483.647", "2147.483.648", "1.1000", "::ffff:1.2.3.4", "10.0.0.1"]),
    st.text(max_size=8),  # any unicode, control characters
    st.text(st.characters(exclude_categories=()), max_size=6),  # lone surrogates, U+0000
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def near_cap(draw: st.DrawFn, field: str) -> str:
    """A text of the field's cap, one less or one more; padded, or non-ASCII."""
    length = CAPS[field] + draw(st.sampled_from([-1, 0, 1]))
    fill = draw(st.sampled_from(["x", " ", "\u00e9", "7", "\x00"]))
    return draw(st.sampled_from(["1.2.3", "", "u"])).center(length, fill)


@st.composite
def login_bodies(draw: st.DrawFn) -> str:
    obj: dict[str, Any] = {}
    for field in CAPS:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            continue  # missing
        obj[field] = draw([near_cap(field), values, plain_text][min(choice - 1, 2)])
    obj.update(draw(st.dictionaries(st.text(max_size=8), values, max_size=2)))
    return json.dumps(obj, ensure_ascii=draw(st.booleans()))


@settings(max_examples=600, deadline=None)
@given(login_bodies(), st.sampled_from(SHAPES))
@example('{"user_id": "u1", "ip": " 10.0.0.1 ", "app_version": "2.3.0"}', CURRENT_SHAPE)
@example('{"user_id": "u1", "device_type": "", "locale": null}', LEGACY_SHAPE)
def test_fast_and_careful_paths_give_the_same_result(body: str, shape: TableShape) -> None:
    assert_same(*both_paths(body, shape))


def test_the_generator_reaches_the_fast_path() -> None:
    # Without plain, accepted bodies the test above would compare the careful path with itself.
    accepted = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(login_bodies())
    def collect(body: str) -> None:
        result = to_row(body, CURRENT_SHAPE, MASKER, DAY)
        accepted.add(isinstance(result, ParsedRow) and result.copy_line is not None)

    collect()
    assert accepted == {True, False}


# The reason, field and detail of every rule, as logged (no value in any of them).
Expected = tuple[str, str, str]  # reason, field, detail
PINNED: list[tuple[dict[str, object], Expected]] = [
    ({"user_id": None}, ("missing_user_id", "user_id", "user_id is required")),
    ({"user_id": ...}, ("missing_user_id", "user_id", "user_id is required")),  # ... = no key
    ({"user_id": ""}, ("empty_user_id", "user_id", "user_id must not be empty")),
    ({"user_id": 7}, ("wrong_type", "user_id", "user_id must be a string or null")),
    ({"user_id": "u" * 129}, ("too_long", "user_id", "user_id exceeds 128 characters")),
    ({"user_id": "\x00"}, ("nul_character", "user_id", "user_id contains U+0000")),
    ({"user_id": "\x00" * 129}, ("too_long", "user_id", "user_id exceeds 128 characters")),
    ({"device_type": []}, ("wrong_type", "device_type", "device_type must be a string or null")),
    ({"device_type": "d" * 33}, ("too_long", "device_type", "device_type exceeds 32 characters")),
    ({"locale": "l" * 33}, ("too_long", "locale", "locale exceeds 32 characters")),
    ({"locale": "a\x00"}, ("nul_character", "locale", "locale contains U+0000")),
    ({"ip": "1" * 65}, ("too_long", "ip", "ip exceeds 64 characters")),
    ({"ip": {}}, ("wrong_type", "ip", "ip must be a string or null")),
    ({"device_id": "d" * 257}, ("too_long", "device_id", "device_id exceeds 256 characters")),
    ({"device_id": "\ud800"}, ("not_utf8", "device_id", "device_id is not valid Unicode text")),
    # the first field in check order wins: user_id, device_type, locale, ip, device_id
    ({"ip": 1, "locale": 1, "device_id": 1},
     ("wrong_type", "locale", "locale must be a string or null")),
    ({"user_id": 1, "device_type": 1},
     ("wrong_type", "user_id", "user_id must be a string or null")),
    ({"device_type": 1, "app_version": "x"},
     ("wrong_type", "device_type", "device_type must be a string or null")),
]  # fmt: skip
PINNED_INTEGER: list[tuple[object, Expected]] = [
    ("v" * 101, ("too_long", "app_version", "app_version exceeds 100 characters")),
    ("2\x00", ("nul_character", "app_version", "app_version contains U+0000")),
    ("\ud800", ("not_utf8", "app_version", "app_version is not valid Unicode text")),
    ("abc",
     ("invalid_app_version", "app_version", "app_version must look like MAJOR[.MINOR[.PATCH]]")),
    ("1.1000", ("invalid_app_version", "app_version", "app_version MINOR and PATCH must be 0-999")),
    ("2148", ("invalid_app_version", "app_version", "app_version does not fit an integer column")),
    (-1, ("invalid_app_version", "app_version", "app_version must not be negative")),
    (True, ("invalid_app_version", "app_version", "app_version must be a string or an integer")),
    ([], ("invalid_app_version", "app_version", "app_version must be a string or an integer")),
]  # fmt: skip
PINNED_TEXT: list[tuple[object, Expected]] = [
    ("v" * 101, ("too_long", "app_version", "app_version exceeds 100 characters")),
    (7, ("wrong_type", "app_version", "app_version must be a string or null")),
    ("2\x00", ("nul_character", "app_version", "app_version contains U+0000")),
]


def cases() -> list[tuple[dict[str, object], tuple[str, str, str], TableShape]]:
    base: dict[str, object] = {"user_id": "u1"}
    return [
        *((base | fields, expected, shape) for fields, expected in PINNED for shape in SHAPES),
        *((base | {"app_version": v}, e, CURRENT_SHAPE) for v, e in PINNED_INTEGER),
        *((base | {"app_version": v}, e, LEGACY_SHAPE) for v, e in PINNED_TEXT),
    ]


@pytest.mark.parametrize(("obj", "expected", "shape"), cases())
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_rejections_are_exactly_as_logged(
    obj: dict[str, object], expected: tuple[str, str, str], shape: TableShape, ensure_ascii: bool
) -> None:
    obj = {key: value for key, value in obj.items() if value is not ...}
    fast, slow = both_paths(json.dumps(obj, ensure_ascii=ensure_ascii), shape)
    assert fast == slow == Rejection(*expected)


# --- each rule is written once -----------------------------------------------------------


def test_both_paths_read_the_field_table(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {field.name: field for field in records.FIELDS}
    fields["device_type"] = fields["device_type"]._replace(cap=3)
    fields["locale"] = fields["locale"]._replace(required=True)
    monkeypatch.setattr(records, "FIELDS", tuple(fields.values()))

    fast, slow = both_paths('{"user_id": "u", "device_type": "ios", "locale": "RU"}', LEGACY_SHAPE)
    assert isinstance(fast, ParsedRow) and fast.copy_line is not None  # the fast path took it
    assert_same(fast, slow)
    too_long = Rejection("too_long", "device_type", "device_type exceeds 3 characters")
    assert both_paths('{"user_id": "u", "device_type": "andr", "locale": "RU"}', LEGACY_SHAPE) == (
        too_long,
        too_long,
    )
    missing = Rejection("missing_locale", "locale", "locale is required")
    assert both_paths('{"user_id": "u"}', LEGACY_SHAPE) == (missing, missing)
    empty = Rejection("empty_locale", "locale", "locale must not be empty")
    assert both_paths('{"user_id": "u", "locale": ""}', LEGACY_SHAPE) == (empty, empty)


def test_the_caps_in_the_table_are_the_documented_ones() -> None:
    assert {field.name: (field.cap, field.required) for field in records.FIELDS} == {
        "user_id": (128, True),
        "device_type": (32, False),
        "locale": (32, False),
        "ip": (64, False),
        "device_id": (256, False),
    }
    assert {*CAPS} == records.KNOWN_KEYS


# A plain body's strings hold printable ASCII only, without a backslash or a quote (JSON
# refuses raw control characters, and every escape starts with a backslash).
plain_json_strings = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), max_size=40
).map(lambda text: f'"{text}"')


@given(plain_json_strings)
@example('" a "')
def test_plain_bodies_keep_every_content_rule(literal: str) -> None:
    # The fast path skips CONTENT_RULES for plain bodies: any rule a plain body could break
    # (one that belongs in FIELDS' type-and-cap checks, or in the fast check) fails here.
    value = json.loads(literal)
    for reason, _, breaks in records.CONTENT_RULES:
        assert not breaks(value), reason


def test_a_content_rule_a_plain_body_can_break_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = ("space", "contains a space", lambda value: " " in value)
    monkeypatch.setattr(records, "CONTENT_RULES", (*records.CONTENT_RULES, rule))
    with pytest.raises(AssertionError):
        test_plain_bodies_keep_every_content_rule()
    with pytest.raises(AssertionError):
        test_fast_and_careful_paths_give_the_same_result()
