"""The framework floor for bench_create_order.py: connexion on our Product Ordering spec, answering a canned 201.

Same spec (loaded and adapted by ``sonata_dlt.api.specs.connexion_spec``), same ``add_api`` options (strict
validation, request body validation), same uvicorn; no authentication, persistence, log or outbox. What the real
server costs beyond this is what sonata-dlt adds. Run: ``uvicorn floor_app:app --app-dir bench``.
"""

from __future__ import annotations

import json
from typing import Any

from connexion import AsyncApp
from connexion.lifecycle import ConnexionResponse
from connexion.resolver import Resolver

from sonata_dlt.api.specs import ApiMount, base_path_of, connexion_spec, load_spec

MOUNT = ApiMount("productOrderManagement.api.yaml", "sonata.ordering")
CANNED = json.dumps(
    {
        "id": "00000000-0000-4000-8000-000000000000",
        "href": "/mefApi/sonata/productOrderingManagement/v10/productOrder/00000000-0000-4000-8000-000000000000",
        "orderDate": "2030-01-01T00:00:00.000Z",
        "state": "acknowledged",
        "relatedContactInformation": [
            {"role": "productOrderContact", "name": "A", "emailAddress": "a@b.example", "number": "1"}
        ],
        "productOrderItem": [{"id": "item-1", "action": "add", "state": "acknowledged"}],
    }
).encode()


async def create_product_order(*_args: Any, **_kwargs: Any) -> ConnexionResponse:
    return ConnexionResponse(status_code=201, body=CANNED, content_type="application/json;charset=utf-8")


async def not_implemented(*_args: Any, **_kwargs: Any) -> ConnexionResponse:
    body = b'{"code":"notImplemented","reason":"the floor app only creates orders"}'
    return ConnexionResponse(status_code=501, body=body, content_type="application/json;charset=utf-8")


class FloorResolver(Resolver):
    def __init__(self) -> None:
        super().__init__(
            function_resolver=lambda name: create_product_order if name == "createProductOrder" else not_implemented
        )

    def resolve_operation_id(self, operation: Any) -> str:
        return str(operation.operation_id)


def create() -> AsyncApp:
    spec = connexion_spec(MOUNT)
    app = AsyncApp(__name__)
    app.add_api(
        spec,
        base_path=base_path_of(load_spec(MOUNT.spec_file)),
        resolver=FloorResolver(),
        strict_validation=True,
        validate_responses=False,
    )
    return app


app = create()
