"""One JSON request as one party: the sandbox's OSS and agents speak to the server through ``call``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from sonata_dlt.sandbox.topology import Identity


class ApiError(Exception):
    """The server answered with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    identity: Identity,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    expect: tuple[int, ...] = (200, 201),
) -> Any:
    """One JSON request as ``identity``; raises ``ApiError`` on a status outside ``expect``."""
    clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
    async with http.request(method, url, headers=identity.headers, params=clean, json=json_body) as response:
        text = await response.text()
        if response.status not in expect:
            raise ApiError(method, url.split("/mefApi", 1)[-1], response.status, text)
        return json.loads(text) if text else None
