"""Tag ``billingRun``: the seller rates a bilateral for a period; runs are read back with held services and totals;
the run's bill is issued (``generated`` -> ``paymentDue``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sonata_dlt.api.bilateral.smart_bilateral import bilateral, page
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, parse_datetime
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral.billing import billing_run
from sonata_dlt.bilateral.rating.engine import Period, SlaEvent
from sonata_dlt.errors import BadRequest, Unprocessable


def body_datetime(body: dict[str, Any], name: str) -> datetime:
    """An RFC 3339 date-time member of the body, with a time zone, or a 422 pointing at it."""
    try:
        return parse_datetime(name, str(body[name]))
    except BadRequest as exc:
        raise Unprocessable.single("invalidFormat", exc.reason, f"/{name}") from None


def create_billing_run(body: dict[str, Any], **params: Any) -> Any:
    request = billing_run.RunRequest(
        period=Period(body_datetime(body, "periodStart"), body_datetime(body, "periodEnd")),
        sla_events=tuple(
            SlaEvent(str(event["productId"]), int(event["outageSeconds"])) for event in body.get("slaEvents", [])
        ),
        currency=body.get("currency"),
    )
    document = billing_run.create_run(runtime(), current_party(), bilateral(params), request)
    return json_response(document, 201)


def list_billing_run(**params: Any) -> Any:
    rt = runtime()
    paging = page(params)
    scope = rt.parties.scope(current_party(), params.get("buyerId"), params.get("sellerId"))
    items, total = billing_run.list_runs(rt, scope, paging.offset, paging.limit)
    return list_response(items, total, paging)


def retrieve_billing_run(id: str) -> Any:
    return json_response(billing_run.get_run(runtime(), current_party(), id))


def issue_billing_run(id: str) -> Any:
    return json_response(billing_run.issue_bill(runtime(), current_party(), id))
