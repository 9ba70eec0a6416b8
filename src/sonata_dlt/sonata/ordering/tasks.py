"""Cancel Product Order (UC8-10) and Modify Product Order Item Requested Delivery Date (UC5-7).

Both are "chargeable tasks" (MEFChargeableTaskStateType): the buyer creates one (``acknowledged``), which puts
the order into ``assessingCancellation`` / ``pending.assessingModification`` and the affected items into
``pending``; the seller then rejects it, accepts it (``done``) or raises a charge on it
(``inProgress.assessingCharge``), whose end settles it (``done`` / ``done.declined``).

- An accepted cancellation takes the order to ``pendingCancellation`` and then ``cancelled``; its unfinished items
  become ``cancelled``. A refused one returns the order and its items to ``inProgress``.
- An accepted date change writes the item's new ``requestedCompletionDate`` / ``expediteIndicator``; either way
  the item and the order return to ``inProgress``.

A request on an order (or item) that is not ``inProgress`` is refused with 422 ``invalidValue`` (the create
operations document no 409) and stores nothing.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, Issue, Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.sonata.ordering import states
from sonata_dlt.sonata.ordering.common import (
    CANCEL,
    MODIFY,
    OrderEdit,
    bilateral_of,
    emit,
    found,
    href,
    item_ref,
    locked,
    order_ref,
    parse_date,
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

TaskRow = CancelProductOrderRow | ModifyDeliveryDateRow
CANCEL_FIND_FIELDS = ("id", "cancellationReasonType", "productOrder", "state")
EVENT_OF = {
    CANCEL: "cancelProductOrderStateChangeEvent",
    MODIFY: "modifyProductOrderItemRequestedDeliveryDateStateChangeEvent",
}


# --- buyer: create ---------------------------------------------------------------------------------------------


def create_cancellation(
    runtime: Runtime,
    party: Party,
    body: Mapping[str, Any],
    *,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    bilateral = _buyer_bilateral(runtime, party, buyer_id, seller_id)
    if body.get("cancellationReasonType") is None:
        # CancelProductOrder_Find requires it, so a cancellation without it could not be listed validly.
        raise Unprocessable.single("missingProperty", "cancellationReasonType is required", "/cancellationReasonType")
    order_id = body["productOrder"]["productOrderId"]
    with runtime.db.write() as session:
        edit = _order_for_request(session, bilateral, order_id, party, "/productOrder/productOrderId")
        cancel_id = str(uuid.uuid4())
        document: dict[str, Any] = {
            "id": cancel_id,
            "href": href(CANCEL, cancel_id),
            "productOrder": order_ref(order_id),
            "relatedContactInformation": copy.deepcopy(body["relatedContactInformation"]),
            "cancellationReasonType": body["cancellationReasonType"],
            "state": "acknowledged",
        }
        if body.get("cancellationReason") is not None:
            document["cancellationReason"] = body["cancellationReason"]
        reason = f"cancellation {cancel_id} requested"
        edit.set_state("assessingCancellation", reason)
        for item in edit.items:
            if item.get("state") == "inProgress":
                edit.set_item_state(item, "pending", reason)
        edit.save("stateChanged")
        row = CancelProductOrderRow(
            id=cancel_id,
            bilateral_id=bilateral.id,
            state="acknowledged",
            product_order_id=order_id,
            cancellation_reason_type=document["cancellationReasonType"],
        )
        changes.save(
            session,
            bilateral,
            row,
            document,
            resource_type=CANCEL,
            event="created",
            actor=party.actor,
        )
        return document


def create_delivery_date_change(
    runtime: Runtime,
    party: Party,
    body: Mapping[str, Any],
    *,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    bilateral = _buyer_bilateral(runtime, party, buyer_id, seller_id)
    ref = body["productOrderItem"]
    order_id, item_id = ref["productOrderId"], ref["productOrderItemId"]
    requested = body.get("requestedCompletionDate")
    expedite = bool(body.get("expediteIndicator", False))
    issues: list[Issue] = []
    if requested is None and "expediteIndicator" not in body:
        issues.append(
            Issue("missingProperty", "give requestedCompletionDate or expediteIndicator", "/requestedCompletionDate")
        )
    if expedite and requested is None:
        issues.append(
            Issue("missingProperty", "an expedite request names the expedited date", "/requestedCompletionDate")
        )
    when: datetime | None = None
    if requested is not None:
        try:
            when = parse_date(requested)
        except (TypeError, ValueError):
            issues.append(
                Issue("invalidFormat", "requestedCompletionDate must be a date-time", "/requestedCompletionDate")
            )
    if issues:
        raise Unprocessable(issues)
    with runtime.db.write() as session:
        edit = _order_for_request(session, bilateral, order_id, party, "/productOrderItem/productOrderId")
        item = next((entry for entry in edit.items if entry["id"] == item_id), None)
        if item is None:
            raise Unprocessable.single(
                "referenceNotFound", f"order {order_id} has no item {item_id}", "/productOrderItem/productOrderItemId"
            )
        if item.get("state") != "inProgress":
            raise Unprocessable.single(
                "invalidValue",
                f"item {item_id} is {item.get('state')}, not inProgress",
                "/productOrderItem/productOrderItemId",
            )
        modify_id = str(uuid.uuid4())
        document: dict[str, Any] = {
            "id": modify_id,
            "href": href(MODIFY, modify_id),
            "creationDate": rfc3339(edit.at),
            "productOrderItem": item_ref(order_id, item_id),
            "expediteIndicator": expedite,
            "state": "acknowledged",
        }
        if when is not None:
            document["requestedCompletionDate"] = rfc3339(when)
        reason = f"delivery date change {modify_id} requested"
        edit.set_state("pending.assessingModification", reason)
        edit.set_item_state(item, "pending", reason)
        edit.save("stateChanged")
        row = ModifyDeliveryDateRow(
            id=modify_id,
            bilateral_id=bilateral.id,
            state="acknowledged",
            product_order_id=order_id,
            product_order_item_id=item_id,
            expedite_indicator=expedite,
            requested_completion_date=when,
            creation_date=edit.at,
        )
        changes.save(
            session,
            bilateral,
            row,
            document,
            resource_type=MODIFY,
            event="created",
            actor=party.actor,
        )
        return document


# --- seller: decide --------------------------------------------------------------------------------------------


def decide_cancellation(
    runtime: Runtime, party: Party, cancel_id: str, accept: bool, reason: str | None = None
) -> dict[str, Any]:
    return _decide(runtime, party, CancelProductOrderRow, CANCEL, cancel_id, accept, reason)


def decide_delivery_date_change(
    runtime: Runtime, party: Party, modify_id: str, accept: bool, reason: str | None = None
) -> dict[str, Any]:
    return _decide(runtime, party, ModifyDeliveryDateRow, MODIFY, modify_id, accept, reason)


def _decide(
    runtime: Runtime,
    party: Party,
    model: type[TaskRow],
    kind: str,
    task_id: str,
    accept: bool,
    reason: str | None,
) -> dict[str, Any]:
    scope = scope_ids(runtime, party)
    with runtime.db.write() as session:
        order_id = found(session, model, task_id, scope, kind).product_order_id
        locked(session, ProductOrderRow, order_id, scope, "product order")  # orders first, as everywhere
        task = locked(session, model, task_id, scope, kind)
        session.refresh(task)
        if task.state == "inProgress.assessingCharge":
            if _open_charge(session, task):
                raise Conflict(f"{kind} {task_id} awaits the buyer's answer to its charge")
            target = "done" if accept else "done.declined"
        else:
            target = "done" if accept else "rejected"
        _settle(session, runtime, bilateral_of(runtime, task), task, kind, target, party.actor, reason)
        return dict(task.document)


def settle_by_charge(
    session: Session,
    runtime: Runtime,
    bilateral: BilateralRef,
    charge: ProductOrderChargeRow,
    *,
    accepted: bool,
    actor: str,
) -> None:
    """A charge on a cancellation or date change ended: every item accepted -> done, else done.declined."""
    if charge.cancel_product_order_id:
        task: TaskRow = locked(session, CancelProductOrderRow, charge.cancel_product_order_id, [bilateral.id], CANCEL)
        kind = CANCEL
    else:
        task = locked(session, ModifyDeliveryDateRow, str(charge.modify_request_id), [bilateral.id], MODIFY)
        kind = MODIFY
    if task.state != "inProgress.assessingCharge":
        return  # the seller already decided it after withdrawing an earlier charge
    target = "done" if accepted else "done.declined"
    _settle(
        session,
        runtime,
        bilateral,
        task,
        kind,
        target,
        actor,
        f"charge {charge.id} ended {charge.state}",
        charge=charge if accepted and kind == CANCEL else None,
    )


def start_charge(
    session: Session, bilateral: BilateralRef, task: TaskRow, kind: str, actor: str, order_id: str
) -> None:
    """A charge was raised on the request: acknowledged -> inProgress.assessingCharge."""
    _store_task(session, bilateral, task, kind, "inProgress.assessingCharge", actor)


def cancel_order_items(edit: OrderEdit, reason: str) -> None:
    """pendingCancellation, every unfinished item walked to cancelled through MEF's item states, then cancelled."""
    edit.set_state("pendingCancellation", reason)
    for item in edit.items:
        if item.get("state") == "held":
            edit.set_item_state(item, "inProgress", reason)
        if item.get("state") == "inProgress":
            edit.set_item_state(item, "pending", reason)
        if item.get("state") == "pending":
            edit.set_item_state(item, "cancelled", reason)
    edit.set_state("cancelled", reason)


def _settle(
    session: Session,
    runtime: Runtime,
    bilateral: BilateralRef,
    task: TaskRow,
    kind: str,
    target: str,
    actor: str,
    reason: str | None,
    *,
    charge: ProductOrderChargeRow | None = None,
) -> None:
    states.require(kind, task.state, target, f"{kind} {task.id}")
    extra: dict[str, Any] = {}
    if kind == CANCEL and target in ("rejected", "done.declined") and reason:
        extra["cancellationDeniedReason"] = reason
    if charge is not None:
        extra["charge"] = {"id": charge.id, "href": href("charge", charge.id)}
    _store_task(session, bilateral, task, kind, target, actor, extra=extra)
    order_row = locked(session, ProductOrderRow, task.product_order_id, [bilateral.id], "product order")
    edit = OrderEdit(session, bilateral, order_row, actor, utcnow())
    why = reason or f"{kind} {task.id} is {target}"
    if kind == CANCEL:
        if target == "done":
            edit.doc["cancellationReason"] = task.document.get("cancellationReason") or why
            if charge is not None:
                edit.doc["cancellationCharge"] = [
                    *edit.doc.get("cancellationCharge", []),
                    {"id": charge.id, "href": href("charge", charge.id)},
                ]
            cancel_order_items(edit, why)
        else:
            _resume(edit, why)
    elif isinstance(task, ModifyDeliveryDateRow):
        item = edit.item(task.product_order_item_id)
        if target == "done":
            if "requestedCompletionDate" in task.document:
                item["requestedCompletionDate"] = task.document["requestedCompletionDate"]
            item["expediteIndicator"] = bool(task.document.get("expediteIndicator"))
            if item["expediteIndicator"]:
                item["expediteAcceptedIndicator"] = True
        _resume(edit, why)
    edit.save("stateChanged")


def _resume(edit: OrderEdit, reason: str) -> None:
    edit.set_state("inProgress", reason)
    for item in edit.items:
        if item.get("state") == "pending":
            edit.set_item_state(item, "inProgress", reason)
    edit.finish_if_done()


def _store_task(
    session: Session,
    bilateral: BilateralRef,
    task: TaskRow,
    kind: str,
    target: str,
    actor: str,
    *,
    extra: Mapping[str, Any] | None = None,
) -> None:
    states.require(kind, task.state, target, f"{kind} {task.id}")
    document = {**copy.deepcopy(task.document), **(extra or {}), "state": target}
    task.state = target
    changes.save(session, bilateral, task, document, resource_type=kind, event="stateChanged", actor=actor)
    emit(
        session, bilateral, EVENT_OF[kind], {"id": task.id, "href": href(kind, task.id)}, order_id=task.product_order_id
    )


def _open_charge(session: Session, task: TaskRow) -> bool:
    column = (
        ProductOrderChargeRow.cancel_product_order_id
        if isinstance(task, CancelProductOrderRow)
        else ProductOrderChargeRow.modify_request_id
    )
    return (
        session.exec(
            select(ProductOrderChargeRow.id).where(column == task.id, ProductOrderChargeRow.state == "awaitingResponse")
        ).first()
        is not None
    )


def _buyer_bilateral(runtime: Runtime, party: Party, buyer_id: str | None, seller_id: str | None) -> BilateralRef:
    bilateral = runtime.parties.resolve(party, buyer_id, seller_id)
    if party.role is not Role.BUYER:
        raise Forbidden("only the buyer makes this request", code="accessDenied")
    return bilateral


def _order_for_request(
    session: Session, bilateral: BilateralRef, order_id: str, party: Party, pointer: str
) -> OrderEdit:
    row = session.exec(
        select(ProductOrderRow)
        .where(ProductOrderRow.id == order_id, ProductOrderRow.bilateral_id == bilateral.id)
        .with_for_update(key_share=True)
    ).one_or_none()
    if row is None:
        raise Unprocessable.single("referenceNotFound", f"product order {order_id} not found", pointer)
    if row.state != "inProgress":
        raise Unprocessable.single("invalidValue", f"product order {order_id} is {row.state}, not inProgress", pointer)
    return OrderEdit(session, bilateral, row, party.actor, utcnow())


# --- reads -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilter:
    product_order_id: str | None = None
    state: str | None = None
    cancellation_reason_type: str | None = None  # cancellations only
    expedite_indicator: bool | None = None  # date changes only
    dates: Mapping[str, datetime] | None = None  # requestedCompletionDate / creationDate .gt/.lt (date changes)


def list_tasks(
    runtime: Runtime,
    party: Party,
    kind: str,
    filters: TaskFilter,
    *,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    model: type[TaskRow] = CancelProductOrderRow if kind == CANCEL else ModifyDeliveryDateRow
    conditions: list[Any] = [col(model.bilateral_id).in_(scope_ids(runtime, party, buyer_id, seller_id))]
    if filters.product_order_id is not None:
        conditions.append(col(model.product_order_id) == filters.product_order_id)
    if filters.state is not None:
        conditions.append(col(model.state) == filters.state)
    if filters.cancellation_reason_type is not None:
        conditions.append(col(CancelProductOrderRow.cancellation_reason_type) == filters.cancellation_reason_type)
    if filters.expedite_indicator is not None:
        conditions.append(col(ModifyDeliveryDateRow.expedite_indicator) == filters.expedite_indicator)
    columns = {
        "requestedCompletionDate": ModifyDeliveryDateRow.requested_completion_date,
        "creationDate": ModifyDeliveryDateRow.creation_date,
    }
    for key, moment in (filters.dates or {}).items():
        name, _, suffix = key.partition(".")
        column = col(columns[name])
        conditions.append(column > moment if suffix == "gt" else column < moment)
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            model,
            conditions,
            order_by=(col(model.created_at).desc(), col(model.id).desc()),
            offset=offset,
            limit=limit,
        )
        if kind == CANCEL:
            items = [{key: row.document[key] for key in CANCEL_FIND_FIELDS if key in row.document} for row in rows]
        else:
            items = [copy.deepcopy(row.document) for row in rows]
        return items, int(total)


def retrieve_task(
    runtime: Runtime,
    party: Party,
    kind: str,
    task_id: str,
    *,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    model: type[TaskRow] = CancelProductOrderRow if kind == CANCEL else ModifyDeliveryDateRow
    with runtime.db.read() as session:
        row = found(session, model, task_id, scope_ids(runtime, party, buyer_id, seller_id), kind)
        return copy.deepcopy(row.document)
