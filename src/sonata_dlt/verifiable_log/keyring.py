"""Who signs what: the host key, and the parties' public keys with their validity periods.

- The **host key** (Ed25519, C2SP skey file at ``settings.resolved_host_key_path``) signs every checkpoint and the
  local ledger journal. It is generated on first start when missing (mode 0600) and its vkey is logged, so the
  operator can hand it to the parties. Its key name is ``settings.log_origin_prefix``.
- **Party keys** are registered by each party for itself (``POST /partyKey``). A key is valid over
  ``[valid_from, valid_until)``; registering a new key closes the caller's keys still open at the new key's
  ``valid_from``. Keys are never deleted: a cosignature is checked against the key that was valid at the
  cosignature's own timestamp, so rotation leaves old checkpoints verifiable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import or_
from sqlmodel import Session, col, select

from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Component
from sonata_dlt.errors import ConfigurationError, Conflict, Unprocessable, VerificationError
from sonata_dlt.settings import Settings
from sonata_dlt.signing.keys import SIGNATURE_TYPE_COSIGNATURE, SigningKey, VerifierKey, compute_key_id
from sonata_dlt.storage.checkpoints import PartyKey
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.types import utcnow

log = logging.getLogger("sonata_dlt.keys")


def load_or_create_host_key(path: Path, name: str) -> SigningKey:
    """Load the host key, or generate and save it (mode 0600) when the file does not exist yet."""
    if path.exists():
        return SigningKey.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate(name)
    try:
        key.save(path)
    except ConfigurationError:
        # Another server process created it between our check and our write: use theirs.
        if not path.exists():
            raise
        return SigningKey.load(path)
    log.warning("generated host key", extra={"path": str(path), "vkey": key.verifier().to_vkey()})
    return key


class Keyring:
    """The host's signing key, shared by every bilateral this server hosts."""

    def __init__(self, host_key: SigningKey, host_since: datetime) -> None:
        self.host_key = host_key
        self.host_verifier = host_key.verifier()
        self.host_since = host_since  # when the key file was written: the start of the host key's validity

    @classmethod
    def open(cls, settings: Settings) -> Keyring:
        path = settings.resolved_host_key_path
        key = load_or_create_host_key(path, settings.log_origin_prefix)
        return cls(key, datetime.fromtimestamp(path.stat().st_mtime, UTC))

    @property
    def host_vkey(self) -> str:
        return self.host_verifier.to_vkey()


KEYRING = Component[Keyring]("keyring")  # attached by startup.wiring.start_runtime


# --- party keys ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartyKeyView:
    party_id: str
    role: str  # host | buyer | seller
    verifier: VerifierKey  # type 0x01
    valid_from: datetime
    valid_until: datetime | None

    @property
    def cosignature_verifier(self) -> VerifierKey:
        return self.verifier.for_cosignature()

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_until is None or moment < self.valid_until)


def view_of(row: PartyKey, role: str) -> PartyKeyView:
    return PartyKeyView(
        party_id=row.party_id,
        role=role,
        verifier=VerifierKey.from_public_key(row.key_name, row.public_key),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


def _parse_vkey(vkey: str) -> VerifierKey:
    try:
        parsed = VerifierKey.from_vkey(vkey)
    except ConfigurationError as exc:
        raise Unprocessable.single(
            "invalidFormat", f"vkey is not a C2SP Ed25519 verifier key: {exc}", "/vkey"
        ) from None
    # A party may paste its cosignature (0x04) vkey; the key itself, under its name, is what is registered.
    return VerifierKey.from_public_key(parsed.name, parsed.public_key)


def register_party_key(
    session: Session, party: Party, vkey: str, valid_from: datetime | None = None, valid_until: datetime | None = None
) -> PartyKeyView:
    """Register one of ``party``'s own keys; close its keys still open at the new key's start."""
    verifier = _parse_vkey(vkey)
    # Cosignature timestamps are whole seconds: a key valid from 12:00:00.089 must cover a cosignature made at
    # 12:00:00 right after registering it, so a default start is rounded down to the second.
    start = valid_from or utcnow().replace(microsecond=0)
    if valid_until is not None and valid_until <= start:
        raise Unprocessable.single("invalidValue", "validUntil must be after validFrom", "/validUntil")
    duplicate = session.exec(
        select(PartyKey).where(
            PartyKey.party_id == party.id,
            PartyKey.key_name == verifier.name,
            PartyKey.public_key == verifier.public_key,
        )
    ).first()
    if duplicate is not None:
        raise Conflict(f"key {verifier.name}+{verifier.key_id.hex()} is already registered for {party.id}")
    still_open = session.exec(
        select(PartyKey).where(
            PartyKey.party_id == party.id,
            col(PartyKey.valid_from) < start,
            or_(col(PartyKey.valid_until).is_(None), col(PartyKey.valid_until) > start),
        )
    ).all()
    for old in still_open:
        old.valid_until = start
        session.add(old)
    row = PartyKey(
        party_id=party.id,
        key_name=verifier.name,
        public_key=verifier.public_key,
        valid_from=start,
        valid_until=valid_until,
    )
    session.add(row)
    session.flush()
    log.info("party key registered", extra={"party_id": party.id, "key": verifier.to_vkey()})
    return view_of(row, party.role.value)


def register(
    db: Database, party: Party, vkey: str, valid_from: datetime | None = None, valid_until: datetime | None = None
) -> PartyKeyView:
    with db.write() as session:
        return register_party_key(session, party, vkey, valid_from, valid_until)


def bilateral_keys(db: Database, keyring: Keyring, bilateral: BilateralRef) -> list[PartyKeyView]:
    """The host key, then every key the buyer and the seller ever registered."""
    host = PartyKeyView(keyring.host_verifier.name, "host", keyring.host_verifier, keyring.host_since, None)
    with db.read() as session:
        keys = party_keys(session, [(bilateral.buyer_id, "buyer"), (bilateral.seller_id, "seller")])
    return [host, *keys]


def party_keys(session: Session, parties: Iterable[tuple[str, str]]) -> list[PartyKeyView]:
    """Every key ever registered by the given ``(party_id, role)`` pairs, oldest first."""
    roles = dict(parties)
    rows = session.exec(
        select(PartyKey)
        .where(col(PartyKey.party_id).in_(list(roles)))
        .order_by(col(PartyKey.valid_from), col(PartyKey.id))
    ).all()
    return [view_of(row, roles[row.party_id]) for row in rows]


def cosigning_key(
    session: Session, party_id: str, key_name: str, cosignature_key_id: bytes
) -> tuple[PartyKey, VerifierKey]:
    """The party's key named by a cosignature line; raise ``VerificationError`` when the party has no such key."""
    rows = session.exec(select(PartyKey).where(PartyKey.party_id == party_id, PartyKey.key_name == key_name)).all()
    for row in rows:
        if compute_key_id(row.key_name, SIGNATURE_TYPE_COSIGNATURE, row.public_key) == cosignature_key_id:
            return row, VerifierKey.from_public_key(row.key_name, row.public_key)
    raise VerificationError(f"{party_id} has registered no key {key_name}+{cosignature_key_id.hex()}")


def check_valid_at(row: PartyKey, moment: datetime) -> None:
    """Raise ``VerificationError`` unless the key was valid at ``moment``."""
    if moment < row.valid_from or (row.valid_until is not None and moment >= row.valid_until):
        until = row.valid_until.isoformat() if row.valid_until else "open-ended"
        raise VerificationError(
            f"key {row.key_name} of {row.party_id} is valid from {row.valid_from.isoformat()} until {until}, "
            f"not at {moment.astimezone(UTC).isoformat()}"
        )
