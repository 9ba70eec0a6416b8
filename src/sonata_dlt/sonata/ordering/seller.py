"""Seller-side actions on orders: what the seller's OSS does, called through the seller fulfilment API.

Each function takes ``(runtime, party, ...)``, refuses any party that is not a seller (403 ``accessDenied``),
finds the resource among the seller's own bilaterals only (404 otherwise), checks the MEF 123 state machine
(409 ``conflict`` for a transition it does not have, nothing written), and then, in one transaction, stores the
new documents, appends their log leaves and queues the notifications. Each returns the resulting document.

- ``accept_order(runtime, party, order_id, expected_completion_dates=None)``: order acknowledged -> inProgress,
  every item acknowledged -> inProgress with ``expectedCompletionDate`` (given per item id, else the requested
  date, else ``DEFAULT_LEAD_TIME`` from now).
- ``reject_order(runtime, party, order_id, reason, item_reasons=None, *, validated=())``: order -> rejected.
  Without ``item_reasons`` every item is ``rejected`` with ``reason``; with them, the named items are
  ``rejected``, the ids in ``validated`` ``rejected.validated`` and the others ``rejected.unassessed``. Each item
  carries a ``terminationError``.
- ``set_item_state(runtime, party, order_id, item_id, state, reason=None)``: inProgress <-> held / pending.
- ``set_expected_completion_date(runtime, party, order_id, item_id, date, note)``: a revised date with the note
  giving its reason (R50); emits ``productOrderItemExpectedCompletionDateSet``.
- ``add_milestone(runtime, party, order_id, item_id, name, note=None)``: emits
  ``productSpecificProductOrderItemMilestoneEvent``.
- ``complete_item(runtime, party, order_id, item_id, product=None)``: item -> completed; the inventory applies it
  (``sonata.inventory.apply_completed_item``) in the same transaction and the item gets ``product {id, href}``;
  when every item is terminal the order ends completed, partial or failed.
- ``fail_item(runtime, party, order_id, item_id, reason)``: item -> failed, then the same order ending.
- ``raise_charge(runtime, party, order_id, item_id, charge_items, response_due, cancel_product_order_id=None,
  modify_request_id=None)``: a new Charge (see ``charges.raise_charge``); returns the charge document.
- ``withdraw_charge(runtime, party, charge_id)``: charge -> withdrawnBySeller.
- ``decide_cancellation(runtime, party, cancel_id, accept, reason=None)`` and
  ``seller_cancel_order(runtime, party, order_id, reason)``: see ``tasks``.
- ``decide_delivery_date_change(runtime, party, modify_id, accept, reason=None)``: see ``tasks``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sonata_dlt.core.parties import Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.sonata import inventory
from sonata_dlt.sonata.ordering import charges, states, tasks
from sonata_dlt.sonata.ordering.common import (
    PRODUCT_BASE_PATH,
    OrderEdit,
    bilateral_of,
    locked,
    note,
    parse_date,
    scope_ids,
)
from sonata_dlt.storage.ordering import ProductOrderRow
from sonata_dlt.storage.types import rfc3339, utcnow

# An inProgress item must carry an expected date (R46); when the seller gives none and the buyer asked for none,
# promise a conventional lead time the seller can revise later (with a note, R50).
DEFAULT_LEAD_TIME = timedelta(days=30)
ADJUSTABLE_ITEM_STATES = frozenset({"inProgress", "held", "pending"})

__all__ = [
    "accept_order",
    "add_milestone",
    "complete_item",
    "decide_cancellation",
    "decide_delivery_date_change",
    "fail_item",
    "raise_charge",
    "reject_order",
    "seller_cancel_order",
    "set_expected_completion_date",
    "set_item_state",
    "withdraw_charge",
]


def require_seller(party: Party) -> None:
    if party.role is not Role.SELLER:
        raise Forbidden("only the seller may do this", code="accessDenied")


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise Unprocessable.single("invalidFormat", f"{what} must carry a time zone")
    return moment


@contextmanager
def _editing(runtime: Runtime, party: Party, order_id: str) -> Iterator[OrderEdit]:
    require_seller(party)
    with runtime.db.write() as session:
        row = locked(session, ProductOrderRow, order_id, scope_ids(runtime, party), "product order")
        yield OrderEdit(session, bilateral_of(runtime, row), row, party.actor, utcnow())


def accept_order(
    runtime: Runtime,
    party: Party,
    order_id: str,
    expected_completion_dates: Mapping[str, datetime] | None = None,
) -> dict[str, Any]:
    dates = dict(expected_completion_dates or {})
    with _editing(runtime, party, order_id) as edit:
        unknown = sorted(set(dates) - {item["id"] for item in edit.items})
        if unknown:
            raise Unprocessable.single("referenceNotFound", f"product order {order_id} has no items {unknown}")
        edit.set_state("inProgress")
        for item in edit.items:
            expected = dates.get(item["id"])
            if expected is None:
                requested = item.get("requestedCompletionDate")
                expected = parse_date(requested) if requested else None
                if expected is None or expected < edit.at:
                    expected = edit.at + DEFAULT_LEAD_TIME
            item["expectedCompletionDate"] = rfc3339(_aware(expected, "expectedCompletionDate"))
            edit.set_item_state(item, "inProgress")
        edit.save("stateChanged")
        return edit.row.document


def reject_order(
    runtime: Runtime,
    party: Party,
    order_id: str,
    reason: str,
    item_reasons: Mapping[str, str] | None = None,
    *,
    validated: Collection[str] = (),
) -> dict[str, Any]:
    with _editing(runtime, party, order_id) as edit:
        ids = {item["id"] for item in edit.items}
        unknown = sorted((set(item_reasons or {}) | set(validated)) - ids)
        if unknown:
            raise Unprocessable.single("referenceNotFound", f"product order {order_id} has no items {unknown}")
        for index, item in enumerate(edit.items):
            pointer = f"/productOrderItem/{index}"
            if not item_reasons or item["id"] in item_reasons:
                text = (item_reasons or {}).get(item["id"], reason)
                target = "rejected"
            else:
                text = f"another item of the order was rejected: {reason}"
                target = "rejected.validated" if item["id"] in validated else "rejected.unassessed"
            item["terminationError"] = [{"code": "otherIssue", "propertyPath": pointer, "value": text}]
            edit.set_item_state(item, target, text)
        edit.set_state("rejected", reason)
        edit.save("stateChanged")
        return edit.row.document


def set_item_state(
    runtime: Runtime, party: Party, order_id: str, item_id: str, state: str, reason: str | None = None
) -> dict[str, Any]:
    if state not in ADJUSTABLE_ITEM_STATES:
        raise Unprocessable.single(
            "invalidValue", f"state {state!r} is not set directly; use complete_item, fail_item or a cancellation"
        )
    with _editing(runtime, party, order_id) as edit:
        if edit.state in states.ORDER_TERMINAL:
            raise Conflict(f"product order {order_id} is {edit.state}; its items no longer change")
        edit.set_item_state(edit.item(item_id), state, reason)
        edit.save("stateChanged")
        return edit.row.document


def set_expected_completion_date(
    runtime: Runtime, party: Party, order_id: str, item_id: str, date: datetime, note: str
) -> dict[str, Any]:
    if not note.strip():
        raise Unprocessable.single("missingProperty", "a revised expected completion date needs a note (R50)")
    with _editing(runtime, party, order_id) as edit:
        item = edit.item(item_id)
        if item.get("state") not in ADJUSTABLE_ITEM_STATES:
            raise Conflict(f"item {item_id} is {item.get('state')}; its expected completion date no longer changes")
        item["expectedCompletionDate"] = rfc3339(_aware(date, "expectedCompletionDate"))
        item["note"] = [*item.get("note", []), _note(party, note, edit, item)]
        edit.event("productOrderItemExpectedCompletionDateSet", orderItemId=item_id)
        edit.save("expectedCompletionDateSet")
        return edit.row.document


def add_milestone(
    runtime: Runtime, party: Party, order_id: str, item_id: str, name: str, note: str | None = None
) -> dict[str, Any]:
    if not name.strip():
        raise Unprocessable.single("missingProperty", "a milestone needs a name")
    with _editing(runtime, party, order_id) as edit:
        item = edit.item(item_id)
        if item.get("state") not in ADJUSTABLE_ITEM_STATES:
            raise Conflict(f"item {item_id} is {item.get('state')}; it takes no more milestones")
        milestone: dict[str, Any] = {"date": rfc3339(edit.at), "name": name}
        if note:
            milestone["note"] = note
        item["milestone"] = [*item.get("milestone", []), milestone]
        edit.event("productSpecificProductOrderItemMilestoneEvent", orderItemId=item_id, milestoneName=name)
        edit.save("milestone")
        return edit.row.document


def complete_item(
    runtime: Runtime, party: Party, order_id: str, item_id: str, product: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    with _editing(runtime, party, order_id) as edit:
        item = edit.item(item_id)
        edit.set_item_state(item, "completed")
        product_id = inventory.apply_completed_item(
            edit.session,
            edit.bilateral,
            order=edit.doc,
            item=item,
            product=product,
            actor=party.actor,
            at=edit.at,
        )
        if product_id is not None:
            item["product"] = {**item.get("product", {}), "id": product_id, "href": f"{PRODUCT_BASE_PATH}/{product_id}"}
        edit.finish_if_done()
        edit.save("stateChanged")
        return edit.row.document


def fail_item(runtime: Runtime, party: Party, order_id: str, item_id: str, reason: str) -> dict[str, Any]:
    with _editing(runtime, party, order_id) as edit:
        item = edit.item(item_id)
        edit.set_item_state(item, "failed", reason)
        index = edit.index_of(item_id)
        item["terminationError"] = [
            *item.get("terminationError", []),
            {"code": "otherIssue", "propertyPath": f"/productOrderItem/{index}", "value": reason},
        ]
        edit.finish_if_done()
        edit.save("stateChanged")
        return edit.row.document


def raise_charge(
    runtime: Runtime,
    party: Party,
    order_id: str,
    item_id: str | None,
    charge_items: Sequence[Mapping[str, Any]],
    response_due: datetime,
    cancel_product_order_id: str | None = None,
    modify_request_id: str | None = None,
) -> dict[str, Any]:
    require_seller(party)
    return charges.raise_charge(
        runtime,
        party,
        order_id,
        item_id,
        charge_items,
        _aware(response_due, "responseDueDate"),
        cancel_product_order_id=cancel_product_order_id,
        modify_request_id=modify_request_id,
    )


def withdraw_charge(runtime: Runtime, party: Party, charge_id: str) -> dict[str, Any]:
    require_seller(party)
    return charges.withdraw_charge(runtime, party, charge_id)


def decide_cancellation(
    runtime: Runtime, party: Party, cancel_id: str, accept: bool, reason: str | None = None
) -> dict[str, Any]:
    require_seller(party)
    return tasks.decide_cancellation(runtime, party, cancel_id, accept, reason)


def seller_cancel_order(runtime: Runtime, party: Party, order_id: str, reason: str) -> dict[str, Any]:
    with _editing(runtime, party, order_id) as edit:
        edit.doc["cancellationReason"] = reason
        tasks.cancel_order_items(edit, reason)
        edit.save("stateChanged")
        return edit.row.document


def decide_delivery_date_change(
    runtime: Runtime, party: Party, modify_id: str, accept: bool, reason: str | None = None
) -> dict[str, Any]:
    require_seller(party)
    return tasks.decide_delivery_date_change(runtime, party, modify_id, accept, reason)


def _note(party: Party, text: str, edit: OrderEdit, item: Mapping[str, Any]) -> dict[str, Any]:
    return note(party.id, "seller", text, edit.at, item.get("note", []))
