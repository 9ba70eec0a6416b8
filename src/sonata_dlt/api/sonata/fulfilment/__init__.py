"""Handlers of sonata-dlt's seller fulfilment extension API (``openapi/sellerFulfilment.api.yaml``).

Seller tokens only: every handler refuses a buyer with 403 before doing anything else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sonata_dlt.api.context import current_party
from sonata_dlt.core.parties import Party
from sonata_dlt.errors import BadRequest
from sonata_dlt.sonata.auto_fulfilment import require_seller


def seller() -> Party:
    return require_seller(current_party())


def body_datetime(name: str, value: str) -> datetime:
    """An RFC 3339 date-time from the request body (connexion has checked the format; this makes it aware)."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 date-time, got {value!r}", code="invalidBody") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{name} must carry a time zone, got {value!r}", code="invalidBody")
    return moment.astimezone(UTC)
