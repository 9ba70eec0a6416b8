"""The checks the verifier and the audit bundle share: leaf records, signed checkpoints, keys and anchor receipts.

Everything here works on data already in hand (no network, no storage): the online verifier feeds it what the
Proof API answered, ``bundle verify`` what the bundle holds. Each check returns what it established or raises
``VerificationError`` saying what failed, where, and what was expected versus found.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sonata_dlt.errors import ConfigurationError, VerificationError
from sonata_dlt.ledger.base import AnchorReceipt, parse_timestamp
from sonata_dlt.signing.keys import VerifierKey
from sonata_dlt.signing.note import parse_note, verify_cosignature, verify_note
from sonata_dlt.transparency.canonical import canonical_json
from sonata_dlt.transparency.checkpoint import Checkpoint
from sonata_dlt.transparency.merkle import leaf_hash

RECORD_FIELDS = frozenset({"seq", "resourceType", "resourceId", "version", "event", "stateHash", "actor", "at"})


def b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"{what} is not standard base64") from None


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_proof(items: object, what: str) -> list[bytes]:
    if not isinstance(items, list):
        raise VerificationError(f"{what} is not a list of base64 hashes")
    return [b64decode(item, f"{what} element {position}") for position, item in enumerate(items)]


# --- leaf records ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """A leaf record whose bytes, hash and fields were checked against each other."""

    index: int
    record: bytes
    hash: bytes
    resource_type: str
    resource_id: str
    version: int
    event: str
    state_hash: str  # hex, as the record holds it
    actor: str
    at: str

    @property
    def label(self) -> str:
        return f"leaf {self.index} ({self.resource_type} {self.resource_id} version {self.version})"


def parse_record(record: bytes, index: int) -> Leaf:
    """Check that ``record`` is a canonical leaf record of leaf ``index``; return its fields."""
    where = f"leaf {index}"
    try:
        fields = json.loads(record)
    except ValueError:
        raise VerificationError(f"{where}: the record is not JSON") from None
    if not isinstance(fields, dict) or set(fields) != RECORD_FIELDS:
        raise VerificationError(f"{where}: the record does not have exactly the fields {sorted(RECORD_FIELDS)}")
    if canonical_json(fields) != record:
        raise VerificationError(f"{where}: the record is not RFC 8785 canonical JSON, so its hash is ambiguous")
    if fields["seq"] != index:
        raise VerificationError(
            f"{where}: the record says seq {fields['seq']}, expected {index}: leaves were reordered or renumbered"
        )
    text_fields = ("resourceType", "resourceId", "event", "stateHash", "actor", "at")
    if not all(isinstance(fields[name], str) for name in text_fields) or not isinstance(fields["version"], int):
        raise VerificationError(f"{where}: a record field has the wrong type")
    return Leaf(
        index=index,
        record=record,
        hash=leaf_hash(record),
        resource_type=fields["resourceType"],
        resource_id=fields["resourceId"],
        version=fields["version"],
        event=fields["event"],
        state_hash=fields["stateHash"],
        actor=fields["actor"],
        at=fields["at"],
    )


def parse_leaf(item: Mapping[str, Any]) -> Leaf:
    """A LeafRecord of the Proof API: the record, its hash and the repeated fields must all agree."""
    index = item.get("leafIndex")
    if not isinstance(index, int) or index < 0:
        raise VerificationError("a leaf answer has no valid leafIndex")
    record = b64decode(item.get("record"), f"leaf {index} record")
    leaf = parse_record(record, index)
    served_hash = b64decode(item.get("leafHash"), f"leaf {index} leafHash")
    if served_hash != leaf.hash:
        raise VerificationError(
            f"leaf {index}: served leafHash {served_hash.hex()} is not SHA-256(0x00 || record) {leaf.hash.hex()}"
        )
    for name, value in (
        ("resourceType", leaf.resource_type),
        ("resourceId", leaf.resource_id),
        ("version", leaf.version),
        ("event", leaf.event),
    ):
        if item.get(name) != value:
            raise VerificationError(f"leaf {index}: the answer says {name} {item.get(name)!r}, the record {value!r}")
    return leaf


# --- keys ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartyKeyInfo:
    party_id: str
    role: str  # host | buyer | seller
    verifier: VerifierKey  # type 0x01
    valid_from: datetime
    valid_until: datetime | None

    def check_valid_at(self, moment: datetime) -> None:
        if moment < self.valid_from or (self.valid_until is not None and moment >= self.valid_until):
            until = self.valid_until.isoformat() if self.valid_until else "open-ended"
            raise VerificationError(
                f"key {self.verifier.name} of {self.role} {self.party_id} is valid from "
                f"{self.valid_from.isoformat()} until {until}, not at {moment.isoformat()}"
            )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "partyId": self.party_id,
            "role": self.role,
            "vkey": self.verifier.to_vkey(),
            "validFrom": _rfc3339(self.valid_from),
        }
        if self.valid_until is not None:
            body["validUntil"] = _rfc3339(self.valid_until)
        return body


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_party_key(item: Mapping[str, Any]) -> PartyKeyInfo:
    """A PartyKey of the Proof API (or of a bundle); malformed keys are a verification failure, not a crash."""
    try:
        verifier = VerifierKey.from_vkey(str(item["vkey"]))
        plain = VerifierKey.from_public_key(verifier.name, verifier.public_key)
        until = item.get("validUntil")
        return PartyKeyInfo(
            party_id=str(item["partyId"]),
            role=str(item["role"]),
            verifier=plain,
            valid_from=parse_timestamp(str(item["validFrom"])),
            valid_until=parse_timestamp(str(until)) if until else None,
        )
    except (KeyError, ConfigurationError) as exc:
        raise VerificationError(f"unusable party key {dict(item)!r}: {exc}") from None


# --- checkpoints -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cosigner:
    key: PartyKeyInfo
    timestamp: int


@dataclass(frozen=True)
class CheckedCheckpoint:
    body: Checkpoint
    note: bytes
    cosigners: tuple[Cosigner, ...]

    @property
    def roles(self) -> set[str]:
        return {cosigner.key.role for cosigner in self.cosigners}

    @property
    def endorsed(self) -> bool:
        return {"buyer", "seller"} <= self.roles


def verify_checkpoint_note(note: bytes, host: VerifierKey, parties: Sequence[PartyKeyInfo]) -> CheckedCheckpoint:
    """Check a checkpoint note: the host's signature, and every other line as a valid party cosignature.

    A signature line from a key nobody registered is refused rather than ignored: in a served checkpoint it can
    only be a forgery or a stale key the server no longer lists.
    """
    text, lines = parse_note(note)
    body = Checkpoint.from_body(text)
    what = f"checkpoint of size {body.size}"
    try:
        verify_note(note, [host])
    except VerificationError as exc:
        raise VerificationError(f"{what}: host signature: {exc}") from None
    by_slot = {(key.verifier.name, key.verifier.for_cosignature().key_id): key for key in parties}
    cosigners: list[Cosigner] = []
    for line in lines:
        if (line.name, line.key_id) == (host.name, host.key_id):
            continue
        key = by_slot.get((line.name, line.key_id))
        if key is None:
            raise VerificationError(
                f"{what}: signature line of {line.name}+{line.key_id.hex()} is from no registered party key"
            )
        try:
            timestamp = verify_cosignature(text, line.line, key.verifier)
        except VerificationError as exc:
            raise VerificationError(f"{what}: {key.role} {key.party_id}: {exc}") from None
        key.check_valid_at(datetime.fromtimestamp(timestamp, UTC))
        cosigners.append(Cosigner(key, timestamp))
    return CheckedCheckpoint(body=body, note=note, cosigners=tuple(cosigners))


def check_served_checkpoint(item: Mapping[str, Any], checked: CheckedCheckpoint) -> None:
    """The JSON fields of a served checkpoint must say what its signed note says."""
    body = checked.body
    size = item.get("treeSize")
    root = b64decode(item.get("rootHash"), f"checkpoint {size} rootHash")
    if (item.get("origin"), size, root) != (body.origin, body.size, body.root_hash):
        raise VerificationError(
            f"checkpoint {size}: the answer says origin {item.get('origin')!r} size {size} root {root.hex()}, "
            f"its signed note says {body.origin!r} size {body.size} root {body.root_hash.hex()}"
        )
    if item.get("endorsed") and not checked.endorsed:
        raise VerificationError(
            f"checkpoint {body.size} is served as endorsed, but only {sorted(checked.roles) or 'nobody'} cosigned it"
        )


# --- anchors ---------------------------------------------------------------------------------------------------


def check_receipt_matches(receipt: AnchorReceipt, body: Checkpoint) -> None:
    if (receipt.origin, receipt.size, receipt.root_hash) != (body.origin, body.size, body.root_hash):
        raise VerificationError(
            f"anchor receipt of checkpoint {body.size} is for {receipt.origin!r} size {receipt.size} root "
            f"{receipt.root_hash.hex()}, the checkpoint is {body.origin!r} size {body.size} root {body.root_hash.hex()}"
        )


def parse_receipt(data: object, size: int) -> AnchorReceipt:
    if not isinstance(data, dict):
        raise VerificationError(f"anchor receipt of checkpoint {size} is not a JSON object")
    return AnchorReceipt.from_json(data)
