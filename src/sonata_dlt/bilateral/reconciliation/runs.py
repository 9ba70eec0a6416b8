"""Reconciliations: a buyer inventory report against a seller report, under the agreement's matching rules.

``create`` checks the two reports (same bilateral and period, each checked against the agreement version in effect
at the period's start, otherwise their keys may not be unique under the rules used here), or takes the seller's side
from a snapshot of the product inventory; ``reconciliation_results`` joins, classifies and stores the exceptions under
their hash (form and hash described there). The reconciliation resource (recorded, event ``completed``) holds the
summary counts, both reports' hashes, the agreement version and ``resultsHash``: together they fix every result.
Results (the stored exceptions and the matched keys derived from the reports, ``stored_results``) are read back a
page at a time, exported as CSV, or walked by a billing run.

For billing: ``billable_service_keys`` yields the keys a billing run may bill: ``matched`` ones, plus the keys a
resolved dispute settled (passed in by the caller).
"""

# SQL here is assembled from fixed column names (report_rows.REPORT_COLUMNS, checked by quoted()), numbers
# from validated Decimals and paths we generate, quoted by sql_text(); user values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import copy
import csv
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt.bilateral.agreement_terms import parse_terms
from sonata_dlt.bilateral.agreements import API_BASE, require_effective_agreement
from sonata_dlt.bilateral.reconciliation.results import (
    CANONICAL_FORM,
    CLASSIFICATIONS,
    FULL_RESULTS_FORMS,
    StoredResults,
)
from sonata_dlt.bilateral.reconciliation.results import compute_results as compute_results  # re-exported for callers
from sonata_dlt.bilateral.reconciliation.results import results_dir as results_dir
from sonata_dlt.bilateral.reports import inventory_reports, report_files
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest, NotFound, Unprocessable
from sonata_dlt.storage.billing_inputs import AgreementVersion, InventoryReport, Reconciliation
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.verifiable_log import changes

RESOURCE_TYPE = "reconciliation"


def create(
    runtime: Runtime,
    party: Party,
    bilateral: BilateralRef,
    *,
    buyer_report_id: str,
    seller_report_id: str | None,
    seller_source: str | None,
) -> dict[str, Any]:
    """Reconcile a buyer report with a seller report, or with a snapshot of the seller's product inventory."""
    data_dir = runtime.settings.data_dir
    if (seller_report_id is None) == (seller_source is None):
        raise Unprocessable.single(
            "invalidValue", "give exactly one of sellerReportId and sellerSource", "/sellerReportId"
        )
    with runtime.db.read() as session:
        buyer = _report(session, bilateral, buyer_report_id, "buyer", "/buyerReportId")
        seller = (
            None
            if seller_report_id is None
            else _report(session, bilateral, seller_report_id, "seller", "/sellerReportId")
        )
    if seller is None:
        if seller_source != "productInventory":
            raise Unprocessable.single("invalidValue", "sellerSource must be productInventory", "/sellerSource")
        snapshot = inventory_reports.snapshot_product_inventory(
            runtime, party, bilateral, buyer.period_start, buyer.period_end
        )
        with runtime.db.read() as session:
            seller = _report(session, bilateral, snapshot["id"], "seller", "/sellerSource")
    if (buyer.period_start, buyer.period_end) != (seller.period_start, seller.period_end):
        raise Unprocessable.single(
            "invalidValue",
            f"the reports cover different periods: buyer [{rfc3339(buyer.period_start)}, {rfc3339(buyer.period_end)}),"
            f" seller [{rfc3339(seller.period_start)}, {rfc3339(seller.period_end)})",
            "/sellerReportId",
        )
    with runtime.db.read() as session:
        agreement = require_effective_agreement(session, bilateral.id, buyer.period_start, "/buyerReportId")
    for report, path in ((buyer, "/buyerReportId"), (seller, "/sellerReportId")):
        if report.document["agreement"]["id"] != agreement.id:
            raise Unprocessable.single(
                "invalidValue",
                f"report {report.id} was checked against agreement version {report.document['agreement']['version']},"
                f" but version {agreement.version} is in effect for the period: submit it again",
                path,
            )
    results = compute_results(
        data_dir,
        agreement.terms.matching,
        report_files.stored_report(data_dir, buyer.content_hash),
        report_files.stored_report(data_dir, seller.content_hash),
        buyer.row_count,
    )
    now = utcnow()
    rec_id = str(uuid.uuid4())
    document: dict[str, Any] = {
        "id": rec_id,
        "href": f"{API_BASE}/reconciliation/{rec_id}",
        "@type": "Reconciliation",
        "state": "completed",
        "periodStart": rfc3339(buyer.period_start),
        "periodEnd": rfc3339(buyer.period_end),
        "agreement": {"id": agreement.id, "version": agreement.version},
        "buyerReport": {"id": buyer.id, "contentHash": buyer.content_hash, "rowCount": buyer.row_count},
        "sellerReport": {"id": seller.id, "contentHash": seller.content_hash, "rowCount": seller.row_count},
        "summary": {**results.counts, "total": sum(results.counts.values())},
        "resultsHash": results.results_hash,
        "canonicalForm": CANONICAL_FORM,
        "createdBy": {"partyId": party.id, "role": party.role.value},
        "createdAt": rfc3339(now),
    }
    row = Reconciliation(
        id=rec_id,
        bilateral_id=bilateral.id,
        buyer_report_id=buyer.id,
        seller_report_id=seller.id,
        period_start=buyer.period_start,
        period_end=buyer.period_end,
        results_hash=results.results_hash,
        created_at=now,
        updated_at=now,
    )
    with runtime.db.write() as session:
        changes.save(
            session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="completed",
            actor=party.actor,
        )  # fmt: skip
    return document


def _report(session: Session, bilateral: BilateralRef, report_id: str, role: str, path: str) -> InventoryReport:
    row = session.exec(
        select(InventoryReport).where(InventoryReport.id == report_id, InventoryReport.bilateral_id == bilateral.id)
    ).one_or_none()
    if row is None:
        raise Unprocessable.single("referenceNotFound", f"inventory report {report_id} not found", path)
    if row.role != role:
        raise Unprocessable.single(
            "invalidValue", f"inventory report {report_id} is the {row.role}'s, not the {role}'s", path
        )
    return row


def _owned(
    runtime: Runtime, session: Session, party: Party, rec_id: str, scope: dict[str, str | None]
) -> Reconciliation:
    ids = [ref.id for ref in runtime.parties.scope(party, scope.get("buyer_id"), scope.get("seller_id"))]
    row = session.exec(
        select(Reconciliation).where(Reconciliation.id == rec_id, col(Reconciliation.bilateral_id).in_(ids))
    ).one_or_none()
    if row is None:
        raise NotFound(f"reconciliation {rec_id} not found")
    return row


def stored_results(session: Session, data_dir: Path, row: Reconciliation) -> StoredResults:
    """Where a reconciliation's results are, and for form v4 the rules and reports its matched keys derive from."""
    path = results_dir(data_dir) / f"{row.results_hash}.parquet"
    if row.document.get("canonicalForm") in FULL_RESULTS_FORMS:
        return StoredResults(path, None)
    agreement = session.get(AgreementVersion, row.document["agreement"]["id"])
    buyer = session.get(InventoryReport, row.buyer_report_id)
    seller = session.get(InventoryReport, row.seller_report_id)
    if agreement is None or buyer is None or seller is None:  # never deleted; a damaged database
        raise NotFound(f"the agreement or reports of reconciliation {row.id} are missing")
    return StoredResults(
        path,
        (
            parse_terms(agreement.document["terms"]).matching,
            report_files.stored_report(data_dir, buyer.content_hash),
            report_files.stored_report(data_dir, seller.content_hash),
        ),
        results_dir(data_dir) / "paged" / f"{row.id}.parquet",
    )


def retrieve(runtime: Runtime, party: Party, rec_id: str, **scope: str | None) -> dict[str, Any]:
    with runtime.db.read() as session:
        return copy.deepcopy(_owned(runtime, session, party, rec_id, scope).document)


def list_reconciliations(
    runtime: Runtime,
    party: Party,
    *,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    ids = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    condition = col(Reconciliation.bilateral_id).in_(ids)
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            Reconciliation,
            [condition],
            order_by=(col(Reconciliation.created_at).desc(), col(Reconciliation.id)),
            offset=offset,
            limit=limit,
        )
        return [copy.deepcopy(row.document) for row in rows], int(total)


def _checked(classification: str | None) -> str | None:
    if classification is not None and classification not in CLASSIFICATIONS:
        raise BadRequest(f"classification must be one of {', '.join(CLASSIFICATIONS)}", code="invalidQuery")
    return classification


def list_records(
    runtime: Runtime,
    party: Party,
    rec_id: str,
    *,
    classification: str | None,
    service_key: str | None,
    offset: int,
    limit: int,
    **scope: str | None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of results, by key, filtered by classification and/or key."""
    with runtime.db.read() as session:
        results = stored_results(session, runtime.settings.data_dir, _owned(runtime, session, party, rec_id, scope))
    where, params = ("", []) if service_key is None else (" WHERE serviceKey = ?", [service_key])
    con = report_files.connect(runtime.settings.data_dir)
    try:
        source = f"({results.pageable_sql(con, _checked(classification))})"
        total_row = con.execute(f"SELECT count(*) FROM {source}{where}", params).fetchone()
        rows = con.execute(
            f"SELECT serviceKey, classification, differences FROM {source}{where} ORDER BY serviceKey LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
    finally:
        con.close()
    items = [
        {
            "serviceKey": key,
            "classification": kind,
            "differences": [
                {"field": d["field"], "buyerValue": d["buyerValue"], "sellerValue": d["sellerValue"]} for d in diffs
            ],
        }
        for key, kind, diffs in rows
    ]
    return items, int(total_row[0]) if total_row else 0


def export_csv(
    runtime: Runtime, party: Party, rec_id: str, target: Path, *, classification: str | None, **scope: str | None
) -> None:
    """Write the (filtered) results as CSV: serviceKey, classification, differences (JSON array text)."""
    with runtime.db.read() as session:
        results = stored_results(session, runtime.settings.data_dir, _owned(runtime, session, party, rec_id, scope))
    con = report_files.connect(runtime.settings.data_dir)
    try:
        source = results.pageable_sql(con, _checked(classification))
        cursor = con.execute(f"SELECT serviceKey, classification, differences FROM ({source}) ORDER BY serviceKey")
        with open(target, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["serviceKey", "classification", "differences"])
            while batch := cursor.fetchmany(10_000):
                writer.writerows(
                    (key, kind, json.dumps(diffs, separators=(",", ":"), ensure_ascii=False) if diffs else "")
                    for key, kind, diffs in batch
                )
    finally:
        con.close()


def billable_service_keys(
    session: Session, data_dir: Path, bilateral_id: str, reconciliation_id: str, *, resolved: Iterable[str] = ()
) -> Iterator[str]:
    """Keys a billing run may bill from this reconciliation, sorted: every ``matched`` key, plus the ``resolved``
    keys (a dispute settled them) that the reconciliation holds in any other classification."""
    row = session.exec(
        select(Reconciliation).where(
            Reconciliation.id == reconciliation_id, Reconciliation.bilateral_id == bilateral_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"reconciliation {reconciliation_id} not found")
    extra: Sequence[str] = sorted(set(resolved))
    results = stored_results(session, data_dir, row)
    con = report_files.connect(data_dir)
    try:
        con.execute("CREATE TEMP TABLE resolved (k VARCHAR)")
        if extra:
            con.executemany("INSERT INTO resolved VALUES (?)", [(key,) for key in extra])
        cursor = con.execute(
            f"SELECT serviceKey FROM ({results.pageable_sql(con, 'matched')}) UNION"
            f" SELECT serviceKey FROM ({results.stored_sql()}) WHERE serviceKey IN (SELECT k FROM resolved)"
            " ORDER BY serviceKey"
        )
        while batch := cursor.fetchmany(10_000):
            for (key,) in batch:
                yield str(key)
    finally:
        con.close()


def latest_reconciliation(session: Session, bilateral_id: str, start: datetime, end: datetime) -> Reconciliation | None:
    """The newest reconciliation of exactly the period ``[start, end)``, for a billing run to build on."""
    return session.exec(
        select(Reconciliation)
        .where(
            Reconciliation.bilateral_id == bilateral_id,
            Reconciliation.period_start == start,
            Reconciliation.period_end == end,
        )
        .order_by(col(Reconciliation.created_at).desc())
        .limit(1)
    ).one_or_none()
