"""Loading our OpenAPI specs for connexion, and resolving handlers.

The specs in ``openapi/`` are the contract and are served as written. Before connexion sees them, a loaded copy
is adapted in memory, because connexion 3 cannot route them as published:

- ``application/json;charset=utf-8`` media-type keys become ``application/json``. connexion strips the charset
  from the request's Content-Type but compares it with the literal key, so every request would get 415.
  Responses still carry ``application/json;charset=utf-8`` (see ``responses.py``).
- ``security`` is removed: authentication happens in our middleware for every path, with Sonata error bodies.
- Each operation gets ``x-openapi-router-controller``: the handler module named by its (single) tag, inside the
  API's package. ``productOrder`` -> ``sonata_dlt.api.sonata.ordering.product_order``; ``events subscription`` ->
  ``...events_subscription``. The function is the operationId in snake_case.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from connexion.resolver import Resolver
from connexion.spec import OpenAPISpecification

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
JSON_UTF8 = "application/json;charset=utf-8"


@dataclass(frozen=True)
class ApiMount:
    spec_file: str  # file name in openapi/
    package: str  # handler package under sonata_dlt.api


def spec_directory() -> Path:
    """openapi/ in a source checkout; the packaged copy in an installed wheel."""
    checkout = Path(__file__).resolve().parents[3] / "openapi"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("sonata_dlt") / "openapi"))


def snake_case(name: str) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", name.strip())
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return name.lower().strip("_")


@cache
def load_spec(spec_file: str) -> dict[str, Any]:
    with open(spec_directory() / spec_file, encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def base_path_of(spec: dict[str, Any]) -> str:
    url = str(spec["servers"][0]["url"])
    path = re.sub(r"^[a-z]+://[^/]+", "", url)
    return "/" + path.strip("/")


def path_methods(mounts: Iterable[ApiMount]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """For each path of the mounted specs, a pattern matching its URLs and the methods it offers."""
    table = []
    for mount in mounts:
        spec = load_spec(mount.spec_file)
        base = base_path_of(spec)
        for template, item in spec.get("paths", {}).items():
            pattern = re.escape(base + template).replace(r"\{", "{").replace(r"\}", "}")
            pattern = re.sub(r"\{[^}/]+\}", "[^/]+", pattern)
            methods = frozenset(method.upper() for method in HTTP_METHODS if method in item)
            table.append((re.compile(pattern + "/?$"), methods))
    return table


def _rewrite_media_types(node: Any) -> Any:
    if isinstance(node, dict):
        rewritten = {}
        for key, value in node.items():
            if key == "content" and isinstance(value, dict):
                value = {("application/json" if _is_json_like(k) else k): v for k, v in value.items()}
            rewritten[key] = _rewrite_media_types(value)
        return rewritten
    if isinstance(node, list):
        return [_rewrite_media_types(item) for item in node]
    return node


def _is_json_like(media_type: str) -> bool:
    base = media_type.split(";")[0].strip().lower()
    return base in ("application/json", "*/*")


def connexion_spec(mount: ApiMount) -> dict[str, Any]:
    spec: dict[str, Any] = _rewrite_media_types(copy.deepcopy(load_spec(mount.spec_file)))
    spec.pop("security", None)
    for path_item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            operation = path_item.get(method)
            if not operation:
                continue
            operation.pop("security", None)
            tags = operation.get("tags") or ["default"]
            operation["x-openapi-router-controller"] = f"sonata_dlt.api.{mount.package}.{snake_case(tags[0])}"
    return spec


def _validate_each_spec_once() -> None:
    """connexion re-validates a spec against the OpenAPI meta-schema every time an app mounts it (about 0.7 s per
    spec here). The same content needs validating once per process: remember the digests already validated, so
    tests and worker processes that build several apps pay once. A spec that fails is never remembered."""
    validate = OpenAPISpecification._validate_spec.__func__
    validated: set[bytes] = set()

    def validate_once(cls: type, spec: dict[str, Any]) -> None:
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).digest()
        if digest not in validated:
            validate(cls, spec)
            validated.add(digest)

    OpenAPISpecification._validate_spec = classmethod(validate_once)


_validate_each_spec_once()


class TagResolver(Resolver):  # type: ignore[misc]  # connexion ships no type information
    """Resolves ``<controller>.<operationId in snake_case>``."""

    def resolve_operation_id(self, operation: Any) -> str:
        return f"{operation.router_controller}.{snake_case(operation.operation_id)}"
