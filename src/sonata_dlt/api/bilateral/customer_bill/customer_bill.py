"""Tag "Customer Bill": list and read bills, read bill items.

MEF's listCustomerBill has no buyerId / sellerId, so a list covers every bilateral of the caller; a retrieve
finds the bill among them (another bilateral's bill is a 404, as if it did not exist).
"""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import datetime_filters, list_response, raw_query, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral.billing import bills

DATE_FIELDS = ("billingPeriod.startDateTime", "billingPeriod.endDateTime")


def list_customer_bill(offset: int | None = None, limit: int | None = None, **_filters: Any) -> Any:
    rt = runtime()
    party = current_party()
    query = raw_query()
    dates = datetime_filters(query, DATE_FIELDS)
    page = request_page(offset, limit)
    flt = bills.BillFilter(
        billing_account_id=query.get("billingAccount.id"),
        category=query.get("category"),
        state=query.get("state"),
        start_gt=dates.get("billingPeriod.startDateTime.gt"),
        start_lt=dates.get("billingPeriod.startDateTime.lt"),
        end_gt=dates.get("billingPeriod.endDateTime.gt"),
        end_lt=dates.get("billingPeriod.endDateTime.lt"),
    )
    scope = [ref.id for ref in rt.parties.scope(party)]
    with rt.db.read() as session:
        items, total = bills.list_bills(session, scope, flt, page.offset, page.limit)
    return list_response(items, total, page)


def retrieve_customer_bill(id: str) -> Any:
    rt = runtime()
    scope = [ref.id for ref in rt.parties.scope(current_party())]
    with rt.db.read() as session:
        return json_response(bills.get_bill(session, scope, id).document)


def retrieve_customer_bill_item(id: str) -> Any:
    rt = runtime()
    scope = [ref.id for ref in rt.parties.scope(current_party())]
    with rt.db.read() as session:
        return json_response(bills.get_item(session, scope, id).document)
