"""Usage records: idempotent ingest, 409 on changed content with nothing stored, totals, usage reconciliation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sonata_dlt.bilateral.usage import usage_totals
from sonata_dlt.settings import Role
from tests.billing.smart_bilateral import API, approved_agreement, log_size, streaming_client


def record(
    record_id: str, quantity: Any, service: str = "SVC-1", start: str = "2025-03-02T00:00:00Z"
) -> dict[str, Any]:
    return {"id": record_id, "serviceKey": service, "metric": "dataVolume", "unit": "GB", "quantity": quantity,
            "start": start, "end": "2025-03-02T01:00:00Z" if start < "2025-03-02T01" else start}  # fmt: skip


def test_ingest_is_idempotent_and_conflicts_store_nothing(
    client: Any, buyer_headers: Any, seller_headers: Any, app: Any
) -> None:
    approved_agreement(client, buyer_headers, seller_headers)
    size = log_size(app)
    first = client.post(f"{API}/usageRecord", json=[record("R1", 1.5), record("R2", "2.25")], headers=buyer_headers)
    assert first.status_code == 201, first.text
    assert (first.json()["accepted"], first.json()["duplicates"]) == (2, 0)
    assert log_size(app) == size + 1  # one batch, one leaf
    again = client.post(f"{API}/usageRecord", json=[record("R1", 1.5), record("R2", 2.25)], headers=buyer_headers)
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    assert "id" not in again.json() and log_size(app) == size + 1
    # Same id, other content: 409, and the new record sent with it is not stored either.
    conflict = client.post(f"{API}/usageRecord", json=[record("R3", 1), record("R1", 9)], headers=buyer_headers)
    assert conflict.status_code == 409 and "R1" in conflict.json()["reason"]
    # The seller's ids are its own: R1 from the seller is a new record.
    seller = client.post(f"{API}/usageRecord", json=[record("R1", 3.75)], headers=seller_headers)
    assert seller.status_code == 201
    batch = client.get(f"{API}/usageBatch/{first.json()['id']}", headers=seller_headers).json()
    assert batch["recordsHash"] == first.json()["recordsHash"]

    from sonata_dlt.api.context import runtime

    rt = runtime()
    march = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    with rt.db.read() as session:
        bilateral_id = rt.parties.bilaterals[0].id
        buyer = usage_totals(session, bilateral_id, "SVC-1", *march, Role.BUYER)
        seller_totals = usage_totals(session, bilateral_id, "SVC-1", *march, Role.SELLER)
        april = usage_totals(
            session,
            bilateral_id,
            "SVC-1",
            datetime(2025, 4, 1, tzinfo=UTC),
            datetime(2025, 5, 1, tzinfo=UTC),
            Role.BUYER,
        )
    assert [(t.metric, t.unit, t.quantity) for t in buyer] == [("dataVolume", "GB", Decimal("3.75"))]
    assert seller_totals[0].quantity == Decimal("3.75") and april == []


def test_bad_records_are_refused_with_their_location(client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    approved_agreement(client, buyer_headers, seller_headers)
    answer = client.post(
        f"{API}/usageRecord",
        json=[record("A", 1), record("B", -1), dict(record("C", 1), start="yesterday"), record("D", "0.0000001")],
        headers=buyer_headers,
    )
    assert answer.status_code == 422
    assert [issue["propertyPath"] for issue in answer.json()] == ["/1/quantity", "/2/start", "/3/quantity"]


@pytest.fixture
def ndjson_client(settings: Any, monkeypatch: Any) -> Iterator[Any]:
    runtime, app = streaming_client(settings, monkeypatch)
    try:
        with app.test_client() as client:
            yield client
    finally:
        runtime.close()


def test_ndjson_upload_and_usage_reconciliation(ndjson_client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    client = ndjson_client
    approved_agreement(client, buyer_headers, seller_headers)  # usageMatching: relative tolerance 1 %

    def ndjson(rows: list[dict[str, Any]]) -> bytes:
        return "".join(json.dumps(row) + "\n" for row in rows).encode()

    buyer_rows = [record("B1", 100, "S1"), record("B2", 100, "S2"), record("B3", 5, "S3")]
    seller_rows = [record("X1", "100.9", "S1"), record("X2", 98, "S2"), record("X4", 1, "S4")]
    for headers, rows in ((buyer_headers, buyer_rows), (seller_headers, seller_rows)):
        answer = client.post(
            f"{API}/usageRecord/upload",
            content=ndjson(rows),
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 201, answer.text
    bad = client.post(
        f"{API}/usageRecord/upload",
        content=b'{"id": "Z"}\nnope\n',
        headers={**buyer_headers, "Content-Type": "application/x-ndjson"},
    )
    assert bad.status_code == 422 and bad.json()[0]["propertyPath"].startswith("line 1/")
    assert any(issue["propertyPath"] == "line 2" for issue in bad.json())

    period = {"periodStart": "2025-03-01T00:00:00Z", "periodEnd": "2025-04-01T00:00:00Z"}
    rec = client.post(f"{API}/usageReconciliation", json=period, headers=seller_headers)
    assert rec.status_code == 201, rec.text
    # By hand: S1 |100 - 100.9| = 0.9 <= 1 % of 100.9 -> agreed; S2 |100 - 98| = 2 > 1 -> disagreed.
    results = {r["serviceKey"]: r for r in rec.json()["results"]}
    assert {k: v["classification"] for k, v in results.items()} == {
        "S1": "agreed", "S2": "disagreed", "S3": "buyerOnly", "S4": "sellerOnly"}  # fmt: skip
    assert results["S1"]["difference"] == "-0.9" and results["S2"]["sellerQuantity"] == "98"
    assert rec.json()["summary"] == {"agreed": 1, "disagreed": 1, "buyerOnly": 1, "sellerOnly": 1, "total": 4}
    assert client.get(f"{API}/usageReconciliation/{rec.json()['id']}", headers=buyer_headers).json() == rec.json()
