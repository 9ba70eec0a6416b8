"""ASGI middleware: request ids and access logs (outermost), authentication and body limits (inside the
exception handling, so their errors become Sonata Error bodies)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sonata_dlt.api import context
from sonata_dlt.errors import PayloadTooLarge
from sonata_dlt.logs import party_var, request_id_var

access_log = logging.getLogger("sonata_dlt.access")

PUBLIC_PATHS = ("/healthz",)
JSON_TYPES = ("application/json", "")  # an absent Content-Type is treated as JSON for the limit


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A correlation id, not a secret: 64 random bits from the process's generator, without the system call
        # that os.urandom (uuid4) makes on every request.
        request_id = _header(scope, b"x-request-id") or f"{random.getrandbits(64):016x}"
        request_id_var.set(request_id)
        started = time.perf_counter()
        status: dict[str, int] = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


class AuthAndLimitsMiddleware:
    def __init__(self, app: ASGIApp, **_options: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or scope["path"].startswith("/console/static/"):
            await self.app(scope, receive, send)
            return
        runtime = context.runtime()
        party = runtime.parties.authenticate(_header(scope, b"authorization"))
        context.party_var.set(party)
        party_var.set(party.id)

        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        limit = runtime.settings.max_body_bytes if content_type in JSON_TYPES else runtime.settings.max_upload_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
        await self.app(scope, _counting_receive(receive, limit), send)


def _counting_receive(receive: Receive, limit: int) -> Callable[[], Any]:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
        return message

    return wrapped
