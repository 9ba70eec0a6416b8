"""The C-encoder fast path of canonical_json must produce exactly what the general RFC 8785 writer produces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sonata_dlt.transparency import canonical
from sonata_dlt.transparency.canonical import _is_plain, canonical_json


def general_writer(value: object) -> bytes:
    parts: list[str] = []
    canonical._write(value, parts)
    return "".join(parts).encode("utf-8")


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e-4, 0.0001234, 9999999999999998.0, 1e16, 0.5, -0.0, 100.0, 1e-5, 123456.789])
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=600)
@given(json_values)
def test_fast_path_matches_the_general_writer(value: object) -> None:
    try:
        expected = general_writer(value)
    except UnicodeEncodeError:
        return  # lone surrogates: both paths refuse them (checked in the RFC tests)
    assert canonical_json(value) == expected


def test_fast_path_is_taken_for_typical_documents_and_not_for_risky_numbers() -> None:
    document = {"id": "x", "amount": {"unit": "EUR", "value": 451.61}, "rate": 0.2, "count": 3, "items": []}
    assert _is_plain(document)
    assert not _is_plain({"value": 100.0})  # Python writes 100.0, ECMAScript 100
    assert not _is_plain({"value": 1e-5})  # Python writes 1e-05, ECMAScript 0.00001
    assert not _is_plain({"é": 1})  # non-ASCII keys: UTF-16 ordering is left to the general writer
    assert canonical_json({"value": 100.0, "small": 1e-5}) == b'{"small":0.00001,"value":100}'
