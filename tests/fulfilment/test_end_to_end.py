"""End to end: the buyer orders an Access E-Line, the seller completes it, the product is in the inventory."""

from __future__ import annotations

from typing import Any

from inventory.factories import access_eline, add_item, change_item, order_create
from inventory.mef import assert_product

from fulfilment.conftest import FULFIL, INVENTORY, ORDERING, PlaceOrder


def test_access_eline_from_order_to_inventory(
    api: Any, place_order: PlaceOrder, buyer_headers: dict[str, str], seller_headers: dict[str, str]
) -> None:
    order = place_order(add_item("1", access_eline(cir_mbps=100)))
    assert order["state"] == "acknowledged"
    assert api.post(f"{FULFIL}/productOrder/{order['id']}/accept", headers=seller_headers).status_code == 200
    completed = api.post(f"{FULFIL}/productOrder/{order['id']}/item/1/complete", json={}, headers=seller_headers)
    assert completed.status_code == 200, completed.text

    fetched = api.get(f"{ORDERING}/productOrder/{order['id']}", headers=buyer_headers).json()
    assert fetched["state"] == "completed"
    product_id = fetched["productOrderItem"][0]["product"]["id"]
    listing = api.get(f"{INVENTORY}/product", params={"productOrderId": order["id"]}, headers=buyer_headers)
    assert [item["id"] for item in listing.json()] == [product_id]
    product = api.get(f"{INVENTORY}/product/{product_id}", headers=buyer_headers).json()
    assert_product(product)
    assert product["status"] == "active"
    assert product["productConfiguration"] == access_eline(cir_mbps=100)
    assert product["relatedSite"] == [{"id": "SITE-1", "role": "INSTALL_LOCATION"}]

    # The buyer upgrades the bandwidth; once the seller completes the change, the inventory shows it.
    upgrade = change_item("modify", product_id, configuration=access_eline(cir_mbps=1000))
    upgrade["product"]["productOffering"] = {"id": "ACCESS-ELINE-OVC"}
    response = api.post(f"{ORDERING}/productOrder", json=order_create(upgrade), headers=buyer_headers)
    assert response.status_code == 201, response.text
    change_id = response.json()["id"]
    api.post(f"{FULFIL}/productOrder/{change_id}/accept", headers=seller_headers)
    api.post(f"{FULFIL}/productOrder/{change_id}/item/1/complete", json={}, headers=seller_headers)
    product = api.get(f"{INVENTORY}/product/{product_id}", headers=buyer_headers).json()
    assert product["productConfiguration"] == access_eline(cir_mbps=1000)
    assert [ref["productOrderId"] for ref in product["productOrderItem"]] == [order["id"], change_id]


def test_buyer_order_with_invalid_configuration_is_422(api: Any, buyer_headers: dict[str, str]) -> None:
    bad = access_eline(maximumFrameSize=1500)
    del bad["uniEp"]
    unknown = access_eline()
    unknown["@type"] = "urn:example:not-offered:v1"
    body = order_create(add_item("1", bad), add_item("2", unknown))
    response = api.post(f"{ORDERING}/productOrder", json=body, headers=buyer_headers)
    assert response.status_code == 422, response.text
    found = {(issue["code"], issue["propertyPath"]) for issue in response.json()}
    assert found == {
        ("invalidValue", "/productOrderItem/0/product/productConfiguration/maximumFrameSize"),
        ("missingProperty", "/productOrderItem/0/product/productConfiguration/uniEp"),
        ("invalidValue", "/productOrderItem/1/product/productConfiguration/@type"),
    }
    assert api.get(f"{INVENTORY}/product", headers=buyer_headers).json() == []


def test_unknown_types_pass_when_configured(make_settings: Any, buyer_headers: dict[str, str]) -> None:
    from sonata_dlt.api.app import create_app
    from sonata_dlt.startup.wiring import start_runtime

    settings = make_settings(accept_unknown_product_types=True)
    runtime = start_runtime(settings)
    try:
        with create_app(settings, runtime, run_workers=False).test_client() as client:
            unknown = {"@type": "urn:example:dark-fibre:v1", "strands": 2}
            response = client.post(
                f"{ORDERING}/productOrder", json=order_create(add_item("1", unknown)), headers=buyer_headers
            )
            assert response.status_code == 201, response.text
            invalid_known = client.post(
                f"{ORDERING}/productOrder",
                json=order_create(add_item("1", access_eline(maximumFrameSize=1))),
                headers=buyer_headers,
            )
            assert invalid_known.status_code == 422
    finally:
        runtime.close()
