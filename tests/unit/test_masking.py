"""HMAC-SHA256 masking of ``ip`` / ``device_id`` and the canonical forms (docs/contract.md).

The expected masks below were computed independently of the code under test, with the
OpenSSL 3.0 CLI in a UTF-8 shell::

    printf '%s' "$VALUE" | openssl dgst -sha256 -hmac "$KEY"

and, for the non-ASCII key, cross-checked with an explicit byte key::

    printf '%s' "$VALUE" | openssl dgst -sha256 -mac HMAC \
        -macopt hexkey:636cc3a92d73656372c3a874652df09f9491

``RFC4231_CASE_2`` is the published RFC 4231 test case 2 (key "Jefe").
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from login_etl import masking
from login_etl.masking import Masker, canonical_device_id, canonical_ip

KEY = "test-key"
OTHER_KEY = "other-key"
# "clé-secrète-🔑" (UTF-8 bytes 636cc3a92d73656372c3a874652df09f9491)
NON_ASCII_KEY = "cl\u00e9-secr\u00e8te-\U0001f511"
# "appareil-été-№5" (UTF-8 bytes 617070617265696c2dc3a974c3a92de2849635)
NON_ASCII_VALUE = "appareil-\u00e9t\u00e9-\u21165"

# printf '%s' VALUE | openssl dgst -sha256 -hmac KEY  (see the module docstring)
# key "test-key"; values: IPV4 "199.172.111.135", DEVICE "593-47-5928", IPV6 "2001:db8::1",
# 1234 "1.2.3.4", 01234 "01.2.3.4", GARBAGE "not an ip"
HMAC_TEST_KEY_IPV4 = "cbe3521f97b91bd1b017912607500d1ea6970a6bcf2aed9eb534bd43e8db294d"
HMAC_TEST_KEY_DEVICE = "b66f875f511a56d2a5bd246eb6834577b04acf4947e257bc99dd550e58b70c35"
HMAC_TEST_KEY_IPV6 = "dd8a3bee5ec84f28025e29cdc7d8f017d311c6c75a11e91927d4483e7cf19f83"
HMAC_TEST_KEY_1234 = "cc7adbdaba69eef32cad9b25b56bef92241c593ed53e48c5056ec33c1607417f"
HMAC_TEST_KEY_01234 = "cc519d998f8db98db178af4675136583911003c1f1bd9a8f89c5f351f475cb97"
HMAC_TEST_KEY_GARBAGE = "72c7ff0cf53d98bb3f0314f51f9c891f5be8a191688f5d1722145572c483e5c4"
# key "other-key", value "199.172.111.135"
HMAC_OTHER_KEY_IPV4 = "99b12216c2a1d6c2575153fc5ed6fc06a60ab61d8c4b1654f2aced307472f5d8"
# key NON_ASCII_KEY; values NON_ASCII_VALUE and "199.172.111.135"
HMAC_NON_ASCII_KEY_VALUE = "b09679886d14b21ac91516cfc1ebcd6c21a0a9be565d7caa9e7e23b136fb5357"
HMAC_NON_ASCII_KEY_IPV4 = "d4c6d5349242643baca0c0d52e67ef2b34c25bdc4ed2d45103d1c05f0cf46f1f"
# key-length edge cases of HMAC (block size 64 bytes; longer keys are hashed first),
# value "199.172.111.135": key "k" * 64, "k" * 65, and "\u00e9" * 40 (40 chars, 80 bytes)
HMAC_KEY_64_BYTES = "bdf83e01f08edf2ddf7654caa9ea9b98b72103d53a15104ea52da56cbce258bc"
HMAC_KEY_65_BYTES = "d0088b9877763e26b6aa2305983c5d0a308412bd82433998d3df949a3ab4c6b3"
HMAC_KEY_80_UTF8_BYTES = "71ab1e19d5b1a942ec974945bb5e0075c8add94ba1f1dd75ee54d1a5e901bdaa"
# RFC 4231 test cases 2, 6 and 7 (the published values; openssl agrees)
RFC4231_CASE_2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
RFC4231_CASE_6 = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
RFC4231_CASE_7 = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"

HEX64 = re.compile(r"[0-9a-f]{64}")


def masker(key: str = KEY) -> Masker:
    return Masker(key.encode("utf-8"))


# --- known-answer vectors -------------------------------------------------------------


def test_non_ascii_constants_are_the_bytes_fed_to_openssl() -> None:
    assert NON_ASCII_KEY.encode("utf-8").hex() == "636cc3a92d73656372c3a874652df09f9491"
    assert NON_ASCII_VALUE.encode("utf-8").hex() == "617070617265696c2dc3a974c3a92de2849635"


def test_rfc4231_vectors() -> None:
    assert Masker(b"Jefe").mask("what do ya want for nothing?") == RFC4231_CASE_2
    long_key = Masker(b"\xaa" * 131)
    assert long_key.mask("Test Using Larger Than Block-Size Key - Hash Key First") == RFC4231_CASE_6
    assert (
        long_key.mask(
            "This is a test using a larger than block-size key and a larger than block-size"
            " data. The key needs to be hashed before being used by the HMAC algorithm."
        )
        == RFC4231_CASE_7
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("k" * 64, HMAC_KEY_64_BYTES),
        ("k" * 65, HMAC_KEY_65_BYTES),
        ("\u00e9" * 40, HMAC_KEY_80_UTF8_BYTES),  # the UTF-8 byte length counts, not chars
    ],
)
def test_key_length_edge_cases(key: str, expected: str) -> None:
    assert masker(key).mask_ip("199.172.111.135") == expected


@pytest.mark.parametrize(
    ("key", "method", "value", "expected"),
    [
        (KEY, "mask_ip", "199.172.111.135", HMAC_TEST_KEY_IPV4),
        (KEY, "mask_device_id", "593-47-5928", HMAC_TEST_KEY_DEVICE),
        (KEY, "mask_ip", "2001:db8::1", HMAC_TEST_KEY_IPV6),
        (KEY, "mask_ip", "1.2.3.4", HMAC_TEST_KEY_1234),
        (KEY, "mask_ip", "not an ip", HMAC_TEST_KEY_GARBAGE),
        (OTHER_KEY, "mask_ip", "199.172.111.135", HMAC_OTHER_KEY_IPV4),
        (NON_ASCII_KEY, "mask_device_id", NON_ASCII_VALUE, HMAC_NON_ASCII_KEY_VALUE),
        (NON_ASCII_KEY, "mask_ip", "199.172.111.135", HMAC_NON_ASCII_KEY_IPV4),
    ],
)
def test_mask_matches_openssl(key: str, method: str, value: str, expected: str) -> None:
    assert getattr(masker(key), method)(value) == expected


# --- canonical forms (checked through the mask, so the masked value is what is pinned) ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("199.172.111.135", HMAC_TEST_KEY_IPV4),  # IPv4 as is
        ("  199.172.111.135\t\n", HMAC_TEST_KEY_IPV4),  # surrounding whitespace stripped
        ("::ffff:1.2.3.4", HMAC_TEST_KEY_1234),  # IPv4-mapped IPv6 -> IPv4
        ("::FFFF:0102:0304", HMAC_TEST_KEY_1234),  # same, hex spelling, upper case
        ("2001:DB8:0:0::1", HMAC_TEST_KEY_IPV6),  # compressed standard form
        ("2001:0db8:0000:0000:0000:0000:0000:0001", HMAC_TEST_KEY_IPV6),
        (" 2001:db8::1 ", HMAC_TEST_KEY_IPV6),
        ("01.2.3.4", HMAC_TEST_KEY_01234),  # leading zero: does not parse -> as is
        (" 01.2.3.4 ", HMAC_TEST_KEY_01234),  # ... but still stripped
        ("not an ip", HMAC_TEST_KEY_GARBAGE),  # garbage as is
        ("\tnot an ip  ", HMAC_TEST_KEY_GARBAGE),
    ],
)
def test_mask_ip_canonicalises(raw: str, expected: str) -> None:
    assert masker().mask_ip(raw) == expected


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("199.172.111.135", "199.172.111.135"),
        ("  199.172.111.135\t", "199.172.111.135"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("01.2.3.4", "01.2.3.4"),
        (" 1.2.3.256 ", "1.2.3.256"),
        ("garbage", "garbage"),
    ],
)
def test_canonical_ip_table(raw: str, canonical: str) -> None:
    assert canonical_ip(raw) == canonical


def test_device_id_is_stripped_and_otherwise_unchanged() -> None:
    assert canonical_device_id("  593-47-5928\t") == "593-47-5928"
    assert masker().mask_device_id(" 593-47-5928\n") == HMAC_TEST_KEY_DEVICE
    # no case folding or other normalisation of device ids
    assert masker().mask_device_id("ABC") != masker().mask_device_id("abc")


def test_device_id_is_not_ip_canonicalised() -> None:
    # canonical(device_id) is only "stripped": an IPv6-looking device id is not compressed
    assert canonical_device_id("2001:DB8:0:0::1") == "2001:DB8:0:0::1"
    assert masker().mask_device_id("2001:DB8:0:0::1") != HMAC_TEST_KEY_IPV6


@pytest.mark.parametrize("blank", [None, "", " ", "\t\n  "])
def test_null_empty_or_blank_gives_null(blank: str | None) -> None:
    assert masker().mask_ip(blank) is None
    assert masker().mask_device_id(blank) is None


@pytest.mark.parametrize("key", [b"", ""])
def test_empty_key_rejected(key: bytes | str) -> None:
    with pytest.raises(ValueError):
        Masker(key)  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------


def reference_canonical_ip(value: str) -> str:
    """The contract's canonical(ip), written with ipaddress only (no fast path)."""
    stripped = value.strip()
    try:
        address = ipaddress.ip_address(stripped)
    except ValueError:
        return stripped
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parses_as_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


octet_like = st.one_of(
    st.integers(0, 300).map(str),
    st.text(alphabet="0123456789", max_size=4),
    # incl. Arabic-Indic and fullwidth digits, which only ASCII-aware parsers reject
    st.text(alphabet="0123456789 +-x\u0661\uff11", max_size=4),
)
dotted = st.one_of(
    st.lists(octet_like, min_size=4, max_size=4).map(".".join),
    st.lists(octet_like, min_size=1, max_size=5).map(".".join),
)


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0",
        "255.255.255.255",
        "199.172.111.135",
        "01.2.3.4",
        "1.2.3.04",
        "00.0.0.0",
        "256.1.1.1",
        "1.2.3.300",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4\n",
        "\u0661.2.3.4",
        "\uff11.2.3.4",
    ],
)
def test_fast_path_regex_edge_cases(value: str) -> None:
    assert bool(masking._CANONICAL_IPV4.fullmatch(value)) == parses_as_ipv4(value)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_fast_path_agrees_with_ipaddress_for_all_ipv4(n: int) -> None:
    text = str(ipaddress.IPv4Address(n))
    assert masking._CANONICAL_IPV4.fullmatch(text)
    assert canonical_ip(text) == text
    mapped = f"::ffff:{text}"
    assert canonical_ip(mapped) == text


@settings(max_examples=200, deadline=None)
@given(dotted)
def test_fast_path_matches_exactly_what_ipaddress_parses(value: str) -> None:
    assert bool(masking._CANONICAL_IPV4.fullmatch(value)) == parses_as_ipv4(value)
    assert canonical_ip(value) == reference_canonical_ip(value)


@settings(max_examples=100, deadline=None)
@given(st.one_of(dotted, st.text(max_size=40), st.ip_addresses().map(str)))
def test_canonical_ip_matches_reference(value: str) -> None:
    assert canonical_ip(value) == reference_canonical_ip(value)


texts = st.text(max_size=60)
keys = st.text(min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(texts, keys)
def test_mask_is_64_lowercase_hex_or_null(value: str, key: str) -> None:
    m = masker(key)
    for result in (m.mask_ip(value), m.mask_device_id(value)):
        if value.strip():
            assert result is not None
            assert HEX64.fullmatch(result)
        else:
            assert result is None


@settings(max_examples=100, deadline=None)
@given(texts, keys)
def test_mask_is_the_keyed_hmac_of_the_canonical_value(value: str, key: str) -> None:
    stripped = value.strip()
    if not stripped:
        return
    expected = hmac.new(key.encode(), stripped.encode(), sha256).hexdigest()
    assert masker(key).mask_device_id(value) == expected
    expected_ip = hmac.new(key.encode(), reference_canonical_ip(value).encode(), sha256).hexdigest()
    assert masker(key).mask_ip(value) == expected_ip


@settings(max_examples=100, deadline=None)
@given(texts.filter(str.strip), keys)
def test_same_value_same_key_same_mask(value: str, key: str) -> None:
    assert masker(key).mask_ip(value) == Masker(key.encode("utf-8")).mask_ip(value)
    assert masker(key).mask_device_id(value) == masker(key).mask_device_id(value)


@settings(max_examples=100, deadline=None)
@given(texts, st.binary(min_size=1, max_size=200))
def test_mask_is_hmac_for_any_byte_key(value: str, key: bytes) -> None:
    expected = hmac.new(key, value.encode("utf-8"), sha256).hexdigest()
    assert Masker(key).mask(value) == expected


# HMAC pads short keys with zero bytes, so "k" and "k\x00" are the same key by definition
distinct_keys = keys.filter(lambda k: not k.endswith("\x00"))


@settings(max_examples=100, deadline=None)
@given(texts.filter(str.strip), distinct_keys, distinct_keys)
def test_different_keys_different_masks(value: str, key1: str, key2: str) -> None:
    if key1 == key2:
        return
    assert masker(key1).mask_ip(value) != masker(key2).mask_ip(value)
    assert masker(key1).mask_device_id(value) != masker(key2).mask_device_id(value)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.ip_addresses().map(str), dotted, texts))
def test_surrounding_whitespace_does_not_change_the_mask(value: str) -> None:
    m = masker()
    assert m.mask_ip(value) == m.mask_ip(f" {value}\t")
    assert m.mask_device_id(value) == m.mask_device_id(f"\n{value}  ")


@settings(max_examples=100, deadline=None)
@given(st.ip_addresses(v=4))
def test_ipv4_mapped_ipv6_masks_like_ipv4(address: ipaddress.IPv4Address) -> None:
    m = masker()
    assert m.mask_ip(f"::ffff:{address}") == m.mask_ip(str(address))
    assert m.mask_ip(str(ipaddress.IPv6Address(f"::ffff:{address}").exploded)) == m.mask_ip(
        str(address)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), texts, dotted, st.ip_addresses().map(str)),
    st.one_of(st.none(), texts),
    keys,
)
def test_mask_login_masks_each_field_on_its_own(
    ip: str | None, device_id: str | None, key: str
) -> None:
    """Each field's mask depends on that field alone (mask_ip/mask_device_id are its halves)."""
    m = masker(key)
    masked_ip, masked_device_id = m.mask_login(ip, device_id)
    assert masked_ip == m.mask_login(ip, "other")[0] == m.mask_ip(ip)
    assert masked_device_id == m.mask_login("10.0.0.9", device_id)[1] == m.mask_device_id(device_id)
    assert masked_ip == (None if ip is None or not canonical_ip(ip) else m.mask(canonical_ip(ip)))


def test_mask_login_vectors() -> None:
    assert masker().mask_login("199.172.111.135", "593-47-5928") == (
        HMAC_TEST_KEY_IPV4,
        HMAC_TEST_KEY_DEVICE,
    )
