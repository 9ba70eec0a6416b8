"""The Verifiable Log API end to end: what it serves verifies offline with nothing but the answers and vkeys."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from sonata_dlt.signing.keys import SigningKey, VerifierKey
from sonata_dlt.signing.note import cosign_checkpoint, verify_note
from sonata_dlt.transparency.checkpoint import Checkpoint
from sonata_dlt.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from tests.verifiable.conftest import BASE


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _verify_checkpoint(checkpoint: dict[str, Any]) -> Checkpoint:
    verifiers = [VerifierKey.from_vkey(signature["vkey"]) for signature in checkpoint["signatures"]]
    text, signed = verify_note(checkpoint["note"].encode(), verifiers)
    assert len(signed) == len(checkpoint["signatures"])
    body = Checkpoint.from_body(text)
    assert (body.origin, body.size, body.root_hash) == (
        checkpoint["origin"],
        checkpoint["treeSize"],
        _b(checkpoint["rootHash"]),
    )
    return body


def test_cut_then_prove_inclusion_and_consistency(api: Any, record: Callable[..., None], buyer_headers: Any) -> None:
    assert api.post(f"{BASE}/checkpoint", headers=buyer_headers).status_code == 409  # empty log
    record(5)
    first = api.post(f"{BASE}/checkpoint", headers=buyer_headers)
    assert first.status_code == 201
    assert first.headers["content-type"] == "application/json;charset=utf-8"
    assert api.post(f"{BASE}/checkpoint", headers=buyer_headers).status_code == 200  # unchanged log
    record(6, resource="later")
    second = api.post(f"{BASE}/checkpoint", headers=buyer_headers).json()
    assert second["treeSize"] == 11
    _verify_checkpoint(second)

    proof = api.get(f"{BASE}/inclusionProof", params={"leafIndex": 3}, headers=buyer_headers).json()
    assert proof["treeSize"] == 11
    record_bytes = _b(proof["leaf"]["record"])
    assert _b(proof["leaf"]["leafHash"]) == leaf_hash(record_bytes)
    verify_inclusion(leaf_hash(record_bytes), 3, 11, [_b(p) for p in proof["proof"]], _b(proof["rootHash"]))
    assert _verify_checkpoint(proof["checkpoint"]).root_hash == _b(proof["rootHash"])

    by_resource = api.get(
        f"{BASE}/inclusionProof",
        params={"resourceType": "productOrder", "resourceId": "later-2", "treeSize": 11},
        headers=buyer_headers,
    ).json()
    assert by_resource["leafIndex"] == 7
    old = api.get(
        f"{BASE}/inclusionProof",
        params={"resourceType": "productOrder", "resourceId": "later-2", "treeSize": 5},
        headers=buyer_headers,
    )
    assert old.status_code == 404  # the resource did not exist in the first 5 leaves

    consistency = api.get(f"{BASE}/consistencyProof", params={"fromSize": 5}, headers=buyer_headers).json()
    verify_consistency(
        5, 11, _b(consistency["fromRootHash"]), _b(consistency["toRootHash"]), [_b(p) for p in consistency["proof"]]
    )
    assert consistency["fromRootHash"] == first.json()["rootHash"]
    assert consistency["fromCheckpoint"]["treeSize"] == 5


def test_proof_errors_are_sonata_errors(api: Any, record: Callable[..., None], buyer_headers: Any) -> None:
    assert api.get(f"{BASE}/inclusionProof", params={"leafIndex": 0}, headers=buyer_headers).status_code == 409
    record(3)
    api.post(f"{BASE}/checkpoint", headers=buyer_headers)
    record(1)
    beyond = api.get(f"{BASE}/inclusionProof", params={"leafIndex": 3}, headers=buyer_headers)
    assert beyond.status_code == 409 and beyond.json()["code"] == "conflict"
    missing = api.get(f"{BASE}/checkpoint/2", headers=buyer_headers)
    assert missing.status_code == 404 and missing.json()["code"] == "notFound"
    neither = api.get(f"{BASE}/inclusionProof", headers=buyer_headers)
    assert neither.status_code == 400 and neither.json()["code"] == "missingQueryParameter"
    assert api.get(f"{BASE}/checkpoint").status_code == 401
    stranger = api.get(f"{BASE}/checkpoint", params={"sellerId": "SELLER-9"}, headers=buyer_headers)
    assert stranger.status_code == 403


def test_leaves_are_paged(api: Any, record: Callable[..., None], seller_headers: Any) -> None:
    record(7)
    page = api.get(f"{BASE}/leaf", params={"offset": 2, "limit": 3}, headers=seller_headers)
    assert [leaf["leafIndex"] for leaf in page.json()] == [2, 3, 4]
    assert page.headers["X-Total-Count"] == "7" and page.headers["X-Result-Count"] == "3"
    filtered = api.get(f"{BASE}/leaf", params={"resourceId": "order-6"}, headers=seller_headers).json()
    assert [leaf["leafIndex"] for leaf in filtered] == [6]
    assert api.get(f"{BASE}/leaf/6", headers=seller_headers).json()["resourceId"] == "order-6"


# --- cosigning -------------------------------------------------------------------------------------------------


def _register(api: Any, headers: Any, key: SigningKey, **validity: str) -> Any:
    return api.post(f"{BASE}/partyKey", json={"vkey": key.verifier().to_vkey(), **validity}, headers=headers)


def _cosign(
    api: Any, headers: Any, key: SigningKey, served: dict[str, Any], old_size: int, *, delay: int = 0, **override: Any
) -> Any:
    checkpoint = served
    body = checkpoint["note"].split("\n\n")[0] + "\n"
    proof = api.get(
        f"{BASE}/consistencyProof", params={"fromSize": old_size, "toSize": checkpoint["treeSize"]}, headers=headers
    ).json()["proof"]
    payload = {
        "checkpoint": checkpoint["note"],
        "oldSize": old_size,
        "consistencyProof": proof,
        "cosignature": cosign_checkpoint(body.encode(), key, int(time.time()) + delay),
    }
    payload.update(override)
    return api.post(f"{BASE}/cosignature", json=payload, headers=headers)


def test_both_parties_cosign_and_the_checkpoint_is_endorsed(
    api: Any, record: Callable[..., None], buyer_headers: Any, seller_headers: Any
) -> None:
    buyer_key, seller_key = SigningKey.generate("buyer-1"), SigningKey.generate("seller-1")
    assert _register(api, buyer_headers, buyer_key).status_code == 201
    assert _register(api, seller_headers, seller_key).status_code == 201
    assert _register(api, seller_headers, seller_key).status_code == 409
    record(4)
    checkpoint = api.post(f"{BASE}/checkpoint", headers=buyer_headers).json()

    after_buyer = _cosign(api, buyer_headers, buyer_key, checkpoint, 0)
    assert after_buyer.status_code == 201, after_buyer.text
    assert after_buyer.json()["endorsed"] is False
    endorsed = _cosign(api, seller_headers, seller_key, checkpoint, 0).json()
    assert endorsed["endorsed"] is True
    assert [s["role"] for s in endorsed["signatures"]] == ["host", "buyer", "seller"]
    _verify_checkpoint(endorsed)  # host signature and both cosignatures, from the vkeys served alongside
    assert (
        api.get(f"{BASE}/checkpoint/latest", params={"endorsed": True}, headers=buyer_headers).json()["treeSize"] == 4
    )

    again = _cosign(api, buyer_headers, buyer_key, checkpoint, 0)
    assert again.status_code == 409
    record(3)
    newer = api.post(f"{BASE}/checkpoint", headers=buyer_headers).json()
    wrong_old = _cosign(api, buyer_headers, buyer_key, newer, 0)
    assert wrong_old.status_code == 409 and "oldSize 0" in wrong_old.json()["reason"]
    assert _cosign(api, buyer_headers, buyer_key, newer, 4).status_code == 201
    stale = _cosign(api, seller_headers, seller_key, checkpoint, 4)
    assert stale.status_code == 409


def test_forged_and_foreign_cosignatures_are_refused(
    api: Any, record: Callable[..., None], buyer_headers: Any, seller_headers: Any
) -> None:
    buyer_key = SigningKey.generate("buyer-1")
    _register(api, buyer_headers, buyer_key)
    record(3)
    checkpoint = api.post(f"{BASE}/checkpoint", headers=buyer_headers).json()
    body = (checkpoint["note"].split("\n\n")[0] + "\n").encode()

    impostor = SigningKey.from_seed("buyer-1", bytes(32))  # same name, key never registered
    unknown = _cosign(api, buyer_headers, impostor, checkpoint, 0)
    assert unknown.status_code == 422
    assert unknown.json()[0]["code"] == "referenceNotFound" and unknown.json()[0]["propertyPath"] == "/cosignature"

    other_body = body.replace(checkpoint["rootHash"].encode(), base64.b64encode(bytes(32)))
    forged_line = cosign_checkpoint(other_body, buyer_key, int(time.time()))  # signs a different root
    forged = _cosign(api, buyer_headers, buyer_key, checkpoint, 0, cosignature=forged_line)
    assert forged.status_code == 422 and forged.json()[0]["code"] == "invalidValue"

    not_ours = _cosign(api, buyer_headers, buyer_key, checkpoint, 0, checkpoint=other_body.decode())
    assert not_ours.status_code == 422 and not_ours.json()[0]["propertyPath"] == "/checkpoint"

    bad_proof = _cosign(api, buyer_headers, buyer_key, checkpoint, 0, consistencyProof=[checkpoint["rootHash"]])
    assert bad_proof.status_code == 422 and bad_proof.json()[0]["propertyPath"] == "/consistencyProof"

    seller_with_buyer_key = _cosign(api, seller_headers, buyer_key, checkpoint, 0)
    assert seller_with_buyer_key.status_code == 422  # the key is the buyer's, not the seller's

    old_time = cosign_checkpoint(body, buyer_key, int(time.time()) - 86400)  # before the key was valid
    expired = _cosign(api, buyer_headers, buyer_key, checkpoint, 0, cosignature=old_time)
    assert expired.status_code == 422 and "valid from" in expired.json()[0]["reason"]


def test_rotation_keeps_old_cosignatures_verifiable(api: Any, record: Callable[..., None], buyer_headers: Any) -> None:
    first = SigningKey.generate("buyer-1")
    _register(api, buyer_headers, first, validFrom="2020-01-01T00:00:00Z")
    record(2)
    checkpoint = api.post(f"{BASE}/checkpoint", headers=buyer_headers).json()
    assert _cosign(api, buyer_headers, first, checkpoint, 0).status_code == 201

    second = SigningKey.generate("buyer-1b")
    assert _register(api, buyer_headers, second).status_code == 201
    keys = api.get(f"{BASE}/partyKey", headers=buyer_headers).json()
    by_name = {key["keyName"]: key for key in keys}
    assert by_name["buyer-1"]["validUntil"] == by_name["buyer-1b"]["validFrom"]
    assert keys[0]["role"] == "host"

    record(2)
    newer = api.post(f"{BASE}/checkpoint", headers=buyer_headers).json()
    # The old key closed when the new one was registered; sign a little later than that (seconds resolution).
    assert _cosign(api, buyer_headers, first, newer, 2, delay=2).status_code == 422
    assert _cosign(api, buyer_headers, second, newer, 2).status_code == 201
    old = api.get(f"{BASE}/checkpoint/2", headers=buyer_headers).json()
    _verify_checkpoint(old)
    assert old["signatures"][1]["keyName"] == "buyer-1"


def test_party_key_must_be_well_formed(api: Any, buyer_headers: Any) -> None:
    bad = api.post(f"{BASE}/partyKey", json={"vkey": "not-a-key"}, headers=buyer_headers)
    assert bad.status_code == 422 and bad.json()[0]["propertyPath"] == "/vkey"
