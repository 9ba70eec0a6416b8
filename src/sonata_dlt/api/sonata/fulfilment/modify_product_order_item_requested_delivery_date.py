"""Tag ``modifyProductOrderItemRequestedDeliveryDate``: the seller's decision on a delivery-date change request."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.sonata.fulfilment import seller
from sonata_dlt.sonata.ordering import seller as actions


def decide_delivery_date_change(modifyId: str, body: dict[str, Any]) -> Any:
    party = seller()
    return json_response(
        actions.decide_delivery_date_change(runtime(), party, modifyId, body["accept"], body.get("reason"))
    )
