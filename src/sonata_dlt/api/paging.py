"""Sonata paging (MEF 123 §7.1.2) and query helpers shared by list handlers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connexion import request

from sonata_dlt.api.context import runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.errors import BadRequest


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    throttled: bool  # the requested limit was cut to the server maximum


# An offset beyond any result count just gives an empty page; capping it keeps it inside SQL's 64-bit integers.
# (Customer Bill Management's offset has no int32 bound, so arbitrarily large values are valid requests.)
MAX_OFFSET = 2**62


def page_from(offset: int | None, limit: int | None, *, default_limit: int, max_limit: int) -> Page:
    offset = 0 if offset is None else min(offset, MAX_OFFSET)
    if offset < 0:
        raise BadRequest("offset must be 0 or more", code="invalidQuery")
    if limit is None:
        return Page(offset, default_limit, False)
    if limit < 0:
        raise BadRequest("limit must be 0 or more", code="invalidQuery")
    return Page(offset, min(limit, max_limit), limit > max_limit)


def request_page(offset: int | None, limit: int | None) -> Page:
    """The page a list request asks for, within the server's configured default and maximum."""
    settings = runtime().settings
    return page_from(offset, limit, default_limit=settings.page_limit_default, max_limit=settings.page_limit_max)


def list_response(items: Sequence[Mapping[str, Any]], total: int, page: Page) -> Any:
    headers = {
        "X-Total-Count": str(total),
        "X-Result-Count": str(len(items)),
        "X-Pagination-Throttled": "true" if page.throttled else "false",
    }
    return json_response(list(items), 200, headers)


def raw_query() -> Mapping[str, str]:
    """The query string as sent. connexion drops the dots of names like ``orderDate.gt``; this keeps them."""
    return {key: value for key, value in request.query_params.items()}


def parse_datetime(name: str, value: str) -> datetime:
    """An RFC 3339 date-time from a query parameter, or 400 invalidQuery."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 date-time, got {value!r}", code="invalidQuery") from None
    if "T" not in value.upper() or moment.tzinfo is None:
        raise BadRequest(f"{name} must be an RFC 3339 date-time with a time zone, got {value!r}", code="invalidQuery")
    return moment.astimezone(UTC)


def datetime_filters(query: Mapping[str, str], fields: Iterable[str]) -> dict[str, datetime]:
    """``<field>.gt`` / ``<field>.lt`` pairs present in the query, parsed."""
    found = {}
    for field in fields:
        for suffix in ("gt", "lt"):
            key = f"{field}.{suffix}"
            if key in query:
                found[key] = parse_datetime(key, query[key])
    return found
