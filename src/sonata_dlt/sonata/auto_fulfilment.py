"""The seller's OSS side: what the seller fulfilment API needs beyond Ordering's seller actions, and the demo
auto-fulfilment worker that plays a seller's OSS by itself.

The order state machines and their writes belong to ``sonata.ordering.seller``; this module only

- lists the orders a seller has to fulfil (``list_orders_for_seller``);
- checks the seller's completion payload before an item is completed (``complete_item``): its
  ``productConfiguration`` must satisfy the product schema its ``@type`` names, like a buyer's order would;
- runs the demo walk (``AutoFulfilment``, switched on by ``settings.fulfilment.auto``): for each acknowledged or
  in-progress order of every bilateral, one step at a time, each at least ``step_delay_seconds`` after the order
  last changed: accept -> per item an expected completion date -> a milestone -> complete with the configuration
  the buyer requested. The worker acts as the bilateral's seller party, through the same functions as the API.
  It keeps no state of its own: the order documents say what the next step is, so a restart resumes the walk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from sonata_dlt.core.parties import Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import ApiError, BadRequest, Forbidden
from sonata_dlt.settings import Role
from sonata_dlt.sonata.ordering import seller
from sonata_dlt.sonata.ordering.states import ORDER_STATES
from sonata_dlt.sonata.product_schemas import registry_of
from sonata_dlt.storage.ordering import ProductOrderRow
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import utcnow

log = logging.getLogger("sonata_dlt.fulfilment")

AUTO_MILESTONE = "serviceInstalled"
AUTO_NOTE = "planned by the seller's automatic fulfilment"
# The worker never sleeps less than this between passes, so a zero step delay does not spin the CPU.
MIN_POLL_SECONDS = 0.5


def require_seller(party: Party) -> Party:
    if party.role is not Role.SELLER:
        raise Forbidden("the seller fulfilment API is for seller credentials only", code="accessDenied")
    return party


def list_orders_for_seller(
    runtime: Runtime,
    party: Party,
    *,
    state: str | None,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of order summaries (newest first) of the seller's bilaterals, and the total count."""
    require_seller(party)
    if state is not None and state not in ORDER_STATES:
        raise BadRequest(f"state must be one of {', '.join(ORDER_STATES)}", code="invalidQuery")
    scope = {ref.id: ref for ref in runtime.parties.scope(party, buyer_id, seller_id)}
    conditions: list[Any] = [col(ProductOrderRow.bilateral_id).in_(list(scope))]
    if state is not None:
        conditions.append(ProductOrderRow.state == state)
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            ProductOrderRow,
            conditions,
            order_by=(col(ProductOrderRow.created_at).desc(), col(ProductOrderRow.id).desc()),
            offset=offset,
            limit=limit,
        )
        return [_summary(row.document, scope[row.bilateral_id].buyer_id) for row in rows], int(total)


def _summary(document: Mapping[str, Any], buyer_id: str) -> dict[str, Any]:
    summary = {key: document[key] for key in ("id", "externalId", "orderDate", "state") if key in document}
    summary["buyerId"] = buyer_id
    summary["productOrderItem"] = [
        {key: item[key] for key in ("id", "action", "state") if key in item}
        for item in document.get("productOrderItem", [])
    ]
    return summary


def complete_item(
    runtime: Runtime, party: Party, order_id: str, item_id: str, product: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Complete an item with the seller's (optional) delivered product, after checking its configuration."""
    require_seller(party)
    configuration = (product or {}).get("productConfiguration")
    if isinstance(configuration, Mapping):
        registry_of(runtime).require_valid(configuration, "/product/productConfiguration")
    return seller.complete_item(runtime, party, order_id, item_id, product)


# --- the demo worker --------------------------------------------------------------------------------------------


@dataclass
class AutoFulfilment:
    runtime: Runtime
    name: str = "auto-fulfilment"

    @property
    def delay(self) -> timedelta:
        return timedelta(seconds=self.runtime.settings.fulfilment.step_delay_seconds)

    async def run(self) -> None:
        pause = max(self.runtime.settings.fulfilment.step_delay_seconds / 2, MIN_POLL_SECONDS)
        while True:
            await asyncio.to_thread(self.step)
            await asyncio.sleep(pause)

    def step(self, now: datetime | None = None) -> int:
        """Take the next due step of every order being fulfilled; return how many steps were taken."""
        moment = now or utcnow()
        taken = 0
        for order_id, bilateral_id in self._due_orders(moment - self.delay):
            bilateral = self.runtime.parties.by_id(bilateral_id)
            if bilateral is None:
                continue
            party = Party(bilateral.seller_id, Role.SELLER)
            try:
                if self._advance(party, order_id, moment):
                    taken += 1
            except ApiError as exc:
                # The seller's own OSS may have acted on the order meanwhile; the next pass sees the new state.
                log.info("auto-fulfilment step skipped", extra={"order": order_id, "reason": exc.reason})
        return taken

    def _due_orders(self, changed_before: datetime) -> list[tuple[str, str]]:
        with self.runtime.db.read() as session:
            rows = session.exec(
                select(ProductOrderRow.id, ProductOrderRow.bilateral_id)
                .where(
                    col(ProductOrderRow.state).in_(("acknowledged", "inProgress")),
                    col(ProductOrderRow.updated_at) <= changed_before,
                )
                .order_by(col(ProductOrderRow.created_at), col(ProductOrderRow.id))
            ).all()
            return [(order_id, bilateral_id) for order_id, bilateral_id in rows]

    def _advance(self, party: Party, order_id: str, now: datetime) -> bool:
        with self.runtime.db.read() as session:
            row = session.get(ProductOrderRow, order_id)
            if row is None:
                return False
            document = row.document
        if document.get("state") == "acknowledged":
            seller.accept_order(self.runtime, party, order_id)
            return True
        for item in document.get("productOrderItem", []):
            if item.get("state") != "inProgress":
                continue  # held / pending items wait for the buyer; terminal ones are done
            item_id = item["id"]
            planned = any(note.get("text") == AUTO_NOTE for note in item.get("note", []))
            reached = any(milestone.get("name") == AUTO_MILESTONE for milestone in item.get("milestone", []))
            if not planned:
                expected = now + self.delay * 3
                seller.set_expected_completion_date(self.runtime, party, order_id, item_id, expected, AUTO_NOTE)
            elif not reached:
                seller.add_milestone(self.runtime, party, order_id, item_id, AUTO_MILESTONE, AUTO_NOTE)
            else:
                seller.complete_item(self.runtime, party, order_id, item_id, None)
            return True
        return False


def auto_fulfilment_worker(runtime: Runtime) -> AutoFulfilment | None:
    """Worker factory (``api.app.WORKER_FACTORIES``): on only when ``settings.fulfilment.auto``."""
    return AutoFulfilment(runtime) if runtime.settings.fulfilment.auto else None
