"""Where a billing run's inputs come from, behind one small Protocol.

The rating engine is pure; a run asks an ``InputSource`` for the four things it rates: the agreement terms in
force, the product versions active in the period, which services must be held (with the reason) and the usage
totals. ``StoredInputs`` reads them from this server's database, through the Smart Bilateral input services:

- product versions from the inventory's history (``sonata.inventory.versions_active_between``);
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

A runtime may install another source under ``runtime.components[BILLING_INPUTS]`` (a seller wiring its ERP, or tests).
"""

# SQL here is assembled from the agreement's key fields (checked by report_files.quoted through key_sql) and paths
# we generate, quoted by sql_text(); no request value reaches it.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Text, cast, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.types import NullType
from sqlmodel import Session, col, select

from sonata_dlt.bilateral import agreements, usage
from sonata_dlt.bilateral.agreement_terms import bandwidth_label, engine_terms
from sonata_dlt.bilateral.rating.engine import Period, ProductVersion, Terms, UsageTotal
from sonata_dlt.bilateral.reconciliation import runs as reconciliation
from sonata_dlt.bilateral.reports import report_files
from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Component
from sonata_dlt.errors import Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.sonata.product_bandwidth import bandwidth_mbps
from sonata_dlt.storage.billing import Dispute
from sonata_dlt.storage.billing_inputs import InventoryReport, Reconciliation, UsageReconciliation, UsageRecord
from sonata_dlt.storage.inventory import Product
from sonata_dlt.storage.inventory import ProductVersion as VersionRow
from sonata_dlt.storage.types import rfc3339

BILLING_INPUTS = Component["InputSource"]("billing input source")


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
    report = report_files.rows_sql(report_files.stored_report(data_dir, seller.content_hash))
    results = reconciliation.stored_results(session, data_dir, found).stored_sql()
    con = report_files.connect(data_dir)
    try:
        rows = con.execute(
            # Every key of the seller's report is in the results of form v3; form v4 stores only the exceptions, so a
            # key it does not list is matched.
            f"SELECT s.serviceId, s.k, coalesce(r.classification, 'matched')"
            f" FROM (SELECT serviceId, {report_files.key_sql(matching.matching)} AS k FROM {report}) s"
            f" LEFT JOIN ({results}) r ON r.serviceKey = s.k"
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


class _Offered(NamedTuple):
    """What a run reads of a version's document: the price list's key and the name its lines show."""

    product_type: str
    bandwidth: str
    name: str


def _offered(offering_text: str | None, configuration_text: str | None) -> _Offered:
    offering = json.loads(offering_text) if offering_text is not None else None
    configuration = json.loads(configuration_text) if configuration_text is not None else None
    # product_key reads only these two members, so this is product_key of the whole document.
    product_type, bandwidth = product_key({"productOffering": offering, "productConfiguration": configuration})
    name = str((offering or {}).get("name") or product_type)
    return _Offered(product_type, bandwidth, name)


def _active_versions(
    session: Session, bilateral_id: str, period: Period, terminated: Mapping[str, datetime] | None = None
) -> list[ProductVersion]:
    """``inventory.versions_active_between`` (the same filter and order) as the engine's versions.

    ``terminated`` maps the bilateral's terminated products to their termination dates (a version that ends then
    is the product's end, not a change). A run reads hundreds of thousands of versions, and most of the cost of
    reading them whole is decoding their JSON documents and timestamps. So the database extracts the two members
    ``product_key`` reads, as JSON text (SQLAlchemy's generic JSON path: ``JSON_EXTRACT`` on SQLite, ``->`` on
    PostgreSQL), and each distinct text is decoded once; the timestamps come back raw and each distinct value goes
    through the column type's own result processor once, so they are exactly what the ORM returns.
    """
    table = VersionRow.__table__  # type: ignore[attr-defined]
    document = table.c.document
    statement = (
        core_select(
            table.c.product_id,
            table.c.version,
            type_coerce(table.c.valid_from, NullType()),
            type_coerce(table.c.valid_to, NullType()),
            table.c.product_order_id,
            table.c.product_order_item_id,
            cast(document["productOffering"], Text),
            cast(document["productConfiguration"], Text),
        )
        .where(
            table.c.bilateral_id == bilateral_id,
            table.c.valid_from < period.end,
            table.c.valid_to.is_(None) | (table.c.valid_to > period.start),
        )
        .order_by(table.c.product_id, table.c.version)
    )
    connection = session.connection()
    dialect = connection.dialect
    processor = table.c.valid_from.type.dialect_impl(dialect).result_processor(dialect, None)
    moments: dict[Any, Any] = {None: None}
    offers: dict[tuple[str | None, str | None], _Offered] = {}
    ended = terminated or {}
    versions = []
    for product_id, version, raw_from, raw_to, order_id, order_item_id, offering, configuration in connection.execute(
        statement
    ):
        for raw in (raw_from, raw_to):
            if raw not in moments:
                moments[raw] = processor(raw) if processor is not None else raw
        end = moments[raw_to]
        offered = offers.get((offering, configuration))
        if offered is None:
            offered = offers[(offering, configuration)] = _offered(offering, configuration)
        versions.append(
            ProductVersion(
                product_id=product_id,
                version=version,
                product_type=offered.product_type,
                bandwidth=offered.bandwidth,
                name=offered.name,
                start=moments[raw_from],
                end=end,
                order_id=order_id,
                order_item_id=order_item_id,
                terminated=end is not None and ended.get(product_id) == end,
            )
        )
    return versions


class StoredInputs:
    """Inputs as recorded on this server (see the module docstring). ``data_dir`` holds the reports' files."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir

    def terms(self, session: Session, bilateral: BilateralRef, period: Period) -> Terms:
        found = agreements.require_effective_agreement(session, bilateral.id, period.start, "/periodStart")
        counted: dict[str, set[str]] = {}
        for version in _active_versions(session, bilateral.id, period):
            counted.setdefault(version.product_type, set()).add(version.product_id)
        volumes = {product_type: len(ids) for product_type, ids in counted.items()}
        return engine_terms(found.terms, found.agreement_id, found.version, volumes=volumes)

    def versions(self, session: Session, bilateral: BilateralRef, period: Period) -> list[ProductVersion]:
        # Termination dates of the bilateral's terminated products: one indexed query, rather than an IN list of
        # every product id (a run may cover hundreds of thousands).
        ended = session.exec(
            select(Product.id, Product.termination_date).where(
                Product.bilateral_id == bilateral.id, col(Product.termination_date).is_not(None)
            )
        ).all()
        terminated = {product_id: when for product_id, when in ended if when is not None}
        return _active_versions(session, bilateral.id, period, terminated)

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
