"""COPY text format, and the lines ``to_row`` renders itself for plain bodies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from login_etl.copyformat import copy_line, copy_text
from login_etl.masking import Masker
from login_etl.records import ParsedRow, to_row
from login_etl.table import CURRENT_SHAPE, LEGACY_SHAPE, TableShape

MASKER = Masker(b"test-key")
DAY = "2026-01-02"


@pytest.mark.parametrize(
    ("row", "line"),
    [
        (("u1", None, 7), "u1\t\\N\t7"),
        (("a\tb", "c\nd", "e\rf"), "a\\tb\tc\\nd\te\\rf"),
        (("back\\slash", "\\N", ""), "back\\\\slash\t\\\\N\t"),  # a literal \N is not NULL
        ((None, None), "\\N\t\\N"),
    ],
)
def test_copy_line_escapes_exactly_what_copy_needs(row: tuple[object, ...], line: str) -> None:
    assert copy_line(row) == line


def test_copy_text_ends_every_line() -> None:
    assert copy_text([("a",), ("b",)]) == "a\nb\n"
    assert copy_text([]) == ""


def test_a_plain_body_gets_its_line_from_to_row() -> None:
    body = json.dumps({"user_id": "u1", "ip": "10.0.0.1", "app_version": "1.2"})
    parsed = to_row(body, CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(parsed, ParsedRow)
    assert parsed.copy_line is not None
    assert parsed.copy_line == copy_line(parsed.row)


@pytest.mark.parametrize("body", ['{"user_id": "u\\u00e9"}', '{"user_id": "caf\u00e9"}'])
def test_a_body_with_escapes_or_non_ascii_leaves_the_line_to_the_sink(body: str) -> None:
    parsed = to_row(body, CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(parsed, ParsedRow)
    assert parsed.copy_line is None


values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["\t", "\n", "\\", "\\N", "", " ", "10.0.0.1", "1.2.3"]),
    st.integers(min_value=0, max_value=3000),
)
login = st.fixed_dictionaries(
    {"user_id": st.text(min_size=1, max_size=12)},
    optional={k: values for k in ("device_type", "locale", "ip", "device_id", "app_version")},
)


@given(obj=login, shape=st.sampled_from([CURRENT_SHAPE, LEGACY_SHAPE]))
def test_to_rows_own_line_is_always_the_escaped_line(
    obj: dict[str, object], shape: TableShape
) -> None:
    for body in (json.dumps(obj), json.dumps(obj, ensure_ascii=False)):
        parsed = to_row(body, shape, MASKER, DAY)
        if isinstance(parsed, ParsedRow) and parsed.copy_line is not None:
            assert parsed.copy_line == copy_line(parsed.row)
