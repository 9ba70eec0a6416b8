"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value, so hashes are reproducible.

Members are sorted by their UTF-16 code units, nothing is indented, strings are escaped as ECMAScript's
``JSON.stringify`` does, and numbers are written as ECMAScript writes an IEEE 754 double. Every number must
therefore be exactly representable as a double: integers beyond 2**53 and ``Decimal`` values that a double
would round are refused rather than silently changed, because money must not lose precision on its way into
a hash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from hashlib import sha256
from json.encoder import encode_basestring
from typing import Any

MAX_SAFE_MAGNITUDE = 2**53


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``.

    Accepts ``dict`` (or any ``Mapping``) with ``str`` keys, ``list``/``tuple``, ``str``, ``int``, ``float``,
    ``bool``, ``None`` and ``Decimal``. Raises ``ValueError`` for NaN, infinities, non-string keys, integers
    outside ``[-2**53, 2**53]``, a ``Decimal`` that a double cannot carry exactly, and strings holding lone
    surrogates; ``TypeError`` for any other type.
    """
    if _is_plain(value):
        text = _PLAIN_ENCODER.encode(value)
    else:
        parts: list[str] = []
        _write(value, parts)
        text = "".join(parts)
    return _utf8(text)


def canonical_json_trusted(value: dict[str, Any] | list[Any]) -> bytes:
    """``canonical_json(value)`` for a value its caller built to be plain, without walking it to check.

    A documented shortcut for bulk writers (a billing run serialises hundreds of thousands of documents, and the
    check costs more than the encoding). The caller guarantees, by construction, what ``_is_plain`` would check:
    only ``dict`` (ASCII ``str`` keys), ``list``, ``str``, ``bool``, ``None``, ``int`` within ``[-2**53, 2**53]``
    and ``float`` values for which ``is_plain_number`` holds. Anything else gives bytes that may not be canonical.
    Tests compare its output with ``canonical_json`` for every kind of document passed to it.
    """
    return _utf8(_PLAIN_ENCODER.encode(value))


def is_plain(value: object) -> bool:
    """Whether ``canonical_json_trusted`` may encode ``value`` (the check ``canonical_json`` makes)."""
    return _is_plain(value)


def is_plain_number(value: object) -> bool:
    """Whether a number is written identically by the fast path (``canonical_json_trusted``) and RFC 8785."""
    if type(value) is int:
        return -MAX_SAFE_MAGNITUDE <= value <= MAX_SAFE_MAGNITUDE
    if type(value) is float:
        magnitude = abs(value)
        return 1e-4 <= magnitude < 1e16 and not magnitude.is_integer()
    return False


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"string holds a lone surrogate at position {error.start} and is not valid Unicode") from None


# The fast path: for "plain" values the C JSON encoder already writes the RFC 8785 bytes. It escapes exactly the
# characters JCS escapes, with the same short forms and lower-case \u00XX; sorted ASCII keys order as UTF-16 code
# units do; ints within 2**53 print the same; and a non-integral double with 1e-4 <= |x| < 1e16 gets the same
# shortest round-trip digits in the same fixed notation from Python's repr as from ECMAScript's Number::toString.
# Everything else (Decimal, other floats, non-ASCII keys, other Mappings) takes the general writer below.
_PLAIN_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=False
)


def _is_plain(value: object) -> bool:
    # Exact type checks, not isinstance: bool is an int, and subclasses may serialise differently.
    if value is None or type(value) is str or type(value) is bool:
        return True
    if type(value) is int or type(value) is float:
        return is_plain_number(value)
    if type(value) is dict:
        return all(type(key) is str and key.isascii() and _is_plain(item) for key, item in value.items())
    if type(value) is list or type(value) is tuple:
        return all(_is_plain(item) for item in value)
    return False


def state_hash(document: object) -> bytes:
    """SHA-256 of the canonical JSON of ``document``: the fingerprint the log records for a resource state."""
    return sha256(canonical_json(document)).digest()


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 compares bytewise exactly as its code units compare; "surrogatepass" lets a lone
    # surrogate reach the final UTF-8 encoding, which reports it.
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: object, parts: list[str]) -> None:
    # bool first: it is a subclass of int.
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(encode_basestring(value))
    elif isinstance(value, int):
        if not -MAX_SAFE_MAGNITUDE <= value <= MAX_SAFE_MAGNITUDE:
            raise ValueError(f"integer {value} is beyond 2**53 and has no exact IEEE 754 double form")
        parts.append(str(int(value)))
    elif isinstance(value, float):
        parts.append(_number(value))
    elif isinstance(value, Decimal):
        parts.append(_decimal(value))
    elif isinstance(value, Mapping):
        _write_object(value, parts)
    elif isinstance(value, list | tuple):
        parts.append("[")
        for position, item in enumerate(value):
            if position:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"{type(value).__name__} has no JSON form")


def _write_object(value: Mapping[object, object], parts: list[str]) -> None:
    keys: list[str] = []
    for key in value:
        if not isinstance(key, str):
            raise ValueError(f"object keys must be strings, got {type(key).__name__} {key!r}")
        keys.append(key)
    parts.append("{")
    for position, key in enumerate(sorted(keys, key=_utf16_key)):
        if position:
            parts.append(",")
        parts.append(encode_basestring(key))
        parts.append(":")
        _write(value[key], parts)
    parts.append("}")


def _number(value: float) -> str:
    """ECMAScript Number::toString for a finite double (ECMA-262, as RFC 8785 §3.2.2.3 requires)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a JSON number")
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    # repr gives the shortest digit string that round-trips, which is the digit string ECMAScript picks.
    shortest = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, shortest.digits))
    k = len(digits)
    n = int(shortest.exponent) + k  # value = 0.<digits> * 10**n, ECMA-262's s, k and n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    exponent = n - 1
    exponent_sign = "+" if exponent >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{exponent_sign}{abs(exponent)}"


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    as_float = float(value)
    # The canonical text is read back as a double; refuse when that double is not the amount we were given.
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{value} cannot be a JSON number without losing precision (it reads back as {as_float!r})")
    return _number(as_float)
