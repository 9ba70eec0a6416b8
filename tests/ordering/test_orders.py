"""Product orders through the API: create, list, retrieve, patch, and what malformed input gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import func, select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.sonata.ordering import seller
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.ordering import ProductOrderRow

from .conftest import BASE, CONTACT, SELLER, order_body, ordering_only


def count_orders(runtime: Runtime) -> int:
    with runtime.db.read() as session:
        return int(session.exec(select(func.count()).select_from(ProductOrderRow)).one())


def test_create_returns_an_acknowledged_order_and_appends_one_leaf(
    client: Any, buyer_headers: dict[str, str], leaves: Callable[[], int], outbox: Callable[[], list[Any]]
) -> None:
    client.post(f"{BASE}/hub", json={"callback": "https://buyer.example/cb"}, headers=buyer_headers)
    before = leaves()
    response = client.post(f"{BASE}/productOrder", json=order_body(), headers=buyer_headers)
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    order = response.json()
    assert order["state"] == "acknowledged"
    assert order["href"] == f"{BASE}/productOrder/{order['id']}"
    assert order["orderDate"].endswith("Z")
    assert [item["state"] for item in order["productOrderItem"]] == ["acknowledged"]
    assert leaves() == before + 1
    assert outbox() == []  # the 201 stands in for a create notification

    fetched = client.get(f"{BASE}/productOrder/{order['id']}", headers=buyer_headers)
    assert fetched.status_code == 200
    assert fetched.json() == order
    assert (
        client.get(
            f"{BASE}/productOrder/{order['id']}", headers={"Authorization": "Bearer demo-seller-token"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("change", "code", "pointer"),
    [
        (
            lambda b: b["productOrderItem"].append(dict(b["productOrderItem"][0])),
            "invalidValue",
            "/productOrderItem/1/id",
        ),
        (
            lambda b: b["productOrderItem"][0].update(
                productOrderItemRelationship=[{"id": "9", "relationshipType": "x"}]
            ),
            "referenceNotFound",
            "/productOrderItem/0/productOrderItemRelationship/0/id",
        ),
        (
            lambda b: b["productOrderItem"][0].update(product={}),
            "missingProperty",
            "/productOrderItem/0/product/productConfiguration",
        ),
        (
            lambda b: b["productOrderItem"][0]["product"].update(id="P-1"),
            "unexpectedProperty",
            "/productOrderItem/0/product/id",
        ),
        (
            lambda b: b["productOrderItem"][0].update(action="modify"),
            "missingProperty",
            "/productOrderItem/0/product/id",
        ),
        (
            lambda b: b["productOrderItem"][0].update(action="delete", product={"id": "nope"}),
            "referenceNotFound",
            "/productOrderItem/0/product/id",
        ),
        (
            lambda b: b["productOrderItem"][0]["product"].update(place=[{"@type": "Bogus", "role": "x"}]),
            "invalidValue",
            "/productOrderItem/0/product/place/0/@type",
        ),
        (
            lambda b: b["productOrderItem"][0]["product"].update(place=[{"@type": "GeographicSiteRef", "role": "x"}]),
            "missingProperty",
            "/productOrderItem/0/product/place/0/id",
        ),
        (
            lambda b: b["relatedContactInformation"][0].update(role="other"),
            "missingProperty",
            "/relatedContactInformation",
        ),
    ],
)
def test_create_refuses_business_rule_violations_with_422_and_stores_nothing(
    client: Any,
    buyer_headers: dict[str, str],
    runtime: Runtime,
    leaves: Callable[[], int],
    change: Callable[[dict[str, Any]], None],
    code: str,
    pointer: str,
) -> None:
    body = order_body()
    change(body)
    before = leaves()
    response = client.post(f"{BASE}/productOrder", json=body, headers=buyer_headers)
    assert response.status_code == 422, response.text
    issues = response.json()
    assert isinstance(issues, list)
    assert {"code": code, "propertyPath": pointer} in [
        {"code": i["code"], "propertyPath": i.get("propertyPath")} for i in issues
    ]
    assert count_orders(runtime) == 0
    assert leaves() == before


def test_product_configuration_is_checked_against_the_mef_schema(
    make_settings: Callable[..., Settings], buyer_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sonata_dlt.api.app import create_app

    ordering_only(monkeypatch)
    strict = make_settings()  # the MEF product schemas, unknown types refused
    runtime = start_runtime(strict)
    try:
        with create_app(strict, runtime, run_workers=False).test_client() as client:
            response = client.post(f"{BASE}/productOrder", json=order_body(), headers=buyer_headers)
    finally:
        runtime.close()
    assert response.status_code == 422
    assert response.json()[0]["propertyPath"].startswith("/productOrderItem/0/product/productConfiguration")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalidBody"),
        ({"json": {"productOrderItem": "nope", "relatedContactInformation": [CONTACT]}}, 400, "invalidBody"),
        ({"json": {"relatedContactInformation": [CONTACT]}}, 400, "invalidBody"),
        ({"json": order_body(), "params": {"bogus": "1"}}, 400, "invalidQuery"),
        (
            {
                "json": order_body(
                    productOrderItem=[{"id": "1", "action": "add", "requestedCompletionDate": "2099-01-01"}]
                )
            },
            400,
            "invalidBody",
        ),
        ({"json": order_body(), "auth": False}, 401, "missingCredentials"),
        (
            {"content": b"{" + b" " * (1 << 20) + b"}", "headers": {"Content-Type": "application/json"}},
            413,
            "invalidBody",
        ),
    ],
)
def test_malformed_creates_get_sonata_errors_and_store_nothing(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, kwargs: dict[str, Any], status: int, code: str
) -> None:
    headers = {} if kwargs.pop("auth", True) is False else dict(buyer_headers)
    headers.update(kwargs.pop("headers", {}))
    response = client.post(f"{BASE}/productOrder", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert count_orders(runtime) == 0


def test_list_filters_paging_and_headers(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, make_order: Callable[..., dict[str, Any]]
) -> None:
    first = make_order(externalId="A")
    second = make_order(externalId="B", projectId="P2")
    third = make_order(externalId="C")
    seller.accept_order(runtime, SELLER, third["id"])

    everything = client.get(f"{BASE}/productOrder", headers=buyer_headers)
    assert everything.status_code == 200
    assert [o["id"] for o in everything.json()] == [third["id"], second["id"], first["id"]]  # newest first
    assert everything.headers["X-Total-Count"] == "3"
    assert everything.headers["X-Result-Count"] == "3"
    assert set(everything.json()[0]) <= {
        "id",
        "orderDate",
        "state",
        "externalId",
        "projectId",
        "completionDate",
        "cancellationDate",
    }

    page = client.get(f"{BASE}/productOrder", params={"offset": 1, "limit": 1}, headers=buyer_headers)
    assert [o["id"] for o in page.json()] == [second["id"]]
    assert page.headers["X-Total-Count"] == "3"
    assert page.headers["X-Result-Count"] == "1"

    def ids(**params: Any) -> list[str]:
        response = client.get(f"{BASE}/productOrder", params=params, headers=buyer_headers)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()]

    assert ids(externalId="B") == [second["id"]]
    assert ids(projectId="P2") == [second["id"]]
    assert ids(state="inProgress") == [third["id"]]
    assert ids(state="acknowledged") == [second["id"], first["id"]]
    assert len(ids(**{"orderDate.gt": "2000-01-01T00:00:00Z", "orderDate.lt": "2999-01-01T00:00:00Z"})) == 3
    assert ids(**{"orderDate.lt": "2000-01-01T00:00:00Z"}) == []
    assert len(ids(**{"itemRequestedCompletionDate.gt": "2098-12-31T00:00:00Z"})) == 3
    assert ids(**{"itemRequestedCompletionDate.gt": "2099-01-02T00:00:00Z"}) == []
    assert ids(**{"itemExpectedCompletionDate.gt": "2000-01-01T00:00:00Z"}) == [third["id"]]
    assert ids(**{"completionDate.gt": "2000-01-01T00:00:00Z"}) == []
    assert ids(**{"cancellationDate.lt": "2999-01-01T00:00:00Z"}) == []

    bad = client.get(f"{BASE}/productOrder", params={"orderDate.gt": "notadate"}, headers=buyer_headers)
    assert bad.status_code == 400
    # connexion checks the date-time format itself; api/errors.py words it invalidBody today (see the report)
    assert bad.json()["code"] in ("invalidQuery", "invalidBody")
    assert client.get(f"{BASE}/productOrder", params={"state": "bogus"}, headers=buyer_headers).status_code == 400
    assert client.get(f"{BASE}/productOrder", params={"whatever": "x"}, headers=buyer_headers).status_code == 400


def test_patch_changes_only_what_update_allows_and_appends_notes(
    client: Any, buyer_headers: dict[str, str], make_order: Callable[..., dict[str, Any]], leaves: Callable[[], int]
) -> None:
    order = make_order()
    url = f"{BASE}/productOrder/{order['id']}"
    note = {"id": "n1", "author": "me", "date": "2024-01-01T00:00:00Z", "source": "buyer", "text": "hello"}
    before = leaves()
    response = client.patch(
        url,
        json={
            "externalId": "NEW",
            "note": [note],
            "state": "completed",
            "productOrderItem": [{"id": "1", "endCustomerName": "ACME", "relatedBuyerPON": "PO-9"}],
        },
        headers=buyer_headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["externalId"] == "NEW"
    assert patched["state"] == "acknowledged"  # not patchable
    assert patched["note"] == [note]
    assert patched["productOrderItem"][0]["endCustomerName"] == "ACME"
    assert leaves() == before + 1

    changed_note = client.patch(url, json={"note": [{**note, "text": "rewritten"}]}, headers=buyer_headers)
    assert changed_note.status_code == 409
    unknown_item = client.patch(url, json={"productOrderItem": [{"id": "nope"}]}, headers=buyer_headers)
    assert unknown_item.status_code == 400
    assert client.get(url, headers=buyer_headers).json() == patched
    assert leaves() == before + 1


def test_patch_is_refused_on_terminal_orders(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, make_order: Callable[..., dict[str, Any]]
) -> None:
    order = make_order()
    seller.reject_order(runtime, SELLER, order["id"], "no capacity")
    response = client.patch(f"{BASE}/productOrder/{order['id']}", json={"externalId": "X"}, headers=buyer_headers)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_another_bilateral_sees_nothing(
    make_settings: Callable[..., Settings], buyer_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sonata_dlt.api.app import create_app

    ordering_only(monkeypatch)
    other_token = "other-buyer-token-0123456789"
    settings = make_settings(
        accept_unknown_product_types=True,
        tokens=[{"token": other_token, "party_id": "BUYER-2", "role": "buyer"}],
        bilaterals=[{"buyer_id": "BUYER-2", "seller_id": "SELLER-1"}],
    )
    runtime = start_runtime(settings)
    other = {"Authorization": f"Bearer {other_token}"}
    try:
        with create_app(settings, runtime, run_workers=False).test_client() as client:
            order = client.post(f"{BASE}/productOrder", json=order_body(), headers=buyer_headers).json()
            assert client.get(f"{BASE}/productOrder/{order['id']}", headers=other).status_code == 404
            assert client.get(f"{BASE}/productOrder", headers=other).json() == []
            assert client.patch(f"{BASE}/productOrder/{order['id']}", json={}, headers=other).status_code == 404
            cancel = {
                "productOrder": {"productOrderId": order["id"]},
                "relatedContactInformation": [CONTACT],
                "cancellationReasonType": "commercial",
            }
            assert client.post(f"{BASE}/cancelProductOrder", json=cancel, headers=other).status_code == 422
            mine = client.get(f"{BASE}/productOrder", headers=buyer_headers).json()
            assert [o["id"] for o in mine] == [order["id"]]
    finally:
        runtime.close()
