"""Product Inventory (MEF 116 v7): products made, changed and terminated by completed order items.

Ordering calls ``apply_completed_item`` inside the write transaction that completes an item, so the item's
completion and the product it produces commit (and reach the log) together:

- ``add``: a new product, ``active`` from its start date, with the configuration, places, relationships, terms,
  prices and billing account of the item (the seller's completion payload may override or add to them);
- ``modify``: the product's new state; the configuration in force until then is kept in ``product_version`` with
  its validity period ``[valid_from, valid_to)``, so billing can prorate bandwidth changes;
- ``delete``: the product becomes ``terminated`` with its ``terminationDate``, and its last version is closed.

Status follows MEF 116's product state diagram (research notes §4); products appear when their order item
completes, so they start ``active`` (the ``pendingActive`` path needs an in-progress hook Ordering does not call).
Reads (``list_products``, ``retrieve_product``) look products up by id AND the caller's bilaterals only.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from sonata_dlt import base_paths
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest, Conflict, NotFound, Unprocessable
from sonata_dlt.storage.inventory import Product, ProductLink, ProductVersion
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import rfc3339
from sonata_dlt.verifiable_log import changes

PRODUCT_BASE_PATH = f"{base_paths.PRODUCT_INVENTORY}/product"
ORDER_BASE_PATH = f"{base_paths.PRODUCT_ORDERING}/productOrder"
RESOURCE_TYPE = "product"

STATUSES = (
    "active",
    "active.pendingChange",
    "cancelled",
    "pendingActive",
    "pendingTerminate",
    "suspended",
    "suspendedPendingTerminate",
    "terminated",
)
# Statuses in which a modify or delete order item may still be completed against the product.
CHANGEABLE = frozenset({"active", "active.pendingChange", "suspended", "pendingTerminate"})

# The properties of MEFProduct_Find: the summary ``listProduct`` returns for each product.
FIND_FIELDS = (
    "href",
    "id",
    "billingAccount",
    "externalId",
    "lastUpdateDate",
    "productOffering",
    "productOrderItem",
    "productRelationship",
    "productSpecification",
    "relatedSite",
    "startDate",
    "status",
)
# Always present in a retrieve with ``fields``: MEFProduct requires them, so a selection stays a valid MEFProduct.
ALWAYS_RETURNED = ("id", "startDate", "status")

# What the seller's completion payload may set on the product (the sellerFulfilment ``CompletedProduct``).
PAYLOAD_FIELDS = (
    "billingAccount",
    "externalId",
    "productConfiguration",
    "productOffering",
    "productPrice",
    "productRelationship",
    "productSpecification",
    "productTerm",
    "relatedSite",
)


# --- order completion -----------------------------------------------------------------------------------------


def apply_completed_item(
    session: Session,
    bilateral: BilateralRef,
    *,
    order: dict[str, Any],
    item: dict[str, Any],
    product: Mapping[str, Any] | None,
    actor: str,
    at: datetime,
) -> str | None:
    """Apply a completed order item to the inventory; return the id of the product it created, changed or ended.

    ``product`` is the seller's optional completion payload (see ``PAYLOAD_FIELDS`` and ``startDate``). Returns
    None only for a ``delete`` of a product that is already terminated (nothing changes, nothing is logged).
    Raises Unprocessable (referenceNotFound) when a modify/delete item names no product of this bilateral, and
    Conflict when the product's status does not allow the change.
    """
    action = item.get("action")
    payload = dict(product or {})
    if action == "add":
        return _create(session, bilateral, order, item, payload, actor, at)
    if action in ("modify", "delete"):
        row = _product_of_item(session, bilateral, order, item)
        if action == "modify":
            return _modify(session, bilateral, row, order, item, payload, actor, at)
        return _terminate(session, bilateral, row, order, item, actor, at)
    raise Unprocessable.single("invalidValue", f"unknown order item action {action!r}", _item_pointer(order, item))


def _create(
    session: Session,
    bilateral: BilateralRef,
    order: Mapping[str, Any],
    item: Mapping[str, Any],
    payload: Mapping[str, Any],
    actor: str,
    at: datetime,
) -> str:
    product_id = str(uuid.uuid4())
    requested: Mapping[str, Any] = item.get("product") or {}
    start = _payload_start(payload, at)
    document: dict[str, Any] = {
        "id": product_id,
        "href": f"{PRODUCT_BASE_PATH}/{product_id}",
        "status": "active",
        "startDate": rfc3339(start),
        "lastUpdateDate": rfc3339(at),
        "productOrderItem": [_order_item_ref(order, item)],
        "statusChange": [
            {"changeDate": rfc3339(at), "status": "active", "changeReason": _reason(order, item, "add")},
        ],
    }
    if order.get("externalId"):
        document["externalId"] = order["externalId"]
    _merge_requested(document, session, bilateral, order, item, requested)
    _merge_payload(document, payload)
    row = Product(
        id=product_id,
        bilateral_id=bilateral.id,
        status="active",
        start_date=start,
        last_update_date=at,
    )
    _set_columns(row, document)
    changes.save(session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="created", actor=actor)
    _write_links(session, row, document)
    session.add(_version(row, 1, order, item, document, at))
    return product_id


def _modify(
    session: Session,
    bilateral: BilateralRef,
    row: Product,
    order: Mapping[str, Any],
    item: Mapping[str, Any],
    payload: Mapping[str, Any],
    actor: str,
    at: datetime,
) -> str:
    if row.status not in CHANGEABLE:
        raise Conflict(f"product {row.id} is {row.status}; it cannot be modified")
    requested: Mapping[str, Any] = item.get("product") or {}
    document = copy.deepcopy(row.document)
    document["lastUpdateDate"] = rfc3339(at)
    document["productOrderItem"] = [*document.get("productOrderItem", []), _order_item_ref(order, item)]
    if document.get("status") != "active":
        document["status"] = "active"
        document["statusChange"] = [
            *document.get("statusChange", []),
            {"changeDate": rfc3339(at), "status": "active", "changeReason": _reason(order, item, "modify")},
        ]
    _merge_requested(document, session, bilateral, order, item, requested)
    _merge_payload(document, payload)
    row.last_update_date = at
    _set_columns(row, document)
    latest = _close_current_version(session, row.id, at)
    changes.save(session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="modified", actor=actor)
    _write_links(session, row, document)
    session.add(_version(row, latest + 1, order, item, document, at))
    return row.id


def _terminate(
    session: Session,
    bilateral: BilateralRef,
    row: Product,
    order: Mapping[str, Any],
    item: Mapping[str, Any],
    actor: str,
    at: datetime,
) -> str | None:
    if row.status == "terminated":
        return None
    if row.status not in CHANGEABLE and row.status != "suspendedPendingTerminate":
        raise Conflict(f"product {row.id} is {row.status}; it cannot be terminated")
    document = copy.deepcopy(row.document)
    document["status"] = "terminated"
    document["terminationDate"] = rfc3339(at)
    document["lastUpdateDate"] = rfc3339(at)
    document["productOrderItem"] = [*document.get("productOrderItem", []), _order_item_ref(order, item)]
    document["statusChange"] = [
        *document.get("statusChange", []),
        {"changeDate": rfc3339(at), "status": "terminated", "changeReason": _reason(order, item, "delete")},
    ]
    row.termination_date = at
    row.last_update_date = at
    _set_columns(row, document)
    _close_current_version(session, row.id, at)
    changes.save(session, bilateral, row, document, resource_type=RESOURCE_TYPE, event="terminated", actor=actor)
    _write_links(session, row, document)
    return row.id


def _product_of_item(
    session: Session, bilateral: BilateralRef, order: Mapping[str, Any], item: Mapping[str, Any]
) -> Product:
    pointer = f"{_item_pointer(order, item)}/product/id"
    product_id = (item.get("product") or {}).get("id")
    if not product_id:
        raise Unprocessable.single("missingProperty", f"a {item.get('action')} item must name the product", pointer)
    row = session.exec(
        select(Product)
        .where(Product.id == product_id, Product.bilateral_id == bilateral.id)
        .with_for_update(key_share=True)
    ).one_or_none()
    if row is None:
        raise Unprocessable.single("referenceNotFound", f"product {product_id} is not in the inventory", pointer)
    return row


def _merge_requested(
    document: dict[str, Any],
    session: Session,
    bilateral: BilateralRef,
    order: Mapping[str, Any],
    item: Mapping[str, Any],
    requested: Mapping[str, Any],
) -> None:
    """Copy what the buyer's order item asks for onto the product document (only what the item states)."""
    for key in ("productConfiguration", "productOffering"):
        if key in requested:
            document[key] = copy.deepcopy(requested[key])
    sites = [_site(place) for place in requested.get("place", []) if _site(place) is not None]
    if sites:
        document["relatedSite"] = sites
    relationships = [
        {key: value for key, value in rel.items() if key in ("id", "href", "relationshipType")}
        for rel in requested.get("productRelationship", [])
    ]
    relationships += _relationships_from_sibling_items(session, bilateral, order, item, document.get("id"))
    if relationships:
        known = {(rel["id"], rel["relationshipType"]) for rel in relationships}
        kept = [
            rel for rel in document.get("productRelationship", []) if (rel["id"], rel["relationshipType"]) not in known
        ]
        document["productRelationship"] = [*kept, *relationships]
    if "billingAccount" in item:
        document["billingAccount"] = {"id": item["billingAccount"]["id"]}
    terms = item.get("itemTerm") or item.get("requestedItemTerm")
    if terms:
        document["productTerm"] = copy.deepcopy(terms)
    if item.get("relatedContactInformation"):
        document["relatedContactInformation"] = copy.deepcopy(item["relatedContactInformation"])


def _merge_payload(document: dict[str, Any], payload: Mapping[str, Any]) -> None:
    """The seller's completion payload has the last word on the fields it sets."""
    for key in PAYLOAD_FIELDS:
        if key in payload:
            document[key] = copy.deepcopy(payload[key])


def _relationships_from_sibling_items(
    session: Session, bilateral: BilateralRef, order: Mapping[str, Any], item: Mapping[str, Any], own_id: Any
) -> list[dict[str, Any]]:
    """``productOrderItemRelationship`` names items of the same order; point at the products they produced."""
    found = []
    for relation in item.get("productOrderItemRelationship", []):
        target = session.exec(
            select(ProductVersion.product_id).where(
                ProductVersion.bilateral_id == bilateral.id,
                ProductVersion.product_order_id == order["id"],
                ProductVersion.product_order_item_id == relation["id"],
            )
        ).first()
        if target is not None and target != own_id:
            found.append(
                {
                    "id": target,
                    "href": f"{PRODUCT_BASE_PATH}/{target}",
                    "relationshipType": relation["relationshipType"],
                }
            )
    return found


def _site(place: Mapping[str, Any]) -> dict[str, Any] | None:
    """A place that names a site (GeographicSiteRef) becomes a relatedSite; addresses have no site id."""
    if place.get("@type") != "GeographicSiteRef" or not place.get("id"):
        return None
    site = {"id": place["id"], "role": place.get("role", "")}
    if place.get("href"):
        site["href"] = place["href"]
    return site


def _payload_start(payload: Mapping[str, Any], at: datetime) -> datetime:
    value = payload.get("startDate")
    if value is None:
        return at
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Unprocessable.single(
            "invalidFormat", f"startDate must be an RFC 3339 date-time, got {value!r}", "/product/startDate"
        )
    return moment.astimezone(UTC)


def _order_item_ref(order: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, str]:
    return {
        "productOrderId": order["id"],
        "productOrderItemId": item["id"],
        "productOrderHref": f"{ORDER_BASE_PATH}/{order['id']}",
    }


def _reason(order: Mapping[str, Any], item: Mapping[str, Any], action: str) -> str:
    return f"{action} item {item['id']} of product order {order['id']} completed"


def _item_pointer(order: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    for index, candidate in enumerate(order.get("productOrderItem", [])):
        if candidate.get("id") == item.get("id"):
            return f"/productOrderItem/{index}"
    return "/productOrderItem"


def _set_columns(row: Product, document: Mapping[str, Any]) -> None:
    row.status = document["status"]
    row.product_specification_id = (document.get("productSpecification") or {}).get("id")
    row.product_offering_id = (document.get("productOffering") or {}).get("id")
    row.external_id = document.get("externalId")
    row.billing_account_id = (document.get("billingAccount") or {}).get("id")


def _write_links(session: Session, row: Product, document: Mapping[str, Any]) -> None:
    session.exec(delete(ProductLink).where(col(ProductLink.product_id) == row.id))
    values = (
        {("site", site["id"]) for site in document.get("relatedSite", [])}
        | {("relatedProduct", rel["id"]) for rel in document.get("productRelationship", [])}
        | {("productOrder", ref["productOrderId"]) for ref in document.get("productOrderItem", [])}
    )
    for kind, value in sorted(values):
        session.add(ProductLink(product_id=row.id, kind=kind, value=value, bilateral_id=row.bilateral_id))


def _version(
    row: Product, number: int, order: Mapping[str, Any], item: Mapping[str, Any], document: dict[str, Any], at: datetime
) -> ProductVersion:
    return ProductVersion(
        product_id=row.id,
        version=number,
        bilateral_id=row.bilateral_id,
        resource_version=row.version,
        valid_from=at if number > 1 else row.start_date,
        valid_to=None,
        product_order_id=order["id"],
        product_order_item_id=item["id"],
        action=item["action"],
        document=copy.deepcopy(document),
    )


def _close_current_version(session: Session, product_id: str, at: datetime) -> int:
    """End the version in force at ``at``; return the highest version number so far."""
    versions = session.exec(select(ProductVersion).where(ProductVersion.product_id == product_id)).all()
    for version in versions:
        if version.valid_to is None:
            version.valid_to = max(at, version.valid_from)
            session.add(version)
    return max((version.version for version in versions), default=0)


# --- history, for billing --------------------------------------------------------------------------------------


def product_versions(session: Session, bilateral_id: str, product_id: str) -> list[ProductVersion]:
    """Every configuration of one product, oldest first."""
    statement = (
        select(ProductVersion)
        .where(ProductVersion.bilateral_id == bilateral_id, ProductVersion.product_id == product_id)
        .order_by(col(ProductVersion.version))
    )
    return list(session.exec(statement).all())


def versions_active_between(
    session: Session, bilateral_id: str, start: datetime, end: datetime
) -> list[ProductVersion]:
    """The versions of the bilateral's products in force at some instant of the half-open period ``[start, end)``."""
    statement = (
        select(ProductVersion)
        .where(
            ProductVersion.bilateral_id == bilateral_id,
            col(ProductVersion.valid_from) < end,
            (col(ProductVersion.valid_to).is_(None)) | (col(ProductVersion.valid_to) > start),
        )
        .order_by(col(ProductVersion.product_id), col(ProductVersion.version))
    )
    return list(session.exec(statement).all())


# --- reads through the API ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductFilter:
    """The ``listProduct`` query parameters (dates already parsed)."""

    status: str | None = None
    product_specification_id: str | None = None
    product_offering_id: str | None = None
    external_id: str | None = None
    geographical_site_id: str | None = None
    related_product_id: str | None = None
    billing_account_id: str | None = None
    product_order_id: str | None = None
    start_date_gt: datetime | None = None
    start_date_lt: datetime | None = None
    last_update_date_gt: datetime | None = None
    last_update_date_lt: datetime | None = None


def list_products(
    runtime: Runtime,
    party: Party,
    filters: ProductFilter,
    *,
    offset: int,
    limit: int,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of MEFProduct_Find summaries, newest first, and the total number of matches."""
    scope = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    if filters.status is not None and filters.status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}", code="invalidQuery")
    conditions: list[Any] = [col(Product.bilateral_id).in_(scope)]
    equal = (
        (Product.status, filters.status),
        (Product.product_specification_id, filters.product_specification_id),
        (Product.product_offering_id, filters.product_offering_id),
        (Product.external_id, filters.external_id),
        (Product.billing_account_id, filters.billing_account_id),
    )
    conditions += [col(column) == value for column, value in equal if value is not None]
    for moment, column, greater in (
        (filters.start_date_gt, Product.start_date, True),
        (filters.start_date_lt, Product.start_date, False),
        (filters.last_update_date_gt, Product.last_update_date, True),
        (filters.last_update_date_lt, Product.last_update_date, False),
    ):
        if moment is not None:
            conditions.append(col(column) > moment if greater else col(column) < moment)
    for kind, value in (
        ("site", filters.geographical_site_id),
        ("relatedProduct", filters.related_product_id),
        ("productOrder", filters.product_order_id),
    ):
        if value is not None:
            linked = select(ProductLink.product_id).where(
                col(ProductLink.bilateral_id).in_(scope), ProductLink.kind == kind, ProductLink.value == value
            )
            conditions.append(col(Product.id).in_(linked))
    with runtime.db.read() as session:
        rows, total = fetch_page(
            session,
            Product,
            conditions,
            order_by=(col(Product.created_at).desc(), col(Product.id).desc()),
            offset=offset,
            limit=limit,
        )
        return [summary(row.document) for row in rows], int(total)


def retrieve_product(
    runtime: Runtime,
    party: Party,
    product_id: str,
    *,
    fields: Sequence[str] | None = None,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    """The product's MEFProduct document, or only the named top-level ``fields`` (plus those MEFProduct requires)."""
    scope = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    with runtime.db.read() as session:
        row = session.exec(
            select(Product).where(Product.id == product_id, col(Product.bilateral_id).in_(scope))
        ).one_or_none()
        if row is None:
            raise NotFound(f"product {product_id} not found")
        document = copy.deepcopy(row.document)
    if fields:
        wanted = set(fields) | set(ALWAYS_RETURNED)
        document = {key: value for key, value in document.items() if key in wanted}
    return document


def summary(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(document[key]) for key in FIND_FIELDS if key in document}


def parse_fields(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    return names or None
