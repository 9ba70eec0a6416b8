"""RFC 8785 canonical JSON: the RFC's own examples, ECMAScript number edge cases, and a cross-check with ``rfc8785``.

``rfc8785`` (PyPI, Trail of Bits) is a test-only dependency: an independent implementation to disagree with.
"""

from __future__ import annotations

import hashlib
import math
import struct
from decimal import Decimal

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sonata_dlt.transparency.canonical import canonical_json, state_hash

# RFC 8785 Appendix B, "Number Serialization Samples": IEEE 754 bit patterns and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonical_json(double(bits)) == expected.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_errors(bits: str) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        canonical_json(double(bits))


def test_rfc8785_section_3_2_2_example() -> None:
    # RFC 8785 §3.2.2: the input with odd numbers, escapes and literals, and its canonical output.
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected.encode()
    assert canonical_json(value).hex(" ").startswith("7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c")


def test_rfc8785_section_3_2_3_sorts_keys_by_utf16_code_units() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    # The emoji (surrogates D83D DE00) sorts before U+FB33 in UTF-16 although its code point is larger.
    expected = [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]
    text = canonical_json(value).decode()
    positions = [text.index(f'"{name}"') for name in expected]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
        (100.0, "100"),
        (1.5, "1.5"),
        (-1.5e-300, "-1.5e-300"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.000001234, "0.000001234"),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        (0, "0"),
        (True, "true"),
        (None, "null"),
    ],
)
def test_ecmascript_number_edge_cases(value: object, expected: str) -> None:
    assert canonical_json(value) == expected.encode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("Infinity")])
def test_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        canonical_json(value)


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 10**30])
def test_integers_beyond_the_double_safe_range_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="2\\*\\*53"):
        canonical_json({"n": value})


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_json({1: "one"})


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        canonical_json({"a": "\ud800"})
    with pytest.raises(ValueError, match="lone surrogate"):
        canonical_json({"\udc00": 1})


def test_unsupported_types_are_refused() -> None:
    with pytest.raises(TypeError, match="set has no JSON form"):
        canonical_json({"a": {1, 2}})


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("0.1"), "0.1"),
        (Decimal("12.50"), "12.5"),
        (Decimal("-0"), "0"),
        (Decimal("1000"), "1000"),
        (Decimal("1E+3"), "1000"),
        (Decimal("123456.78"), "123456.78"),
        (Decimal("0.000001"), "0.000001"),
    ],
)
def test_decimals_that_a_double_carries_exactly(amount: Decimal, expected: str) -> None:
    assert canonical_json(amount) == expected.encode()


@pytest.mark.parametrize(
    "amount", [Decimal("12345678901234567.89"), Decimal("0.12345678901234567890"), Decimal("1e400")]
)
def test_decimals_that_would_lose_precision_are_refused(amount: Decimal) -> None:
    with pytest.raises(ValueError, match="losing precision"):
        canonical_json({"amount": amount})


def test_control_characters_and_unicode_escaping() -> None:
    value = "\x00\x01\x1f\x7f\b\f\n\r\t\u2028\u00e9\U0001f600"
    expected = '"\\u0000\\u0001\\u001f\x7f\\b\\f\\n\\r\\t\u2028\u00e9\U0001f600"'
    assert canonical_json(value) == expected.encode()


def test_tuples_are_arrays_and_nesting_has_no_whitespace() -> None:
    assert canonical_json({"b": (1, [2, {"d": 4, "c": 3}]), "a": {}}) == b'{"a":{},"b":[1,[2,{"c":3,"d":4}]]}'


def test_state_hash_is_sha256_of_the_canonical_form() -> None:
    document = {"state": "completed", "id": "42"}
    assert state_hash(document) == hashlib.sha256(b'{"id":"42","state":"completed"}').digest()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_matches_the_rfc8785_package(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)  # type: ignore[arg-type]  # hypothesis builds JSON values


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_matches_the_rfc8785_package(value: float) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)
