"""Per-record validation and row building (docs/contract.md).

Masks are checked against HMAC values computed with the OpenSSL CLI (see test_masking.py):
``printf '%s' VALUE | openssl dgst -sha256 -hmac test-key``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from login_etl.masking import Masker
from login_etl.records import ParsedRow, Rejection, to_row
from login_etl.table import CURRENT_SHAPE, LEGACY_SHAPE, TableShape

KEY = b"test-key"
MASKER = Masker(KEY)
DAY = "2026-01-02"  # create_date as the pipeline passes it (ISO UTC date)

HMAC_IP = "cbe3521f97b91bd1b017912607500d1ea6970a6bcf2aed9eb534bd43e8db294d"  # 199.172.111.135
HMAC_DEVICE = "b66f875f511a56d2a5bd246eb6834577b04acf4947e257bc99dd550e58b70c35"  # 593-47-5928
HMAC_1234 = "cc7adbdaba69eef32cad9b25b56bef92241c593ed53e48c5056ec33c1607417f"  # 1.2.3.4

SAMPLE = {
    "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
    "app_version": "2.3.0",
    "device_type": "android",
    "ip": "199.172.111.135",
    "locale": "RU",
    "device_id": "593-47-5928",
}
CURRENT_COLUMNS = (
    "user_id",
    "device_type",
    "masked_ip",
    "masked_device_id",
    "locale",
    "app_version",
    "create_date",
)
HEX64 = re.compile(r"[0-9a-f]{64}")
REASON_CODE = re.compile(r"[a-z][a-z0-9_]*")
TEXT_FIELDS = ("user_id", "device_type", "locale", "ip", "device_id")
# The caps of docs/contract.md#length-caps (pinned here, checked against the code below).
BODY_MAX, IP_MAX, DEVICE_ID_MAX = 1_048_576, 64, 256


def body(**fields: Any) -> str:
    """SAMPLE with ``fields`` replaced; a value of ``...`` removes the key."""
    obj = {**SAMPLE, **fields}
    return json.dumps({k: v for k, v in obj.items() if v is not ...})


def accept(raw: str, shape: TableShape = CURRENT_SHAPE) -> dict[str, object]:
    result = to_row(raw, shape, MASKER, DAY)
    assert isinstance(result, ParsedRow), result
    assert len(result.row) == len(shape.columns)
    return dict(zip(shape.columns, result.row, strict=True))


def reject(raw: object, field: str | None, shape: TableShape = CURRENT_SHAPE) -> Rejection:
    result = to_row(raw, shape, MASKER, DAY)
    assert isinstance(result, Rejection), result
    assert REASON_CODE.fullmatch(result.reason), result.reason
    assert result.field == field
    return result


def assert_not_leaked(rejection: Rejection, secret: str) -> None:
    assert secret not in rejection.detail
    assert secret not in repr(rejection)


# --- the happy path -----------------------------------------------------------------


def test_current_shape_columns() -> None:
    assert CURRENT_SHAPE.columns == CURRENT_COLUMNS
    assert LEGACY_SHAPE.columns == CURRENT_COLUMNS[:-1]


def test_sample_message_current_shape() -> None:
    row = accept(json.dumps(SAMPLE))
    assert row == {
        "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
        "device_type": "android",
        "masked_ip": HMAC_IP,
        "masked_device_id": HMAC_DEVICE,
        "locale": "RU",
        "app_version": 2_003_000,
        "create_date": row["create_date"],
    }
    assert str(row["create_date"]) == "2026-01-02"


def test_create_date_is_the_given_date() -> None:
    other = to_row(json.dumps(SAMPLE), CURRENT_SHAPE, MASKER, "1999-12-31")
    assert isinstance(other, ParsedRow)
    assert str(other.row[-1]) == "1999-12-31"


def test_sample_message_legacy_shape_has_no_create_date() -> None:
    result = to_row(json.dumps(SAMPLE), LEGACY_SHAPE, MASKER, DAY)
    assert isinstance(result, ParsedRow)
    assert len(result.row) == 6
    assert dict(zip(CURRENT_COLUMNS[:-1], result.row, strict=True)) == {
        "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
        "device_type": "android",
        "masked_ip": HMAC_IP,
        "masked_device_id": HMAC_DEVICE,
        "locale": "RU",
        "app_version": "2.3.0",
    }


def test_only_user_id_required_rest_null() -> None:
    row = accept(json.dumps({"user_id": "u1"}))
    assert row["user_id"] == "u1"
    for column in ("device_type", "masked_ip", "masked_device_id", "locale", "app_version"):
        assert row[column] is None


def test_explicit_nulls_give_null_columns() -> None:
    row = accept(body(device_type=None, ip=None, locale=None, device_id=None, app_version=None))
    for column in ("device_type", "masked_ip", "masked_device_id", "locale", "app_version"):
        assert row[column] is None


@pytest.mark.parametrize("blank", ["", "  ", "\t\n"])
def test_blank_ip_and_device_id_give_null(blank: str) -> None:
    row = accept(body(ip=blank, device_id=blank))
    assert row["masked_ip"] is None
    assert row["masked_device_id"] is None


def test_ip_and_device_id_are_canonicalised_before_masking() -> None:
    row = accept(body(ip="  ::ffff:1.2.3.4 ", device_id="\t593-47-5928  "))
    assert row["masked_ip"] == HMAC_1234
    assert row["masked_device_id"] == HMAC_DEVICE


@pytest.mark.parametrize(
    ("ip", "device_id"),
    [
        ("199.172.111.135", "593-47-5928"),
        ("  10.0.0.1 ", " 123-45-6789 "),
        ("2001:DB8::1", "dev"),
        ("not-an-ip", "x"),
    ],
)
def test_row_never_contains_raw_ip_or_device_id(ip: str, device_id: str) -> None:
    result = to_row(body(ip=ip, device_id=device_id), CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(result, ParsedRow)
    for value in result.row:
        text = str(value)
        for raw in (ip, device_id, ip.strip(), device_id.strip()):
            assert raw not in text


def test_app_version_integer_column_encodes() -> None:
    assert accept(body(app_version="0.60"))["app_version"] == 60_000
    assert accept(body(app_version="2.00"))["app_version"] == 2_000_000
    assert accept(body(app_version=" 2.3 "))["app_version"] == 2_003_000
    assert accept(body(app_version=7))["app_version"] == 7_000_000
    assert accept(body(app_version=...))["app_version"] is None


@pytest.mark.parametrize(
    "version", ["abc", "1.2.3.4", 2.5, True, -1, "1.1000", "", "1..2", "2147.483.648", [2], {}]
)
def test_app_version_integer_column_rejects(version: object) -> None:
    rejection = reject(body(app_version=version), "app_version")
    if isinstance(version, str) and version:
        assert_not_leaked(rejection, version)


@pytest.mark.parametrize("version", ["2.3.0", "2.00", " 2.3 ", "abc", "1.2.3.4", "", "x" * 100])
def test_app_version_text_column_stores_string_as_sent(version: str) -> None:
    assert accept(body(app_version=version), LEGACY_SHAPE)["app_version"] == version


def test_app_version_text_column_rejects_over_100_characters() -> None:
    rejection = reject(body(app_version="v" * 101), "app_version", LEGACY_SHAPE)
    assert_not_leaked(rejection, "v" * 101)


def test_app_version_text_column_null() -> None:
    assert accept(body(app_version=None), LEGACY_SHAPE)["app_version"] is None
    assert accept(body(app_version=...), LEGACY_SHAPE)["app_version"] is None


@pytest.mark.parametrize("version", [{"v": 1}, ["1"], []])
def test_app_version_text_column_rejects_non_string(version: object) -> None:
    reject(body(app_version=version), "app_version", LEGACY_SHAPE)


@pytest.mark.parametrize("shape", [CURRENT_SHAPE, LEGACY_SHAPE])
def test_app_version_nul_or_lone_surrogate_rejected(shape: TableShape) -> None:
    reject(body(app_version="2.3\x00"), "app_version", shape)
    reject(body(app_version="2.3\ud800"), "app_version", shape)


# --- rule 1: JSON object --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["", "   ", "{", "not json", "{'user_id': 'u1'}", '{"user_id": "u1"', "\x00", "[1,"]
)
def test_invalid_json_rejected(raw: str) -> None:
    reject(raw, None)


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        (' \n{"user_id": "u1"}\t ', True),  # whitespace around: json.loads accepts it
        ('{"user_id": "u1"} x', False),  # trailing data
        ('{"user_id": "u1"}{}', False),
        ('\ufeff{"user_id": "u1"}', False),  # a BOM: json.loads refuses str input with one
    ],
)
def test_json_is_parsed_as_json_loads_parses_it(raw: str, valid: bool) -> None:
    result = to_row(raw, CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(result, ParsedRow) is valid


json_like = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda before, obj, after: before + json.dumps(obj) + after,
        st.sampled_from(["", " ", "\n", "x", "{"]),
        st.dictionaries(st.sampled_from(["user_id", "ip", "k"]), st.text(max_size=5), max_size=3),
        st.sampled_from(["", " ", "\t\n", "x", "}", ",1", "[]"]),
    ),
)


@given(json_like)
def test_invalid_json_exactly_when_json_loads_fails(raw: str) -> None:
    try:
        json.loads(raw)
        loads_ok = True
    except ValueError:
        loads_ok = False
    result = to_row(raw, CURRENT_SHAPE, MASKER, DAY)
    assert (isinstance(result, Rejection) and result.reason == "invalid_json") is not loads_ok


@pytest.mark.parametrize(
    "raw", ["[]", '["user_id", "u1"]', '"user_id"', "42", "4.2", "true", "null", '[{"user_id": 1}]']
)
def test_non_object_json_rejected(raw: str) -> None:
    reject(raw, None)


def test_invalid_and_non_object_have_different_reasons() -> None:
    assert reject("nope", None).reason != reject("[]", None).reason


def test_deeply_nested_or_huge_json_is_rejected_not_raised() -> None:
    reject("[" * 100_000 + "]" * 100_000, None)
    # an unknown key whose value is an int beyond Python's int-parsing digit limit
    result = to_row('{"user_id": "u", "n": ' + "9" * 10_000 + "}", CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(result, (ParsedRow, Rejection))


@pytest.mark.parametrize("raw", [None, b'{"user_id": "u1"}', 42])
def test_non_string_body_rejected(raw: object) -> None:
    reject(raw, None)


def test_not_a_login_message_rejected() -> None:
    rejection = reject('{"foo": "oops_wrong_msg_type", "bar": "123"}', "user_id")
    assert_not_leaked(rejection, "oops_wrong_msg_type")


# --- rule 2: user_id ------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id", [..., None, "", 42, 4.2, True, False, [], ["u"], {}, {"id": "u"}, "u" * 129]
)
def test_user_id_rejected(user_id: object) -> None:
    reject(body(user_id=user_id), "user_id")


@pytest.mark.parametrize("user_id", ["u", "u" * 128, "\U0001f600" * 128, "é" * 128])
def test_user_id_accepted(user_id: str) -> None:
    assert accept(body(user_id=user_id))["user_id"] == user_id


def test_user_id_too_long_does_not_leak() -> None:
    value = "LEAKME" + "q" * 123
    assert len(value) == 129
    assert_not_leaked(reject(body(user_id=value), "user_id"), value)


def test_user_id_length_is_counted_in_characters_not_bytes() -> None:
    assert accept(body(user_id="\U0001f600" * 128))["user_id"] == "\U0001f600" * 128
    reject(body(user_id="\U0001f600" * 129), "user_id")


# --- rule 3: device_type, locale --------------------------------------------------------


@pytest.mark.parametrize("field", ["device_type", "locale"])
@pytest.mark.parametrize("value", ["x" * 32, "", "\U0001f600" * 32, "é" * 32])
def test_short_text_up_to_32_accepted(field: str, value: str) -> None:
    assert accept(body(**{field: value}))[field] == value


@pytest.mark.parametrize("field", ["device_type", "locale"])
@pytest.mark.parametrize("value", [None, ...])
def test_short_text_null_or_missing_is_null(field: str, value: object) -> None:
    assert accept(body(**{field: value}))[field] is None


@pytest.mark.parametrize("field", ["device_type", "locale"])
def test_short_text_over_32_rejected_not_truncated(field: str) -> None:
    value = "SECRET" + "y" * 27
    assert len(value) == 33
    assert_not_leaked(reject(body(**{field: value}), field), value)


# --- rule 4: wrong JSON types, U+0000, lone surrogates ----------------------------------

WRONG_TYPES = [0, 12345, -1.5, 1e300, True, False, {}, {"a": "b"}, [], ["10.0.0.1"]]


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_wrong_json_type_rejected(field: str, value: object) -> None:
    rejection = reject(body(**{field: value}), field)
    if len(json.dumps(value)) >= 4:
        assert_not_leaked(rejection, json.dumps(value))


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("value", ["\x00", "a\x00", "\x00b", "SECRET\x00VALUE"])
def test_nul_character_rejected(field: str, value: str) -> None:
    rejection = reject(body(**{field: value}), field)
    assert_not_leaked(rejection, value)
    if "SECRET" in value:
        assert_not_leaked(rejection, "SECRET")


@pytest.mark.parametrize("field", [*TEXT_FIELDS, "app_version"])
@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\udc00y", "\\ude00\\ud83d"])
def test_lone_surrogate_escape_rejected(field: str, escape: str) -> None:
    raw = body(**{field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', f'"{escape}"')
    assert escape in raw
    reject(raw, field)
    reject(raw, field, LEGACY_SHAPE)


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_surrogate_pair_escape_is_valid_text(field: str) -> None:
    raw = body(**{field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', '"\\ud83d\\ude00"')
    accept(raw)


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_distinct_reasons_per_failure_kind(field: str) -> None:
    wrong_type = reject(body(**{field: 1}), field).reason
    nul = reject(body(**{field: "a\x00"}), field).reason
    assert wrong_type != nul
    if field in ("user_id", "device_type", "locale"):
        too_long = reject(body(**{field: "z" * 129}), field).reason
        assert len({wrong_type, nul, too_long}) == 3


# --- rule 5: unknown extra keys ---------------------------------------------------------


def test_unknown_keys_ignored_and_counted() -> None:
    extra = {"foo": "SECRET-FOO", "bar": {"nested": [1, 2]}, "USER_ID": "x", "ip ": "1.1.1.1"}
    raw = json.dumps({**SAMPLE, **extra})
    result = to_row(raw, CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(result, ParsedRow)
    assert result.unknown_keys == len(extra)
    plain = to_row(json.dumps(SAMPLE), CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(plain, ParsedRow)
    assert plain.unknown_keys == 0
    assert result.row == plain.row


def test_unknown_keys_with_invalid_values_are_ignored() -> None:
    # NUL, lone surrogate and odd types in an unknown key do not reject the record
    raw = body(extra="PLACEHOLDER", other=None).replace('"PLACEHOLDER"', '"\\u0000\\ud800"')
    result = to_row(raw, CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(result, ParsedRow)
    assert result.unknown_keys == 2


def test_unknown_keys_counted_with_minimal_body() -> None:
    result = to_row('{"user_id": "u", "a": 1, "b": 2, "c": 3}', CURRENT_SHAPE, MASKER, DAY)
    assert isinstance(result, ParsedRow)
    assert result.unknown_keys == 3


# --- length caps: checked before anything is parsed, stripped, masked or cached -----------


def test_caps_are_the_documented_numbers() -> None:
    from login_etl import records

    assert (records.BODY_MAX, records.IP_MAX, records.DEVICE_ID_MAX) == (
        BODY_MAX,
        IP_MAX,
        DEVICE_ID_MAX,
    )


def test_longest_ipv6_text_with_a_zone_id_fits_the_ip_cap() -> None:
    longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%" + "i" * 15  # IFNAMSIZ - 1
    assert len(longest) == 61 <= IP_MAX
    assert accept(body(ip=longest))["masked_ip"] == MASKER.mask_ip(longest)


@pytest.mark.parametrize(("field", "cap"), [("ip", IP_MAX), ("device_id", DEVICE_ID_MAX)])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_ip_and_device_id_up_to_their_cap_are_masked(
    field: str, cap: int, ascii_only: bool
) -> None:
    value = "1.2.3.4".center(cap) if ascii_only else "\u00e9" * cap  # padding counts
    column = f"masked_{field}"
    assert accept(body(**{field: value}))[column] == accept(body(**{field: value.strip()}))[column]


@pytest.mark.parametrize(("field", "cap"), [("ip", IP_MAX), ("device_id", DEVICE_ID_MAX)])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_ip_and_device_id_over_their_cap_rejected(field: str, cap: int, ascii_only: bool) -> None:
    secret = "10.0.0.1" if field == "ip" else "593-47-5928"
    value = secret.center(cap + 1) if ascii_only else secret + "\u00e9" * cap
    rejection = reject(body(**{field: value}), field)
    assert rejection.reason == "too_long"
    assert_not_leaked(rejection, secret)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.2.3".center(100), 1_002_003),
        ("7".rjust(100, "0"), 7_000_000),
        ("\t" * 97 + "2.3", 2_003_000),
    ],
)
def test_app_version_integer_column_up_to_100_characters(version: str, expected: int) -> None:
    assert len(version) == 100
    assert accept(body(app_version=version))["app_version"] == expected


@pytest.mark.parametrize(
    "version", ["1.2.3".center(101), "1.2.3" + " " * 100_000, " " * 101, "7".rjust(101, "0")]
)
def test_app_version_integer_column_over_100_characters_too_long(version: str) -> None:
    # valid versions once stripped: the cap counts the text as sent, before any parsing
    rejection = reject(body(app_version=version), "app_version")
    assert rejection.reason == "too_long"
    assert "100" in rejection.detail


def test_app_version_over_the_cap_is_never_cached() -> None:
    from login_etl import versions

    before = len(versions._CACHE)
    for pad in range(101, 400):
        reject(body(app_version="3.4.5".rjust(pad)), "app_version")
    assert len(versions._CACHE) <= before


def test_body_up_to_sqs_maximum_accepted() -> None:
    raw = json.dumps({**SAMPLE, "filler": ""})
    raw = raw.replace('"filler": ""', '"filler": "' + "f" * (BODY_MAX - len(raw)) + '"')
    assert len(raw) == BODY_MAX
    assert accept(raw)["user_id"] == SAMPLE["user_id"]


@pytest.mark.parametrize("raw", ["{" + " " * BODY_MAX + "}", " " * (BODY_MAX + 1)])
def test_body_over_sqs_maximum_rejected_before_parsing(raw: str) -> None:
    rejection = reject(raw, None)
    assert rejection.reason == "body_too_large"


def test_body_over_sqs_maximum_rejected_even_if_a_valid_login() -> None:
    raw = json.dumps({**SAMPLE, "filler": "f" * BODY_MAX})
    rejection = reject(raw, None)
    assert rejection.reason == "body_too_large"
    assert_not_leaked(rejection, SAMPLE["ip"])


# --- property: to_row never raises, and what it accepts fits the table -------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=10),  # surrogates, NUL
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
known_key_values = st.one_of(
    json_values,
    st.text(max_size=140),
    st.sampled_from(["2.3.0", "0.60", " 2.3 ", "1.2.3.4", "2147.483.648", "::ffff:1.2.3.4"]),
)
login_objects = st.dictionaries(
    st.one_of(
        st.sampled_from(["user_id", "app_version", "device_type", "ip", "locale", "device_id"]),
        st.text(max_size=8),
    ),
    known_key_values,
    max_size=8,
)
bodies = st.one_of(
    json_values.map(json.dumps),
    login_objects.map(json.dumps),
    login_objects.map(lambda o: json.dumps(o, ensure_ascii=False)),
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


def check_row_fits(row: tuple[object, ...], shape: TableShape) -> None:
    values = dict(zip(shape.columns, row, strict=True))
    assert isinstance(values["user_id"], str)
    assert 1 <= len(values["user_id"]) <= 128
    for column in ("device_type", "locale"):
        assert values[column] is None or (
            isinstance(values[column], str) and len(values[column]) <= 32
        )
    for column in ("masked_ip", "masked_device_id"):
        assert values[column] is None or HEX64.fullmatch(values[column])  # type: ignore[arg-type]
    version = values["app_version"]
    if shape is CURRENT_SHAPE:
        assert version is None or (type(version) is int and 0 <= version <= 2**31 - 1)
    else:
        assert version is None or (isinstance(version, str) and len(version) <= 100)
    for value in row:
        if isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")  # no lone surrogates


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.sampled_from([CURRENT_SHAPE, LEGACY_SHAPE]))
def test_to_row_never_raises_and_accepted_rows_fit(raw: str, shape: TableShape) -> None:
    result = to_row(raw, shape, MASKER, DAY)
    assert isinstance(result, (ParsedRow, Rejection))
    if isinstance(result, Rejection):
        assert REASON_CODE.fullmatch(result.reason)
        return
    check_row_fits(result.row, shape)
    obj = json.loads(raw)
    for field, column in (("ip", "masked_ip"), ("device_id", "masked_device_id")):
        value = obj.get(field)
        masked = dict(zip(shape.columns, result.row, strict=True))[column]
        if isinstance(value, str) and value.strip():
            assert masked is not None
            assert masked != value
        else:
            assert masked is None


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([*TEXT_FIELDS, "app_version"]), st.text(max_size=20))
def test_rejection_never_contains_the_value(field: str, value: str) -> None:
    core = "\u2603" + value  # a marker no fixed message contains
    for shape in (CURRENT_SHAPE, LEGACY_SHAPE):
        for bad in (core + "\x00", core * 200, "\x00" + core, core + "\ud800", "1." + core):
            result = to_row(body(**{field: bad}), shape, MASKER, DAY)
            if isinstance(result, Rejection):
                assert core not in result.detail
                assert core not in repr(result)
