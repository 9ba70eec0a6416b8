"""Check documents against MEF's own Grace specs (the wire contract schemathesis also checks)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml
from conftest import MEF_REFERENCE
from openapi_schema_validator import OAS30Validator


@cache
def _spec(file_name: str) -> dict[str, Any]:
    path = MEF_REFERENCE / file_name
    if not path.is_file():
        pytest.skip(f"MEF's {file_name} is not present next to the checkout")
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def assert_mef_valid(file_name: str, schema_name: str, document: Any) -> None:
    spec = _spec(file_name)
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    errors = sorted(OAS30Validator(schema).iter_errors(document), key=str)
    assert not errors, [f"{list(error.absolute_path)}: {error.message}" for error in errors]


def assert_product(document: Any) -> None:
    assert_mef_valid("productInventoryManagement.api.yaml", "MEFProduct", document)


def assert_product_find(document: Any) -> None:
    assert_mef_valid("productInventoryManagement.api.yaml", "MEFProduct_Find", document)
