"""Tag ``charge``: raise a charge on an item, withdraw an unanswered one."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.sonata.fulfilment import body_datetime, seller
from sonata_dlt.sonata.ordering import seller as actions

# The path parameters are named as the spec names them (orderId, itemId, chargeId).


def raise_charge(orderId: str, itemId: str, body: dict[str, Any]) -> Any:
    party = seller()
    charge = actions.raise_charge(
        runtime(),
        party,
        orderId,
        itemId,
        body["chargeItem"],
        body_datetime("responseDueDate", body["responseDueDate"]),
        cancel_product_order_id=body.get("cancelProductOrderId"),
        modify_request_id=body.get("modifyProductOrderItemRequestedDeliveryDateId"),
    )
    return json_response(charge, 201)


def withdraw_charge(chargeId: str) -> Any:
    party = seller()
    return json_response(actions.withdraw_charge(runtime(), party, chargeId))
