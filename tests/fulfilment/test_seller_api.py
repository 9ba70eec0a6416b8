"""The seller fulfilment API: seller tokens only; each action moves the order as MEF 123 says."""

from __future__ import annotations

from typing import Any

import pytest
from inventory.factories import access_eline
from inventory.mef import assert_mef_valid, assert_product

from fulfilment.conftest import FULFIL, INVENTORY, ORDERING, PlaceOrder


def post(api: Any, path: str, headers: dict[str, str], body: Any = None) -> Any:
    return api.post(f"{FULFIL}{path}", json=body, headers=headers)


def assert_order(document: Any) -> None:
    assert_mef_valid("productOrderManagement.api.yaml", "ProductOrder", document)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/productOrder/{order}/accept", {}),
        ("/productOrder/{order}/reject", {"reason": "no capacity"}),
        ("/productOrder/{order}/cancel", {"reason": "no capacity"}),
        ("/productOrder/{order}/item/1/state", {"state": "held"}),
        (
            "/productOrder/{order}/item/1/expectedCompletionDate",
            {"expectedCompletionDate": "2030-01-01T00:00:00Z", "note": "survey"},
        ),
        ("/productOrder/{order}/item/1/milestone", {"name": "surveyed"}),
        ("/productOrder/{order}/item/1/complete", {}),
        ("/productOrder/{order}/item/1/fail", {"reason": "no fibre"}),
        (
            "/productOrder/{order}/item/1/charge",
            {
                "responseDueDate": "2030-01-01T00:00:00Z",
                "chargeItem": [
                    {
                        "id": "1",
                        "activityType": "new",
                        "blocking": True,
                        "priceCategory": "construction",
                        "priceType": "nonRecurring",
                        "price": {"dutyFreeAmount": {"unit": "EUR", "value": 1200}},
                    }
                ],
            },
        ),
        ("/charge/any/withdraw", None),
        ("/cancelProductOrder/any/decision", {"accept": True}),
        ("/modifyProductOrderItemRequestedDeliveryDate/any/decision", {"accept": False, "reason": "no"}),
    ],
)
def test_buyers_are_refused(
    api: Any, place_order: PlaceOrder, buyer_headers: dict[str, str], path: str, body: Any
) -> None:
    order = place_order()
    response = post(api, path.format(order=order["id"]), buyer_headers, body)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "accessDenied"
    # Nothing moved.
    assert api.get(f"{ORDERING}/productOrder/{order['id']}", headers=buyer_headers).json()["state"] == "acknowledged"


def test_listing_is_seller_only(
    api: Any, place_order: PlaceOrder, buyer_headers: dict[str, str], seller_headers: dict[str, str]
) -> None:
    order = place_order()
    assert api.get(f"{FULFIL}/productOrder", headers=buyer_headers).status_code == 403
    assert api.get(f"{FULFIL}/productOrder").status_code == 401
    response = api.get(f"{FULFIL}/productOrder", params={"state": "acknowledged"}, headers=seller_headers)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    [summary] = response.json()
    assert summary["id"] == order["id"]
    assert summary["buyerId"] == "BUYER-1"
    assert summary["productOrderItem"] == [{"id": "1", "action": "add", "state": "acknowledged"}]
    assert api.get(f"{FULFIL}/productOrder", params={"state": "completed"}, headers=seller_headers).json() == []
    assert api.get(f"{FULFIL}/productOrder", params={"state": "nap"}, headers=seller_headers).status_code == 400


def test_walk_an_order_to_completion(
    api: Any, place_order: PlaceOrder, buyer_headers: dict[str, str], seller_headers: dict[str, str]
) -> None:
    order_id = place_order()["id"]
    accepted = post(
        api,
        f"/productOrder/{order_id}/accept",
        seller_headers,
        {"expectedCompletionDate": [{"productOrderItemId": "1", "expectedCompletionDate": "2030-02-01T00:00:00Z"}]},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "inProgress"
    assert accepted.json()["productOrderItem"][0]["expectedCompletionDate"] == "2030-02-01T00:00:00.000Z"
    revised = post(
        api,
        f"/productOrder/{order_id}/item/1/expectedCompletionDate",
        seller_headers,
        {"expectedCompletionDate": "2030-03-01T00:00:00Z", "note": "the landlord delays access"},
    )
    assert revised.status_code == 200, revised.text
    milestone = post(api, f"/productOrder/{order_id}/item/1/milestone", seller_headers, {"name": "siteSurveyDone"})
    assert milestone.json()["productOrderItem"][0]["milestone"][0]["name"] == "siteSurveyDone"
    held = post(api, f"/productOrder/{order_id}/item/1/state", seller_headers, {"state": "held", "reason": "wait"})
    assert held.json()["productOrderItem"][0]["state"] == "held"
    post(api, f"/productOrder/{order_id}/item/1/state", seller_headers, {"state": "inProgress"})
    completed = post(
        api,
        f"/productOrder/{order_id}/item/1/complete",
        seller_headers,
        {"product": {"startDate": "2030-02-20T00:00:00Z", "billingAccount": {"id": "BA-9"}}},
    )
    assert completed.status_code == 200, completed.text
    document = completed.json()
    assert_order(document)
    assert document["state"] == "completed"
    product_id = document["productOrderItem"][0]["product"]["id"]
    product = api.get(f"{INVENTORY}/product/{product_id}", headers=buyer_headers).json()
    assert_product(product)
    assert product["startDate"] == "2030-02-20T00:00:00.000Z"
    assert product["billingAccount"] == {"id": "BA-9"}
    # A finished order takes no more actions.
    again = post(api, f"/productOrder/{order_id}/item/1/complete", seller_headers, {})
    assert again.status_code == 409


def test_reject(api: Any, place_order: PlaceOrder, seller_headers: dict[str, str]) -> None:
    order_id = place_order()["id"]
    response = post(
        api,
        f"/productOrder/{order_id}/reject",
        seller_headers,
        {"reason": "out of footprint", "itemReason": [{"productOrderItemId": "1", "reason": "no site"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "rejected"
    assert response.json()["productOrderItem"][0]["state"] == "rejected"


def test_fail_item(api: Any, place_order: PlaceOrder, seller_headers: dict[str, str]) -> None:
    order_id = place_order()["id"]
    post(api, f"/productOrder/{order_id}/accept", seller_headers)
    response = post(api, f"/productOrder/{order_id}/item/1/fail", seller_headers, {"reason": "no fibre"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "failed"


def test_invalid_delivered_configuration_is_422_with_pointer(
    api: Any, place_order: PlaceOrder, buyer_headers: dict[str, str], seller_headers: dict[str, str]
) -> None:
    order_id = place_order()["id"]
    post(api, f"/productOrder/{order_id}/accept", seller_headers)
    bad = access_eline(ceVlanIdPreservation="SOMETIMES")
    response = post(
        api, f"/productOrder/{order_id}/item/1/complete", seller_headers, {"product": {"productConfiguration": bad}}
    )
    assert response.status_code == 422, response.text
    assert response.json() == [
        {
            "code": "invalidValue",
            "reason": response.json()[0]["reason"],
            "propertyPath": "/product/productConfiguration/ceVlanIdPreservation",
        }
    ]
    order = api.get(f"{ORDERING}/productOrder/{order_id}", headers=buyer_headers).json()
    assert order["productOrderItem"][0]["state"] == "inProgress"


def test_unknown_order_is_404(api: Any, seller_headers: dict[str, str]) -> None:
    assert post(api, "/productOrder/nope/accept", seller_headers).status_code == 404


def test_raise_and_withdraw_charge(api: Any, place_order: PlaceOrder, seller_headers: dict[str, str]) -> None:
    order_id = place_order()["id"]
    post(api, f"/productOrder/{order_id}/accept", seller_headers)
    raised = post(
        api,
        f"/productOrder/{order_id}/item/1/charge",
        seller_headers,
        {
            "responseDueDate": "2030-01-01T00:00:00Z",
            "chargeItem": [
                {
                    "id": "1",
                    "activityType": "new",
                    "blocking": True,
                    "priceCategory": "construction",
                    "priceType": "nonRecurring",
                    "price": {"dutyFreeAmount": {"unit": "EUR", "value": 1200}},
                }
            ],
        },
    )
    assert raised.status_code == 201, raised.text
    charge = raised.json()
    assert charge["state"] == "awaitingResponse"
    withdrawn = post(api, f"/charge/{charge['id']}/withdraw", seller_headers)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawnBySeller"
