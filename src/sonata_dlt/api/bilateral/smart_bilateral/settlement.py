"""Tag ``settlement``: netting statements between two parties over a bilateral and its mirror (create, read,
confirm, record the net payment) and the caller's multilateral net position."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.bilateral.smart_bilateral import page
from sonata_dlt.api.bilateral.smart_bilateral.billing_run import body_datetime
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral import settlement
from sonata_dlt.bilateral.rating.engine import Period


def create_settlement(body: dict[str, Any]) -> Any:
    period = Period(body_datetime(body, "periodStart"), body_datetime(body, "periodEnd"))
    document = settlement.create_settlement(runtime(), current_party(), body["counterpartyId"], period)
    return json_response(document, 201)


def list_settlement(**params: Any) -> Any:
    paging = page(params)
    items, total = settlement.list_settlements(runtime(), current_party(), paging.offset, paging.limit)
    return list_response(items, total, paging)


def retrieve_settlement(id: str) -> Any:
    return json_response(settlement.get_settlement(runtime(), current_party(), id))


def confirm_settlement(id: str) -> Any:
    return json_response(settlement.confirm(runtime(), current_party(), id))


def record_settlement_payment(id: str, body: dict[str, Any]) -> Any:
    amount = body["amount"]
    document = settlement.record_payment(
        runtime(),
        current_party(),
        id,
        str(amount["unit"]),
        amount["value"],
        body["paymentMethod"],
        body_datetime(body, "paymentDate"),
    )
    return json_response(document)


def retrieve_net_position() -> Any:
    return json_response(settlement.net_position(runtime(), current_party()))
