"""The seller fulfilment extension spec is valid OpenAPI and routes every operation to a handler."""

from __future__ import annotations

import importlib

from openapi_spec_validator import validate

from sonata_dlt.api.specs import HTTP_METHODS, load_spec, snake_case

SPEC = "sellerFulfilment.api.yaml"


def test_spec_is_valid_openapi() -> None:
    validate(load_spec(SPEC))


def test_every_operation_has_a_handler_and_sonata_errors() -> None:
    spec = load_spec(SPEC)
    assert spec["servers"][0]["url"].endswith("/mefApi/sonata/sellerFulfilment/v1/")
    assert spec["security"] == [{"bearerAuth": []}]
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            module = importlib.import_module(f"sonata_dlt.api.sonata.fulfilment.{snake_case(operation['tags'][0])}")
            assert callable(getattr(module, snake_case(operation["operationId"]))), (path, method)
            assert {"401", "403", "500"} <= set(operation["responses"]), (path, method)
            if "requestBody" in operation:
                media = operation["requestBody"]["content"]
                assert list(media) == ["application/json;charset=utf-8"]
                unprocessable = operation["responses"]["422"]["$ref"]
                assert unprocessable == "#/components/responses/UnprocessableEntity"
    errors = spec["components"]["responses"]["UnprocessableEntity"]["content"]["application/json;charset=utf-8"]
    assert errors["schema"]["type"] == "array"
