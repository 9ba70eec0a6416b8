"""A party endorses a checkpoint: witness-style cosigning (after C2SP tlog-witness ``add-checkpoint``).

The party sends the checkpoint it checked, the size of the last checkpoint it cosigned (``old_size``, 0 at first),
the consistency proof from that size, and its tlog-cosignature/v1 line. Everything is re-checked here, because a
stored cosignature is evidence the other party will rely on:

- the checkpoint is one this server signed for this bilateral (same origin, size and root), else 422;
- ``old_size`` is the party's last cosigned size and the checkpoint is newer, else 409 (stale or out of order);
- the consistency proof leads from the stored root at ``old_size`` to the checkpoint's root, else 422;
- the line is from a key the party registered, valid at the line's timestamp, and verifies, else 422;
- the timestamp is not before the checkpoint was cut nor in the future (a replayed or pre-dated signature), else 422.

A checkpoint cosigned by both the buyer and the seller is *endorsed*. The checkpoint row is locked while a
cosignature is added, so two parties cosigning at once cannot both miss that the other one did.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, func, select

from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.errors import Conflict, Issue, Unprocessable, VerificationError
from sonata_dlt.signing.note import parse_note, parse_signature_line, verify_cosignature
from sonata_dlt.storage.checkpoints import Checkpoint, CheckpointSignature
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.types import utcnow
from sonata_dlt.transparency.checkpoint import Checkpoint as CheckpointBody
from sonata_dlt.transparency.merkle import EMPTY_ROOT, verify_consistency
from sonata_dlt.verifiable_log.checkpoints import CheckpointView, views
from sonata_dlt.verifiable_log.keyring import check_valid_at, cosigning_key

log = logging.getLogger("sonata_dlt.cosigning")

# Clocks of two operators differ a little; more than this is a pre-dated or replayed cosignature.
CLOCK_SKEW = timedelta(minutes=5)


def _invalid(code: str, reason: str, path: str) -> Unprocessable:
    return Unprocessable([Issue(code=code, reason=reason, property_path=path)])


def _parse_checkpoint(text: str) -> CheckpointBody:
    raw = text.encode("utf-8")
    try:
        # Accept the served note (text, blank line, signatures) or the bare body.
        body = parse_note(raw)[0] if b"\n\n" in raw else raw
        return CheckpointBody.from_body(body)
    except VerificationError as exc:
        raise _invalid("invalidFormat", f"checkpoint: {exc}", "/checkpoint") from None


def _decode_proof(proof: list[str]) -> list[bytes]:
    decoded = []
    for position, element in enumerate(proof):
        try:
            decoded.append(base64.b64decode(element.encode("ascii"), validate=True))
        except (binascii.Error, UnicodeEncodeError):
            raise _invalid("invalidFormat", "not standard base64", f"/consistencyProof/{position}") from None
    return decoded


def last_cosigned_size(session: Session, bilateral_id: str, party_id: str) -> int:
    size = session.exec(
        select(func.max(CheckpointSignature.size)).where(
            CheckpointSignature.bilateral_id == bilateral_id, CheckpointSignature.party_id == party_id
        )
    ).one()
    return int(size or 0)


def cosign(
    db: Database,
    bilateral: BilateralRef,
    party: Party,
    *,
    checkpoint: str,
    old_size: int,
    consistency_proof: list[str],
    cosignature: str,
) -> CheckpointView:
    """Check and store ``party``'s cosignature; return the checkpoint with all its signatures."""
    body = _parse_checkpoint(checkpoint)
    proof = _decode_proof(consistency_proof)
    line = cosignature if cosignature.endswith("\n") else cosignature + "\n"
    try:
        parsed_line = parse_signature_line(line)
    except VerificationError as exc:
        raise _invalid("invalidFormat", str(exc), "/cosignature") from None
    if body.origin != bilateral.origin:
        raise _invalid("invalidValue", f"checkpoint origin {body.origin!r} is not this bilateral's log", "/checkpoint")

    with db.write() as session:
        statement = select(Checkpoint).where(Checkpoint.bilateral_id == bilateral.id, Checkpoint.size == body.size)
        row = session.exec(statement.with_for_update(key_share=True)).one_or_none()
        if row is None or row.root_hash != body.root_hash:
            raise _invalid(
                "invalidValue", f"this server signed no checkpoint of size {body.size} with that root", "/checkpoint"
            )
        last = last_cosigned_size(session, bilateral.id, party.id)
        if session.get(CheckpointSignature, (bilateral.id, body.size, party.id)) is not None:
            raise Conflict(f"{party.id} already cosigned the checkpoint of size {body.size}")
        if body.size <= last:
            raise Conflict(f"stale checkpoint: {party.id} already cosigned size {last}, this one is {body.size}")
        if old_size != last:
            raise Conflict(f"oldSize {old_size} is not the last size {party.id} cosigned ({last})")

        old_root = EMPTY_ROOT
        if old_size > 0:
            old_row = session.get(Checkpoint, (bilateral.id, old_size))
            if old_row is None:  # a cosigned size always has its checkpoint; a missing one is storage damage
                raise RuntimeError(f"checkpoint {old_size} cosigned by {party.id} is missing")
            old_root = old_row.root_hash
        try:
            verify_consistency(old_size, body.size, old_root, row.root_hash, proof)
        except VerificationError as exc:
            raise _invalid("invalidValue", str(exc), "/consistencyProof") from None

        try:
            key_row, verifier = cosigning_key(session, party.id, parsed_line.name, parsed_line.key_id)
        except VerificationError as exc:
            raise _invalid("referenceNotFound", str(exc), "/cosignature") from None
        try:
            timestamp = verify_cosignature(body.body(), line, verifier)
        except VerificationError as exc:
            raise _invalid("invalidValue", str(exc), "/cosignature") from None
        signed_at = datetime.fromtimestamp(timestamp, UTC)
        try:
            check_valid_at(key_row, signed_at)
        except VerificationError as exc:
            raise _invalid("invalidValue", str(exc), "/cosignature") from None
        now = utcnow()
        if signed_at < row.created_at - CLOCK_SKEW or signed_at > now + CLOCK_SKEW:
            raise _invalid(
                "invalidValue",
                f"cosignature time {signed_at.isoformat()} is outside the checkpoint's cut time "
                f"{row.created_at.isoformat()} .. now (+/- {int(CLOCK_SKEW.total_seconds())} s)",
                "/cosignature",
            )

        assert key_row.id is not None
        session.add(
            CheckpointSignature(
                bilateral_id=bilateral.id,
                size=body.size,
                party_id=party.id,
                role=party.role.value,
                party_key_id=key_row.id,
                line=line,
                timestamp=timestamp,
            )
        )
        session.flush()
        roles = set(
            session.exec(
                select(CheckpointSignature.role).where(
                    CheckpointSignature.bilateral_id == bilateral.id, CheckpointSignature.size == body.size
                )
            ).all()
        )
        if {"buyer", "seller"} <= roles and not row.endorsed:
            row.endorsed = True
            session.add(row)
        log.info(
            "checkpoint cosigned",
            extra={"bilateral": bilateral.id, "size": body.size, "party_id": party.id, "endorsed": row.endorsed},
        )
        return views(session, bilateral, [row])[0]
