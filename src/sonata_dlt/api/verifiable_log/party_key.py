"""Tag "partyKey": the host's and the parties' public keys; a party registers its own."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import parse_datetime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.verifiable_log.views import party_key_json
from sonata_dlt.verifiable_log import keyring


def list_party_key(buyerId: str | None = None, sellerId: str | None = None) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    keys = keyring.bilateral_keys(rt.db, rt.components[keyring.KEYRING], bilateral)
    return json_response([party_key_json(key) for key in keys])


def create_party_key(body: dict[str, Any], buyerId: str | None = None, sellerId: str | None = None) -> Any:
    rt = runtime()
    party = current_party()
    rt.parties.resolve(party, buyerId, sellerId)  # the caller must belong to a bilateral here
    valid_from = parse_datetime("validFrom", body["validFrom"]) if "validFrom" in body else None
    valid_until = parse_datetime("validUntil", body["validUntil"]) if "validUntil" in body else None
    key = keyring.register(rt.db, party, body["vkey"], valid_from, valid_until)
    return json_response(party_key_json(key), 201)
