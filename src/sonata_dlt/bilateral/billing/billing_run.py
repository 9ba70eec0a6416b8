"""Billing runs: rate one bilateral for one half-open UTC period and record the bill and its items.

One write transaction does everything or nothing: it locks the bilateral's log head first (so two runs for the
same bilateral cannot both pass the overlap check), refuses a period that overlaps an earlier run (409), loads
the inputs, rates them (``engine.rate``), builds the MEF documents (``bills.build``), inserts the run, the bill
and its items with one leaf each, marks pending dispute adjustments as applied, and queues the
``customerBillCreateEvent``. Only the seller of a bilateral runs its billing.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt import base_paths
from sonata_dlt.bilateral.billing import bills
from sonata_dlt.bilateral.billing.inputs import BILLING_INPUTS, InputSource, StoredInputs
from sonata_dlt.bilateral.rating.engine import AdjustmentInput, Period, RatingError, SlaEvent, Terms, rate
from sonata_dlt.bilateral.rating.money import minor_from_wire, minor_units
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, NotFound, Unprocessable
from sonata_dlt.notify.outbox import CUSTOMER_BILL, enqueue
from sonata_dlt.settings import Role
from sonata_dlt.storage.billing import Adjustment, BillingRun, CustomerBill, CustomerBillItem
from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.transparency.canonical import canonical_json
from sonata_dlt.verifiable_log import changes
from sonata_dlt.verifiable_log.recording import Change, insert_rows, lock_log_head, record_changes, recording_on

RUN_API = base_paths.SMART_BILATERAL


@dataclass(frozen=True)
class RunRequest:
    period: Period
    sla_events: tuple[SlaEvent, ...] = ()
    currency: str | None = None  # when given, must be the agreement's currency


def run_id_for(bilateral_id: str, period: Period) -> str:
    digest = hashlib.sha256(f"{bilateral_id}\n{rfc3339(period.start)}\n{rfc3339(period.end)}".encode()).hexdigest()
    return "BR-" + digest[:24]


def input_source(runtime: Runtime) -> InputSource:
    source: InputSource = runtime.components.get(BILLING_INPUTS) or StoredInputs(runtime.settings.data_dir)
    return source


def _check_period(period: Period) -> None:
    for name, moment in (("periodStart", period.start), ("periodEnd", period.end)):
        if moment.tzinfo is None:
            raise Unprocessable.single("invalidValue", f"{name} must carry a time zone", f"/{name}")
    if period.start >= period.end:
        raise Unprocessable.single("invalidValue", "periodEnd must be after periodStart", "/periodEnd")


def create_run(runtime: Runtime, party: Party, bilateral: BilateralRef, request: RunRequest) -> dict[str, Any]:
    if party.role is not Role.SELLER or party.id != bilateral.seller_id:
        raise Forbidden("only the seller of a bilateral runs its billing", code="accessDenied")
    _check_period(request.period)
    source = input_source(runtime)
    with _collector_paused(), runtime.db.write() as session, _bulk_cache(session):
        if recording_on(session):
            lock_log_head(session, bilateral.id)  # serialises runs of this bilateral (see the module docstring)
        _refuse_overlap(session, bilateral, request.period)
        terms = source.terms(session, bilateral, request.period)
        if request.currency is not None and request.currency != terms.currency:
            raise Unprocessable.single(
                "invalidValue",
                f"currency {request.currency} does not match the agreement's currency {terms.currency}",
                "/currency",
            )
        versions = source.versions(session, bilateral, request.period)
        product_ids = sorted({version.product_id for version in versions})
        _check_sla_events(request.sla_events, set(product_ids))
        held = source.holds(session, bilateral, request.period, product_ids)
        usage = source.usage(session, bilateral, request.period)
        pending = _pending_adjustments(session, bilateral, terms)
        try:
            rated = rate(
                terms,
                request.period,
                versions,
                usage=usage,
                sla_events=request.sla_events,
                adjustments=[adjustment for adjustment, _ in pending],
                held=held,
            )
        except RatingError as exc:
            raise Unprocessable.single("invalidValue", str(exc)) from None
        run_id = run_id_for(bilateral.id, request.period)
        built = bills.build(bilateral, terms, rated, run_id)
        if session.get(CustomerBill, built.bill_id) is not None:
            raise Conflict(f"bill {built.bill_id} for this period and agreement version already exists")
        now = utcnow()
        actor = party.actor
        _insert_recorded(
            session,
            bilateral,
            CustomerBill,
            [
                "id",
                "billing_run_id",
                "state",
                "category",
                "billing_account_id",
                "currency",
                "period_start",
                "period_end",
                "amount_due_minor",
                "remaining_minor",
            ],
            [
                (
                    built.bill_id,
                    run_id,
                    "generated",
                    "normal",
                    bilateral.id,
                    terms.currency,
                    request.period.start,
                    request.period.end,
                    rated.totals.amount_due,
                    rated.totals.amount_due,
                )
            ],
            [built.document],
            [built.canonical],
            resource_type="customerBill",
            event="created",
            actor=actor,
            at=now,
        )
        _insert_recorded(
            session,
            bilateral,
            CustomerBillItem,
            ["id", "customer_bill_id", "position", "state", "product_id", "amount_minor", "tax_minor"],
            [
                (item_id, built.bill_id, position, "generated", line.product_id, line.amount_minor, line.tax_minor)
                for position, (line, item_id) in enumerate(zip(built.lines, built.item_ids, strict=True))
            ],
            [_Stored(text) for text in built.item_canonical],
            built.item_canonical,
            resource_type="customerBillItem",
            event="created",
            actor=actor,
            at=now,
        )
        document = run_document(bilateral, terms, rated.held, built, [row.id for _, row in pending])
        _insert_recorded(
            session,
            bilateral,
            BillingRun,
            ["id", "period_start", "period_end", "customer_bill_id"],
            [(run_id, request.period.start, request.period.end, built.bill_id)],
            [document],
            [canonical_json(document)],
            resource_type="billingRun",
            event="completed",
            actor=actor,
            at=now,
        )
        for _, row in pending:
            applied = copy.deepcopy(row.document)
            applied["state"] = "applied"
            applied["appliedTo"] = {"id": built.bill_id, "href": bills.bill_href(built.bill_id)}
            row.applied_bill_id = built.bill_id
            changes.save(
                session,
                bilateral,
                row,
                applied,
                resource_type="adjustment",
                event="applied",
                actor=actor,
            )
        enqueue(
            session,
            bilateral_id=bilateral.id,
            buyer_id=bilateral.buyer_id,
            seller_id=bilateral.seller_id,
            api=CUSTOMER_BILL,
            event_type="customerBillCreateEvent",
            event={"id": built.bill_id, "href": bills.bill_href(built.bill_id)},
            stream_key=built.bill_id,
        )
    return document


# Page cache for a run's bulk insert on SQLite, in KiB (negative: a size, not a page count). The default 2 MiB
# cannot hold the indexes a run of hundreds of thousands of items updates, and every spill rewrites pages.
BULK_CACHE_KIB = 131_072


@contextmanager
def _bulk_cache(session: Session) -> Iterator[None]:
    """A larger SQLite page cache for the transaction, restored after. Memory only: the journal mode,
    synchronous setting and so the durability of the commit are unchanged."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous or 0)}")


_pause_guard = threading.Lock()
_pauses = 0  # runs in progress that paused the cyclic collector
_resume = False  # whether the collector was on when the first of them paused it


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a run, then restore it.

    A run of 100,000 products holds millions of live objects (versions, lines, rows, leaves) that it allocates
    faster than they die, so the collector keeps running full collections that walk all of them and find nothing:
    a fifth of the run's time in ``bench_billing_run``. Reference counting still frees everything a run drops; only
    cycles wait until the run ends. The collector is process-wide, so concurrent runs share one pause.
    """
    global _pauses, _resume
    with _pause_guard:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_guard:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


class _Stored(Mapping[str, Any]):
    """An item document known by its canonical JSON (what is stored and fingerprinted); parsed only if read.

    The log hashes the bytes it is given with the change, so a billing run never builds the item dicts."""

    def __init__(self, canonical: bytes) -> None:
        self._canonical = canonical
        self._document: dict[str, Any] | None = None

    def _parsed(self) -> dict[str, Any]:
        if self._document is None:
            self._document = json.loads(self._canonical)
        return self._document

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


def _insert_recorded(
    session: Session,
    bilateral: BilateralRef,
    table: type[ResourceColumns],
    columns: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    documents: Sequence[Mapping[str, Any]],
    texts: Sequence[bytes],
    *,
    resource_type: str,
    event: str,
    actor: str,
    at: datetime,
) -> None:
    """Insert new recorded resources (version 1) in bulk and append one leaf each.

    ``columns`` name the table's own columns (the first is the id) and ``values`` give them per row; ``texts``
    are the rows' documents serialised once, to their RFC 8785 canonical JSON: those bytes are both what the JSON
    column stores (a reader gets the same document back) and what the leaf's ``stateHash`` fingerprints.
    """
    if not values:
        return
    rows = [(*row, text.decode(), bilateral.id, 1, at, at) for row, text in zip(values, texts, strict=True)]
    # Rows go in in id order so the primary-key index grows at its end rather than at random places (ids are
    # hashes); nothing reads the physical order (a bill's order is its items' ``position``), and the leaves below
    # keep the caller's order.
    rows.sort(key=lambda row: row[0])
    insert_rows(
        session,
        table.__table__,  # type: ignore[attr-defined]
        [*columns, "document", "bilateral_id", "version", "created_at", "updated_at"],
        rows,
        json_text=("document",),
    )
    record_changes(
        session,
        bilateral.id,
        [
            Change(resource_type, row[0], 1, event, document, canonical=text)
            for row, document, text in zip(values, documents, texts, strict=True)
        ],
        actor=actor,
        at=at,
    )


def run_document(
    bilateral: BilateralRef,
    terms: Terms,
    held: Sequence[tuple[str, str]],
    built: bills.BuiltBill,
    adjustment_ids: Sequence[str],
) -> dict[str, Any]:
    bill = built.document
    run_id = bill["billingRun"]["id"]
    return {
        "id": run_id,
        "href": f"{RUN_API}/billingRun/{run_id}",
        "@type": "BillingRun",
        "buyerId": bilateral.buyer_id,
        "sellerId": bilateral.seller_id,
        "periodStart": bill["billingPeriod"]["startDateTime"],
        "periodEnd": bill["billingPeriod"]["endDateTime"],
        "state": "completed",
        "agreement": {"id": terms.agreement_id, "version": terms.agreement_version},
        "customerBill": {"id": built.bill_id, "href": bills.bill_href(built.bill_id)},
        "itemCount": len(built.item_ids),
        "totals": {
            key: bill[key]
            for key in ("taxExcludedAmount", "taxIncludedAmount", "credits", "discounts", "fees", "amountDue")
        },
        "heldServices": [{"productId": product_id, "reason": reason} for product_id, reason in held],
        "appliedAdjustments": list(adjustment_ids),
    }


def _refuse_overlap(session: Session, bilateral: BilateralRef, period: Period) -> None:
    clash = session.exec(
        select(BillingRun).where(
            BillingRun.bilateral_id == bilateral.id,
            col(BillingRun.period_start) < period.end,
            col(BillingRun.period_end) > period.start,
        )
    ).first()
    if clash is not None:
        raise Conflict(
            f"billing run {clash.id} already covers [{rfc3339(clash.period_start)}, {rfc3339(clash.period_end)}),"
            " which overlaps the requested period"
        )


def _check_sla_events(events: Sequence[SlaEvent], product_ids: set[str]) -> None:
    for index, event in enumerate(events):
        if event.product_id not in product_ids:
            raise Unprocessable.single(
                "referenceNotFound",
                f"SLA event for product {event.product_id}, which was not active in the period",
                f"/slaEvents/{index}/productId",
            )
        if event.outage_seconds < 0:
            raise Unprocessable.single(
                "invalidValue", "outageSeconds must be 0 or more", f"/slaEvents/{index}/outageSeconds"
            )


def _pending_adjustments(
    session: Session, bilateral: BilateralRef, terms: Terms
) -> list[tuple[AdjustmentInput, Adjustment]]:
    rows = session.exec(
        select(Adjustment)
        .where(Adjustment.bilateral_id == bilateral.id, col(Adjustment.applied_bill_id).is_(None))
        .order_by(col(Adjustment.id))
    ).all()
    pending = []
    for row in rows:
        if row.currency != terms.currency:
            raise Unprocessable.single(
                "invalidValue",
                f"adjustment {row.id} is in {row.currency} but the agreement bills in {terms.currency}",
            )
        document = row.document
        product = document.get("product") or {}
        order_item = document.get("productOrderItem") or {}
        pending.append(
            (
                AdjustmentInput(
                    id=row.id,
                    amount_minor=row.amount_minor,
                    description=str(document.get("description", f"adjustment {row.id}")),
                    product_id=str(product.get("id", "")),
                    product_name=str(document.get("productName", "adjustment")),
                    order_id=str(order_item.get("productOrderId", "")),
                    order_item_id=str(order_item.get("productOrderItemId", "")),
                ),
                row,
            )
        )
    return pending


def _bilateral_ids(runtime: Runtime, party: Party) -> list[str]:
    return [ref.id for ref in runtime.parties.bilaterals_of(party)]


def get_run(runtime: Runtime, party: Party, run_id: str) -> dict[str, Any]:
    with runtime.db.read() as session:
        row = session.get(BillingRun, run_id)
        if row is None or row.bilateral_id not in _bilateral_ids(runtime, party):
            raise NotFound(f"billing run {run_id} does not exist")
        return row.document


def list_runs(runtime: Runtime, scope: Sequence[BilateralRef], offset: int, limit: int) -> tuple[list[Any], int]:
    with runtime.db.read() as session:
        rows = session.exec(
            select(BillingRun)
            .where(col(BillingRun.bilateral_id).in_([ref.id for ref in scope]))
            .order_by(col(BillingRun.period_start).desc(), col(BillingRun.id))
        ).all()
        return [row.document for row in rows[offset : offset + limit]], len(rows)


def issue_bill(runtime: Runtime, party: Party, run_id: str) -> dict[str, Any]:
    """The seller issues the run's bill: ``generated`` -> ``paymentDue``. Returns the bill document."""
    with runtime.db.write() as session:
        run = session.get(BillingRun, run_id)
        if run is None or run.bilateral_id not in _bilateral_ids(runtime, party):
            raise NotFound(f"billing run {run_id} does not exist")
        bilateral = _ref(runtime, run.bilateral_id)
        if party.role is not Role.SELLER:
            raise Forbidden("only the seller issues a bill", code="accessDenied")
        bill = session.get(CustomerBill, run.customer_bill_id)
        if bill is None:
            raise NotFound(f"customer bill {run.customer_bill_id} does not exist")
        if bill.state != "generated":
            raise Conflict(f"bill {bill.id} is {bill.state}; only a generated bill can be issued")
        set_bill_state(session, runtime, bilateral, bill, "paymentDue", party.actor)
        return bill.document


def _ref(runtime: Runtime, bilateral_id: str) -> BilateralRef:
    ref = runtime.parties.by_id(bilateral_id)
    if ref is None:
        raise NotFound(f"bilateral {bilateral_id} is not configured")
    return ref


def set_bill_state(
    session: Session,
    runtime: Runtime,
    bilateral: BilateralRef,
    bill: CustomerBill,
    state: str,
    actor: str,
    **updates: Any,
) -> None:
    """Record a new state (and any other top-level fields) of a bill, and notify a state change."""
    document = copy.deepcopy(bill.document)
    changed_state = document["state"] != state
    document.update(updates)
    document["state"] = state
    document["lastUpdate"] = rfc3339(utcnow())
    bill.state = state
    if "remainingAmount" in updates:
        amount = updates["remainingAmount"]
        bill.remaining_minor = minor_from_wire(amount["value"], minor_units(amount["unit"]), field="remainingAmount")
    changes.save(
        session,
        bilateral,
        bill,
        document,
        resource_type="customerBill",
        event="stateChanged" if changed_state else "updated",
        actor=actor,
    )
    if changed_state:
        enqueue(
            session,
            bilateral_id=bilateral.id,
            buyer_id=bilateral.buyer_id,
            seller_id=bilateral.seller_id,
            api=CUSTOMER_BILL,
            event_type="customerBillStateChangeEvent",
            event={"id": bill.id, "href": bills.bill_href(bill.id)},
            stream_key=bill.id,
        )
