"""Completed order items make, change and terminate products; every configuration is kept with its period."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from inventory.conftest import Complete, at, bilateral_of
from inventory.factories import access_eline, add_item, change_item, operator_uni, order_document
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Unprocessable
from sonata_dlt.sonata import inventory
from sonata_dlt.storage.inventory import Product
from sonata_dlt.storage.log import LogLeaf


def product_row(runtime: Runtime, product_id: str) -> Product:
    with runtime.db.read() as session:
        row = session.get(Product, product_id)
        assert row is not None
        return row


def test_add_creates_an_active_product(runtime: Runtime, complete: Complete) -> None:
    order = order_document("PO-1", add_item("1", access_eline(cir_mbps=100)), external_id="BUYER-PO-77")
    product_id = complete(
        order,
        at=at(1),
        product={
            "productPrice": [
                {
                    "priceType": "recurring",
                    "price": {"dutyFreeAmount": {"unit": "EUR", "value": 450}},
                    "recurringChargePeriod": "month",
                }
            ]
        },
    )
    assert product_id is not None
    document = product_row(runtime, product_id).document
    assert document["status"] == "active"
    assert document["startDate"] == "2025-03-01T00:00:00.000Z"
    assert document["productConfiguration"] == access_eline(cir_mbps=100)
    assert document["productOffering"] == {"id": "ACCESS-ELINE-OVC"}
    assert document["relatedSite"] == [{"id": "SITE-1", "role": "INSTALL_LOCATION"}]
    assert document["billingAccount"] == {"id": "BA-1"}
    assert document["externalId"] == "BUYER-PO-77"
    assert document["productPrice"][0]["price"]["dutyFreeAmount"]["value"] == 450
    assert document["productOrderItem"] == [
        {"productOrderId": "PO-1", "productOrderItemId": "1", "productOrderHref": f"{inventory.ORDER_BASE_PATH}/PO-1"}
    ]
    assert document["statusChange"][0]["status"] == "active"


def test_payload_start_date_and_configuration_override(runtime: Runtime, complete: Complete) -> None:
    order = order_document("PO-1", add_item("1", access_eline(cir_mbps=100)))
    delivered = access_eline(cir_mbps=200)
    product_id = complete(
        order, at=at(5), product={"startDate": "2025-03-04T12:00:00Z", "productConfiguration": delivered}
    )
    assert product_id is not None
    row = product_row(runtime, product_id)
    assert row.document["startDate"] == "2025-03-04T12:00:00.000Z"
    assert row.document["productConfiguration"] == delivered
    with runtime.db.read() as session:
        versions = inventory.product_versions(session, row.bilateral_id, product_id)
    assert [(v.valid_from, v.valid_to) for v in versions] == [(at(4, 12), None)]


def test_modify_keeps_every_version_with_its_period(runtime: Runtime, complete: Complete) -> None:
    product_id = complete(order_document("PO-1", add_item("1", access_eline(cir_mbps=100))), at=at(1))
    assert product_id is not None
    complete(
        order_document("PO-2", change_item("modify", product_id, configuration=access_eline(cir_mbps=500))), at=at(10)
    )
    complete(
        order_document("PO-3", change_item("modify", product_id, configuration=access_eline(cir_mbps=1000))), at=at(20)
    )
    row = product_row(runtime, product_id)
    assert row.document["productConfiguration"] == access_eline(cir_mbps=1000)
    assert row.document["startDate"] == "2025-03-01T00:00:00.000Z"  # a change does not restart the product
    assert [ref["productOrderId"] for ref in row.document["productOrderItem"]] == ["PO-1", "PO-2", "PO-3"]
    with runtime.db.read() as session:
        versions = inventory.product_versions(session, row.bilateral_id, product_id)
        middle = inventory.versions_active_between(session, row.bilateral_id, at(12), at(15))
        spanning = inventory.versions_active_between(session, row.bilateral_id, at(5), at(25))
        before = inventory.versions_active_between(session, row.bilateral_id, at(1, 0).replace(year=2024), at(1))
    assert [(v.version, v.valid_from, v.valid_to, v.product_order_id, v.action) for v in versions] == [
        (1, at(1), at(10), "PO-1", "add"),
        (2, at(10), at(20), "PO-2", "modify"),
        (3, at(20), None, "PO-3", "modify"),
    ]
    cir = [
        v.document["productConfiguration"]["uniEp"]["ingressBandwidthProfilePerClassOfServiceName"][0]["bwpFlow"][
            "cir"
        ]["irValue"]
        for v in versions
    ]
    assert cir == [100, 500, 1000]
    assert [v.version for v in middle] == [2]
    assert [v.version for v in spanning] == [1, 2, 3]
    assert before == []  # half-open: a period ending at the start date does not include the product


def test_delete_terminates_and_closes_the_last_version(runtime: Runtime, complete: Complete) -> None:
    product_id = complete(order_document("PO-1", add_item()), at=at(1))
    assert product_id is not None
    assert complete(order_document("PO-9", change_item("delete", product_id)), at=at(15)) == product_id
    row = product_row(runtime, product_id)
    assert row.status == "terminated"
    assert row.document["terminationDate"] == "2025-03-15T00:00:00.000Z"
    assert [change["status"] for change in row.document["statusChange"]] == ["active", "terminated"]
    with runtime.db.read() as session:
        versions = inventory.product_versions(session, row.bilateral_id, product_id)
        after = inventory.versions_active_between(session, row.bilateral_id, at(16), at(20))
    assert [(v.valid_from, v.valid_to) for v in versions] == [(at(1), at(15))]
    assert after == []
    # Deleting again changes nothing; modifying a terminated product is a conflict.
    assert complete(order_document("PO-10", change_item("delete", product_id)), at=at(16)) is None
    with pytest.raises(Conflict):
        complete(order_document("PO-11", change_item("modify", product_id, configuration=access_eline())), at=at(17))


def test_every_change_is_logged(runtime: Runtime, complete: Complete) -> None:
    product_id = complete(order_document("PO-1", add_item()), at=at(1))
    assert product_id is not None
    complete(
        order_document("PO-2", change_item("modify", product_id, configuration=access_eline(cir_mbps=5))), at=at(2)
    )
    complete(order_document("PO-3", change_item("delete", product_id)), at=at(3))
    with runtime.db.read() as session:
        leaves = session.exec(select(LogLeaf).where(LogLeaf.resource_id == product_id).order_by(LogLeaf.seq)).all()
    assert [(leaf.resource_type, leaf.version, leaf.event) for leaf in leaves] == [
        ("product", 1, "created"),
        ("product", 2, "modified"),
        ("product", 3, "terminated"),
    ]
    assert product_row(runtime, product_id).version == 3


def test_changes_must_name_a_product_of_the_same_bilateral(runtime: Runtime, complete: Complete) -> None:
    other = complete(order_document("PO-1", add_item()), at=at(1), buyer="BUYER-2")
    assert other is not None
    order = order_document(
        "PO-2", add_item("0"), change_item("modify", other, item_id="1", configuration=access_eline())
    )
    with pytest.raises(Unprocessable) as raised:
        complete(order, 1, at=at(2))
    assert raised.value.issues[0].code == "referenceNotFound"
    assert raised.value.issues[0].property_path == "/productOrderItem/1/product/id"
    with pytest.raises(Unprocessable) as missing:
        complete(order_document("PO-3", {"id": "1", "action": "delete"}), at=at(2))
    assert missing.value.issues[0].code == "missingProperty"
    assert product_row(runtime, other).version == 1


def test_sibling_items_become_product_relationships(runtime: Runtime, complete: Complete) -> None:
    uni_item = add_item("uni", operator_uni())
    ovc_item = add_item(
        "ovc", access_eline(), productOrderItemRelationship=[{"id": "uni", "relationshipType": "reliesOn"}]
    )
    order = order_document("PO-1", uni_item, ovc_item)
    uni = complete(order, 0, at=at(1))
    ovc = complete(order, 1, at=at(1))
    assert uni is not None and ovc is not None
    relationships: list[dict[str, Any]] = product_row(runtime, ovc).document["productRelationship"]
    assert relationships == [
        {"id": uni, "href": f"{inventory.PRODUCT_BASE_PATH}/{uni}", "relationshipType": "reliesOn"}
    ]
    bilateral = bilateral_of(runtime, "BUYER-1")
    assert bilateral.buyer_id == "BUYER-1"
