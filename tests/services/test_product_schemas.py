"""The product schema registry validates productConfiguration against MEF's product schemas, found by @type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import PRODUCT_SCHEMAS
from inventory.factories import (
    ACCESS_ELINE,
    INTERNET_ACCESS,
    OPERATOR_UNI,
    access_eline,
    internet_access,
    operator_uni,
)

from sonata_dlt.errors import ConfigurationError, Unprocessable
from sonata_dlt.settings import Settings
from sonata_dlt.sonata.product_schemas import PRODUCT_SCHEMAS as SCHEMAS_KEY
from sonata_dlt.sonata.product_schemas import ProductSchemaRegistry, registry_of
from sonata_dlt.startup.wiring import start_runtime

POINTER = "/productOrderItem/0/product/productConfiguration"


@pytest.fixture(scope="module")
def registry() -> ProductSchemaRegistry:
    if not PRODUCT_SCHEMAS.is_dir():
        pytest.skip("MEF product schemas not present next to the checkout")
    return ProductSchemaRegistry.from_directory(PRODUCT_SCHEMAS)


def paths(issues: list[Any]) -> list[tuple[str, str | None]]:
    return [(issue.code, issue.property_path) for issue in issues]


def test_the_mef_tree_is_indexed_by_id(registry: ProductSchemaRegistry) -> None:
    assert {ACCESS_ELINE, OPERATOR_UNI, INTERNET_ACCESS} <= set(registry.types)


@pytest.mark.parametrize(
    "configuration", [access_eline(), operator_uni(), internet_access()], ids=["ovc", "uni", "bia"]
)
def test_realistic_configurations_pass(registry: ProductSchemaRegistry, configuration: dict[str, Any]) -> None:
    assert registry.validate(configuration, POINTER) == []


def test_missing_required_attribute(registry: ProductSchemaRegistry) -> None:
    configuration = access_eline()
    del configuration["enniEp"]
    assert paths(registry.validate(configuration, POINTER)) == [("missingProperty", f"{POINTER}/enniEp")]


def test_enum_violation_in_a_referenced_file(registry: ProductSchemaRegistry) -> None:
    # ceVlanIdPreservation is defined in accessElineOvcCommon.yaml, reached through a relative $ref.
    issues = registry.validate(access_eline(ceVlanIdPreservation="KEEP"), POINTER)
    assert paths(issues) == [("invalidValue", f"{POINTER}/ceVlanIdPreservation")]


def test_minimum_violation(registry: ProductSchemaRegistry) -> None:
    issues = registry.validate(access_eline(maximumFrameSize=1500), POINTER)
    assert paths(issues) == [("invalidValue", f"{POINTER}/maximumFrameSize")]


def test_type_violation_deep_in_an_array(registry: ProductSchemaRegistry) -> None:
    configuration = operator_uni()
    configuration["listOfPhysicalLinks"][0]["physicalLink"] = "1000BASE_NOPE"
    issues = registry.validate(configuration, POINTER)
    assert paths(issues) == [("invalidValue", f"{POINTER}/listOfPhysicalLinks/0/physicalLink")]


def test_end_point_content_is_checked(registry: ProductSchemaRegistry) -> None:
    # MEF's AccessElineOvcEndPoint has a null ``properties`` beside its allOf; the allOf must still apply.
    configuration = access_eline()
    configuration["uniEp"]["ovcEndPointMap"] = {"mapType": "FORM_U", "ovcEndPointMapFormU": [5000]}
    issues = registry.validate(configuration, POINTER)
    assert ("invalidValue", f"{POINTER}/uniEp/ovcEndPointMap/ovcEndPointMapFormU/0") in paths(issues)


def test_format_violation(registry: ProductSchemaRegistry) -> None:
    configuration = internet_access()
    link = configuration["ipUniAccessLink"]
    link["ipv4ConnectionAddressing"][0]["ipv4PrimarySubnet"]["subscriberIpv4Address"] = ["203.0.113.999"]
    issues = registry.validate(configuration, POINTER)
    expected = f"{POINTER}/ipUniAccessLink/ipv4ConnectionAddressing/0/ipv4PrimarySubnet/subscriberIpv4Address/0"
    assert paths(issues) == [("invalidFormat", expected)]


def test_every_problem_is_reported(registry: ProductSchemaRegistry) -> None:
    configuration = internet_access()
    del configuration["ipvc"]
    configuration["ipUniAccessLink"]["mtu"] = 100
    assert paths(registry.validate(configuration, POINTER)) == [
        ("invalidValue", f"{POINTER}/ipUniAccessLink/mtu"),
        ("missingProperty", f"{POINTER}/ipvc"),
    ]


def test_unknown_type_is_refused_unless_accepted(registry: ProductSchemaRegistry) -> None:
    configuration = {"@type": "urn:example:not-a-product:v1", "speed": 10}
    assert paths(registry.validate(configuration, POINTER)) == [("invalidValue", f"{POINTER}/@type")]
    accepting = ProductSchemaRegistry.from_directory(PRODUCT_SCHEMAS, accept_unknown=True)
    assert accepting.validate(configuration, POINTER) == []
    # Known types are still checked when unknown ones are accepted.
    assert accepting.validate(access_eline(maximumFrameSize=1), POINTER) != []


def test_missing_type(registry: ProductSchemaRegistry) -> None:
    assert paths(registry.validate({"speed": 10}, POINTER)) == [("missingProperty", f"{POINTER}/@type")]


def test_require_valid_raises_unprocessable(registry: ProductSchemaRegistry) -> None:
    with pytest.raises(Unprocessable) as raised:
        registry.require_valid(access_eline(maximumFrameSize=1), POINTER)
    assert raised.value.issues[0].property_path == f"{POINTER}/maximumFrameSize"
    registry.require_valid(access_eline(), POINTER)


def test_empty_registry(tmp_path: Path) -> None:
    assert ProductSchemaRegistry.from_directory(None).validate({"@type": ACCESS_ELINE}, "") != []
    assert ProductSchemaRegistry.from_directory(None, accept_unknown=True).validate({"@type": ACCESS_ELINE}, "") == []
    assert ProductSchemaRegistry.from_directory(tmp_path).types == []


def test_json_schemas_and_pointer_escaping(tmp_path: Path) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "urn:example:widget:v1",
        "type": "object",
        "properties": {"a/b": {"$ref": "parts/size.json"}},
    }
    (tmp_path / "parts").mkdir()
    (tmp_path / "widget.json").write_text(json.dumps(schema))
    (tmp_path / "parts" / "size.json").write_text(json.dumps({"type": "integer", "maximum": 10}))
    registry = ProductSchemaRegistry.from_directory(tmp_path)
    assert registry.types == ["urn:example:widget:v1"]
    issues = registry.validate({"@type": "urn:example:widget:v1", "a/b": 11}, "/pc")
    assert paths(issues) == [("invalidValue", "/pc/a~1b")]


def test_duplicate_ids_are_a_configuration_error(tmp_path: Path) -> None:
    for name in ("one.yaml", "two.yaml"):
        (tmp_path / name).write_text('"$id": urn:example:same\ntype: object\n')
    with pytest.raises(ConfigurationError, match="declared twice"):
        ProductSchemaRegistry.from_directory(tmp_path)


def test_unreadable_schema_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("type: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"broken\.yaml"):
        ProductSchemaRegistry.from_directory(tmp_path)


def test_runtime_builds_the_registry(make_settings: Any) -> None:

    settings: Settings = make_settings()
    runtime = start_runtime(settings)
    try:
        registry = registry_of(runtime)
        assert runtime.components[SCHEMAS_KEY] is registry
        assert ACCESS_ELINE in registry.types
        assert not registry.accept_unknown
    finally:
        runtime.close()
