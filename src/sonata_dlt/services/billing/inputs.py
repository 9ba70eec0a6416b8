"""Where a billing run's inputs come from, behind one small Protocol.

The rating engine is pure; a run asks an ``InputSource`` for the four things it rates: the agreement terms in
force, the product versions active in the period, which services must be held (with the reason) and the usage
totals. ``StoredInputs`` reads them from this server's database, through the Smart Bilateral input services:

- product versions from the inventory's history (``services.inventory.versions_active_between``);
- terms from the agreement version both parties approved, in effect at the period start
  (``agreements.require_effective_agreement``, 422 naming a missing approval), mapped by
  ``agreement_terms.engine_terms`` (volume discounts count the products active in the period);
- holds from the newest reconciliation of exactly the period (``reconciliation.latest_reconciliation``, 422 when
  there is none: unreconciled services are never billed). A product is billed when its service key is one of
  ``reconciliation.billable_service_keys``: ``matched``, or a record whose dispute both parties resolved by an
  accepted proposal (``resolved_reconciliation_disputes``). A product's service key is read from the seller's
  report of that reconciliation: its row with ``serviceId`` = the product id (``report_rows``), keyed by the
  agreement's key fields (``report_files.key_sql``, the reconciliation's own key). Any other product is held, with
  its classification or the fact that the seller's report does not list it;
- usage from ``usage.usage_totals`` (the seller's measurements, per service key), for the (service, metric, unit)
  totals the newest usage reconciliation of the period classed ``agreed``; usage recorded for a period that has no
  usage reconciliation is a 422, and totals in disagreement are not billed. The service keys that have usage are
  found with one grouped query on the ``usage_record`` table (``usage_totals`` answers one key at a time).

A runtime may install another source under ``runtime.components[COMPONENT]`` (a seller wiring its ERP, or tests).
"""

# SQL here is assembled from the agreement's key fields (checked by report_files.quoted through key_sql) and paths
# we generate, quoted by sql_text(); no request value reaches it.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from sonata_dlt.errors import Unprocessable
from sonata_dlt.services import agreements, inventory_reports, reconciliation, report_files, usage
from sonata_dlt.services.agreement_terms import bandwidth_label, engine_terms
from sonata_dlt.services.billing.engine import Period, ProductVersion, Terms, UsageTotal
from sonata_dlt.services.parties import BilateralRef
from sonata_dlt.services.product_bandwidth import bandwidth_mbps
from sonata_dlt.settings import Role
from sonata_dlt.storage.billing import Dispute
from sonata_dlt.storage.billing_inputs import InventoryReport, Reconciliation, UsageReconciliation, UsageRecord
from sonata_dlt.storage.inventory import Product
from sonata_dlt.storage.inventory import ProductVersion as VersionRow
from sonata_dlt.storage.types import rfc3339

COMPONENT = "billing.inputs"


class InputSource(Protocol):
    def terms(self, session: Session, bilateral: BilateralRef, period: Period) -> Terms: ...

    def versions(self, session: Session, bilateral: BilateralRef, period: Period) -> list[ProductVersion]: ...

    def holds(
        self, session: Session, bilateral: BilateralRef, period: Period, product_ids: Sequence[str]
    ) -> dict[str, str]: ...

    def usage(self, session: Session, bilateral: BilateralRef, period: Period) -> list[UsageTotal]: ...


def resolved_reconciliation_disputes(session: Session, bilateral_id: str, reconciliation_id: str) -> set[str]:
    """Service keys of the reconciliation's records whose dispute both parties resolved by an accepted proposal:
    a billing run bills them although reconciliation did not match them. A withdrawn dispute changes nothing."""
    rows = session.exec(
        select(Dispute).where(
            Dispute.bilateral_id == bilateral_id,
            Dispute.target_type == "reconciliationRecord",
            Dispute.state == "resolved",
        )
    ).all()
    return {
        row.target_id
        for row in rows
        if (row.document["target"].get("reconciliation") or {}).get("id") == reconciliation_id
        and (row.document.get("resolution") or {}).get("kind") == "accepted"
    }


@dataclass(frozen=True)
class ServiceKeys:
    """Product id -> (service key, classification) per the seller's report of one reconciliation."""

    reconciliation_id: str
    by_product: dict[str, tuple[str, str]]


def _service_keys(session: Session, data_dir: Path, bilateral: BilateralRef, period: Period) -> ServiceKeys:
    found: Reconciliation | None = reconciliation.latest_reconciliation(session, bilateral.id, period.start, period.end)
    if found is None:
        raise Unprocessable.single(
            "referenceNotFound",
            f"no reconciliation covers [{rfc3339(period.start)}, {rfc3339(period.end)}): reconcile both parties'"
            " inventory reports for the period before billing it",
            "/periodStart",
        )
    matching = agreements.require_effective_agreement(session, bilateral.id, period.start, "/periodStart").terms
    seller = session.get(InventoryReport, found.seller_report_id)
    if seller is None:
        raise Unprocessable.single("referenceNotFound", f"seller report {found.seller_report_id} is missing")
    report = report_files.sql_text(str(inventory_reports.report_path(data_dir, seller.content_hash)))
    results = report_files.sql_text(str(reconciliation.results_dir(data_dir) / f"{found.results_hash}.parquet"))
    con = report_files.connect(data_dir)
    try:
        rows = con.execute(
            f"SELECT s.serviceId, s.k, coalesce(r.classification, 'sellerOnly')"
            f" FROM (SELECT serviceId, {report_files.key_sql(matching.matching)} AS k FROM read_parquet({report})) s"
            f" LEFT JOIN read_parquet({results}) r ON r.serviceKey = s.k"
        ).fetchall()
    finally:
        con.close()
    return ServiceKeys(found.id, {str(pid): (str(key), str(kind)) for pid, key, kind in rows if pid is not None})


def product_key(document: Mapping[str, Any]) -> tuple[str, str]:
    """(product type, bandwidth) of an MEFProduct document: the price list's key.

    The type is the product offering id, else the configuration's ``@type``. The bandwidth is the committed
    rate ``product_bandwidth.bandwidth_mbps`` reads (MEF's ``cir: {irValue, irUnits}`` shapes, older
    ``{amount, units}``), as the price list's label (e.g. 100Mbps); else the first plain ``bandwidth`` / ``cir``
    string label found in the configuration.
    """
    configuration = document.get("productConfiguration") or {}
    offering = (document.get("productOffering") or {}).get("id")
    product_type = str(offering or configuration.get("@type") or "unknown")
    return product_type, _bandwidth(configuration) or "-"


def _bandwidth(configuration: Any) -> str | None:
    mbps = bandwidth_mbps(configuration)
    if mbps is not None:
        return bandwidth_label(mbps)
    return _labelled(configuration)


def _labelled(node: Any) -> str | None:
    if isinstance(node, Mapping):
        for key in ("bandwidth", "cir"):
            value = node.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, Mapping) and "amount" in value:
                return _label(value["amount"], str(value.get("units", "Mbps")))
        for value in node.values():
            found = _labelled(value)
            if found:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _labelled(value)
            if found:
                return found
    return None


_TO_MBPS = {"kbps": Decimal("0.001"), "mbps": Decimal(1), "gbps": Decimal(1000), "tbps": Decimal(1_000_000)}


def _label(amount: Any, units: str) -> str | None:
    """The agreement's price-list label (``bandwidth_label``) of an amount in bit/s units, e.g. 1 Gbps -> 1000Mbps."""
    factor = _TO_MBPS.get(units.strip().lower())
    try:
        mbps = Decimal(str(amount)) * factor if factor is not None else None
    except ArithmeticError:
        return None
    return bandwidth_label(mbps) if mbps is not None and mbps.is_finite() else None


def _version_rows(session: Session, bilateral_id: str, period: Period) -> Sequence[Any]:
    """``inventory.versions_active_between`` as plain rows: a Core select of the columns a run reads, without
    building an ORM object per version (the same filter and order)."""
    table = VersionRow.__table__  # type: ignore[attr-defined]
    statement = (
        core_select(
            table.c.product_id,
            table.c.version,
            table.c.valid_from,
            table.c.valid_to,
            table.c.product_order_id,
            table.c.product_order_item_id,
            table.c.document,
        )
        .where(
            table.c.bilateral_id == bilateral_id,
            table.c.valid_from < period.end,
            table.c.valid_to.is_(None) | (table.c.valid_to > period.start),
        )
        .order_by(table.c.product_id, table.c.version)
    )
    return session.connection().execute(statement).all()


class StoredInputs:
    """Inputs as recorded on this server (see the module docstring). ``data_dir`` holds the reports' files."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir

    def terms(self, session: Session, bilateral: BilateralRef, period: Period) -> Terms:
        found = agreements.require_effective_agreement(session, bilateral.id, period.start, "/periodStart")
        counted: dict[str, set[str]] = {}
        for row in _version_rows(session, bilateral.id, period):
            counted.setdefault(product_key(row.document)[0], set()).add(row.product_id)
        volumes = {product_type: len(ids) for product_type, ids in counted.items()}
        return engine_terms(found.terms, found.agreement_id, found.version, volumes=volumes)

    def versions(self, session: Session, bilateral: BilateralRef, period: Period) -> list[ProductVersion]:
        rows = _version_rows(session, bilateral.id, period)
        # Termination dates of the bilateral's terminated products: one indexed query, rather than an IN list of
        # every product id (a run may cover hundreds of thousands).
        ended = session.exec(
            select(Product.id, Product.termination_date).where(
                Product.bilateral_id == bilateral.id, col(Product.termination_date).is_not(None)
            )
        ).all()
        terminated: dict[str, datetime] = {product_id: when for product_id, when in ended if when is not None}
        keys: dict[str, tuple[str, str, str]] = {}  # many versions share one configuration: parse each once
        versions = []
        for row in rows:
            document = row.document
            # The only members product_key and the name read; repr is a faithful key for JSON-decoded values.
            signature = repr((document.get("productOffering"), document.get("productConfiguration")))
            found = keys.get(signature)
            if found is None:
                product_type, bandwidth = product_key(document)
                name = str((document.get("productOffering") or {}).get("name") or product_type)
                found = keys[signature] = (product_type, bandwidth, name)
            product_type, bandwidth, name = found
            versions.append(
                ProductVersion(
                    product_id=row.product_id,
                    version=row.version,
                    product_type=product_type,
                    bandwidth=bandwidth,
                    name=name,
                    start=row.valid_from,
                    end=row.valid_to,
                    order_id=row.product_order_id,
                    order_item_id=row.product_order_item_id,
                    terminated=row.valid_to is not None and terminated.get(row.product_id) == row.valid_to,
                )
            )
        return versions

    def _data_dir(self) -> Path:
        if self.data_dir is None:
            raise RuntimeError("StoredInputs needs the settings' data_dir to read reconciliations")
        return self.data_dir

    def holds(
        self, session: Session, bilateral: BilateralRef, period: Period, product_ids: Sequence[str]
    ) -> dict[str, str]:
        data_dir = self._data_dir()
        keys = _service_keys(session, data_dir, bilateral, period)
        resolved = resolved_reconciliation_disputes(session, bilateral.id, keys.reconciliation_id)
        billable = set(
            reconciliation.billable_service_keys(
                session, data_dir, bilateral.id, keys.reconciliation_id, resolved=resolved
            )
        )
        held: dict[str, str] = {}
        for product_id in product_ids:
            known = keys.by_product.get(product_id)
            if known is None:
                held[product_id] = f"not in the seller's inventory report of reconciliation {keys.reconciliation_id}"
            elif known[0] not in billable:
                held[product_id] = f"reconciliation {keys.reconciliation_id}: {known[1]} ({known[0]})"
        return held

    def usage(self, session: Session, bilateral: BilateralRef, period: Period) -> list[UsageTotal]:
        seller_keys = session.exec(
            select(UsageRecord.service_key)
            .where(
                UsageRecord.bilateral_id == bilateral.id,
                UsageRecord.role == Role.SELLER.value,
                col(UsageRecord.start) >= period.start,
                col(UsageRecord.start) < period.end,
            )
            .distinct()
        ).all()
        if not seller_keys:
            return []
        latest = session.exec(
            select(UsageReconciliation)
            .where(
                UsageReconciliation.bilateral_id == bilateral.id,
                UsageReconciliation.period_start == period.start,
                UsageReconciliation.period_end == period.end,
            )
            .order_by(col(UsageReconciliation.created_at).desc())
            .limit(1)
        ).one_or_none()
        if latest is None:
            raise Unprocessable.single(
                "referenceNotFound",
                "usage was recorded in the period but not reconciled: reconcile usage for the period before billing",
                "/periodStart",
            )
        agreed = {
            (r["serviceKey"], r["metric"], r["unit"])
            for r in latest.document["results"]
            if r["classification"] == "agreed"
        }
        product_of = {
            key: pid for pid, (key, _) in _service_keys(session, self._data_dir(), bilateral, period).by_product.items()
        }
        totals = []
        for key in sorted(seller_keys):
            product_id = product_of.get(key)
            if product_id is None:
                continue  # usage of a service the seller's report does not list is never billed
            for total in usage.usage_totals(session, bilateral.id, key, period.start, period.end, Role.SELLER):
                if (key, total.metric, total.unit) in agreed:
                    totals.append(UsageTotal(product_id, total.metric, total.unit, total.quantity))
        return totals
