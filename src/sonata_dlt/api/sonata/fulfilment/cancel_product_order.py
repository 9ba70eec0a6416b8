"""Tag ``cancelProductOrder``: the seller's decision on a buyer's cancellation request."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.sonata.fulfilment import seller
from sonata_dlt.sonata.ordering import seller as actions


def decide_cancellation(cancelId: str, body: dict[str, Any]) -> Any:
    party = seller()
    return json_response(actions.decide_cancellation(runtime(), party, cancelId, body["accept"], body.get("reason")))
