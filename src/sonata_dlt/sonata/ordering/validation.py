"""The business rules of a new order beyond its JSON Schema (MEF 123 and the spec's descriptions).

Every problem becomes an ``Issue`` with a JSON Pointer into the request body; all are reported at once (422).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Issue
from sonata_dlt.sonata.ordering.common import parse_date
from sonata_dlt.sonata.product_schemas import PRODUCT_SCHEMAS
from sonata_dlt.storage.inventory import Product

# RelatedPlaceRefOrValue: the discriminator mapping and what each subtype requires besides @type and role.
PLACE_TYPES: Mapping[str, tuple[str, ...]] = {
    "FieldedAddress": ("city", "country", "streetName"),
    "FormattedAddress": ("addrLine1", "city", "country"),
    "GeographicAddressLabel": ("externalReferenceId", "externalReferenceType"),
    "GeographicAddressRef": ("id",),
    "GeographicSiteRef": ("id",),
    "MEFGeographicPoint": ("spatialRef", "x", "y"),
}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
ENDED_PRODUCT_STATUSES = frozenset({"terminated", "cancelled"})
ORDER_CONTACT_ROLE = "productOrderContact"


def order_issues(runtime: Runtime, session: Session, bilateral_id: str, body: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    if not any(c.get("role") == ORDER_CONTACT_ROLE for c in body.get("relatedContactInformation", [])):
        issues.append(
            Issue(
                "missingProperty", f"a contact with role {ORDER_CONTACT_ROLE} is required", "/relatedContactInformation"
            )
        )
    issues += _note_issues(body.get("note", []), "/note")
    items = body["productOrderItem"]
    ids = [item["id"] for item in items]
    for index, item in enumerate(items):
        pointer = f"/productOrderItem/{index}"
        if ids.count(item["id"]) > 1 and ids.index(item["id"]) != index:
            issues.append(Issue("invalidValue", f"item id {item['id']!r} is used twice in the order", f"{pointer}/id"))
        for position, relation in enumerate(item.get("productOrderItemRelationship", [])):
            if relation["id"] not in ids or relation["id"] == item["id"]:
                issues.append(
                    Issue(
                        "referenceNotFound",
                        f"no other item {relation['id']!r} in this order",
                        f"{pointer}/productOrderItemRelationship/{position}/id",
                    )
                )
        for position, action in enumerate(item.get("coordinatedAction", [])):
            if action["itemId"] not in ids or action["itemId"] == item["id"]:
                issues.append(
                    Issue(
                        "referenceNotFound",
                        f"no other item {action['itemId']!r} in this order",
                        f"{pointer}/coordinatedAction/{position}/itemId",
                    )
                )
        issues += _date_issues(item, pointer)
        issues += _note_issues(item.get("note", []), f"{pointer}/note")
        issues += _product_issues(runtime, session, bilateral_id, item, pointer)
    return issues


def _date_issues(item: Mapping[str, Any], pointer: str) -> list[Issue]:
    requested = item.get("requestedCompletionDate")
    if requested is None:
        if item.get("expediteIndicator"):
            return [
                Issue(
                    "missingProperty",
                    "an expedited item names its expedited date",
                    f"{pointer}/requestedCompletionDate",
                )
            ]
        return []
    if not _is_date(requested):
        return [
            Issue(
                "invalidFormat",
                "requestedCompletionDate must be an RFC 3339 date-time",
                f"{pointer}/requestedCompletionDate",
            )
        ]
    return []


def _note_issues(notes: list[Mapping[str, Any]], pointer: str) -> list[Issue]:
    issues = []
    for index, entry in enumerate(notes):
        if entry.get("source") != "buyer":
            issues.append(
                Issue("invalidValue", "the buyer writes notes with source buyer", f"{pointer}/{index}/source")
            )
        if not _is_date(entry.get("date")):
            issues.append(
                Issue("invalidFormat", "a note date must be an RFC 3339 date-time", f"{pointer}/{index}/date")
            )
    return issues


def _product_issues(
    runtime: Runtime, session: Session, bilateral_id: str, item: Mapping[str, Any], pointer: str
) -> list[Issue]:
    action = item["action"]
    product: Mapping[str, Any] = item.get("product") or {}
    here = f"{pointer}/product"
    issues: list[Issue] = []
    configuration = product.get("productConfiguration")
    if action == "add":
        if "id" in product:
            issues.append(Issue("unexpectedProperty", "an add item must not name an existing product", f"{here}/id"))
    elif "id" not in product:
        issues.append(Issue("missingProperty", f"a {action} item must name the product (product.id)", f"{here}/id"))
    else:
        row = session.exec(
            select(Product).where(Product.id == product["id"], Product.bilateral_id == bilateral_id)
        ).one_or_none()
        if row is None:
            issues.append(Issue("referenceNotFound", f"no product {product['id']!r} in your inventory", f"{here}/id"))
        elif row.status in ENDED_PRODUCT_STATUSES:
            issues.append(Issue("invalidValue", f"product {product['id']!r} is {row.status}", f"{here}/id"))
    if action in ("add", "modify") and configuration is None:
        issues.append(
            Issue("missingProperty", f"a {action} item needs productConfiguration", f"{here}/productConfiguration")
        )
    if action == "delete" and configuration is not None:
        issues.append(
            Issue("unexpectedProperty", "a delete item takes no productConfiguration", f"{here}/productConfiguration")
        )
    if configuration is not None and action != "delete":
        registry = runtime.components.get(PRODUCT_SCHEMAS)
        if registry is not None:
            issues += registry.validate(configuration, f"{here}/productConfiguration")
    for index, place in enumerate(product.get("place", [])):
        required = PLACE_TYPES.get(place.get("@type"))
        if required is None:
            issues.append(
                Issue(
                    "invalidValue",
                    f"place @type must be one of {', '.join(PLACE_TYPES)}",
                    f"{here}/place/{index}/@type",
                )
            )
            continue
        for name in required:
            if name not in place:
                issues.append(
                    Issue("missingProperty", f"a {place['@type']} needs {name}", f"{here}/place/{index}/{name}")
                )
    return issues


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not RFC3339.match(value):
        return False
    try:
        parse_date(value)
    except ValueError:
        return False
    return True
