"""Builders shared by the Smart Bilateral tests: valid agreement terms and an approved agreement via the API."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sonata_dlt.bilateral.agreement_terms import parse_terms
from sonata_dlt.bilateral.reports import report_files, report_uploads
from sonata_dlt.startup.wiring import start_runtime

API = "/mefApi/sonata/smartBilateral/v1"
MARCH_START = "2025-03-01T00:00:00.000Z"
APRIL_START = "2025-04-01T00:00:00.000Z"


def make_terms(**overrides: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "currency": "EUR",
        "billingCycle": {"frequency": "monthly", "dayOfMonth": 1},
        "paymentTerms": {"dueDays": 30},
        "proration": "seconds",
        "rounding": "halfEven",
        "priceList": [
            {
                "productType": "accessEline",
                "bandwidthMbps": 100,
                "monthlyRecurring": {"unit": "EUR", "value": 300},
                "oneOff": {"unit": "EUR", "value": 150},
            },
            {"productType": "accessEline", "bandwidthMbps": 1000, "monthlyRecurring": {"unit": "EUR", "value": 900}},
        ],
        "usageRates": [
            {
                "productType": "accessEline",
                "metric": "dataVolume",
                "unit": "GB",
                "rate": {"unit": "EUR", "value": 0.0125},
            }
        ],
        "discounts": [
            {"id": "D-ALL", "kind": "percentage", "rate": 0.05},
            {"id": "D-TERM", "kind": "term", "rate": 0.1, "minimumTermMonths": 24},
            {
                "id": "D-VOL",
                "kind": "volume",
                "productTypes": ["accessEline"],
                "tiers": [{"fromCount": 0, "toCount": 10, "rate": 0}, {"fromCount": 10, "rate": 0.02}],
            },
        ],
        "minimumTerm": {"months": 12, "byProductType": [{"productType": "accessEline", "months": 36}]},
        "earlyTermination": {"rate": 0.5},
        "slaCredits": [{"id": "SLA-1", "tiers": [{"availabilityBelow": 0.999, "creditRate": 0.05}]}],
        "taxes": [{"category": "country", "description": "VAT", "rate": 0.2}],
        "inventoryMatching": {
            "keyFields": [{"field": "serviceId", "caseInsensitive": True}],
            "comparedFields": [
                {"field": "bandwidthMbps", "comparison": "numeric", "tolerance": 0.5},
                {"field": "siteA", "comparison": "caseInsensitive"},
                {"field": "status", "comparison": "exact"},
            ],
        },
        "usageMatching": {"absoluteTolerance": 0, "relativeTolerance": 0.01},
    }
    for key, value in overrides.items():
        if value is None:
            terms.pop(key, None)
        else:
            terms[key] = copy.deepcopy(value)
    return terms


def propose(
    client: Any, headers: dict[str, str], *, effective_from: str = "2025-01-01T00:00:00Z", **overrides: Any
) -> Any:
    body = {"agreementId": "MSA-1", "effectiveFrom": effective_from, "terms": make_terms(**overrides)}
    return client.post(f"{API}/agreement", json=body, headers=headers)


def approved_agreement(
    client: Any,
    buyer: dict[str, str],
    seller: dict[str, str],
    *,
    effective_from: str = "2025-01-01T00:00:00Z",
    **overrides: Any,
) -> dict[str, Any]:
    proposed = propose(client, buyer, effective_from=effective_from, **overrides)
    assert proposed.status_code == 201, proposed.text
    agreement_id = proposed.json()["id"]
    assert client.post(f"{API}/agreement/{agreement_id}/approve", headers=buyer).status_code == 200
    approved = client.post(f"{API}/agreement/{agreement_id}/approve", headers=seller)
    assert approved.status_code == 200, approved.text
    document: dict[str, Any] = approved.json()
    return document


def log_size(app: Any) -> int:
    """The total size of every bilateral's log, read from the database."""
    from sqlmodel import select

    from sonata_dlt.api.context import runtime
    from sonata_dlt.storage.log import Bilateral

    with runtime().db.read() as session:
        return sum(head.log_size for head in session.exec(select(Bilateral)).all())


def streaming_client(settings: Any, monkeypatch: Any) -> Any:
    """A runtime and app as the server builds them (NDJSON bodies stream: see ``api/validation.py``)."""
    from sonata_dlt.api import app as app_module

    runtime = start_runtime(settings)
    return runtime, app_module.create_app(settings, runtime, run_workers=False)


def store_rows(data_dir: Path, rows: list[dict[str, Any]], **terms: Any) -> report_files.StoredRows:
    """Rows checked and stored as a report file under the hash of their CSV, as the service would."""
    matching = parse_terms(make_terms(**terms)).matching
    with report_files.scratch_file(data_dir, ".csv") as scratch:
        report_uploads.rows_to_csv(rows, scratch)
        return report_files.store_csv(data_dir, scratch, matching, report_uploads.Upload.of_file(scratch).sha256)
