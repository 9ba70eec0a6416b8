"""What every Ordering service shares: hrefs, locked look-ups, and ``OrderEdit``, the one way an order changes.

``OrderEdit`` works on a deep copy of the order document. Each state change checks the MEF state machine first
(``states.require``), appends a ``stateChange`` entry and queues the matching notification; ``save`` then stores
the new document, refreshes the filter columns, appends the log leaf and writes the queued events to the outbox,
all in the caller's transaction. So a refused transition writes nothing, and an applied one is never unrecorded.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from sonata_dlt import base_paths
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import NotFound
from sonata_dlt.notify.outbox import PRODUCT_ORDERING, enqueue
from sonata_dlt.sonata.ordering import states
from sonata_dlt.storage.ordering import ProductOrderItemDates, ProductOrderRow
from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import rfc3339
from sonata_dlt.verifiable_log import changes
from sonata_dlt.verifiable_log.recording import insert_row_soon

BASE_PATH = base_paths.PRODUCT_ORDERING
PRODUCT_BASE_PATH = f"{base_paths.PRODUCT_INVENTORY}/product"

ORDER = "productOrder"
CANCEL = "cancelProductOrder"
MODIFY = "modifyProductOrderItemRequestedDeliveryDate"
CHARGE = "charge"

# Every event type the Product Ordering hub delivers (productOrderNotification.api.yaml enums).
EVENT_TYPES = (
    "productOrderStateChangeEvent",
    "productOrderItemStateChangeEvent",
    "productOrderItemExpectedCompletionDateSet",
    "productSpecificProductOrderItemMilestoneEvent",
    "cancelProductOrderStateChangeEvent",
    "chargeCreateEvent",
    "chargeStateChangeEvent",
    "chargeTimeoutEvent",
    "modifyProductOrderItemRequestedDeliveryDateStateChangeEvent",
)

Row = TypeVar("Row", bound=ResourceColumns)


def href(resource: str, resource_id: str) -> str:
    return f"{BASE_PATH}/{resource}/{resource_id}"


def order_ref(order_id: str) -> dict[str, str]:
    return {"productOrderId": order_id, "productOrderHref": href(ORDER, order_id)}


def item_ref(order_id: str, item_id: str) -> dict[str, str]:
    return {**order_ref(order_id), "productOrderItemId": item_id}


def parse_date(value: str) -> datetime:
    """A date-time from a stored document (always RFC 3339: validated on the way in)."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def scope_ids(runtime: Runtime, party: Party, buyer_id: str | None = None, seller_id: str | None = None) -> list[str]:
    return [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]


def bilateral_of(runtime: Runtime, row: ResourceColumns) -> BilateralRef:
    ref = runtime.parties.by_id(row.bilateral_id)
    if ref is None:  # a row of a bilateral no longer configured: nobody may act on it
        raise NotFound(f"{row.id} not found")
    return ref


def locked(session: Session, model: type[Row], resource_id: str, bilateral_ids: Sequence[str], what: str) -> Row:
    """The row with this id in one of these bilaterals, locked for update; 404 otherwise (never another's)."""
    statement = (
        select(model)
        .where(col(model.id) == resource_id, col(model.bilateral_id).in_(list(bilateral_ids)))
        .with_for_update(key_share=True)
    )
    row = session.exec(statement).one_or_none()
    if row is None:
        raise NotFound(f"{what} {resource_id} not found")
    return row


def found(session: Session, model: type[Row], resource_id: str, bilateral_ids: Sequence[str], what: str) -> Row:
    statement = select(model).where(col(model.id) == resource_id, col(model.bilateral_id).in_(list(bilateral_ids)))
    row = session.exec(statement).one_or_none()
    if row is None:
        raise NotFound(f"{what} {resource_id} not found")
    return row


def emit(session: Session, bilateral: BilateralRef, event_type: str, event: dict[str, Any], *, order_id: str) -> None:
    """Queue a Product Ordering notification; one order's events share a stream so they arrive in order."""
    enqueue(
        session,
        bilateral_id=bilateral.id,
        buyer_id=bilateral.buyer_id,
        seller_id=bilateral.seller_id,
        api=PRODUCT_ORDERING,
        event_type=event_type,
        event=event,
        stream_key=order_id,
    )


def note(party_id: str, source: str, text: str, at: datetime, existing: Iterable[dict[str, Any]]) -> dict[str, Any]:
    number = sum(1 for _ in existing) + 1
    return {"id": f"{source}-note-{number}", "author": party_id, "date": rfc3339(at), "source": source, "text": text}


class OrderEdit:
    """Pending changes to one order: checked transitions, history entries and notifications, saved together."""

    def __init__(self, session: Session, bilateral: BilateralRef, row: ProductOrderRow, actor: str, at: datetime):
        self.session = session
        self.bilateral = bilateral
        self.row = row
        self.actor = actor
        self.at = at
        self.doc: dict[str, Any] = copy.deepcopy(row.document)
        self.events: list[tuple[str, dict[str, Any]]] = []

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def state(self) -> str:
        return str(self.doc["state"])

    @property
    def items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.doc["productOrderItem"]
        return items

    def item(self, item_id: str) -> dict[str, Any]:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise NotFound(f"product order {self.id} has no item {item_id}")

    def index_of(self, item_id: str) -> int:
        return next(i for i, item in enumerate(self.items) if item["id"] == item_id)

    def event(self, event_type: str, **extra: str) -> None:
        self.events.append((event_type, {"id": self.id, "href": href(ORDER, self.id), **extra}))

    def set_state(self, target: str, reason: str | None = None) -> None:
        states.require("productOrder", self.state, target, f"product order {self.id}")
        self.doc["state"] = target
        change: dict[str, Any] = {"changeDate": rfc3339(self.at), "state": target}
        if reason:
            change["changeReason"] = reason
        self.doc["stateChange"] = [*self.doc.get("stateChange", []), change]
        if target in ("completed", "failed", "partial", "rejected"):
            self.doc["completionDate"] = rfc3339(self.at)
        if target == "cancelled":
            self.doc["cancellationDate"] = rfc3339(self.at)
        self.event("productOrderStateChangeEvent")

    def set_item_state(self, item: dict[str, Any], target: str, reason: str | None = None) -> None:
        current = str(item.get("state", "acknowledged"))
        states.require("productOrderItem", current, target, f"item {item['id']} of product order {self.id}")
        item["state"] = target
        change: dict[str, Any] = {"changeDate": rfc3339(self.at), "state": target}
        if reason:
            change["changeReason"] = reason
        item["stateChange"] = [*item.get("stateChange", []), change]
        if target == "completed":
            item["completionDate"] = rfc3339(self.at)  # R48: present exactly when completed
        if target == "cancelled":
            item.pop("expectedCompletionDate", None)  # R47: a cancelled item carries no expected date
        self.event("productOrderItemStateChangeEvent", orderItemId=str(item["id"]))

    def finish_if_done(self) -> None:
        """An inProgress order whose items are all terminal ends completed, failed or partial (MEF 123)."""
        if self.state != "inProgress" or not all(item.get("state") in states.ITEM_TERMINAL for item in self.items):
            return
        done = sum(1 for item in self.items if item.get("state") == "completed")
        if done == len(self.items):
            self.set_state("completed")
        elif done == 0:
            self.set_state("failed")
        else:
            self.set_state("partial")

    def save(self, event: str) -> None:
        row = self.row
        row.state = self.state
        row.external_id = self.doc.get("externalId")
        row.project_id = self.doc.get("projectId")
        row.completion_date = parse_date(self.doc["completionDate"]) if "completionDate" in self.doc else None
        row.cancellation_date = parse_date(self.doc["cancellationDate"]) if "cancellationDate" in self.doc else None
        changes.save(
            self.session,
            self.bilateral,
            row,
            self.doc,
            resource_type=ORDER,
            event=event,
            actor=self.actor,
        )
        write_item_dates(self.session, row.id, self.items)
        for event_type, payload in self.events:
            emit(self.session, self.bilateral, event_type, payload, order_id=self.id)
        self.events = []
        self.doc = copy.deepcopy(self.doc)  # later edits must not touch the document just stored


ITEM_DATE_COLUMNS = ("order_id", "item_id", "requested_completion_date", "expected_completion_date")


def insert_item_dates(session: Session, order_id: str, items: Sequence[dict[str, Any]]) -> None:
    """The item-date rows of a new order, by Core inserts (no ORM objects: this runs on every create)."""
    for item in items:
        requested = item.get("requestedCompletionDate")
        expected = item.get("expectedCompletionDate")
        insert_row_soon(
            session,
            ProductOrderItemDates.__table__,  # type: ignore[attr-defined]  # set by SQLAlchemy, undeclared by sqlmodel
            ITEM_DATE_COLUMNS,
            (
                order_id,
                item["id"],
                parse_date(requested) if requested else None,
                parse_date(expected) if expected else None,
            ),
        )


def write_item_dates(session: Session, order_id: str, items: Sequence[dict[str, Any]]) -> None:
    existing = {
        row.item_id: row
        for row in session.exec(select(ProductOrderItemDates).where(ProductOrderItemDates.order_id == order_id))
    }
    for item in items:
        row = existing.pop(item["id"], None) or ProductOrderItemDates(order_id=order_id, item_id=item["id"])
        requested = item.get("requestedCompletionDate")
        expected = item.get("expectedCompletionDate")
        row.requested_completion_date = parse_date(requested) if requested else None
        row.expected_completion_date = parse_date(expected) if expected else None
        session.add(row)
    for stale in existing.values():
        session.delete(stale)
