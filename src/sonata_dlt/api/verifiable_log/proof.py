"""Tag "proof": inclusion and consistency proofs against checkpoints."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.verifiable_log.views import consistency_json, inclusion_json
from sonata_dlt.verifiable_log import proofs as log_proofs


def retrieve_inclusion_proof(
    buyerId: str | None = None,
    sellerId: str | None = None,
    leafIndex: int | None = None,
    resourceType: str | None = None,
    resourceId: str | None = None,
    version: int | None = None,
    treeSize: int | None = None,
) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    answer = log_proofs.prove_inclusion(
        rt.db,
        bilateral,
        leaf_index=leafIndex,
        resource_type=resourceType,
        resource_id=resourceId,
        version=version,
        tree_size=treeSize,
    )
    return json_response(inclusion_json(answer))


def retrieve_consistency_proof(
    fromSize: int,
    buyerId: str | None = None,
    sellerId: str | None = None,
    toSize: int | None = None,
) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    return json_response(consistency_json(log_proofs.prove_consistency(rt.db, bilateral, fromSize, toSize)))
