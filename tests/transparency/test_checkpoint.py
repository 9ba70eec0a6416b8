"""C2SP tlog-checkpoint bodies: the spec's example, round trips and strict parsing."""

from __future__ import annotations

import base64

import pytest

from sonata_dlt.errors import VerificationError
from sonata_dlt.transparency.checkpoint import Checkpoint
from sonata_dlt.transparency.merkle import EMPTY_ROOT

# The example checkpoint of c2sp.org/tlog-checkpoint.
SPEC_BODY = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = bytes(range(32))


def test_parses_the_spec_example() -> None:
    checkpoint = Checkpoint.from_body(SPEC_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.body() == SPEC_BODY


def test_round_trip_with_extensions_and_empty_tree() -> None:
    checkpoint = Checkpoint("sonata.example/b/42", 0, EMPTY_ROOT, ("anchor local 7", "x"))
    body = checkpoint.body()
    assert body == (b"sonata.example/b/42\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nanchor local 7\nx\n")
    assert Checkpoint.from_body(body) == checkpoint


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SPEC_BODY[:-1], "does not end with a newline"),
        (b"a\n1\n", "has 2 lines, at least 3"),
        (b"\n1\n" + SPEC_BODY.split(b"\n")[2] + b"\n", "origin line is empty"),
        (SPEC_BODY + b"\n", "extension line 0 is empty"),
        (SPEC_BODY.replace(b"20852163", b"020852163"), "without leading zeros"),
        (SPEC_BODY.replace(b"20852163", b"+20852163"), "without leading zeros"),
        (SPEC_BODY.replace(b"20852163", b" 20852163"), "without leading zeros"),
        (SPEC_BODY.replace(b"20852163", b"2_0852163"), "without leading zeros"),
        (SPEC_BODY.replace(b"20852163", "٢".encode()), "without leading zeros"),
        (SPEC_BODY.replace(b"20852163", b"9223372036854775808"), "beyond 2\\*\\*63-1"),
        (SPEC_BODY.replace(b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", b"CsUYapGGPo4d"), "is 9 bytes"),
        (SPEC_BODY.replace(b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", b"CsUY*pGG"), "not standard base64"),
        (SPEC_BODY.replace(b"Cs", b"C s"), "not standard base64"),
        (SPEC_BODY.replace(b"2I=", b"2J="), "not in canonical base64"),
        (SPEC_BODY.replace(b"example", b"exa\tmple"), "origin line holds a control character"),
        (SPEC_BODY.replace(b"example", b"exa\xffmple"), "not valid UTF-8"),
        (SPEC_BODY.replace(b"\n", b"\r\n"), "control character"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        Checkpoint.from_body(body)


def test_constructor_refuses_what_it_could_not_write() -> None:
    with pytest.raises(ValueError, match="origin holds a control character"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(ValueError, match="root hash must be 32 bytes"):
        Checkpoint("a", 1, b"x")
    with pytest.raises(ValueError, match="size -1"):
        Checkpoint("a", -1, ROOT)
    with pytest.raises(ValueError, match="extension line 0 is empty"):
        Checkpoint("a", 1, ROOT, ("",))
