"""Our own end-to-end checks with httpx, chosen by what a spec offers. Each returns the failures it found."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

ERROR_401_CODES = ("missingCredentials", "invalidCredentials")


def sample_order(external_id: str | None = None) -> dict[str, Any]:
    """A realistic Product Order (MEF 123): one Access E-Line OVC item to add, with contacts and a term."""
    return {
        "externalId": external_id or f"PO-{uuid.uuid4().hex[:8]}",
        "projectId": "conformance",
        "relatedContactInformation": [
            {
                "role": "productOrderContact",
                "name": "Alex Buyer",
                "emailAddress": "alex@buyer.example",
                "number": "+1-555-0100",
                "organization": "Buyer Co",
            }
        ],
        "productOrderItem": [
            {
                "id": "item-1",
                "action": "add",
                "requestedCompletionDate": "2030-01-15T00:00:00.000Z",
                "requestedItemTerm": {
                    "name": "36 months",
                    "duration": {"amount": 36, "units": "calendarMonths"},
                    "endOfTermAction": "roll",
                },
                "product": {
                    "productOffering": {"id": "ACCESS-ELINE-OVC"},
                    "productConfiguration": {"@type": "urn:mef:lso:spec:sonata:access-eline-ovc:v5.0.0:all"},
                },
                "billingAccount": {"id": "BA-1"},
                "endCustomerName": "End Customer Ltd",
            }
        ],
    }


@dataclass
class ScenarioResult:
    spec: str
    name: str
    checks_run: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def check(self, ok: bool, what: str, response: httpx.Response | None = None) -> bool:
        self.checks_run += 1
        if not ok:
            detail = ""
            if response is not None:
                detail = (
                    f" -> {response.request.method} {response.request.url} {response.status_code} {response.text[:300]}"
                )
            self.failures[what] = what + detail
        return ok


def _is_error_body(body: Any, codes: tuple[str, ...] | None = None) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("reason"), str)
        and isinstance(body.get("code"), str)
        and (codes is None or body["code"] in codes)
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _list_paths(spec: dict[str, Any]) -> list[str]:
    return [path for path, item in spec.get("paths", {}).items() if "get" in item and "{" not in path]


def bad_token(client: httpx.Client, spec_name: str, spec: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult(spec_name, "bad token -> 401 Error")
    for path in _list_paths(spec)[:1]:
        for headers in ({"Authorization": "Bearer not-a-valid-token-at-all"}, {"Authorization": ""}):
            response = client.get(path, headers=headers)
            result.check(response.status_code == 401, f"GET {path} with a bad token answers 401", response)
            result.check(_is_error_body(_json(response), ERROR_401_CODES), "the 401 body is an Error401", response)
    return result


def unknown_ids(client: httpx.Client, spec_name: str, spec: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult(spec_name, "unknown id -> 404 Error")
    for path, item in spec.get("paths", {}).items():
        if "get" in item and path.count("{") == 1 and path.endswith("}"):
            concrete = path[: path.index("{")] + f"no-such-{uuid.uuid4().hex[:8]}"
            response = client.get(concrete)
            result.check(response.status_code == 404, f"GET {path} with an unknown id answers 404", response)
            result.check(_is_error_body(_json(response)), f"GET {path} 404 body is an Error", response)
    return result


def paging_headers(client: httpx.Client, spec_name: str, spec: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult(spec_name, "lists carry paging headers")
    for path in _list_paths(spec):
        if path == "/hub":
            continue
        response = client.get(path, params={"offset": 0, "limit": 1})
        if not result.check(response.status_code == 200, f"GET {path} answers 200", response):
            continue
        body = _json(response)
        result.check(isinstance(body, list) and len(body) <= 1, f"GET {path} honours limit=1", response)
        result.check(
            "X-Total-Count" in response.headers or "X-Pagination-Throttled" in response.headers,
            f"GET {path} shows whether more results exist (R107)",
            response,
        )
        if "X-Result-Count" in response.headers and isinstance(body, list):
            result.check(int(response.headers["X-Result-Count"]) == len(body), f"GET {path} X-Result-Count", response)
    return result


def order_round_trip(client: httpx.Client, spec_name: str, seller: httpx.Client | None) -> ScenarioResult:
    result = ScenarioResult(spec_name, "create order -> retrieve -> list")
    order = sample_order()
    created = client.post("/productOrder", json=order)
    if not result.check(created.status_code == 201, "POST /productOrder answers 201", created):
        return result
    body = _json(created) or {}
    order_id = body.get("id")
    result.check(isinstance(order_id, str) and bool(order_id), "the created order has an id", created)
    result.check(body.get("externalId") == order["externalId"], "the created order keeps externalId", created)
    result.check(isinstance(body.get("state"), str), "the created order has a state", created)
    fetched = client.get(f"/productOrder/{order_id}")
    result.check(fetched.status_code == 200 and (_json(fetched) or {}).get("id") == order_id, "GET by id", fetched)
    listed = client.get("/productOrder", params={"externalId": order["externalId"]})
    ids = [item.get("id") for item in (_json(listed) or []) if isinstance(item, dict)]
    result.check(listed.status_code == 200 and order_id in ids, "the list finds the order by externalId", listed)
    result.check(listed.headers.get("X-Total-Count") == "1", "X-Total-Count counts the match", listed)
    if seller is not None:
        seen = seller.get(f"/productOrder/{order_id}")
        result.check(seen.status_code == 200, "the seller of the bilateral sees the order", seen)
    return result


def invalid_order(client: httpx.Client, spec_name: str) -> ScenarioResult:
    result = ScenarioResult(spec_name, "invalid order -> 422 array")
    order = sample_order()
    order["productOrderItem"].append(dict(order["productOrderItem"][0]))  # duplicate item id: a business rule
    response = client.post("/productOrder", json=order)
    result.check(response.status_code == 422, "an order with a duplicated item id answers 422", response)
    body = _json(response)
    result.check(isinstance(body, list) and len(body) >= 1, "the 422 body is an array", response)
    if isinstance(body, list) and body:
        result.check(all(_is_error_body(item) for item in body), "each 422 item is an Error422", response)
        result.check(
            all(isinstance(item.get("propertyPath"), str) for item in body),
            "each 422 item has a propertyPath",
            response,
        )
    return result


def hub_round_trip(client: httpx.Client, spec_name: str) -> ScenarioResult:
    result = ScenarioResult(spec_name, "hub register -> retrieve -> unregister")
    registered = client.post("/hub", json={"callback": "http://127.0.0.1:9/listener", "query": ""})
    if not result.check(registered.status_code == 201, "POST /hub answers 201", registered):
        return result
    body = _json(registered) or {}
    hub_id = body.get("id")
    result.check(body.get("callback") == "http://127.0.0.1:9/listener", "the subscription echoes callback", registered)
    fetched = client.get(f"/hub/{hub_id}")
    result.check(fetched.status_code == 200 and (_json(fetched) or {}).get("id") == hub_id, "GET /hub/{id}", fetched)
    deleted = client.delete(f"/hub/{hub_id}")
    result.check(deleted.status_code == 204, "DELETE /hub/{id} answers 204", deleted)
    gone = client.get(f"/hub/{hub_id}")
    result.check(gone.status_code == 404 and _is_error_body(_json(gone)), "the deleted subscription is 404", gone)
    return result


def run(
    api_url: str, token: str, seller_token: str | None, spec_name: str, spec: dict[str, Any]
) -> list[ScenarioResult]:
    def client_for(bearer: str) -> httpx.Client:
        return httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=30)

    paths = spec.get("paths", {})
    with client_for(token) as client:
        seller = client_for(seller_token) if seller_token else None
        try:
            scenarios: list[Callable[[], ScenarioResult]] = [
                lambda: bad_token(client, spec_name, spec),
                lambda: unknown_ids(client, spec_name, spec),
            ]
            if "post" in paths.get("/productOrder", {}):
                scenarios.append(lambda: order_round_trip(client, spec_name, seller))
                scenarios.append(lambda: invalid_order(client, spec_name))
            scenarios.append(lambda: paging_headers(client, spec_name, spec))
            if "post" in paths.get("/hub", {}):
                scenarios.append(lambda: hub_round_trip(client, spec_name))
            return [scenario() for scenario in scenarios]
        finally:
            if seller is not None:
                seller.close()
