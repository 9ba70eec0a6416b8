"""Our OpenAPI files in ``openapi/`` are wire-compatible with MEF's LSO Sonata Grace files.

For each pair, MEF's document is normalized (see ``wirecompat``), the documented fixes and additions below are
applied to it, and the result must equal our normalized document exactly. Anything else that differs (a path,
operationId, parameter, schema name, property, type, format, enum, required list, size limit, status code or
response header) fails with a list of the differences.

MEF's files are read from ``../shared/reference/sonata/`` next to the checkout; the comparison tests skip when they
are not there. The validity, security and wording tests need only our files.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from wirecompat import (
    JSON,
    Fix,
    Normalized,
    diff,
    error_response,
    expected_from_mef,
    load,
    normalize,
    operations_by_id,
)

REPO = Path(__file__).resolve().parents[2]
OURS = REPO / "openapi"
MEF = REPO.parent / "shared" / "reference" / "sonata"

# --- the deliberate differences, each with its reason (also listed in openapi/README.md) -------------------------


def _add_auth_errors(expected: Normalized, mef: dict[str, Any]) -> None:
    for op in expected["operations"].values():
        for status in ("401", "403"):
            op["responses"].setdefault(status, error_response(mef, f"Error{status}"))


def _add_413(expected: Normalized, mef: dict[str, Any]) -> None:
    for op in expected["operations"].values():
        if op["requestBody"] is not None:
            assert "413" not in op["responses"]
            op["responses"]["413"] = error_response(mef, "Error400")


def _paging_bounds(expected: Normalized, mef: dict[str, Any]) -> None:
    for op in expected["operations"].values():
        for key in ("query:offset", "query:limit"):
            if key in op["parameters"]:
                schema = op["parameters"][key]["schema"]
                schema["minimum"] = 0
                if schema.get("format") == "int32":
                    schema["maximum"] = 2**31 - 1  # int32 is a range connexion does not enforce by itself


def _subscription_input(expected: Normalized, mef: dict[str, Any]) -> None:
    ours = load(OURS / _OURS_BY_TITLE[mef["info"]["title"]])
    query_pattern = ours["components"]["schemas"]["EventSubscriptionInput"]["properties"]["query"]["pattern"]
    named = [s for s in _all_schemas(expected) if s.get("$name") == "EventSubscriptionInput"]
    for schema in [*named, expected["schemas"]["EventSubscriptionInput"]]:
        schema["properties"]["callback"]["format"] = "uri"
        schema["properties"]["query"]["pattern"] = query_pattern
    # The pattern must allow exactly the event types the listener API declares, in the documented form.
    assert query_pattern.startswith("^(eventType=(") and "(&eventType=" in query_pattern


def _all_schemas(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_all_schemas(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_all_schemas(value))
    return found


ADDITIONS = [
    Fix("auth errors", "every operation documents 401 and 403 (MEF already does everywhere)", _add_auth_errors),
    Fix("413", "operations with a request body document 413 with the Error400 body (code invalidBody)", _add_413),
    Fix(
        "paging bounds",
        "offset and limit are 0-based positions and counts (MEF 123 §7.1.2): minimum 0, int32 maximum spelled out",
        _paging_bounds,
    ),
]
_OURS_BY_TITLE = {
    "Product Ordering Management": "productOrderManagement.api.yaml",
    "Billing Management": "customerBillManagement.api.yaml",
}
CALLBACK_URI = Fix(
    "subscription input",
    "callback is a URL (format uri); query follows the documented eventType=a,b form over the API's event types",
    _subscription_input,
)

LISTENERS_WITH_ANY_MEDIA = (
    "cancelProductOrderStateChangeEvent",
    "chargeCreateEvent",
    "chargeStateChangeEvent",
    "chargeTimeoutEvent",
    "modifyProductOrderItemRequestedDeliveryDateStateChangeEvent",
)


def _json_listener_bodies(expected: Normalized, mef: dict[str, Any]) -> None:
    ops = operations_by_id(expected)
    for op_id in LISTENERS_WITH_ANY_MEDIA:
        content = ops[op_id]["requestBody"]["content"]
        assert list(content) == ["*/*"], (op_id, list(content))
        content[JSON] = content.pop("*/*")


SINGLE_OBJECT_RETRIEVES = ("retrieveCustomerBill", "retrieveCustomerBillItem")


def _single_object_bodies(expected: Normalized, mef: dict[str, Any]) -> None:
    ops = operations_by_id(expected)
    for op_id in SINGLE_OBJECT_RETRIEVES:
        content = ops[op_id]["responses"]["200"]["content"]
        assert content[JSON]["type"] == "array", op_id
        content[JSON] = content[JSON]["items"]


BARE_ERROR_RESPONSES = {
    "retrieveCustomerBill": ("404",),
    "retrieveCustomerBillItem": ("400", "401", "403", "404", "500"),
}


def _status_specific_errors(expected: Normalized, mef: dict[str, Any]) -> None:
    ops = operations_by_id(expected)
    bare = expected["schemas"]["Error"]
    for op_id, statuses in BARE_ERROR_RESPONSES.items():
        for status in statuses:
            response = ops[op_id]["responses"][status]
            assert response["content"][JSON] == bare, (op_id, status)
            ops[op_id]["responses"][status] = error_response(mef, f"Error{status}")


OPERATION_ID_RENAMES = {
    "listen to Customer Bill Create Event": "customerBillCreateEvent",
    "listen to customer Bill State Change Event": "customerBillStateChangeEvent",
}


def _rename_operation_ids(expected: Normalized, mef: dict[str, Any]) -> None:
    for op in expected["operations"].values():
        op["operationId"] = OPERATION_ID_RENAMES.get(op["operationId"], op["operationId"])


PAIRS: dict[str, tuple[str, list[Fix]]] = {
    "productOrderManagement.api.yaml": ("productOrderManagement.api.yaml", [*ADDITIONS, CALLBACK_URI]),
    "productInventoryManagement.api.yaml": ("productInventoryManagement.api.yaml", ADDITIONS),
    "customerBillManagement.api.yaml": (
        "billingManagement.api.yaml",
        [
            *ADDITIONS,
            CALLBACK_URI,
            Fix("single objects", "a retrieve-by-id returns one object, not an array (MEF 141)", _single_object_bodies),
            Fix(
                "status-specific errors",
                "bare Error replaced by Error400..Error500 like all other operations",
                _status_specific_errors,
            ),
        ],
    ),
    "productOrderNotification.api.yaml": (
        "productOrderNotification.api.yaml",
        [*ADDITIONS, Fix("JSON bodies", "five listener bodies were */*", _json_listener_bodies)],
    ),
    "customerBillNotification.api.yaml": (
        "billingNotification.api.yaml",
        [*ADDITIONS, Fix("operationIds", "MEF's contain spaces; ours are camelCase", _rename_operation_ids)],
    ),
}
SELLER_SIDE = (
    "productOrderManagement.api.yaml",
    "productInventoryManagement.api.yaml",
    "customerBillManagement.api.yaml",
)

needs_mef = pytest.mark.skipif(not MEF.is_dir(), reason=f"MEF reference files not found at {MEF}")


def _ours(name: str) -> dict[str, Any]:
    return load(OURS / name)


# --- wire compatibility --------------------------------------------------------------------------------------------


@needs_mef
@pytest.mark.parametrize("ours_name", sorted(PAIRS))
def test_wire_compatible_with_mef(ours_name: str) -> None:
    mef_name, fixes = PAIRS[ours_name]
    expected = expected_from_mef(load(MEF / mef_name), fixes)
    differences = diff(expected, normalize(_ours(ours_name)))
    assert not differences, f"{ours_name} differs from MEF's {mef_name}:\n" + "\n".join(differences[:100])


@needs_mef
def test_the_comparison_notices_a_wire_change() -> None:
    mef = load(MEF / "productOrderManagement.api.yaml")
    ours = _ours("productOrderManagement.api.yaml")
    expected = expected_from_mef(mef, ADDITIONS)

    changed = copy.deepcopy(ours)
    changed["components"]["schemas"]["MEFProductOrderStateType"]["enum"].remove("partial")
    changed["paths"]["/productOrder"]["get"]["responses"]["200"]["headers"].pop("X-Total-Count")
    changed["components"]["schemas"]["Error"]["properties"]["reason"]["maxLength"] = 256
    lines = "\n".join(diff(expected, normalize(changed)))

    assert "schemas.MEFProductOrderStateType.enum" in lines
    assert "GET /productOrder.responses.200.headers.X-Total-Count: missing in ours" in lines
    assert "properties.reason.maxLength: expected 255, ours 256" in lines


# --- properties of our files alone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ours_name", sorted(PAIRS))
def test_valid_openapi(ours_name: str) -> None:
    validate(_ours(ours_name))


@pytest.mark.parametrize("ours_name", sorted(PAIRS))
def test_one_tag_per_operation_and_json_bodies(ours_name: str) -> None:
    for path, item in _ours(ours_name)["paths"].items():
        for method, op in item.items():
            assert len(op["tags"]) == 1, (path, method)
            assert re.fullmatch(r"[a-z][A-Za-z0-9]*", op["operationId"]), op["operationId"]
            bodies = [op.get("requestBody", {}), *op["responses"].values()]
            for body in bodies:
                assert set(body.get("content", {})) <= {JSON}, (path, method)


@pytest.mark.parametrize("ours_name", sorted(PAIRS))
def test_security_on_seller_side_only(ours_name: str) -> None:
    spec = _ours(ours_name)
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if ours_name in SELLER_SIDE:
        assert spec["security"] == [{"bearerAuth": []}]
        assert schemes == {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": schemes["bearerAuth"]["description"]}
        }
    else:
        assert "security" not in spec
        assert not schemes
    for item in spec["paths"].values():
        for op in item.values():
            assert "security" not in op


def _prose(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                found.update(s for s in (" ".join(part.split()) for part in value.split("\n\n")) if len(s) >= 30)
            else:
                found |= _prose(value)
    elif isinstance(node, list):
        for value in node:
            found |= _prose(value)
    return found


@needs_mef
@pytest.mark.parametrize("ours_name", sorted(PAIRS))
def test_written_in_our_own_words(ours_name: str) -> None:
    ours_text = " ".join(" ".join((OURS / ours_name).read_text(encoding="utf-8").split()).split("\\"))
    ours_prose = " ".join(_prose(_ours(ours_name)))
    copied = [s for s in _prose(load(MEF / PAIRS[ours_name][0])) if s in ours_prose]
    assert not copied, copied[:5]
    for boilerplate in ("TM Forum", "Copyright", "MEF Forum and its contributors"):
        assert boilerplate not in ours_text
