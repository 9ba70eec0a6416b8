"""Product Inventory v7 over HTTP: filters, paging, fields, isolation between bilaterals, MEF conformance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inventory.conftest import BUYER_2_TOKEN, Complete, at
from inventory.factories import access_eline, add_item, change_item, internet_access, operator_uni, order_document
from inventory.mef import assert_product, assert_product_find
from sonata_dlt.core.runtime import Runtime

BASE = "/mefApi/sonata/productInventory/v7"


@pytest.fixture
def api(runtime: Runtime) -> Iterator[Any]:
    from sonata_dlt.api.app import create_app

    with create_app(runtime.settings, runtime, run_workers=False).test_client() as client:
        yield client


@pytest.fixture
def products(complete: Complete) -> dict[str, str]:
    """Four products of BUYER-1 (one terminated) and one of BUYER-2."""
    ids: dict[str, Any] = {}
    uni_order = order_document("PO-1", add_item("u", operator_uni(), place=[]), external_id="EXT-1")
    uni_order["productOrderItem"][0]["product"]["productOffering"] = {"id": "UNI"}
    uni_order["productOrderItem"][0]["product"]["place"] = [
        {"@type": "GeographicSiteRef", "id": "SITE-A", "role": "INSTALL_LOCATION"}
    ]
    ids["uni"] = complete(uni_order, at=at(1))
    ovc_order = order_document("PO-2", add_item("o", access_eline()))
    ovc_order["productOrderItem"][0]["product"]["productRelationship"] = [
        {"id": ids["uni"], "relationshipType": "reliesOn"}
    ]
    ids["ovc"] = complete(ovc_order, at=at(5), product={"productSpecification": {"id": "MEF-106"}})
    ia_order = order_document("PO-3", add_item("i", internet_access(), billingAccount={"id": "BA-2"}))
    ids["ia"] = complete(ia_order, at=at(10))
    gone = complete(order_document("PO-4", add_item("g")), at=at(12))
    ids["gone"] = gone
    complete(order_document("PO-5", change_item("delete", gone)), at=at(14))
    complete(
        order_document("PO-6", change_item("modify", ids["ovc"], configuration=access_eline(cir_mbps=300))), at=at(20)
    )
    ids["other"] = complete(order_document("PO-1", add_item()), at=at(1), buyer="BUYER-2")
    return ids


def listed(api: Any, headers: dict[str, str], **query: Any) -> list[str]:
    response = api.get(f"{BASE}/product", params=query, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    body = response.json()
    assert response.headers["X-Result-Count"] == str(len(body))
    for item in body:
        assert_product_find(item)
    return [item["id"] for item in body]


def test_list_everything_newest_first(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    response = api.get(f"{BASE}/product", headers=buyer_headers)
    assert response.headers["X-Total-Count"] == "4"
    assert listed(api, buyer_headers) == [products["gone"], products["ia"], products["ovc"], products["uni"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "terminated"}, ["gone"]),
        ({"status": "active"}, ["ia", "ovc", "uni"]),
        ({"productOfferingId": "UNI"}, ["uni"]),
        ({"productSpecificationId": "MEF-106"}, ["ovc"]),
        ({"externalId": "EXT-1"}, ["uni"]),
        ({"billingAccountId": "BA-2"}, ["ia"]),
        ({"geographicalSiteId": "SITE-A"}, ["uni"]),
        ({"productOrderId": "PO-6"}, ["ovc"]),
        ({"productOrderId": "PO-1"}, ["uni"]),
        ({"startDate.gt": "2025-03-04T00:00:00Z", "startDate.lt": "2025-03-11T00:00:00Z"}, ["ia", "ovc"]),
        ({"lastUpdateDate.gt": "2025-03-13T00:00:00Z"}, ["gone", "ovc"]),
        ({"lastUpdateDate.lt": "2025-03-13T00:00:00Z"}, ["ia", "uni"]),
        ({"status": "active", "billingAccountId": "BA-1"}, ["ovc", "uni"]),
    ],
)
def test_filters(
    api: Any, buyer_headers: dict[str, str], products: dict[str, str], query: dict[str, str], expected: list[str]
) -> None:
    assert sorted(listed(api, buyer_headers, **query)) == sorted(products[name] for name in expected)


def test_related_product_filter(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    assert listed(api, buyer_headers, relatedProductId=products["uni"]) == [products["ovc"]]


def test_paging(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    response = api.get(f"{BASE}/product", params={"offset": 1, "limit": 2}, headers=buyer_headers)
    assert [item["id"] for item in response.json()] == [products["ia"], products["ovc"]]
    assert response.headers["X-Total-Count"] == "4"
    assert response.headers["X-Result-Count"] == "2"
    assert response.headers["X-Pagination-Throttled"] == "false"
    assert listed(api, buyer_headers, offset=4) == []


def test_bad_queries(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    for query in ({"startDate.gt": "yesterday"}, {"status": "asleep"}, {"offset": -1}):
        response = api.get(f"{BASE}/product", params=query, headers=buyer_headers)
        assert response.status_code == 400, query
        assert response.json()["code"] in ("invalidQuery", "invalidBody")


def test_retrieve(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    response = api.get(f"{BASE}/product/{products['ovc']}", headers=buyer_headers)
    assert response.status_code == 200
    document = response.json()
    assert_product(document)
    assert document["productConfiguration"] == access_eline(cir_mbps=300)
    assert document["productRelationship"] == [{"id": products["uni"], "relationshipType": "reliesOn"}]
    terminated = api.get(f"{BASE}/product/{products['gone']}", headers=buyer_headers).json()
    assert_product(terminated)
    assert terminated["terminationDate"] == "2025-03-14T00:00:00.000Z"


def test_retrieve_fields(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    response = api.get(
        f"{BASE}/product/{products['ovc']}", params={"fields": "billingAccount, nonsense"}, headers=buyer_headers
    )
    document = response.json()
    assert set(document) == {"id", "startDate", "status", "billingAccount"}
    assert_product(document)


def test_bilaterals_are_isolated(api: Any, buyer_headers: dict[str, str], products: dict[str, str]) -> None:
    other = {"Authorization": f"Bearer {BUYER_2_TOKEN}"}
    assert listed(api, other) == [products["other"]]
    assert api.get(f"{BASE}/product/{products['uni']}", headers=other).status_code == 404
    assert api.get(f"{BASE}/product/{products['other']}", headers=buyer_headers).status_code == 404
    assert products["other"] not in listed(api, buyer_headers)


def test_seller_sees_products_of_each_buyer(api: Any, seller_headers: dict[str, str], products: dict[str, str]) -> None:
    # SELLER-1 trades with two buyers: it must say which one, as MEF 123 §5.3 requires.
    assert api.get(f"{BASE}/product", headers=seller_headers).status_code == 200
    assert listed(api, seller_headers, buyerId="BUYER-2") == [products["other"]]
    assert api.get(f"{BASE}/product", params={"buyerId": "BUYER-9"}, headers=seller_headers).status_code == 403


def test_unauthenticated(api: Any, products: dict[str, str]) -> None:
    assert api.get(f"{BASE}/product").status_code == 401
