"""JSON bodies of the Verifiable Log API: bytes become standard base64, key ids hex, times RFC 3339."""

from __future__ import annotations

import base64
from typing import Any

from sonata_dlt.storage.checkpoints import AnchorReceiptRow
from sonata_dlt.storage.log import LogLeaf
from sonata_dlt.verifiable_log.checkpoints import CheckpointView, SignatureView
from sonata_dlt.verifiable_log.keyring import PartyKeyView
from sonata_dlt.verifiable_log.proofs import ConsistencyAnswer, InclusionAnswer


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def signature_json(signature: SignatureView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "role": signature.role,
        "partyId": signature.party_id,
        "kind": signature.kind,
        "keyName": signature.verifier.name,
        "keyId": signature.verifier.key_id.hex(),
        "vkey": signature.verifier.to_vkey(),
        "line": signature.line,
    }
    if signature.timestamp is not None:
        body["timestamp"] = signature.timestamp
    return body


def anchor_json(origin: str, row: AnchorReceiptRow, root_hash: bytes) -> dict[str, Any]:
    return {
        "origin": origin,
        "treeSize": row.size,
        "rootHash": b64(root_hash),
        "backend": row.backend,
        "receipt": row.receipt,
        "anchoredAt": row.anchored_at,
    }


def checkpoint_json(view: CheckpointView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "origin": view.origin,
        "treeSize": view.size,
        "rootHash": b64(view.root_hash),
        "note": view.note.decode("utf-8"),
        "signatures": [signature_json(signature) for signature in view.signatures],
        "endorsed": view.endorsed,
        "createdAt": view.created_at,
    }
    if view.anchor is not None:
        body["anchorReceipt"] = anchor_json(view.origin, view.anchor, view.root_hash)
    return body


def leaf_json(leaf: LogLeaf) -> dict[str, Any]:
    return {
        "leafIndex": leaf.seq,
        "record": b64(leaf.record),
        "leafHash": b64(leaf.leaf_hash),
        "resourceType": leaf.resource_type,
        "resourceId": leaf.resource_id,
        "version": leaf.version,
        "event": leaf.event,
        "recordedAt": leaf.recorded_at,
    }


def inclusion_json(answer: InclusionAnswer) -> dict[str, Any]:
    return {
        "leafIndex": answer.leaf.seq,
        "treeSize": answer.tree_size,
        "leaf": leaf_json(answer.leaf),
        "proof": [b64(element) for element in answer.proof],
        "rootHash": b64(answer.root_hash),
        "checkpoint": checkpoint_json(answer.checkpoint),
    }


def consistency_json(answer: ConsistencyAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "fromSize": answer.from_size,
        "toSize": answer.to_size,
        "proof": [b64(element) for element in answer.proof],
        "fromRootHash": b64(answer.from_root),
        "toRootHash": b64(answer.to_root),
        "toCheckpoint": checkpoint_json(answer.to_checkpoint),
    }
    if answer.from_checkpoint is not None:
        body["fromCheckpoint"] = checkpoint_json(answer.from_checkpoint)
    return body


def party_key_json(key: PartyKeyView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "partyId": key.party_id,
        "role": key.role,
        "keyName": key.verifier.name,
        "keyId": key.verifier.key_id.hex(),
        "vkey": key.verifier.to_vkey(),
        "cosignatureVkey": key.cosignature_verifier.to_vkey(),
        "validFrom": key.valid_from,
    }
    if key.valid_until is not None:
        body["validUntil"] = key.valid_until
    return body
