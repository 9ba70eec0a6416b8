"""Compare two OpenAPI 3.0 documents on what travels over the wire.

``normalize(spec)`` reduces a document to the parts a client or a response validator can observe: the base path,
every operation (operationId, tags, parameters, request body, responses with their headers) and every component
schema. ``$ref`` is resolved, ``allOf`` is flattened into one object, and prose (description, summary, title,
examples, ``x-`` extensions) is dropped, so two specs written in different words and laid out differently compare
equal when they accept and produce the same messages.

``diff(expected, actual)`` lists the differences as readable lines (``where: expected X, ours Y``).

``Fix`` describes one documented, deliberate difference between MEF's file and ours. ``expected_from_mef``
applies the fixes to MEF's normalized document; the test then requires ours to equal the result exactly, so any
difference that is not one of the listed fixes fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

JSON = "application/json;charset=utf-8"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
# Schema keywords that change which messages are valid. Anything else is prose or tooling metadata.
SCHEMA_KEYWORDS = (
    "type",
    "format",
    "enum",
    "default",
    "nullable",
    "readOnly",
    "writeOnly",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "additionalProperties",
    "oneOf",
    "anyOf",
    "not",
)

Normalized = dict[str, Any]


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


class _Normalizer:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def resolve(self, ref: str) -> Any:
        assert ref.startswith("#/"), f"only local $ref is supported: {ref}"
        node: Any = self.spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def deref(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = self.resolve(node["$ref"])
        return node

    def schema(self, node: Any, stack: tuple[str, ...] = ()) -> Normalized:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in stack:
                return {"$recursive": name}
            result = self.schema(self.resolve(node["$ref"]), (*stack, name))
            return {"$name": name, **result}
        out: Normalized = {}
        for part in node.get("allOf", []):
            self._merge(out, self.schema(part, stack))
        own: Normalized = {}
        for key in SCHEMA_KEYWORDS:
            if key not in node:
                continue
            value = node[key]
            if key == "enum":
                own[key] = sorted(value, key=repr)
            elif key in ("oneOf", "anyOf"):
                own[key] = [self.schema(v, stack) for v in value]
            elif key in ("not", "additionalProperties") and isinstance(value, dict):
                own[key] = self.schema(value, stack)
            else:
                own[key] = copy.deepcopy(value)
        if "required" in node:
            own["required"] = sorted(node["required"])
        if "properties" in node:
            own["properties"] = {name: self.schema(sub, stack) for name, sub in node["properties"].items()}
        if "items" in node:
            own["items"] = self.schema(node["items"], stack)
        if "discriminator" in node:
            discriminator = node["discriminator"]
            own["discriminator"] = {
                "propertyName": discriminator["propertyName"],
                "mapping": {k: v.rsplit("/", 1)[-1] for k, v in discriminator.get("mapping", {}).items()},
            }
        self._merge(out, own)
        return out

    @staticmethod
    def _merge(into: Normalized, part: Normalized) -> None:
        part = dict(part)
        name = part.pop("$name", None)
        if name is not None:
            into.setdefault("$extends", []).append(name)
        for key, value in part.items():
            if key == "properties":
                into.setdefault("properties", {}).update(value)
            elif key == "required":
                into["required"] = sorted(set(into.get("required", [])) | set(value))
            elif key == "$extends":
                into.setdefault("$extends", []).extend(value)
            else:
                into[key] = value

    def content(self, content: dict[str, Any]) -> Normalized:
        return {media: self.schema(body["schema"]) if "schema" in body else None for media, body in content.items()}

    def parameter(self, node: Any) -> tuple[str, Normalized]:
        node = self.deref(node)
        key = f"{node['in']}:{node['name']}"
        return key, {
            "required": bool(node.get("required", False)),
            "schema": self.schema(node["schema"]) if "schema" in node else None,
            "style": node.get("style"),
            "explode": node.get("explode"),
        }

    def operation(self, path_item: dict[str, Any], op: dict[str, Any]) -> Normalized:
        parameters = dict(self.parameter(p) for p in path_item.get("parameters", []))
        parameters.update(self.parameter(p) for p in op.get("parameters", []))
        body = self.deref(op["requestBody"]) if "requestBody" in op else None
        responses: Normalized = {}
        for status, response in op["responses"].items():
            response = self.deref(response)
            headers = {
                name: {
                    "required": bool(self.deref(h).get("required", False)),
                    "schema": self.schema(self.deref(h)["schema"]),
                }
                for name, h in response.get("headers", {}).items()
            }
            responses[str(status)] = {"content": self.content(response.get("content", {})), "headers": headers}
        return {
            "operationId": op.get("operationId"),
            "tags": list(op.get("tags", [])),
            "deprecated": bool(op.get("deprecated", False)),
            "parameters": parameters,
            "requestBody": None
            if body is None
            else {
                "required": bool(body.get("required", False)),
                "content": self.content(body["content"]),
            },
            "responses": responses,
        }


def base_path(spec: dict[str, Any]) -> str:
    url = spec["servers"][0]["url"]
    for name, variable in spec["servers"][0].get("variables", {}).items():
        url = url.replace("{" + name + "}", variable["default"])
    return urlparse(url).path


def normalize(spec: dict[str, Any]) -> Normalized:
    normalizer = _Normalizer(spec)
    operations = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                operations[f"{method.upper()} {path}"] = normalizer.operation(item, item[method])
    schemas = {
        name: normalizer.schema({"$ref": f"#/components/schemas/{name}"})
        for name in spec.get("components", {}).get("schemas", {})
    }
    return {"basePath": base_path(spec), "operations": operations, "schemas": schemas}


def component_schema(spec: dict[str, Any], name: str) -> Normalized:
    return _Normalizer(spec).schema({"$ref": f"#/components/schemas/{name}"})


def diff(expected: Any, actual: Any, where: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in expected.keys() | actual.keys():
            here = f"{where}.{key}" if where else str(key)
            if key not in actual:
                lines.append(f"{here}: missing in ours (MEF: {_short(expected[key])})")
            elif key not in expected:
                lines.append(f"{here}: only in ours ({_short(actual[key])})")
            else:
                lines.extend(diff(expected[key], actual[key], here))
        return sorted(lines)
    if expected != actual:
        return [f"{where}: expected {_short(expected)}, ours {_short(actual)}"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class Fix:
    """One deliberate, documented difference from MEF's file; ``apply`` edits MEF's normalized document."""

    name: str
    reason: str
    apply: Callable[[Normalized, dict[str, Any]], None]


def expected_from_mef(mef: dict[str, Any], fixes: list[Fix]) -> Normalized:
    expected = normalize(mef)
    for fix in fixes:
        fix.apply(expected, mef)
    return expected


def operations_by_id(normalized: Normalized) -> dict[str, Normalized]:
    return {op["operationId"]: op for op in normalized["operations"].values()}


def error_response(mef: dict[str, Any], schema_name: str) -> Normalized:
    return {"content": {JSON: component_schema(mef, schema_name)}, "headers": {}}
