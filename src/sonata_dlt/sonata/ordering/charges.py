"""Charges (MEF 123 UC11-14): raised by the seller, answered item by item by the buyer, or timed out.

A charge is ``awaitingResponse`` until every charge item is answered (-> ``completed``), the seller withdraws
it (-> ``withdrawnBySeller``) or its ``responseDueDate`` passes (-> ``timeout``, treated as declined). Its end
drives what caused it:

- a charge of a Cancel Product Order or a delivery-date change settles that request (``tasks.settle_by_charge``):
  every item accepted -> ``done``, anything declined -> ``done.declined``; a withdrawn charge leaves the request
  with the seller, who decides it (``tasks.decide_*``);
- any other charge held the order (``held.assessingCharge``) and, when blocking, its item (``held``): once no
  other such charge is open the order returns to ``inProgress``; a declined (or timed-out) blocking item fails its
  item and the items related to it, and an order-level one every unfinished item; then the order may end.

``sweep_timeouts`` is the timeout rule, run by ``charge_timeout_worker`` every few seconds and by tests with a
fixed ``now``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt.core.parties import SYSTEM_ACTOR, BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest, Conflict, Forbidden, Issue, Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.sonata.ordering import states, tasks
from sonata_dlt.sonata.ordering.common import (
    CANCEL,
    CHARGE,
    MODIFY,
    OrderEdit,
    bilateral_of,
    emit,
    found,
    href,
    item_ref,
    locked,
    order_ref,
    scope_ids,
)
from sonata_dlt.storage.ordering import (
    CancelProductOrderRow,
    ModifyDeliveryDateRow,
    ProductOrderChargeRow,
    ProductOrderRow,
)
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.verifiable_log import changes

log = logging.getLogger("sonata_dlt.ordering.charges")

ACTIVITY_TYPES = ("new", "change")
PRICE_TYPES = ("recurring", "nonRecurring", "usageBased")
PRICE_CATEGORIES = ("cancellation", "construction", "connection", "disconnect", "expedite", "other")
CHARGE_PERIODS = ("hour", "day", "week", "month", "year")
FIND_FIELDS = ("id", "creationDate", "productOrder", "productOrderItem", "responseDueDate", "state")
SWEEP_SECONDS = 5.0


# --- the seller raises and withdraws -------------------------------------------------------------------------


def raise_charge(
    runtime: Runtime,
    party: Party,
    order_id: str,
    item_id: str | None,
    charge_items: Sequence[Mapping[str, Any]],
    response_due: datetime,
    *,
    cancel_product_order_id: str | None = None,
    modify_request_id: str | None = None,
) -> dict[str, Any]:
    """A new ``awaitingResponse`` charge on an order, one of its items, a cancellation or a date change."""
    if cancel_product_order_id and modify_request_id:
        raise Unprocessable.single("invalidValue", "a charge is caused by a cancellation or a date change, not both")
    items = charge_item_documents(charge_items)
    with runtime.db.write() as session:
        order_row = locked(session, ProductOrderRow, order_id, scope_ids(runtime, party), "product order")
        bilateral = bilateral_of(runtime, order_row)
        edit = OrderEdit(session, bilateral, order_row, party.actor, utcnow())
        if response_due <= edit.at:
            raise Unprocessable.single("invalidValue", "responseDueDate must be in the future", "/responseDueDate")
        charge_id = str(uuid.uuid4())
        document: dict[str, Any] = {
            "id": charge_id,
            "href": href(CHARGE, charge_id),
            "creationDate": rfc3339(edit.at),
            "responseDueDate": rfc3339(response_due),
            "state": "awaitingResponse",
            "chargeItem": items,
            "productOrder": order_ref(order_id),
        }
        row = ProductOrderChargeRow(
            id=charge_id,
            bilateral_id=bilateral.id,
            state="awaitingResponse",
            product_order_id=order_id,
            creation_date=edit.at,
            response_due_date=response_due,
        )
        if cancel_product_order_id:
            task = locked(session, CancelProductOrderRow, cancel_product_order_id, [bilateral.id], "cancellation")
            _same_order(task.product_order_id, order_id, "cancellation")
            tasks.start_charge(session, bilateral, task, CANCEL, party.actor, order_id)
            document["cancelProductOrder"] = {"id": task.id, "href": href(CANCEL, task.id)}
            row.cancel_product_order_id = task.id
        elif modify_request_id:
            change = locked(session, ModifyDeliveryDateRow, modify_request_id, [bilateral.id], "date change")
            _same_order(change.product_order_id, order_id, "delivery date change")
            tasks.start_charge(session, bilateral, change, MODIFY, party.actor, order_id)
            document["productOrderItem"] = item_ref(order_id, change.product_order_item_id)
            document["modifyProductOrderItemRequestedDeliveryDate"] = {"id": change.id, "href": href(MODIFY, change.id)}
            row.product_order_item_id = change.product_order_item_id
            row.modify_request_id = change.id
        else:
            if edit.state != "held.assessingCharge":
                edit.set_state("held.assessingCharge", f"charge {charge_id} awaits the buyer's response")
            if item_id is not None:
                item = edit.item(item_id)
                if any(entry["blocking"] for entry in items) and item.get("state") != "held":
                    edit.set_item_state(item, "held", f"blocking charge {charge_id} awaits the buyer's response")
                document["productOrderItem"] = item_ref(order_id, item_id)
                row.product_order_item_id = item_id
            edit.save("stateChanged")
        changes.save(session, bilateral, row, document, resource_type=CHARGE, event="created", actor=party.actor)
        emit(
            session,
            bilateral,
            "chargeCreateEvent",
            {"id": charge_id, "href": href(CHARGE, charge_id)},
            order_id=order_id,
        )
        return document


def withdraw_charge(runtime: Runtime, party: Party, charge_id: str) -> dict[str, Any]:
    with runtime.db.write() as session:
        row = _lock(session, charge_id, scope_ids(runtime, party))
        document = _end(session, runtime, row, "withdrawnBySeller", "withdrawnBySeller", party.actor)
        _emit_charge(session, bilateral_of(runtime, row), row, "chargeStateChangeEvent")
        return document


# --- the buyer answers ---------------------------------------------------------------------------------------


def respond(
    runtime: Runtime,
    party: Party,
    charge_id: str,
    body: Mapping[str, Any],
    *,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    """PATCH /charge/{id}: accept or reject charge items (MEFProductOrderCharge_Update)."""
    scope = scope_ids(runtime, party, buyer_id, seller_id)
    if party.role is not Role.BUYER:
        raise Forbidden("only the buyer answers a charge", code="accessDenied")
    answers = list(body.get("chargeItem") or [])
    with runtime.db.write() as session:
        row = _lock(session, charge_id, scope)
        if row.state != "awaitingResponse":
            raise Conflict(f"charge {charge_id} is {row.state}; it takes no more answers")
        now = utcnow()
        if row.response_due_date <= now:
            raise Conflict(f"charge {charge_id} passed its responseDueDate; it is timing out")
        document = copy.deepcopy(row.document)
        by_id = {item["id"]: item for item in document["chargeItem"]}
        seen: set[str] = set()
        for answer in answers:
            item = by_id.get(answer["id"])
            if item is None or answer["id"] in seen:
                raise BadRequest(f"chargeItem {answer['id']!r} is unknown or answered twice in charge {charge_id}")
            seen.add(answer["id"])
            target = "acceptedByBuyer" if answer["acceptanceIndicator"] == "accepted" else "declinedByBuyer"
            states.require("chargeItem", item["state"], target, f"charge item {item['id']}")
            item["state"] = target
            item["acceptanceIndicator"] = answer["acceptanceIndicator"]
            if answer.get("note"):
                item["note"] = [*item.get("note", []), *answer["note"]]
        bilateral = bilateral_of(runtime, row)
        if all(item["state"] != "awaitingResponse" for item in document["chargeItem"]):
            document = _end(session, runtime, row, "completed", None, party.actor, answered=document)
        else:
            _store(session, runtime, bilateral, row, document, "answered", party.actor)
        _emit_charge(session, bilateral, row, "chargeStateChangeEvent")
        return document


# --- timeouts ------------------------------------------------------------------------------------------------


def sweep_timeouts(runtime: Runtime, now: datetime | None = None) -> int:
    """Move every awaitingResponse charge whose responseDueDate has passed to ``timeout``. Returns the count."""
    moment = now or utcnow()
    with runtime.db.read() as session:
        due = session.exec(
            select(ProductOrderChargeRow.id).where(
                ProductOrderChargeRow.state == "awaitingResponse",
                col(ProductOrderChargeRow.response_due_date) <= moment,
            )
        ).all()
    count = 0
    for charge_id in due:
        with runtime.db.write() as session:
            bilateral_id = session.exec(
                select(ProductOrderChargeRow.bilateral_id).where(ProductOrderChargeRow.id == charge_id)
            ).one()
            row = _lock(session, charge_id, [bilateral_id])
            if row.state != "awaitingResponse":  # answered or withdrawn since the read
                continue
            _end(session, runtime, row, "timeout", "declinedByBuyer", SYSTEM_ACTOR)
            _emit_charge(session, bilateral_of(runtime, row), row, "chargeTimeoutEvent")
            count += 1
    return count


@dataclass
class ChargeTimeoutWorker:
    runtime: Runtime
    interval: float = SWEEP_SECONDS
    name: str = "charge-timeouts"

    async def run(self) -> None:
        while True:
            swept = await asyncio.to_thread(sweep_timeouts, self.runtime)
            if swept:
                log.info("charges timed out", extra={"count": swept})
            await asyncio.sleep(self.interval)


def charge_timeout_worker(runtime: Runtime) -> ChargeTimeoutWorker:
    return ChargeTimeoutWorker(runtime)


# --- reads ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeFilter:
    product_order_id: str | None = None
    product_order_item_id: str | None = None
    dates: Mapping[str, datetime] | None = None  # creationDate.gt/.lt, responseDueDate.gt/.lt


def list_charges(
    runtime: Runtime,
    party: Party,
    filters: ChargeFilter,
    *,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    table = ProductOrderChargeRow
    conditions: list[Any] = [col(table.bilateral_id).in_(scope_ids(runtime, party, buyer_id, seller_id))]
    if filters.product_order_id is not None:
        conditions.append(table.product_order_id == filters.product_order_id)
    if filters.product_order_item_id is not None:
        conditions.append(table.product_order_item_id == filters.product_order_item_id)
    columns = {"creationDate": table.creation_date, "responseDueDate": table.response_due_date}
    for key, moment in (filters.dates or {}).items():
        name, _, suffix = key.partition(".")
        column = col(columns[name])
        conditions.append(column > moment if suffix == "gt" else column < moment)
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            table,
            conditions,
            order_by=(col(table.created_at).desc(), col(table.id).desc()),
            offset=offset,
            limit=limit,
        )
        return [{key: row.document[key] for key in FIND_FIELDS if key in row.document} for row in rows], int(total)


def retrieve_charge(
    runtime: Runtime, party: Party, charge_id: str, *, buyer_id: str | None = None, seller_id: str | None = None
) -> dict[str, Any]:
    with runtime.db.read() as session:
        row = found(session, ProductOrderChargeRow, charge_id, scope_ids(runtime, party, buyer_id, seller_id), "charge")
        return copy.deepcopy(row.document)


# --- building blocks -----------------------------------------------------------------------------------------


def charge_item_documents(charge_items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate the seller's charge items and build their MEFProductOrderChargeItem documents."""
    issues: list[Issue] = []
    documents: list[dict[str, Any]] = []
    if not charge_items:
        raise Unprocessable.single("missingProperty", "a charge needs at least one charge item", "/chargeItem")
    seen: set[str] = set()
    for index, item in enumerate(charge_items):
        pointer = f"/chargeItem/{index}"
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id or item_id in seen:
            issues.append(Issue("invalidValue", "each charge item needs a unique id", f"{pointer}/id"))
        seen.add(str(item_id))
        for name, allowed in (
            ("activityType", ACTIVITY_TYPES),
            ("priceType", PRICE_TYPES),
            ("priceCategory", PRICE_CATEGORIES),
        ):
            if item.get(name) not in allowed:
                issues.append(Issue("invalidValue", f"{name} must be one of {', '.join(allowed)}", f"{pointer}/{name}"))
        if "recurringChargePeriod" in item and item["recurringChargePeriod"] not in CHARGE_PERIODS:
            issues.append(Issue("invalidValue", "unknown recurringChargePeriod", f"{pointer}/recurringChargePeriod"))
        if not isinstance(item.get("blocking"), bool):
            issues.append(Issue("invalidValue", "blocking must be true or false", f"{pointer}/blocking"))
        price = _price(item.get("price"), f"{pointer}/price", issues)
        document: dict[str, Any] = {
            "id": item_id,
            "activityType": item.get("activityType"),
            "blocking": item.get("blocking"),
            "price": price,
            "priceCategory": item.get("priceCategory"),
            "priceType": item.get("priceType"),
            "state": "awaitingResponse",
        }
        for optional in ("recurringChargePeriod", "unitOfMeasure", "note"):
            if optional in item:
                document[optional] = copy.deepcopy(item[optional])
        documents.append(document)
    if issues:
        raise Unprocessable(issues)
    return documents


def money_number(value: Any, pointer: str) -> int | float:
    """A Money value as the JSON number a document holds, refusing any that a JSON number would round."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Unprocessable.single("invalidFormat", "a money value must be a number", pointer) from None
    if isinstance(value, bool) or not amount.is_finite():
        raise Unprocessable.single("invalidFormat", "a money value must be a finite number", pointer)
    if amount == amount.to_integral_value() and abs(amount) <= 2**53:
        return int(amount)
    as_float = float(amount)
    if Decimal(repr(as_float)) != amount:
        raise Unprocessable.single("invalidValue", "the amount has more precision than a JSON number carries", pointer)
    return as_float


def _price(price: Any, pointer: str, issues: list[Issue]) -> dict[str, Any]:
    if not isinstance(price, Mapping) or not isinstance(price.get("dutyFreeAmount"), Mapping):
        issues.append(Issue("missingProperty", "a price needs dutyFreeAmount", f"{pointer}/dutyFreeAmount"))
        return {}
    result: dict[str, Any] = {}
    for name in ("dutyFreeAmount", "taxIncludedAmount"):
        money = price.get(name)
        if money is None:
            continue
        entry: dict[str, Any] = {}
        if "unit" in money:
            entry["unit"] = str(money["unit"])
        if "value" in money:
            try:
                entry["value"] = money_number(money["value"], f"{pointer}/{name}/value")
            except Unprocessable as error:
                issues.extend(error.issues)
        result[name] = entry
    if "taxRate" in price:
        try:
            result["taxRate"] = money_number(price["taxRate"], f"{pointer}/taxRate")
        except Unprocessable as error:
            issues.extend(error.issues)
    return result


def _lock(session: Session, charge_id: str, scope: Sequence[str]) -> ProductOrderChargeRow:
    """Lock the charge's order, then the charge: every Ordering write locks the order first, so none deadlock."""
    order_id = found(session, ProductOrderChargeRow, charge_id, scope, "charge").product_order_id
    locked(session, ProductOrderRow, order_id, scope, "product order")
    row = locked(session, ProductOrderChargeRow, charge_id, scope, "charge")
    session.refresh(row)  # the unlocked read above may have seen an older version
    return row


def _same_order(actual: str, expected: str, what: str) -> None:
    if actual != expected:
        raise Unprocessable.single("invalidValue", f"the {what} belongs to product order {actual}, not {expected}")


def _store(
    session: Session,
    runtime: Runtime,
    bilateral: BilateralRef,
    row: ProductOrderChargeRow,
    document: dict[str, Any],
    event: str,
    actor: str,
) -> None:
    row.state = document["state"]
    changes.save(
        session,
        bilateral,
        row,
        document,
        resource_type=CHARGE,
        event=event,
        actor=actor,
    )


def _emit_charge(session: Session, bilateral: BilateralRef, row: ProductOrderChargeRow, event_type: str) -> None:
    emit(session, bilateral, event_type, {"id": row.id, "href": href(CHARGE, row.id)}, order_id=row.product_order_id)


def _end(
    session: Session,
    runtime: Runtime,
    row: ProductOrderChargeRow,
    target: str,
    open_items_become: str | None,
    actor: str,
    *,
    answered: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """End the charge (completed / timeout / withdrawnBySeller) and apply the outcome to what it concerns."""
    states.require("charge", row.state, target, f"charge {row.id}")
    document = copy.deepcopy(answered if answered is not None else row.document)
    document["state"] = target
    for item in document["chargeItem"]:
        if item["state"] == "awaitingResponse" and open_items_become:
            item["state"] = open_items_become
    bilateral = bilateral_of(runtime, row)
    _store(session, runtime, bilateral, row, document, target, actor)
    declined = [item for item in document["chargeItem"] if item["state"] == "declinedByBuyer"]
    accepted = any(item["state"] == "acceptedByBuyer" for item in document["chargeItem"])
    if row.cancel_product_order_id or row.modify_request_id:
        if target != "withdrawnBySeller":
            tasks.settle_by_charge(session, runtime, bilateral, row, accepted=not declined, actor=actor)
        return document
    order_row = locked(session, ProductOrderRow, row.product_order_id, [bilateral.id], "product order")
    edit = OrderEdit(session, bilateral, order_row, actor, utcnow())
    blocking_declined = any(item["blocking"] for item in declined)
    _release_order(session, edit, row, blocking_declined=blocking_declined, accepted=accepted and target == "completed")
    if edit.doc != order_row.document:
        edit.save("stateChanged")
    return document


def _release_order(
    session: Session, edit: OrderEdit, row: ProductOrderChargeRow, *, blocking_declined: bool, accepted: bool
) -> None:
    open_charges = session.exec(
        select(ProductOrderChargeRow).where(
            ProductOrderChargeRow.product_order_id == row.product_order_id,
            ProductOrderChargeRow.state == "awaitingResponse",
            col(ProductOrderChargeRow.id) != row.id,
            col(ProductOrderChargeRow.cancel_product_order_id).is_(None),
            col(ProductOrderChargeRow.modify_request_id).is_(None),
        )
    ).all()
    reason = f"charge {row.id} ended {row.state}"
    if row.product_order_item_id is not None:
        item = edit.item(row.product_order_item_id)
        if accepted:
            item["charge"] = [*item.get("charge", []), {"id": row.id, "href": href(CHARGE, row.id)}]
        still_held = any(other.product_order_item_id == item["id"] for other in open_charges)
        if blocking_declined:
            for related in [item, *_related_items(edit, item)]:
                if related.get("state") in ("inProgress", "held", "pending"):
                    edit.set_item_state(related, "failed", f"a blocking charge was declined: {reason}")
        elif item.get("state") == "held" and not still_held:
            edit.set_item_state(item, "inProgress", reason)
    elif blocking_declined:
        for item in edit.items:
            if item.get("state") in ("inProgress", "held", "pending"):
                edit.set_item_state(item, "failed", f"a blocking order charge was declined: {reason}")
    if edit.state == "held.assessingCharge" and not open_charges:
        edit.set_state("inProgress", reason)
        edit.finish_if_done()


def _related_items(edit: OrderEdit, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Items linked to ``item`` by productOrderItemRelationship, in either direction."""
    linked = {relation["id"] for relation in item.get("productOrderItemRelationship", [])}
    return [
        other
        for other in edit.items
        if other["id"] != item["id"]
        and (other["id"] in linked or any(r["id"] == item["id"] for r in other.get("productOrderItemRelationship", [])))
    ]
