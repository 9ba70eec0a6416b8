"""Audit bundles: one JSON file that proves a resource's states to someone with no access to the server.

``export_bundle`` gathers, for a resource (and, for a bill, its items): the current document, every leaf record of
the resource up to the latest checkpoint both parties endorsed, an inclusion proof of each against that checkpoint,
the checkpoint note with the host signature and both cosignatures, its anchor receipt, and the public keys with
their validity. ``verify_bundle`` checks all of it with nothing but the file (and, unless offline, the ledger).
The format, and what a successful verification does and does not prove, is in ``docs/bundle-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sonata_dlt.client.checks import (
    CheckedCheckpoint,
    PartyKeyInfo,
    b64decode,
    check_receipt_matches,
    decode_proof,
    parse_party_key,
    parse_receipt,
    parse_record,
    verify_checkpoint_note,
)
from sonata_dlt.client.sonata import ServerError, SonataClient
from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, SonataDltError, VerificationError
from sonata_dlt.ledger.base import AnchorReceipt
from sonata_dlt.ledger.local import verify_receipt_offline
from sonata_dlt.transparency.canonical import state_hash
from sonata_dlt.transparency.merkle import verify_inclusion

FORMAT = "sonata-dlt-audit-bundle/v1"
# Resources whose meaning depends on others: a bill is only its header; its amounts live in its items.
RELATED = {"customerBill": "customerBillItem"}


class ExportError(SonataDltError):
    """The server cannot give what a bundle needs yet (no endorsed checkpoint, no anchor, a newer change)."""


# --- export ----------------------------------------------------------------------------------------------------


async def export_bundle(client: SonataClient, resource_type: str, resource_id: str) -> dict[str, Any]:
    checkpoint = await client.latest_checkpoint(endorsed=True)
    if checkpoint is None:
        raise ExportError("the log has no checkpoint endorsed by both parties yet: both must run sonata-dlt verify")
    size = int(checkpoint["treeSize"])
    if "anchorReceipt" not in checkpoint:
        raise ExportError(f"the latest endorsed checkpoint (size {size}) is not anchored yet; try again shortly")
    subjects = [(resource_type, resource_id)]
    related = RELATED.get(resource_type)
    if related is not None:
        subjects += [(related, item_id) for item_id in await _items_of(client, related, resource_id)]
    resources = [await _export_resource(client, kind, ident, size) for kind, ident in subjects]
    keys = await client.party_keys()
    return {
        "format": FORMAT,
        "exportedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "subject": {"resourceType": resource_type, "resourceId": resource_id},
        "checkpoint": {
            "origin": checkpoint["origin"],
            "treeSize": size,
            "rootHash": checkpoint["rootHash"],
            "note": checkpoint["note"],
        },
        "anchorReceipt": checkpoint["anchorReceipt"]["receipt"],
        "keys": [
            {name: key[name] for name in ("partyId", "role", "vkey", "validFrom", "validUntil") if name in key}
            for key in keys
        ],
        "resources": resources,
    }


async def _items_of(client: SonataClient, item_type: str, bill_id: str) -> list[str]:
    """Ids of the bill's items: the log names every item; each item document names its bill."""
    found: list[str] = []
    seen: set[str] = set()
    async with aclosing(client.leaves(resource_type=item_type)) as leaves:
        async for leaf in leaves:
            item_id = str(leaf["resourceId"])
            if item_id in seen:
                continue
            seen.add(item_id)
            document = await client.resource(item_type, item_id)
            if (document.get("customerBill") or {}).get("id") == bill_id:
                found.append(item_id)
    return found


async def _export_resource(client: SonataClient, resource_type: str, resource_id: str, size: int) -> dict[str, Any]:
    label = f"{resource_type} {resource_id}"
    try:
        document = await client.resource(resource_type, resource_id)
    except ServerError as exc:
        raise ExportError(f"{label}: {exc}") from exc
    leaves: list[dict[str, Any]] = []
    async with aclosing(client.leaves(resource_type=resource_type, resource_id=resource_id)) as listing:
        async for item in listing:
            if int(item["leafIndex"]) >= size:
                raise ExportError(
                    f"{label} changed after the latest endorsed checkpoint (size {size}); both parties must "
                    "verify and cosign a newer checkpoint first"
                )
            proof = await client.inclusion_proof_at(int(item["leafIndex"]), size)
            leaves.append({"leafIndex": item["leafIndex"], "record": item["record"], "inclusionProof": proof["proof"]})
    if not leaves:
        raise ExportError(f"{label} has no leaf in the log")
    leaves[-1]["document"] = document  # the current document is the state of the latest leaf
    return {"resourceType": resource_type, "resourceId": resource_id, "leaves": leaves}


# --- verification ----------------------------------------------------------------------------------------------


@dataclass
class BundleReport:
    proven: list[str] = field(default_factory=list)
    not_proven: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([*(f"ok: {line}" for line in self.proven), *(f"not checked: {x}" for x in self.not_proven)])


def verify_bundle(
    bundle: Mapping[str, Any],
    *,
    offline: bool = False,
    ledger_options: Mapping[str, Any] | None = None,
) -> BundleReport:
    """Check a bundle; return what was proven, or raise ``VerificationError`` naming the first thing that failed.

    ``ledger_options`` are the options of the backend named in the receipt (``local``: ``path`` of the journal;
    ``ethereum``: ``rpc_url`` and optionally ``contract_address``, else the receipt's). Ignored when ``offline``.
    """
    report = BundleReport()
    if bundle.get("format") != FORMAT:
        raise VerificationError(f"not an audit bundle of format {FORMAT} (format {bundle.get('format')!r})")
    keys = [parse_party_key(item) for item in _list(bundle, "keys")]
    hosts = [key for key in keys if key.role == "host"]
    if len(hosts) != 1:
        raise VerificationError(f"the bundle lists {len(hosts)} host keys, expected exactly one")
    host = hosts[0]
    parties = [key for key in keys if key.role in ("buyer", "seller")]

    checked = _checkpoint(bundle, host, parties)
    body = checked.body
    cosigners = ", ".join(
        f"{c.key.role} {c.key.party_id} at {datetime.fromtimestamp(c.timestamp, UTC).isoformat()}"
        for c in checked.cosigners
    )
    report.proven.append(
        f"checkpoint {body.origin} size {body.size} root {body.root_hash.hex()}: signed by the host key "
        f"{host.verifier.name}+{host.verifier.key_id.hex()} and cosigned by {cosigners}"
    )

    receipt = parse_receipt(bundle.get("anchorReceipt"), body.size)
    check_receipt_matches(receipt, body)
    report.proven.append(_anchor(receipt, host, offline, dict(ledger_options or {}), report))

    subject = bundle.get("subject")
    resources = _list(bundle, "resources")
    if not isinstance(subject, dict) or not resources:
        raise VerificationError("the bundle has no subject or no resources")
    first = resources[0]
    if (first.get("resourceType"), first.get("resourceId")) != (subject.get("resourceType"), subject.get("resourceId")):
        raise VerificationError("the first resource of the bundle is not its subject")
    for resource in resources:
        report.proven.append(_resource(resource, body.size, body.root_hash))
    related = RELATED.get(str(subject.get("resourceType")))
    if related is not None:
        for resource in resources[1:]:
            current = resource["leaves"][-1]["document"]
            if resource.get("resourceType") != related or (current.get("customerBill") or {}).get("id") != subject.get(
                "resourceId"
            ):
                raise VerificationError(
                    f"{resource.get('resourceType')} {resource.get('resourceId')} is not an item of the subject"
                )
        report.not_proven.append(
            "that the bundle lists every item of the bill: items are found by the exporter; compare with the bill"
        )
    return report


def _list(bundle: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    value = bundle.get(name)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise VerificationError(f"bundle field {name} is not a list of objects")
    return value


def _checkpoint(bundle: Mapping[str, Any], host: PartyKeyInfo, parties: list[PartyKeyInfo]) -> CheckedCheckpoint:
    data = bundle.get("checkpoint")
    if not isinstance(data, dict) or not isinstance(data.get("note"), str):
        raise VerificationError("the bundle has no checkpoint note")
    checked = verify_checkpoint_note(data["note"].encode("utf-8"), host.verifier, parties)
    body = checked.body
    root = b64decode(data.get("rootHash"), "checkpoint rootHash")
    if (data.get("origin"), data.get("treeSize"), root) != (body.origin, body.size, body.root_hash):
        raise VerificationError("the checkpoint fields of the bundle differ from its signed note")
    if not checked.endorsed:
        raise VerificationError(
            f"checkpoint {body.size} is not endorsed: valid cosignatures from {sorted(checked.roles) or 'nobody'}, "
            "both the buyer and the seller are required"
        )
    host.check_valid_at(datetime.fromtimestamp(min(c.timestamp for c in checked.cosigners), UTC))
    return checked


def _anchor(
    receipt: AnchorReceipt, host: PartyKeyInfo, offline: bool, options: dict[str, Any], report: BundleReport
) -> str:
    where = f"{receipt.backend} anchor of size {receipt.size}"
    if receipt.backend == "local":
        journal_key = bytes.fromhex(str(options["verify_key"])) if "verify_key" in options else None
        verify_receipt_offline(receipt, journal_key or host.verifier.public_key)
        if offline:
            report.not_proven.append(
                "that the local journal still holds the anchor (offline); the receipt is signed by the journal key"
            )
            return f"{where}: the receipt is signed by the journal key (entry {receipt.reference.get('sequence')})"
        if "path" not in options:
            raise ConfigurationError("a local anchor is looked up in its journal: give its path, or verify offline")
        options = {"path": options["path"], "verify_key": journal_key or host.verifier.public_key}
    elif offline:
        report.not_proven.append(f"that the {receipt.backend} ledger holds the anchor (offline)")
        return f"{where}: the receipt names this checkpoint (not looked up: offline)"
    elif receipt.backend == "ethereum":
        options.setdefault("contract_address", receipt.reference.get("contractAddress"))
    from sonata_dlt.ledger import open_backend

    backend = open_backend(receipt.backend, options)
    try:
        backend.verify_anchor(receipt)
    except LedgerUnavailable as exc:
        raise VerificationError(f"{where}: the ledger cannot be read: {exc}") from None
    finally:
        backend.close()
    return f"{where}: found on the {receipt.backend} ledger"


def _resource(resource: Mapping[str, Any], size: int, root: bytes) -> str:
    kind, ident = resource.get("resourceType"), resource.get("resourceId")
    label = f"{kind} {ident}"
    leaves = resource.get("leaves")
    if not isinstance(leaves, list) or not leaves:
        raise VerificationError(f"{label}: the bundle holds no leaf")
    expected_version = 1
    previous_index = -1
    documents = 0
    for entry in leaves:
        index = entry.get("leafIndex")
        if not isinstance(index, int) or not previous_index < index < size:
            raise VerificationError(f"{label}: leaf index {index!r} is out of order or beyond the checkpoint")
        leaf = parse_record(b64decode(entry.get("record"), f"{label} leaf {index} record"), index)
        if (leaf.resource_type, leaf.resource_id) != (kind, ident):
            raise VerificationError(f"{label}: {leaf.label} is about another resource")
        if leaf.version != expected_version:
            raise VerificationError(
                f"{label}: {leaf.label} follows version {expected_version - 1}; the leaves do not chain "
                "(a version is missing or repeated)"
            )
        proof = decode_proof(entry.get("inclusionProof"), f"{label} leaf {index} inclusion proof")
        try:
            verify_inclusion(leaf.hash, index, size, proof, root)
        except VerificationError as exc:
            raise VerificationError(f"{label}: {exc}") from None
        if "document" in entry:
            found = state_hash(entry["document"]).hex()
            if found != leaf.state_hash:
                raise VerificationError(
                    f"{label}: the document of version {leaf.version} hashes to {found}, its {leaf.label} records "
                    f"stateHash {leaf.state_hash}"
                )
            documents += 1
        expected_version += 1
        previous_index = index
    if "document" not in leaves[-1]:
        raise VerificationError(f"{label}: the bundle has no document for its latest version")
    latest = leaves[-1]
    return (
        f"{label}: versions 1..{expected_version - 1} in the log (leaves {leaves[0]['leafIndex']}.."
        f"{latest['leafIndex']}), each proven in checkpoint {size}; {documents} document(s) match their stateHash"
    )
