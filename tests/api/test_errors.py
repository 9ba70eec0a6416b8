"""Every error is a Sonata Error body with the right status, whatever layer it comes from."""

from __future__ import annotations

from typing import Any

ORDERS = "/mefApi/sonata/productOrderingManagement/v10/productOrder"


def test_no_token_is_401_missing_credentials(client: Any) -> None:
    response = client.get(ORDERS)
    assert response.status_code == 401
    assert response.json()["code"] == "missingCredentials"


def test_bad_token_is_401_invalid_credentials(client: Any) -> None:
    response = client.get(ORDERS, headers={"Authorization": "Bearer not-a-token-of-this-server"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalidCredentials"


def test_unknown_path_is_404_not_found(client: Any, buyer_headers: dict[str, str]) -> None:
    response = client.get("/mefApi/sonata/productOrderingManagement/v10/nothingHere", headers=buyer_headers)
    assert response.status_code == 404
    assert response.json()["code"] == "notFound"


def test_method_not_offered_is_405_with_allow(client: Any, buyer_headers: dict[str, str]) -> None:
    response = client.put(ORDERS, json={}, headers=buyer_headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert response.json()["code"] == "methodNotAllowed"


def test_body_that_is_not_utf8_is_400_invalid_body(client: Any, buyer_headers: dict[str, str]) -> None:
    headers = {**buyer_headers, "Content-Type": "application/json;charset=utf-8"}
    response = client.post(ORDERS, content=b"\xa6\x8f", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalidBody"
    assert client.get(ORDERS, headers=buyer_headers).json() == []


def test_malformed_query_date_is_invalid_query(client: Any, buyer_headers: dict[str, str]) -> None:
    response = client.get(f"{ORDERS}?orderDate.gt=notadate", headers=buyer_headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalidQuery"


def test_negative_offset_is_invalid_query(client: Any, buyer_headers: dict[str, str]) -> None:
    response = client.get(f"{ORDERS}?offset=-1", headers=buyer_headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalidQuery"


def test_responses_carry_the_documented_media_type(client: Any, buyer_headers: dict[str, str]) -> None:
    response = client.get(ORDERS, headers=buyer_headers)
    assert response.headers["content-type"] == "application/json;charset=utf-8"


def test_huge_offset_is_an_empty_page_not_a_server_error(client: Any, buyer_headers: dict[str, str]) -> None:
    # Customer Bill Management declares offset without int32: any size is a valid request.
    bills = "/mefApi/sonata/customerBillManagement/v2/customerBill"
    response = client.get(f"{bills}?offset=3493403004192408113483289198592", headers=buyer_headers)
    assert response.status_code == 200
    assert response.json() == []


def test_offset_beyond_int32_is_invalid_where_the_spec_says_int32(client: Any, buyer_headers: dict[str, str]) -> None:
    response = client.get(f"{ORDERS}?offset=2147483648", headers=buyer_headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalidQuery"
