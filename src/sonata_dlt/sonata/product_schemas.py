"""Product-specific configuration ("dynamic binding", MEF 123 §5.4): ``productConfiguration`` is checked against
the JSON schema whose ``$id`` equals its ``@type``.

The registry is built once at start-up from a directory of schemas (``settings.product_schema_dir``). MEF's
``productSchema`` tree works as it is: draft-07 schemas in YAML, the entry points naming themselves with a URN
``$id`` and reaching shared definitions through *relative* ``$ref``s between files. A relative reference cannot be
resolved against a URN, so every file is registered under its own ``file:`` URI with its ``$id`` removed, and the
``$id`` only indexes the entry point; references then resolve from file to file exactly as the directory lays them
out. Keywords left empty in YAML (MEF's ``AccessElineOvcEndPoint`` has a bare ``properties:``, i.e. null, beside
its ``allOf``) are dropped on loading: a null there is no constraint, but it would make the validator crash.

Unknown ``@type`` values are refused with ``invalidValue`` at ``.../@type``, not ``referenceNotFound``: MEF 123
keeps ``referenceNotFound`` for references to resources (a product, a quote, an order item) that do not exist,
whereas ``@type`` is a discriminator value naming a product type this seller does not support, that is, a value the
seller does not accept. ``accept_unknown`` (settings ``accept_unknown_product_types``) lets them through unchecked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from sonata_dlt.core.runtime import Component, Runtime
from sonata_dlt.errors import ConfigurationError, Issue, Unprocessable

SCHEMA_SUFFIXES = (".yaml", ".yml", ".json")


def pointer_token(part: str | int) -> str:
    """One JSON Pointer reference token (RFC 6901 escaping)."""
    return str(part).replace("~", "~0").replace("/", "~1")


def join_pointer(base: str, parts: Any) -> str:
    return base + "".join("/" + pointer_token(part) for part in parts)


class ProductSchemaRegistry:
    """The product schemas this seller supports, indexed by ``$id``."""

    def __init__(self, entry_points: Mapping[str, str], registry: Registry[Any], *, accept_unknown: bool = False):
        self._entry_points = dict(entry_points)  # $id -> file URI of the schema that declared it
        self._registry = registry
        self.accept_unknown = accept_unknown
        self._validators: dict[str, Draft7Validator] = {}
        self._lock = threading.Lock()

    @classmethod
    def empty(cls, *, accept_unknown: bool = False) -> ProductSchemaRegistry:
        return cls({}, Registry(), accept_unknown=accept_unknown)

    @classmethod
    def from_directory(cls, directory: Path | None, *, accept_unknown: bool = False) -> ProductSchemaRegistry:
        """Scan ``directory`` recursively for ``*.yaml``, ``*.yml`` and ``*.json`` schemas."""
        if directory is None:
            return cls.empty(accept_unknown=accept_unknown)
        root = Path(directory)
        if not root.is_dir():
            raise ConfigurationError(f"product_schema_dir {root} is not a directory")
        entry_points: dict[str, str] = {}
        resources: list[tuple[str, Resource[Any]]] = []
        for path in sorted(_schema_files(root)):
            contents = _load(path)
            uri = path.resolve().as_uri()
            declared = contents.pop("$id", None)
            if isinstance(declared, str) and declared:
                if declared in entry_points:
                    raise ConfigurationError(f"product schema $id {declared} is declared twice (second: {path})")
                entry_points[declared] = uri
            resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT7)))
        registry: Registry[Any] = Registry().with_resources(resources)
        return cls(entry_points, registry, accept_unknown=accept_unknown)

    @property
    def types(self) -> list[str]:
        """The ``@type`` values (schema ``$id``s) this registry validates."""
        return sorted(self._entry_points)

    def knows(self, product_type: str) -> bool:
        return product_type in self._entry_points

    def validate(self, configuration: Mapping[str, Any], pointer: str) -> list[Issue]:
        """Problems of ``configuration`` (found at JSON Pointer ``pointer`` in the request body); empty when valid."""
        product_type = configuration.get("@type")
        if not isinstance(product_type, str) or not product_type:
            return [
                Issue(
                    "missingProperty", "productConfiguration must name its product schema in @type", f"{pointer}/@type"
                )
            ]
        if not self.knows(product_type):
            if self.accept_unknown:
                return []
            return [
                Issue(
                    "invalidValue",
                    f"product type {product_type!r} is not supported by this seller"[:255],
                    f"{pointer}/@type",
                )
            ]
        validator = self._validator(product_type)
        issues = [_issue(error, pointer) for error in _leaf_errors(validator.iter_errors(dict(configuration)))]
        return sorted(issues, key=lambda issue: (issue.property_path or "", issue.code, issue.reason))

    def require_valid(self, configuration: Mapping[str, Any], pointer: str) -> None:
        """Raise Unprocessable with every problem of ``configuration``; return None when it is valid."""
        issues = self.validate(configuration, pointer)
        if issues:
            raise Unprocessable(issues)

    def _validator(self, product_type: str) -> Draft7Validator:
        with self._lock:
            validator = self._validators.get(product_type)
            if validator is None:
                validator = Draft7Validator(
                    {"$ref": self._entry_points[product_type]},
                    registry=self._registry,
                    format_checker=Draft7Validator.FORMAT_CHECKER,
                )
                self._validators[product_type] = validator
            return validator


def _schema_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and path.suffix.lower() in SCHEMA_SUFFIXES:
            yield path


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        loaded = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read product schema {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"product schema {path} is not a JSON object")
    cleaned: dict[str, Any] = _drop_empty_keywords(loaded)
    return cleaned


# Keywords whose value must be an object, array or schema; a YAML null there means "not given".
STRUCTURAL_KEYWORDS = frozenset(
    {
        "properties",
        "definitions",
        "items",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "required",
        "enum",
        "additionalProperties",
        "patternProperties",
        "dependencies",
        "if",
        "then",
        "else",
        "contains",
    }
)


def _drop_empty_keywords(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _drop_empty_keywords(value)
            for key, value in node.items()
            if not (value is None and key in STRUCTURAL_KEYWORDS)
        }
    if isinstance(node, list):
        return [_drop_empty_keywords(item) for item in node]
    return node


def _leaf_errors(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    """anyOf/oneOf failures carry their reasons in ``context``; report the deepest ones, where they are."""
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            deepest = max(len(sub.absolute_path) for sub in error.context)
            if deepest > len(error.absolute_path):
                yield from (sub for sub in error.context if len(sub.absolute_path) == deepest)
                continue
        yield error


def _issue(error: ValidationError, pointer: str) -> Issue:
    path = join_pointer(pointer, error.absolute_path)
    if error.validator == "required":
        missing = _missing_property(error)
        return Issue("missingProperty", error.message[:255], join_pointer(path, [missing]) if missing else path)
    if error.validator == "format":
        return Issue("invalidFormat", error.message[:255], path)
    return Issue("invalidValue", error.message[:255], path)


def _missing_property(error: ValidationError) -> str | None:
    # jsonschema's message is "'name' is a required property"; the instance tells which one is absent.
    required = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    for name in required:
        if name not in instance and f"'{name}'" in error.message:
            return str(name)
    return None


PRODUCT_SCHEMAS = Component[ProductSchemaRegistry]("product schema registry")  # attached by startup.wiring


def registry_of(runtime: Runtime) -> ProductSchemaRegistry:
    """The registry the start-up wiring built; a refusing empty one if none was built."""
    return runtime.components.get(PRODUCT_SCHEMAS) or ProductSchemaRegistry.empty()
