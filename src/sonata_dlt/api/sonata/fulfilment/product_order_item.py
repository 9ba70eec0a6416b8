"""Tag ``productOrderItem``: item state changes, expected dates, milestones, completion and failure."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.sonata.fulfilment import body_datetime, seller
from sonata_dlt.sonata import auto_fulfilment
from sonata_dlt.sonata.ordering import seller as actions

# The path parameters keep the spec's camelCase names (orderId, itemId, chargeId): connexion passes them so.


def set_item_state(orderId: str, itemId: str, body: dict[str, Any]) -> Any:
    party = seller()
    return json_response(actions.set_item_state(runtime(), party, orderId, itemId, body["state"], body.get("reason")))


def set_expected_completion_date(orderId: str, itemId: str, body: dict[str, Any]) -> Any:
    party = seller()
    date = body_datetime("expectedCompletionDate", body["expectedCompletionDate"])
    return json_response(actions.set_expected_completion_date(runtime(), party, orderId, itemId, date, body["note"]))


def add_milestone(orderId: str, itemId: str, body: dict[str, Any]) -> Any:
    party = seller()
    return json_response(actions.add_milestone(runtime(), party, orderId, itemId, body["name"], body.get("note")))


def complete_item(orderId: str, itemId: str, body: dict[str, Any] | None = None) -> Any:
    party = seller()
    product = (body or {}).get("product")
    return json_response(auto_fulfilment.complete_item(runtime(), party, orderId, itemId, product))


def fail_item(orderId: str, itemId: str, body: dict[str, Any]) -> Any:
    party = seller()
    return json_response(actions.fail_item(runtime(), party, orderId, itemId, body["reason"]))
