"""JSON responses with the media type the Sonata specs document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from connexion.lifecycle import ConnexionResponse

JSON_UTF8 = "application/json;charset=utf-8"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Sonata money is a JSON number; int when whole keeps "100" rather than "100.0".
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        from sonata_dlt.storage.types import rfc3339

        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(body: Any) -> bytes:
    return json.dumps(body, default=_default, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        body=dumps(body),
        content_type=JSON_UTF8,
        headers=dict(headers or {}),
    )


def no_content() -> ConnexionResponse:
    return ConnexionResponse(status_code=204, body=b"", headers={})
