"""A buyer with two sellers verifies each bilateral's log on its own: the other bilateral's resources are not
reported as missing from this log.

MEF's Customer Bill Management API has no ``buyerId`` / ``sellerId`` parameters, so listing bills answers with the
caller's bills of every bilateral. The verifier must keep to its own bilateral's bills and still check each of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from client.live_server import ORDERING, PROOFS, LiveServer, order_body, run_cli
from sonata_dlt.client.trust_store import TrustStore
from sonata_dlt.settings import DEMO_BUYER_TOKEN
from sonata_dlt.signing.keys import SigningKey
from tests.billing.smart_bilateral import API, APRIL_START, MARCH_START, make_terms

SECOND_SELLER_TOKEN = "second-seller-token"
PARTNERS = {"SELLER-1": "demo-seller-token", "SELLER-2": SECOND_SELLER_TOKEN}


def _ok(answer: tuple[int, Any], status: int = 201) -> Any:
    assert answer[0] == status, answer
    return answer[1]


def _bill_between(server: LiveServer, seller_id: str) -> str:
    """An approved agreement, matching inventory reports and a billing run: the bilateral's bill id."""
    query = f"?sellerId={seller_id}"
    seller_token = PARTNERS[seller_id]
    body = {"agreementId": f"MSA-{seller_id}", "effectiveFrom": "2025-01-01T00:00:00Z", "terms": make_terms()}
    agreement = _ok(server.call("POST", f"{API}/agreement{query}", body))["id"]
    _ok(server.call("POST", f"{API}/agreement/{agreement}/approve{query}"), 200)
    _ok(server.call("POST", f"{API}/agreement/{agreement}/approve", token=seller_token), 200)
    period = {"periodStart": MARCH_START, "periodEnd": APRIL_START}
    rows = [{"serviceId": f"{seller_id}-1", "productType": "accessEline", "bandwidthMbps": 100, "status": "active"}]
    reports = [
        _ok(server.call("POST", f"{API}/inventoryReport{query}", {**period, "rows": rows}))["id"],
        _ok(server.call("POST", f"{API}/inventoryReport", {**period, "rows": rows}, token=seller_token))["id"],
    ]
    reconciliation = {"buyerReportId": reports[0], "sellerReportId": reports[1]}
    _ok(server.call("POST", f"{API}/reconciliation", reconciliation, token=seller_token))
    run = _ok(server.call("POST", f"{API}/billingRun", period, token=seller_token))
    return str(run["customerBill"]["id"])


def test_each_bilateral_verifies_without_the_other_bilaterals_bills(database_url: str, tmp_path: Path) -> None:
    server = LiveServer(database_url, tmp_path / "data", tmp_path / "server.log")
    server.extra_env = {
        "SONATA_DLT_BILATERALS": json.dumps([{"buyer_id": "BUYER-1", "seller_id": "SELLER-2"}]),
        "SONATA_DLT_TOKENS": json.dumps([{"token": SECOND_SELLER_TOKEN, "party_id": "SELLER-2", "role": "seller"}]),
    }
    server.start()
    try:
        bills = {seller_id: _bill_between(server, seller_id) for seller_id in PARTNERS}
        _ok(server.call("POST", f"{ORDERING}/productOrder?sellerId=SELLER-1", order_body(1)))
        key = tmp_path / "buyer.skey"
        SigningKey.generate("buyer-key").save(key)
        for seller_id in PARTNERS:
            origin = _ok(server.call("POST", f"{PROOFS}/checkpoint?sellerId={seller_id}"))["origin"]
            state = tmp_path / f"buyer-{seller_id}.state"
            result = run_cli(
                "verify", "--url", server.url, "--token", DEMO_BUYER_TOKEN, "--key", str(key),
                "--seller-id", seller_id, "--state", str(state), "--no-cosign",
                "--ledger-backend", "local", "--ledger-option", f"path={server.journal}",
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            assert "1 listed resource(s) belong to the caller's other bilaterals" in result.stdout, result.stdout
            with TrustStore.open(state) as store:
                checked = {resource_id for kind, resource_id in store.known_resources(origin) if kind == "customerBill"}
            assert checked == {bills[seller_id]}, "this bilateral's bill is checked, the other's is not"
    finally:
        server.stop()
