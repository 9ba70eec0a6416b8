"""Inventory reports: each party's immutable view of the services active in the bilateral over a period.

A report is submitted as JSON rows, or streamed as CSV (``text/csv``) or NDJSON (``application/x-ndjson``); its rows
have the shape of ``report_rows.REPORT_COLUMNS``. The agreement in effect at the period's start supplies the key
fields: every row needs them, and no two rows may share a key (422 naming the key and both lines). The rows are
stored once, as ``<data_dir>/reports/<contentHash>.csv`` (``report_files``); the report resource in the database
(recorded in the log, event ``submitted``) names the hash, the row count, the period and the agreement version.
Reports are never changed or deleted: a correction is a new report.

Content hash (``contentHash``, form ``inventory-report-submission/v4``): the lowercase hex SHA-256 of the report as
submitted, so that the submitter checks it with any SHA-256 tool against the file it kept:

- a CSV or NDJSON upload: the request body's bytes exactly as received (``sha256sum report.csv``);
- JSON rows: the RFC 8785 canonical JSON (UTF-8) of the ``rows`` array;
- a product-inventory snapshot: the CSV the server wrote (header ``REPORT_COLUMNS``, one row per product sorted by
  product id, LF line ends).

The same submission gives the same hash and is stored once; the same rows in another order or format are another
submission. (Forms v2 and v3 hashed a canonical encoding of the sorted rows instead: order- and format-independent,
but a million rows cost a DuckDB sort and encoding pass several times DuckDB's whole load, and no standard tool
could check the hash. Reports stored under them keep their hashes.)

The seller's view can also be taken from the server's own Sonata Product Inventory (``snapshot_product_inventory``):
every product version in force at some instant of the period, exported to the same row shape (one row per product,
its latest configuration in the period):

- serviceId = product id, buyerReference = ``externalId``, productType = ``productConfiguration.@type``
  (else the product specification id), status = product status,
- bandwidthMbps = the committed bandwidth of the configuration (``product_bandwidth.bandwidth_mbps``: the CIR of the
  MEF bandwidth profiles of Access E-Line, Operator UNI and Basic Internet Access, or an older ``{amount, units}``),
  siteA / siteZ = the first two ``relatedSite`` ids,
- startDate = the product's ``startDate``, endDate = its ``terminationDate``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from sonata_dlt.bilateral.agreements import API_BASE, require_effective_agreement
from sonata_dlt.bilateral.report_columns import REPORT_COLUMNS
from sonata_dlt.bilateral.reports import report_files, report_uploads
from sonata_dlt.bilateral.reports.report_uploads import Upload
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest, NotFound, Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.sonata.inventory import versions_active_between
from sonata_dlt.sonata.product_bandwidth import bandwidth_mbps
from sonata_dlt.storage.billing_inputs import InventoryReport
from sonata_dlt.storage.inventory import Product
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.transparency.canonical import canonical_json
from sonata_dlt.verifiable_log import changes

RESOURCE_TYPE = "inventoryReport"
CANONICAL_FORM = "inventory-report-submission/v4"
MEDIA_TYPES = ("text/csv", "application/x-ndjson")


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Unprocessable.single("invalidValue", "periodEnd must be after periodStart", "/periodEnd")


def submit_rows(
    runtime: Runtime, party: Party, bilateral: BilateralRef, start: datetime, end: datetime, rows: list[Any]
) -> dict[str, Any]:
    """A report given as a JSON array of rows (errors point at ``/rows/<index>``)."""
    check_period(start, end)
    data_dir = runtime.settings.data_dir
    with runtime.db.read() as session:
        agreement = require_effective_agreement(session, bilateral.id, start, "/periodStart")
    with report_files.scratch_file(data_dir, ".csv") as scratch:
        report_uploads.rows_to_csv(rows, scratch)  # checks every cell: what passes is plain JSON
        content_hash = hashlib.sha256(canonical_json(rows)).hexdigest()
        stored = report_files.store_csv(
            data_dir, scratch, agreement.terms.matching, content_hash, locate=lambda line: f"/rows/{line - 2}"
        )
    return _record(runtime, party, bilateral, start, end, stored, "json", agreement.id, agreement.version)


def submit_file(
    runtime: Runtime, party: Party, bilateral: BilateralRef, start: datetime, end: datetime, upload: Upload, media: str
) -> dict[str, Any]:
    """A report uploaded as CSV or NDJSON (the caller owns and removes the file)."""
    check_period(start, end)
    if media not in MEDIA_TYPES:
        raise BadRequest(f"an inventory report upload must be one of {', '.join(MEDIA_TYPES)}", code="invalidBody")
    data_dir = runtime.settings.data_dir
    with runtime.db.read() as session:
        agreement = require_effective_agreement(session, bilateral.id, start, "/periodStart")
    matching = agreement.terms.matching
    if media == "text/csv":
        stored = report_files.store_csv(data_dir, upload.path, matching, upload.sha256)
        source = "csv"
    else:
        with report_files.scratch_file(data_dir, ".csv") as scratch:
            report_uploads.ndjson_to_csv(report_files.iter_lines(upload.path), scratch)
            stored = report_files.store_csv(
                data_dir, scratch, matching, upload.sha256, locate=lambda line: f"line {line - 1}"
            )
        source = "ndjson"
    return _record(runtime, party, bilateral, start, end, stored, source, agreement.id, agreement.version)


def snapshot_product_inventory(
    runtime: Runtime, party: Party, bilateral: BilateralRef, start: datetime, end: datetime
) -> dict[str, Any]:
    """The seller's report taken from the bilateral's Product Inventory (see the module docstring)."""
    check_period(start, end)
    data_dir = runtime.settings.data_dir
    with runtime.db.read() as session:
        agreement = require_effective_agreement(session, bilateral.id, start, "/periodStart")
        latest: dict[str, Mapping[str, Any]] = {}
        for version in versions_active_between(session, bilateral.id, start, end):
            latest[version.product_id] = version.document  # ordered by version: the last one wins
        statuses = {
            row.id: (row.status, row.document)
            for row in session.exec(select(Product).where(col(Product.id).in_(list(latest)))).all()
        }
    with report_files.scratch_file(data_dir, ".csv") as scratch:
        with open(scratch, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(REPORT_COLUMNS)
            for product_id in sorted(latest):
                status, current = statuses.get(product_id, ("", {}))
                writer.writerow(_product_row(product_id, latest[product_id], status, current))
        stored = report_files.store_csv(data_dir, scratch, agreement.terms.matching, Upload.of_file(scratch).sha256)
    seller = Party(bilateral.seller_id, Role.SELLER)
    return _record(
        runtime, party, bilateral, start, end, stored, "productInventory", agreement.id, agreement.version, seller
    )


def _product_row(product_id: str, version: Mapping[str, Any], status: str, current: Mapping[str, Any]) -> list[str]:
    configuration = version.get("productConfiguration") or {}
    product_type = configuration.get("@type") or (version.get("productSpecification") or {}).get("id") or ""
    sites = [site.get("id", "") for site in version.get("relatedSite", []) if isinstance(site, dict)]
    bandwidth = bandwidth_mbps(configuration)
    return [
        product_id,
        str(version.get("externalId") or ""),
        str(product_type),
        "" if bandwidth is None else format(bandwidth, "f"),  # never exponent notation: the CSV reader wants digits
        sites[0] if sites else "",
        sites[1] if len(sites) > 1 else "",
        status,
        str(current.get("startDate") or version.get("startDate") or ""),
        str(current.get("terminationDate") or ""),
    ]


def _record(
    runtime: Runtime,
    party: Party,
    bilateral: BilateralRef,
    start: datetime,
    end: datetime,
    stored: report_files.StoredRows,
    source: str,
    agreement_id: str,
    agreement_version: int,
    owner: Party | None = None,
) -> dict[str, Any]:
    owner = owner or party
    now = utcnow()
    report_id = str(uuid.uuid4())
    document: dict[str, Any] = {
        "id": report_id,
        "href": f"{API_BASE}/inventoryReport/{report_id}",
        "@type": "InventoryReport",
        "role": owner.role.value,
        "partyId": owner.id,
        "submittedBy": {"partyId": party.id, "role": party.role.value},
        "source": source,
        "periodStart": rfc3339(start),
        "periodEnd": rfc3339(end),
        "agreement": {"id": agreement_id, "version": agreement_version},
        "rowCount": stored.row_count,
        "contentHash": stored.content_hash,
        "canonicalForm": CANONICAL_FORM,
        "submittedAt": rfc3339(now),
    }
    row = InventoryReport(
        id=report_id,
        bilateral_id=bilateral.id,
        role=owner.role.value,
        source=source,
        period_start=start,
        period_end=end,
        content_hash=stored.content_hash,
        row_count=stored.row_count,
        created_at=now,
        updated_at=now,
    )
    with runtime.db.write() as session:
        changes.save(
            session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="submitted",
            actor=party.actor,
        )  # fmt: skip
    return document


def retrieve(runtime: Runtime, party: Party, report_id: str, **scope: str | None) -> dict[str, Any]:
    ids = [ref.id for ref in runtime.parties.scope(party, scope.get("buyer_id"), scope.get("seller_id"))]
    with runtime.db.read() as session:
        row = session.exec(
            select(InventoryReport).where(InventoryReport.id == report_id, col(InventoryReport.bilateral_id).in_(ids))
        ).one_or_none()
        if row is None:
            raise NotFound(f"inventory report {report_id} not found")
        return copy.deepcopy(row.document)


def list_reports(
    runtime: Runtime,
    party: Party,
    *,
    role: str | None,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    if role is not None and role not in ("buyer", "seller"):
        raise BadRequest("role must be buyer or seller", code="invalidQuery")
    ids = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    conditions: list[Any] = [col(InventoryReport.bilateral_id).in_(ids)]
    if role is not None:
        conditions.append(InventoryReport.role == role)
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            InventoryReport,
            conditions,
            order_by=(col(InventoryReport.created_at).desc(), col(InventoryReport.id)),
            offset=offset,
            limit=limit,
        )
        return [copy.deepcopy(row.document) for row in rows], int(total)
