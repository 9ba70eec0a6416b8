"""Usage records (CDR / IPDR style) from both parties, their totals for billing, and usage reconciliation.

A usage record: ``{id, serviceKey, metric, unit, quantity >= 0 (at most 6 decimals), start, end}`` (RFC 3339,
``start <= end``). Each party submits its own measurements (record ids are per party). Ingest is idempotent by
record id: a record whose id the party already submitted with the same content is skipped; the same id with other
content is refused with 409 and nothing of the submission is stored. "Same content" is the SHA-256 of the record's
RFC 8785 canonical JSON after normalisation (quantity as a plain decimal string, times as UTC milliseconds).

A submission that adds records becomes one recorded ``usageBatch`` (event ``submitted``) whose ``recordsHash`` is
the SHA-256 of the added records' canonical JSON, one per line (LF-terminated), in submission order. Records are
plain rows: a million CDRs do not become a million log leaves. A submission that adds nothing changes no state and
records nothing.

A record counts in the period holding its ``start``. ``usage_totals`` gives the billing run one party's totals per
(metric, unit) for a service; ``reconcile`` compares buyer and seller totals per (service, metric, unit) with the
agreement's ``usageMatching`` tolerance: ``agreed``, ``disagreed``, ``buyerOnly`` or ``sellerOnly``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from sonata_dlt.bilateral.agreements import API_BASE, require_effective_agreement
from sonata_dlt.bilateral.rating.engine import UsageTotal
from sonata_dlt.bilateral.reports.inventory_reports import check_period
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Issue, NotFound, Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.storage.billing_inputs import UsageBatch, UsageReconciliation, UsageRecord
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.transparency.canonical import canonical_json
from sonata_dlt.verifiable_log import changes

CHUNK = 2_000  # records checked and inserted per statement: bounded memory for any submission size
MICRO = Decimal(1_000_000)
MAX_ISSUES = 20
FIELDS = ("id", "serviceKey", "metric", "unit", "quantity", "start", "end")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.astimezone(UTC)


def parse_record(raw: Any, where: str) -> tuple[dict[str, Any] | None, list[Issue]]:
    """A normalised record (the form that is hashed and stored) or the problems, each naming ``where``."""
    if not isinstance(raw, dict):
        return None, [Issue("invalidFormat", f"{where}: a usage record must be a JSON object", where)]
    issues = [
        Issue("unexpectedProperty", f"{where}: unknown property {key!r}", f"{where}/{key}")
        for key in raw
        if key not in FIELDS
    ]
    for key in ("id", "serviceKey", "metric", "unit"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > (256 if key == "serviceKey" else 128):
            issues.append(Issue("invalidValue", f"{where}: {key} must be a non-empty string", f"{where}/{key}"))
    quantity: Decimal | None = None
    value = raw.get("quantity")
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            quantity = Decimal(str(value))
        except InvalidOperation:
            quantity = None
    if (
        quantity is None
        or not quantity.is_finite()
        or quantity < 0
        or quantity != quantity.quantize(Decimal("0.000001"))
    ):
        issues.append(
            Issue(
                "invalidValue", f"{where}: quantity must be a number >= 0 with at most 6 decimals", f"{where}/quantity"
            )
        )
    start, end = _moment(raw.get("start")), _moment(raw.get("end"))
    for key, moment in (("start", start), ("end", end)):
        if moment is None:
            issues.append(
                Issue("invalidValue", f"{where}: {key} must be an RFC 3339 date-time with offset", f"{where}/{key}")
            )
    if start is not None and end is not None and end < start:
        issues.append(Issue("invalidValue", f"{where}: end is before start", f"{where}/end"))
    if issues or quantity is None or start is None or end is None:
        return None, issues
    normal = quantity.normalize()
    return {
        "id": raw["id"],
        "serviceKey": raw["serviceKey"],
        "metric": raw["metric"],
        "unit": raw["unit"],
        "quantity": f"{normal:f}",
        "start": rfc3339(start),
        "end": rfc3339(end),
    }, []


def ingest(
    runtime: Runtime, party: Party, bilateral: BilateralRef, records: Iterable[tuple[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """Store the party's new records; ``records`` yields (location, raw record). Returns (document, created)."""
    role = party.role.value
    digest = hashlib.sha256()
    received = accepted = 0
    batch_id = str(uuid.uuid4())
    with runtime.db.write() as session:
        for chunk in _chunks(records):
            parsed: list[dict[str, Any]] = []
            issues: list[Issue] = []
            for where, raw in chunk:
                record, problems = parse_record(raw, where)
                issues.extend(problems)
                if record is not None:
                    parsed.append(record)
            if issues:
                raise Unprocessable(issues[:MAX_ISSUES])
            received += len(parsed)
            fresh = _new_records(session, bilateral.id, role, parsed)
            rows = []
            for record, record_hash in fresh:
                digest.update(canonical_json(record) + b"\n")
                rows.append(
                    {
                        "bilateral_id": bilateral.id,
                        "role": role,
                        "record_id": record["id"],
                        "service_key": record["serviceKey"],
                        "metric": record["metric"],
                        "unit": record["unit"],
                        "quantity_micro": int(Decimal(record["quantity"]) * MICRO),
                        "start": _moment(record["start"]),
                        "end": _moment(record["end"]),
                        "record_hash": record_hash,
                        "batch_id": batch_id,
                    }
                )
            if rows:
                session.execute(insert(UsageRecord), rows)
            accepted += len(rows)
        now = utcnow()
        document: dict[str, Any] = {
            "@type": "UsageBatch",
            "role": role,
            "partyId": party.id,
            "received": received,
            "accepted": accepted,
            "duplicates": received - accepted,
            "submittedAt": rfc3339(now),
        }
        if not accepted:
            return document, False
        document = {
            "id": batch_id,
            "href": f"{API_BASE}/usageBatch/{batch_id}",
            **document,
            "recordsHash": digest.hexdigest(),
        }
        row = UsageBatch(id=batch_id, bilateral_id=bilateral.id, role=role, created_at=now, updated_at=now)
        changes.save(
            session, bilateral, row, document, resource_type="usageBatch", event="submitted",
            actor=party.actor,
        )  # fmt: skip
        return document, True


def _chunks(records: Iterable[tuple[str, Any]]) -> Iterator[list[tuple[str, Any]]]:
    chunk: list[tuple[str, Any]] = []
    for item in records:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _new_records(
    session: Session, bilateral_id: str, role: str, records: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], str]]:
    """The records not stored yet, with their hashes; 409 on an id already stored (or repeated) with other content."""
    hashes: dict[str, str] = {}
    fresh: list[tuple[dict[str, Any], str]] = []
    existing = dict(
        session.execute(
            select(col(UsageRecord.record_id), col(UsageRecord.record_hash)).where(
                UsageRecord.bilateral_id == bilateral_id,
                UsageRecord.role == role,
                col(UsageRecord.record_id).in_([record["id"] for record in records]),
            )
        ).all()
    )
    for record in records:
        record_hash = hashlib.sha256(canonical_json(record)).hexdigest()
        known = existing.get(record["id"]) or hashes.get(record["id"])
        if known is not None:
            if known != record_hash:
                raise Conflict(f"usage record {record['id']} was already submitted with different content")
            continue
        hashes[record["id"]] = record_hash
        fresh.append((record, record_hash))
    return fresh


def json_lines(lines: Iterable[bytes]) -> Iterator[tuple[str, Any]]:
    """(``line N``, parsed object) from NDJSON; a line that is not JSON yields its text, which ``parse_record``
    then refuses with the line number."""
    for number, raw in enumerate(lines, start=1):
        try:
            value: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            value = raw.decode("utf-8", "replace").strip()
        yield f"line {number}", value


def usage_totals(
    session: Session, bilateral_id: str, service_key: str, start: datetime, end: datetime, party: Role
) -> list[UsageTotal]:
    """One party's totals per (metric, unit) for a service, over records starting in ``[start, end)``."""
    rows = session.execute(
        select(col(UsageRecord.metric), col(UsageRecord.unit), func.sum(UsageRecord.quantity_micro))
        .where(
            UsageRecord.bilateral_id == bilateral_id,
            UsageRecord.role == party.value,
            UsageRecord.service_key == service_key,
            col(UsageRecord.start) >= start,
            col(UsageRecord.start) < end,
        )
        .group_by(UsageRecord.metric, UsageRecord.unit)
        .order_by(UsageRecord.metric, UsageRecord.unit)
    ).all()
    return [UsageTotal(service_key, metric, unit, Decimal(int(total)) / MICRO) for metric, unit, total in rows]


def reconcile(
    runtime: Runtime, party: Party, bilateral: BilateralRef, start: datetime, end: datetime
) -> dict[str, Any]:
    check_period(start, end)
    with runtime.db.write() as session:
        agreement = require_effective_agreement(session, bilateral.id, start, "/periodStart")
        tolerance = agreement.terms.usage_tolerance
        sums = session.execute(
            sa_select(  # sqlmodel's select() is typed for at most four columns
                col(UsageRecord.service_key),
                col(UsageRecord.metric),
                col(UsageRecord.unit),
                col(UsageRecord.role),
                func.sum(UsageRecord.quantity_micro),
            )
            .where(
                col(UsageRecord.bilateral_id) == bilateral.id,
                col(UsageRecord.start) >= start,
                col(UsageRecord.start) < end,
            )
            .group_by(UsageRecord.service_key, UsageRecord.metric, UsageRecord.unit, UsageRecord.role)
        ).all()
        totals: dict[tuple[str, str, str], dict[str, Decimal]] = {}
        for service_key, metric, unit, role, total in sums:
            totals.setdefault((service_key, metric, unit), {})[role] = Decimal(int(total)) / MICRO
        results = []
        counts = {"agreed": 0, "disagreed": 0, "buyerOnly": 0, "sellerOnly": 0}
        for (service_key, metric, unit), sides in sorted(totals.items()):
            buyer, seller = sides.get("buyer"), sides.get("seller")
            if buyer is None or seller is None:
                kind = "sellerOnly" if buyer is None else "buyerOnly"
            else:
                kind = "agreed" if tolerance.agrees(buyer, seller) else "disagreed"
            counts[kind] += 1
            result: dict[str, Any] = {"serviceKey": service_key, "metric": metric, "unit": unit, "classification": kind}
            if buyer is not None:
                result["buyerQuantity"] = f"{buyer.normalize():f}"
            if seller is not None:
                result["sellerQuantity"] = f"{seller.normalize():f}"
            if buyer is not None and seller is not None:
                result["difference"] = f"{(buyer - seller).normalize():f}"
            results.append(result)
        now = utcnow()
        rec_id = str(uuid.uuid4())
        document: dict[str, Any] = {
            "id": rec_id,
            "href": f"{API_BASE}/usageReconciliation/{rec_id}",
            "@type": "UsageReconciliation",
            "periodStart": rfc3339(start),
            "periodEnd": rfc3339(end),
            "agreement": {"id": agreement.id, "version": agreement.version},
            "tolerance": {
                "absoluteTolerance": f"{tolerance.absolute.normalize():f}",
                "relativeTolerance": f"{tolerance.relative.normalize():f}",
            },
            "summary": {**counts, "total": len(results)},
            "results": results,
            "createdBy": {"partyId": party.id, "role": party.role.value},
            "createdAt": rfc3339(now),
        }
        row = UsageReconciliation(
            id=rec_id, bilateral_id=bilateral.id, period_start=start, period_end=end, created_at=now, updated_at=now
        )
        changes.save(
            session, bilateral, row, document, resource_type="usageReconciliation", event="completed",
            actor=party.actor,
        )  # fmt: skip
        return document


def retrieve(runtime: Runtime, party: Party, kind: str, resource_id: str, **scope: str | None) -> dict[str, Any]:
    """A usage batch (``kind`` usageBatch) or usage reconciliation, by id, within the caller's bilaterals."""
    table: type[UsageBatch] | type[UsageReconciliation] = UsageBatch if kind == "usageBatch" else UsageReconciliation
    ids = [ref.id for ref in runtime.parties.scope(party, scope.get("buyer_id"), scope.get("seller_id"))]
    with runtime.db.read() as session:
        row = session.exec(select(table).where(table.id == resource_id, col(table.bilateral_id).in_(ids))).one_or_none()
        if row is None:
            raise NotFound(f"{kind} {resource_id} not found")
        return copy.deepcopy(row.document)
