"""Agreement versions: proposal, two-sided approval, and the one version in effect at any instant.

A bilateral's agreement (its MSA in code) is a sequence of versions, numbered 1, 2, ... in proposal order. Each
version carries its whole ``terms`` (model and rules: ``agreement_terms``) and an ``effectiveFrom`` instant.

- Either party proposes a version (``proposed``). Proposing is not approving, not even for the proposer.
- Each party approves it once (``POST .../approve``). The second approval makes it ``approved``: it is then in
  effect over ``[effectiveFrom, effectiveUntil)``, where ``effectiveUntil`` is set on it (a recorded change) when
  a later version takes effect. Either party may reject a proposed version (``rejected``, final).
- Exactly one version is in effect at any instant after the first approval: an approval is refused (409) unless
  the version's ``effectiveFrom`` is after that of every approved version, so effective periods never overlap
  and never leave a gap. A proposal is refused early (422) for the same reason.
- ``effective_agreement(session, bilateral_id, at)`` is what a bill names: the version in effect at ``at``.

Every change (proposal, each approval, rejection, supersession) is saved through ``changes.save``, so it is a
leaf of the bilateral's log.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from sonata_dlt import base_paths
from sonata_dlt.bilateral.agreement_terms import AgreementTerms, parse_terms
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest, Conflict, NotFound, Unprocessable
from sonata_dlt.storage.billing_inputs import AgreementVersion
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.transparency.canonical import state_hash
from sonata_dlt.verifiable_log import changes
from sonata_dlt.verifiable_log.recording import lock_log_head

API_BASE = base_paths.SMART_BILATERAL
RESOURCE_TYPE = "agreement"
STATES = ("proposed", "approved", "rejected")


@dataclass(frozen=True)
class EffectiveAgreement:
    """The agreement version in effect at some instant, with its parsed terms."""

    id: str
    agreement_id: str
    version: int
    effective_from: datetime
    effective_until: datetime | None
    terms: AgreementTerms
    document: dict[str, Any]


def effective_agreement(session: Session, bilateral_id: str, at: datetime) -> EffectiveAgreement | None:
    """The approved version in effect at ``at`` (``effectiveFrom <= at < effectiveUntil``), or None."""
    row = session.exec(
        select(AgreementVersion)
        .where(
            AgreementVersion.bilateral_id == bilateral_id,
            AgreementVersion.state == "approved",
            col(AgreementVersion.effective_from) <= at,
            (col(AgreementVersion.effective_to).is_(None)) | (col(AgreementVersion.effective_to) > at),
        )
        .order_by(col(AgreementVersion.effective_from).desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _effective(row)


def require_effective_agreement(session: Session, bilateral_id: str, at: datetime, path: str) -> EffectiveAgreement:
    """``effective_agreement`` or a 422 that says why nothing applies (e.g. a version still missing an approval)."""
    found = effective_agreement(session, bilateral_id, at)
    if found is not None:
        return found
    pending = session.exec(
        select(AgreementVersion).where(
            AgreementVersion.bilateral_id == bilateral_id,
            AgreementVersion.state == "proposed",
            col(AgreementVersion.effective_from) <= at,
        )
    ).first()
    hint = ""
    if pending is not None:
        missing = {"buyer", "seller"} - {approval["role"] for approval in pending.document.get("approvals", [])}
        hint = f"; version {pending.number} is still missing the {' and '.join(sorted(missing))} approval"
    raise Unprocessable.single(
        "referenceNotFound", f"no approved agreement version is in effect at {rfc3339(at)}{hint}", path
    )


def _effective(row: AgreementVersion) -> EffectiveAgreement:
    document = row.document
    return EffectiveAgreement(
        id=row.id,
        agreement_id=str(document["agreementId"]),
        version=row.number,
        effective_from=row.effective_from,
        effective_until=row.effective_to,
        terms=parse_terms(document["terms"]),
        document=document,
    )


def propose(
    runtime: Runtime,
    party: Party,
    bilateral: BilateralRef,
    *,
    agreement_id: str,
    effective_from: datetime,
    terms: dict[str, Any],
    description: str | None = None,
) -> dict[str, Any]:
    parse_terms(terms)  # raises 422 with every problem before anything is stored
    with runtime.db.write() as session:
        # Lock the log head first: it serialises proposals per bilateral, so version numbers cannot collide.
        lock_log_head(session, bilateral.id)
        latest = _latest_approved(session, bilateral.id)
        if latest is not None and effective_from <= latest.effective_from:
            raise Unprocessable.single(
                "invalidValue",
                f"overlapping periods: version {latest.number} is in effect from {rfc3339(latest.effective_from)};"
                " a new version must take effect after that",
                "/effectiveFrom",
            )
        number = (
            session.exec(
                select(func.max(AgreementVersion.number)).where(AgreementVersion.bilateral_id == bilateral.id)
            ).one()
            or 0
        ) + 1
        now = utcnow()
        row_id = str(uuid.uuid4())
        document: dict[str, Any] = {
            "id": row_id,
            "href": f"{API_BASE}/agreement/{row_id}",
            "@type": "Agreement",
            "agreementId": agreement_id,
            "version": number,
            "state": "proposed",
            "buyerId": bilateral.buyer_id,
            "sellerId": bilateral.seller_id,
            "proposedBy": {"partyId": party.id, "role": party.role.value},
            "proposedAt": rfc3339(now),
            "effectiveFrom": rfc3339(effective_from),
            "approvals": [],
            "terms": copy.deepcopy(terms),
            "termsHash": state_hash(terms).hex(),
        }
        if description:
            document["description"] = description
        row = AgreementVersion(
            id=row_id,
            bilateral_id=bilateral.id,
            number=number,
            state="proposed",
            effective_from=effective_from,
            created_at=now,
            updated_at=now,
        )
        changes.save(
            session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="proposed",
            actor=party.actor,
        )  # fmt: skip
        return document


def approve(runtime: Runtime, party: Party, agreement_version_id: str, **scope: str | None) -> dict[str, Any]:
    """Record ``party``'s approval; the second side's approval puts the version in effect."""
    with runtime.db.write() as session:
        row, bilateral = _locked(runtime, session, party, agreement_version_id, scope)
        if row.state != "proposed":
            raise Conflict(f"agreement version {row.number} is {row.state}; only a proposed version can be approved")
        approvals = list(row.document.get("approvals", []))
        if any(approval["role"] == party.role.value for approval in approvals):
            raise Conflict(f"the {party.role.value} has already approved agreement version {row.number}")
        now = utcnow()
        document = copy.deepcopy(row.document)
        document["approvals"] = [
            *approvals,
            {"partyId": party.id, "role": party.role.value, "approvedAt": rfc3339(now)},
        ]
        both = {approval["role"] for approval in document["approvals"]} == {"buyer", "seller"}
        event = "approval"
        if both:
            latest = _latest_approved(session, bilateral.id)
            if latest is not None and row.effective_from <= latest.effective_from:
                raise Conflict(
                    f"overlapping periods: version {latest.number} is in effect from"
                    f" {rfc3339(latest.effective_from)}, not before this version's {rfc3339(row.effective_from)}"
                )
            if latest is not None:
                superseded = copy.deepcopy(latest.document)
                superseded["effectiveUntil"] = rfc3339(row.effective_from)
                latest.effective_to = row.effective_from
                changes.save(
                    session, bilateral, latest, superseded, resource_type=RESOURCE_TYPE, event="superseded",
                    actor=party.actor,
                )  # fmt: skip
            document["state"] = "approved"
            row.state = "approved"
            event = "approved"
        changes.save(
            session, bilateral, row, document, resource_type=RESOURCE_TYPE, event=event,
            actor=party.actor,
        )  # fmt: skip
        return document


def reject(
    runtime: Runtime, party: Party, agreement_version_id: str, reason: str | None, **scope: str | None
) -> dict[str, Any]:
    with runtime.db.write() as session:
        row, bilateral = _locked(runtime, session, party, agreement_version_id, scope)
        if row.state != "proposed":
            raise Conflict(f"agreement version {row.number} is {row.state}; only a proposed version can be rejected")
        document = copy.deepcopy(row.document)
        document["state"] = "rejected"
        rejection: dict[str, Any] = {"partyId": party.id, "role": party.role.value, "rejectedAt": rfc3339(utcnow())}
        if reason:
            rejection["reason"] = reason
        document["rejection"] = rejection
        row.state = "rejected"
        changes.save(
            session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="rejected",
            actor=party.actor,
        )  # fmt: skip
        return document


def retrieve(runtime: Runtime, party: Party, agreement_version_id: str, **scope: str | None) -> dict[str, Any]:
    ids = [ref.id for ref in runtime.parties.scope(party, scope.get("buyer_id"), scope.get("seller_id"))]
    with runtime.db.read() as session:
        row = session.exec(
            select(AgreementVersion).where(
                AgreementVersion.id == agreement_version_id, col(AgreementVersion.bilateral_id).in_(ids)
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"agreement {agreement_version_id} not found")
        return copy.deepcopy(row.document)


def retrieve_effective(runtime: Runtime, party: Party, bilateral: BilateralRef, at: datetime) -> dict[str, Any]:
    with runtime.db.read() as session:
        found = effective_agreement(session, bilateral.id, at)
        if found is None:
            raise NotFound(f"no approved agreement version is in effect at {rfc3339(at)}")
        return copy.deepcopy(found.document)


def list_versions(
    runtime: Runtime,
    party: Party,
    *,
    state: str | None,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of agreement versions, newest first."""
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}", code="invalidQuery")
    ids = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    conditions: list[Any] = [col(AgreementVersion.bilateral_id).in_(ids)]
    if state is not None:
        conditions.append(AgreementVersion.state == state)
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            AgreementVersion,
            conditions,
            order_by=(col(AgreementVersion.created_at).desc(), col(AgreementVersion.number).desc()),
            offset=offset,
            limit=limit,
        )
        return [copy.deepcopy(row.document) for row in rows], int(total)


def _latest_approved(session: Session, bilateral_id: str) -> AgreementVersion | None:
    return session.exec(
        select(AgreementVersion)
        .where(AgreementVersion.bilateral_id == bilateral_id, AgreementVersion.state == "approved")
        .order_by(col(AgreementVersion.effective_from).desc())
        .limit(1)
    ).one_or_none()


def _locked(
    runtime: Runtime, session: Session, party: Party, agreement_version_id: str, scope: dict[str, str | None]
) -> tuple[AgreementVersion, BilateralRef]:
    ids = [ref.id for ref in runtime.parties.scope(party, scope.get("buyer_id"), scope.get("seller_id"))]
    row = session.exec(
        select(AgreementVersion).where(
            AgreementVersion.id == agreement_version_id, col(AgreementVersion.bilateral_id).in_(ids)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"agreement {agreement_version_id} not found")
    # The log head lock serialises approvals of the bilateral: two parties approving at once cannot both see
    # themselves as the first, and two versions cannot both be put in effect.
    lock_log_head(session, row.bilateral_id)
    session.refresh(row)
    bilateral = runtime.parties.by_id(row.bilateral_id)
    if bilateral is None:  # configured bilaterals own every row; a missing one means the settings changed
        raise NotFound(f"agreement {agreement_version_id} not found")
    return row, bilateral
