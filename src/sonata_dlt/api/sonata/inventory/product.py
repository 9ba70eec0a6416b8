"""Tag ``product``: list and read the buyer's products in the seller's inventory."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import datetime_filters, list_response, raw_query, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.sonata import inventory


def list_product(**params: Any) -> Any:
    query = raw_query()
    dates = datetime_filters(query, ("startDate", "lastUpdateDate"))
    filters = inventory.ProductFilter(
        status=query.get("status"),
        product_specification_id=query.get("productSpecificationId"),
        product_offering_id=query.get("productOfferingId"),
        external_id=query.get("externalId"),
        geographical_site_id=query.get("geographicalSiteId"),
        related_product_id=query.get("relatedProductId"),
        billing_account_id=query.get("billingAccountId"),
        product_order_id=query.get("productOrderId"),
        start_date_gt=dates.get("startDate.gt"),
        start_date_lt=dates.get("startDate.lt"),
        last_update_date_gt=dates.get("lastUpdateDate.gt"),
        last_update_date_lt=dates.get("lastUpdateDate.lt"),
    )
    page = request_page(params.get("offset"), params.get("limit"))
    items, total = inventory.list_products(
        runtime(),
        current_party(),
        filters,
        offset=page.offset,
        limit=page.limit,
        buyer_id=query.get("buyerId"),
        seller_id=query.get("sellerId"),
    )
    return list_response(items, total, page)


def retrieve_product(id: str, **params: Any) -> Any:
    query = raw_query()
    document = inventory.retrieve_product(
        runtime(),
        current_party(),
        id,
        fields=inventory.parse_fields(query.get("fields")),
        buyer_id=query.get("buyerId"),
        seller_id=query.get("sellerId"),
    )
    return json_response(document)
