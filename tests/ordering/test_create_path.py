"""The create path's shortcuts keep what they replace: the 201 body is the document the GET serves and the leaf
fingerprints, and the JSON-only copy of the request body is a true deep copy."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from sqlmodel import select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.sonata.ordering.orders import json_copy
from sonata_dlt.storage.log import LogLeaf
from sonata_dlt.transparency.canonical import canonical_json
from tests.ordering.conftest import BASE, order_body


def test_the_201_body_is_the_canonical_document_the_leaf_fingerprints(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime
) -> None:
    created = client.post(f"{BASE}/productOrder", json=order_body(), headers=buyer_headers)
    assert created.status_code == 201
    assert created.headers["content-type"].startswith("application/json")
    fetched = client.get(f"{BASE}/productOrder/{created.json()['id']}", headers=buyer_headers).json()
    assert created.json() == fetched
    assert created.content == canonical_json(fetched)
    with runtime.db.read() as session:
        leaf = session.exec(select(LogLeaf).where(LogLeaf.resource_id == fetched["id"])).one()
    assert json.loads(leaf.record)["stateHash"] == hashlib.sha256(created.content).hexdigest()


def test_json_copy_is_a_deep_copy() -> None:
    body: dict[str, Any] = {"a": [{"b": 1.5, "c": None, "d": True}, "x"], "e": {"f": [1, 2]}, "g": (1, 2)}
    copied = json_copy(body)
    assert copied == copy.deepcopy(body)
    copied["a"][0]["b"] = 2
    copied["e"]["f"].append(3)
    assert body == {"a": [{"b": 1.5, "c": None, "d": True}, "x"], "e": {"f": [1, 2]}, "g": (1, 2)}
