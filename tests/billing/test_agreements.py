"""Agreement versions: two-sided approval, one version in effect at a time, strict terms, isolation, log leaves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sonata_dlt.bilateral.agreement_terms import bandwidth_label, engine_terms, parse_terms
from sonata_dlt.bilateral.agreements import effective_agreement
from sonata_dlt.bilateral.rating.engine import LineKind
from sonata_dlt.errors import Unprocessable
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import start_runtime
from tests.billing.smart_bilateral import API, approved_agreement, log_size, make_terms, propose


def test_a_version_takes_effect_only_when_both_parties_approved(
    client: Any, buyer_headers: Any, seller_headers: Any, app: Any
) -> None:
    before = log_size(app)
    proposed = propose(client, buyer_headers)
    assert proposed.status_code == 201, proposed.text
    document = proposed.json()
    assert (document["state"], document["approvals"], document["version"]) == ("proposed", [], 1)
    assert log_size(app) == before + 1
    # The proposer's submission is not an approval: nothing is in effect yet.
    assert (
        client.get(
            f"{API}/effectiveAgreement", params={"at": "2025-06-01T00:00:00Z"}, headers=buyer_headers
        ).status_code
        == 404
    )

    first = client.post(f"{API}/agreement/{document['id']}/approve", headers=buyer_headers)
    assert first.status_code == 200
    assert first.json()["state"] == "proposed"
    assert [a["role"] for a in first.json()["approvals"]] == ["buyer"]
    again = client.post(f"{API}/agreement/{document['id']}/approve", headers=buyer_headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"

    second = client.post(f"{API}/agreement/{document['id']}/approve", headers=seller_headers)
    assert second.status_code == 200
    assert second.json()["state"] == "approved"
    assert log_size(app) == before + 3  # proposal + two approvals; the refused one recorded nothing
    effective = client.get(f"{API}/effectiveAgreement", params={"at": "2025-06-01T00:00:00Z"}, headers=seller_headers)
    assert effective.status_code == 200
    assert effective.json()["id"] == document["id"]
    before_start = client.get(f"{API}/effectiveAgreement", params={"at": "2024-12-31T23:59:59Z"}, headers=buyer_headers)
    assert before_start.status_code == 404


def test_a_later_version_supersedes_and_periods_never_overlap(
    client: Any, buyer_headers: Any, seller_headers: Any, app: Any
) -> None:
    v1 = approved_agreement(client, buyer_headers, seller_headers, effective_from="2025-01-01T00:00:00Z")
    v2 = approved_agreement(
        client, buyer_headers, seller_headers, effective_from="2025-07-01T00:00:00Z", rounding="halfUp"
    )
    assert v2["version"] == 2
    old = client.get(f"{API}/agreement/{v1['id']}", headers=buyer_headers).json()
    assert old["effectiveUntil"] == "2025-07-01T00:00:00.000Z"
    from sonata_dlt.api.context import runtime

    with runtime().db.read() as session:
        bilateral_id = runtime().parties.bilaterals[0].id
        june = effective_agreement(session, bilateral_id, datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC))
        july = effective_agreement(session, bilateral_id, datetime(2025, 7, 1, tzinfo=UTC))
        assert effective_agreement(session, bilateral_id, datetime(2024, 12, 1, tzinfo=UTC)) is None
    assert june is not None and july is not None
    assert (june.id, june.version, july.id, july.version) == (v1["id"], 1, v2["id"], 2)

    # A version starting at or before the latest approved one would overlap it: refused, nothing stored.
    size = log_size(app)
    overlapping = propose(client, buyer_headers, effective_from="2025-07-01T00:00:00Z")
    assert overlapping.status_code == 422
    assert overlapping.json()[0]["propertyPath"] == "/effectiveFrom"
    assert "overlapping periods" in overlapping.json()[0]["reason"]
    assert log_size(app) == size


def test_approving_a_stale_proposal_is_a_conflict(client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    stale = propose(client, buyer_headers, effective_from="2025-03-01T00:00:00Z").json()
    approved_agreement(client, buyer_headers, seller_headers, effective_from="2025-05-01T00:00:00Z")
    assert client.post(f"{API}/agreement/{stale['id']}/approve", headers=buyer_headers).status_code == 200
    refused = client.post(f"{API}/agreement/{stale['id']}/approve", headers=seller_headers)
    assert refused.status_code == 409
    assert "overlapping periods" in refused.json()["reason"]
    assert client.get(f"{API}/agreement/{stale['id']}", headers=buyer_headers).json()["state"] == "proposed"


def test_reject_is_final(client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    proposed = propose(client, buyer_headers).json()
    rejected = client.post(f"{API}/agreement/{proposed['id']}/reject", json={"reason": "price"}, headers=seller_headers)
    assert rejected.status_code == 200
    assert rejected.json()["rejection"]["reason"] == "price"
    assert client.post(f"{API}/agreement/{proposed['id']}/approve", headers=buyer_headers).status_code == 409
    listed = client.get(f"{API}/agreement", params={"state": "rejected"}, headers=buyer_headers)
    assert listed.headers["X-Total-Count"] == "1"


BAD_TERMS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown currency", {"currency": "EUX"}, "/terms/currency", "ISO 4217"),
    (
        "negative price",
        {"priceList": [{"productType": "a", "bandwidthMbps": 10, "monthlyRecurring": {"unit": "EUR", "value": -1}}]},
        "/terms/priceList/0/monthlyRecurring/value",
        "at least 0",
    ),
    (
        "currency mismatch",
        {"priceList": [{"productType": "a", "bandwidthMbps": 10, "monthlyRecurring": {"unit": "USD", "value": 1}}]},
        "/terms/priceList/0/monthlyRecurring/unit",
        "currency mismatch",
    ),
    (
        "overlapping price entries",
        {
            "priceList": [
                {"productType": "a", "bandwidthMbps": 1000, "monthlyRecurring": {"unit": "EUR", "value": 1}},
                {"productType": "a", "bandwidthMbps": "1000.0", "monthlyRecurring": {"unit": "EUR", "value": 2}},
            ]
        },
        "/terms/priceList/1",
        "overlapping",
    ),
    (
        "tax rate above 1",
        {"taxes": [{"category": "country", "description": "VAT", "rate": 1.5}]},
        "/terms/taxes/0/rate",
        "at most 1",
    ),
    (
        "overlapping volume tiers",
        {
            "discounts": [
                {
                    "id": "V",
                    "kind": "volume",
                    "tiers": [{"fromCount": 0, "toCount": 10, "rate": 0.1}, {"fromCount": 5, "rate": 0.2}],
                }
            ]
        },
        "/terms/discounts/0/tiers/1",
        "overlapping tiers",
    ),
    (
        "unknown matching field",
        {"inventoryMatching": {"keyFields": [{"field": "circuit"}]}},
        "/terms/inventoryMatching/keyFields/0/field",
        "not an inventory report column",
    ),
    (
        "numeric key",
        {"inventoryMatching": {"keyFields": [{"field": "bandwidthMbps"}]}},
        "/terms/inventoryMatching/keyFields/0/field",
        "text columns",
    ),
    ("unknown rounding", {"rounding": "bankers"}, "/terms/rounding", "not one of"),
    ("missing currency", {"currency": None}, "/terms/currency", "required"),
    ("unknown property", {"surcharge": 1}, "/terms/surcharge", "unknown property"),
]


@pytest.mark.parametrize(("case", "overrides", "path", "words"), BAD_TERMS, ids=[case[0] for case in BAD_TERMS])
def test_terms_are_validated_strictly(
    client: Any, buyer_headers: Any, app: Any, case: str, overrides: dict[str, Any], path: str, words: str
) -> None:
    size = log_size(app)
    answer = propose(client, buyer_headers, **overrides)
    assert answer.status_code == 422, answer.text
    issues = answer.json()
    matching = [issue for issue in issues if issue["propertyPath"] == path]
    assert matching, issues
    assert words in matching[0]["reason"]
    assert log_size(app) == size
    assert client.get(f"{API}/agreement", headers=buyer_headers).headers["X-Total-Count"] == "0"


def test_every_problem_is_reported_at_once() -> None:
    bad = make_terms(
        currency="XXX", rounding="nearest", taxes=[{"category": "planet", "description": "t", "rate": -0.1}]
    )
    with pytest.raises(Unprocessable) as caught:
        parse_terms(bad)
    paths = {issue.property_path for issue in caught.value.issues}
    assert {"/terms/currency", "/terms/rounding", "/terms/taxes/0/category", "/terms/taxes/0/rate"} <= paths


def test_engine_terms_resolve_discounts_and_percentages() -> None:
    terms = parse_terms(make_terms())
    assert terms.exponent == 2
    small = engine_terms(terms, "MSA-1", 1, volumes={"accessEline": 3})
    large = engine_terms(terms, "MSA-1", 1, volumes={"accessEline": 12})
    # percentage always; term: accessEline's 36-month minimum term >= 24; volume: only from 10 products.
    assert [(d.id, d.percent) for d in small.discounts] == [("D-ALL", Decimal("5.00")), ("D-TERM", Decimal("10.0"))]
    assert [(d.id, d.percent) for d in large.discounts][-1] == ("D-VOL", Decimal("2.00"))
    assert small.prices[("accessEline", bandwidth_label(Decimal(100)))].monthly == Decimal(300)
    assert small.prices[("accessEline", "1000Mbps")].activation == Decimal(0)
    assert small.usage_rates[("accessEline", "dataVolume")] == Decimal("0.0125")
    assert small.taxes[0].rate == Decimal("20.0") and small.taxes[0].kinds == frozenset()
    assert small.sla_rules[0].tiers[0].below_percent == Decimal("99.900")
    assert small.early_termination_percent == Decimal("50.0")
    assert (small.default_minimum_term_months, dict(small.minimum_term_months)) == (12, {"accessEline": 36})
    assert small.payment_days == 30
    taxed = parse_terms(
        make_terms(taxes=[{"category": "city", "description": "c", "rate": 0.01, "appliesTo": ["usage"]}])
    )
    assert engine_terms(taxed, "MSA-1", 1, volumes={}).taxes[0].kinds == frozenset({LineKind.USAGE})


def test_parties_never_see_another_bilateral(make_settings: Callable[..., Settings]) -> None:
    from sonata_dlt.api.app import create_app

    settings = make_settings(
        tokens=[{"token": "other-buyer-token-0001", "party_id": "BUYER-2", "role": "buyer"}],
        bilaterals=[{"buyer_id": "BUYER-2", "seller_id": "SELLER-1"}],
    )
    runtime = start_runtime(settings)
    try:
        with create_app(settings, runtime, run_workers=False).test_client() as client:
            buyer1 = {"Authorization": "Bearer demo-buyer-token"}
            buyer2 = {"Authorization": "Bearer other-buyer-token-0001"}
            seller = {"Authorization": "Bearer demo-seller-token"}
            mine = propose(client, buyer1).json()
            assert client.get(f"{API}/agreement/{mine['id']}", headers=buyer2).status_code == 404
            assert client.post(f"{API}/agreement/{mine['id']}/approve", headers=buyer2).status_code == 404
            assert client.get(f"{API}/agreement", headers=buyer2).headers["X-Total-Count"] == "0"
            # The seller trades with two buyers: it must say which, and then sees only that bilateral.
            assert client.get(f"{API}/agreement", headers=seller).headers["X-Total-Count"] == "1"
            assert client.post(f"{API}/agreement", json={}, headers=seller).status_code == 400
            scoped = client.get(f"{API}/agreement", params={"buyerId": "BUYER-2"}, headers=seller)
            assert scoped.headers["X-Total-Count"] == "0"
    finally:
        runtime.close()
