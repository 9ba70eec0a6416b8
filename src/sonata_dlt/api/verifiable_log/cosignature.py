"""Tag "cosignature": a party endorses a checkpoint."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.verifiable_log.views import checkpoint_json
from sonata_dlt.verifiable_log import cosigning


def create_cosignature(body: dict[str, Any], buyerId: str | None = None, sellerId: str | None = None) -> Any:
    rt = runtime()
    party = current_party()
    bilateral = rt.parties.resolve(party, buyerId, sellerId)
    view = cosigning.cosign(
        rt.db,
        bilateral,
        party,
        checkpoint=body["checkpoint"],
        old_size=body["oldSize"],
        consistency_proof=body["consistencyProof"],
        cosignature=body["cosignature"],
    )
    return json_response(checkpoint_json(view), 201)
