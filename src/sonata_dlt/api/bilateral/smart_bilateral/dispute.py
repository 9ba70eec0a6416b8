"""Tag ``dispute``: raise a dispute on a reconciliation record, a bill item or a bill; propose, accept, reject,
escalate or withdraw (``resolve``)."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.bilateral.smart_bilateral import bilateral, page
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral import disputes


def create_dispute(body: dict[str, Any], **params: Any) -> Any:
    document = disputes.raise_dispute(
        runtime(),
        current_party(),
        bilateral(params),
        body["targetType"],
        body["targetId"],
        body["reason"],
        reconciliation_id=body.get("reconciliationId"),
    )
    return json_response(document, 201)


def list_dispute(**params: Any) -> Any:
    rt = runtime()
    party = current_party()
    paging = page(params)
    scope = rt.parties.scope(party, params.get("buyerId"), params.get("sellerId"))
    items, total = disputes.list_disputes(rt, party, paging.offset, paging.limit, scope)
    return list_response(items, total, paging)


def retrieve_dispute(id: str) -> Any:
    return json_response(disputes.get_dispute(runtime(), current_party(), id))


def retrieve_adjustment(id: str) -> Any:
    return json_response(disputes.get_adjustment(runtime(), current_party(), id))


def propose_dispute_resolution(id: str, body: dict[str, Any]) -> Any:
    rt, party = runtime(), current_party()
    proposal = disputes.proposal_from_wire(rt, party, id, body["outcome"], body.get("amount"), body["description"])
    return json_response(disputes.propose(rt, party, id, proposal))


def accept_dispute_resolution(id: str) -> Any:
    return json_response(disputes.accept(runtime(), current_party(), id))


def reject_dispute_resolution(id: str) -> Any:
    return json_response(disputes.reject(runtime(), current_party(), id))


def escalate_dispute(id: str) -> Any:
    return json_response(disputes.escalate(runtime(), current_party(), id))


def resolve_dispute(id: str) -> Any:
    return json_response(disputes.resolve(runtime(), current_party(), id))
