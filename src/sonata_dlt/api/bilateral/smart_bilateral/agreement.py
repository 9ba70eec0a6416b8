"""Tag ``agreement``: propose, approve, reject and read agreement versions."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.bilateral.smart_bilateral import bilateral, page, scope
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, parse_datetime
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral import agreements
from sonata_dlt.storage.types import utcnow


def create_agreement(body: dict[str, Any], **params: Any) -> Any:
    document = agreements.propose(
        runtime(),
        current_party(),
        bilateral(params),
        agreement_id=body["agreementId"],
        effective_from=parse_datetime("effectiveFrom", body["effectiveFrom"]),
        terms=body["terms"],
        description=body.get("description"),
    )
    return json_response(document, 201)


def list_agreement(**params: Any) -> Any:
    paging = page(params)
    items, total = agreements.list_versions(
        runtime(),
        current_party(),
        state=params.get("state"),
        offset=paging.offset,
        limit=paging.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, paging)


def retrieve_agreement(id: str, **params: Any) -> Any:
    return json_response(agreements.retrieve(runtime(), current_party(), id, **scope(params)))


def approve_agreement(id: str, **params: Any) -> Any:
    return json_response(agreements.approve(runtime(), current_party(), id, **scope(params)))


def reject_agreement(id: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    reason = (body or {}).get("reason")
    return json_response(agreements.reject(runtime(), current_party(), id, reason, **scope(params)))


def retrieve_effective_agreement(**params: Any) -> Any:
    at = parse_datetime("at", params["at"]) if params.get("at") else utcnow()
    return json_response(agreements.retrieve_effective(runtime(), current_party(), bilateral(params), at))
