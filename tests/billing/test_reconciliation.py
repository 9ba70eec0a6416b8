"""Reconciliation: hand-worked classifications, filters and paging, CSV export, billable keys, inventory source."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sonata_dlt.bilateral.agreement_terms import parse_terms
from sonata_dlt.bilateral.reconciliation.results import StoredResults
from sonata_dlt.bilateral.reconciliation.runs import billable_service_keys, compute_results
from sonata_dlt.bilateral.reports import report_files
from tests.billing.reference_hashes import results_hash as reference_results_hash
from tests.billing.smart_bilateral import (
    API,
    APRIL_START,
    MARCH_START,
    approved_agreement,
    log_size,
    make_terms,
    store_rows,
)

PERIOD = {"periodStart": MARCH_START, "periodEnd": APRIL_START}
BUYER = [
    {"serviceId": "SVC-1", "bandwidthMbps": 100, "siteA": "PAR-1", "status": "active"},
    {"serviceId": "svc-2", "bandwidthMbps": 100.4, "siteA": "lon-2", "status": "active"},
    {"serviceId": "SVC-3", "bandwidthMbps": 1000, "siteA": "AMS-1", "status": "active"},
    {"serviceId": "SVC-4", "bandwidthMbps": 10, "siteA": "FRA-1"},
    {"serviceId": "SVC-5", "bandwidthMbps": 10},
]
SELLER = [
    {"serviceId": "svc-1", "bandwidthMbps": 100, "siteA": "par-1", "status": "active"},
    {"serviceId": "SVC-2", "bandwidthMbps": 100, "siteA": "LON-2", "status": "active"},
    {"serviceId": "SVC-3", "bandwidthMbps": 100, "siteA": "AMS-1", "status": "terminated"},
    {"serviceId": "SVC-4", "bandwidthMbps": 10, "siteA": "FRA-1", "status": "active"},
    {"serviceId": "SVC-6", "bandwidthMbps": 10},
]


def expected(buyer: list[dict[str, Any]], seller: list[dict[str, Any]]) -> dict[str, tuple[str, list[str]]]:
    """The rules of make_terms() worked by hand: key serviceId case-insensitive; bandwidth within 0.5;
    siteA case-insensitive; status exact; two empty values agree."""
    b = {row["serviceId"].lower(): row for row in buyer}
    s = {row["serviceId"].lower(): row for row in seller}
    out: dict[str, tuple[str, list[str]]] = {}
    for key in b.keys() | s.keys():
        if key not in s:
            out[key] = ("buyerOnly", [])
        elif key not in b:
            out[key] = ("sellerOnly", [])
        else:
            diffs = []
            x, y = b[key], s[key]
            bx, by = x.get("bandwidthMbps"), y.get("bandwidthMbps")
            if (bx is None) != (by is None) or (
                bx is not None and abs(Decimal(str(bx)) - Decimal(str(by))) > Decimal("0.5")
            ):
                diffs.append("bandwidthMbps")
            sx, sy = x.get("siteA"), y.get("siteA")
            if (sx or "").lower() != (sy or "").lower() or (sx is None) != (sy is None):
                diffs.append("siteA")
            if x.get("status") != y.get("status"):
                diffs.append("status")
            out[key] = ("partial" if diffs else "matched", diffs)
    return out


def _reports(client: Any, buyer_headers: Any, seller_headers: Any) -> tuple[str, str]:
    approved_agreement(client, buyer_headers, seller_headers)
    b = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": BUYER}, headers=buyer_headers).json()
    s = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": SELLER}, headers=seller_headers).json()
    return b["id"], s["id"]


def test_hand_worked_reconciliation(
    client: Any, buyer_headers: Any, seller_headers: Any, app: Any, settings: Any
) -> None:
    buyer_id, seller_id = _reports(client, buyer_headers, seller_headers)
    size = log_size(app)
    answer = client.post(
        f"{API}/reconciliation", json={"buyerReportId": buyer_id, "sellerReportId": seller_id}, headers=buyer_headers
    )
    assert answer.status_code == 201, answer.text
    rec = answer.json()
    assert log_size(app) == size + 1
    want = expected(BUYER, SELLER)
    assert want == {
        "svc-1": ("matched", []),
        "svc-2": ("matched", []),
        "svc-3": ("partial", ["bandwidthMbps", "status"]),
        "svc-4": ("partial", ["status"]),
        "svc-5": ("buyerOnly", []),
        "svc-6": ("sellerOnly", []),
    }
    assert rec["summary"] == {"matched": 2, "partial": 2, "buyerOnly": 1, "sellerOnly": 1, "total": 6}
    paged = settings.data_dir / "reconciliations" / "paged" / f"{rec['id']}.parquet"
    partial_only = client.get(
        f"{API}/reconciliation/{rec['id']}/record", params={"classification": "partial"}, headers=buyer_headers
    )
    assert partial_only.status_code == 200 and not paged.exists()  # exceptions are read from the stored file
    records = client.get(f"{API}/reconciliation/{rec['id']}/record", headers=seller_headers).json()
    assert paged.exists()  # the matched ones were derived once, and later pages read the copy
    got = {r["serviceKey"]: (r["classification"], [d["field"] for d in r["differences"]]) for r in records}
    assert got == want
    svc3 = next(r for r in records if r["serviceKey"] == "svc-3")
    assert svc3["differences"] == [
        {"field": "bandwidthMbps", "buyerValue": "1000.000000", "sellerValue": "100.000000"},
        {"field": "status", "buyerValue": "active", "sellerValue": "terminated"},
    ]
    svc4 = next(r for r in records if r["serviceKey"] == "svc-4")
    assert svc4["differences"] == [{"field": "status", "buyerValue": None, "sellerValue": "active"}]
    assert rec["canonicalForm"] == "reconciliation-exceptions/v4"
    assert rec["resultsHash"] == reference_results_hash(  # the exceptions; matched ones follow from the reports
        (r["serviceKey"], r["classification"], r["differences"]) for r in records if r["classification"] != "matched"
    )
    matched = client.get(
        f"{API}/reconciliation/{rec['id']}/record", params={"classification": "matched"}, headers=buyer_headers
    )
    assert [r["serviceKey"] for r in matched.json()] == ["svc-1", "svc-2"] and matched.headers["X-Total-Count"] == "2"

    partial = client.get(
        f"{API}/reconciliation/{rec['id']}/record",
        params={"classification": "partial", "limit": 1},
        headers=buyer_headers,
    )
    assert (partial.headers["X-Total-Count"], partial.headers["X-Result-Count"]) == ("2", "1")
    assert partial.json()[0]["serviceKey"] == "svc-3"
    second = client.get(
        f"{API}/reconciliation/{rec['id']}/record",
        params={"classification": "partial", "offset": 1},
        headers=buyer_headers,
    )
    assert [r["serviceKey"] for r in second.json()] == ["svc-4"]
    by_key = client.get(
        f"{API}/reconciliation/{rec['id']}/record", params={"serviceKey": "svc-6"}, headers=buyer_headers
    )
    assert [r["classification"] for r in by_key.json()] == ["sellerOnly"]
    bad = client.get(
        f"{API}/reconciliation/{rec['id']}/record", params={"classification": "odd"}, headers=buyer_headers
    )
    assert bad.status_code == 400

    export = client.get(f"{API}/reconciliation/{rec['id']}/export", headers=buyer_headers)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["serviceKey"], r["classification"]) for r in rows] == sorted((k, v[0]) for k, v in want.items())
    assert '"field":"status"' in rows[3]["differences"]

    from sonata_dlt.api.context import runtime

    rt = runtime()
    with rt.db.read() as session:
        bilateral_id = rt.parties.bilaterals[0].id
        keys = list(
            billable_service_keys(session, rt.settings.data_dir, bilateral_id, rec["id"], resolved=["svc-4", "nope"])
        )
    assert keys == ["svc-1", "svc-2", "svc-4"]


def test_reports_must_cover_the_same_period_and_roles(client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    buyer_id, seller_id = _reports(client, buyer_headers, seller_headers)
    other = client.post(
        f"{API}/inventoryReport",
        json={"periodStart": MARCH_START, "periodEnd": "2025-03-15T00:00:00Z", "rows": SELLER},
        headers=seller_headers,
    ).json()
    shifted = client.post(
        f"{API}/reconciliation", json={"buyerReportId": buyer_id, "sellerReportId": other["id"]}, headers=buyer_headers
    )
    assert shifted.status_code == 422 and "different periods" in shifted.json()[0]["reason"]
    swapped = client.post(
        f"{API}/reconciliation", json={"buyerReportId": seller_id, "sellerReportId": buyer_id}, headers=buyer_headers
    )
    assert swapped.status_code == 422 and swapped.json()[0]["propertyPath"] == "/buyerReportId"
    assert client.get(f"{API}/reconciliation", headers=buyer_headers).headers["X-Total-Count"] == "0"


def test_against_the_sellers_product_inventory(client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    from datetime import UTC, datetime

    from sonata_dlt.api.context import runtime
    from sonata_dlt.storage.inventory import Product, ProductVersion

    approved_agreement(client, buyer_headers, seller_headers)
    rt = runtime()
    bilateral_id = rt.parties.bilaterals[0].id
    start = datetime(2025, 2, 1, tzinfo=UTC)
    configuration = {"@type": "accessEline", "evcBandwidth": {"amount": 1, "units": "Gbps"}}
    with rt.db.write() as session:
        for product_id in ("P-1", "P-2"):
            document = {"id": product_id, "status": "active", "startDate": "2025-02-01T00:00:00.000Z",
                        "productConfiguration": configuration, "relatedSite": [{"id": "PAR-1"}]}  # fmt: skip
            session.add(Product(id=product_id, bilateral_id=bilateral_id, document=document, status="active",
                                start_date=start, last_update_date=start))  # fmt: skip
            session.flush()
            session.add(ProductVersion(product_id=product_id, version=1, bilateral_id=bilateral_id, resource_version=1,
                                       valid_from=start, product_order_id="PO", product_order_item_id="1",
                                       action="add", document=document))  # fmt: skip
    rows = [{"serviceId": "p-1", "bandwidthMbps": 1000, "siteA": "PAR-1", "status": "active"}, {"serviceId": "P-9"}]
    b = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": rows}, headers=buyer_headers).json()
    rec = client.post(
        f"{API}/reconciliation",
        json={"buyerReportId": b["id"], "sellerSource": "productInventory"},
        headers=buyer_headers,
    )
    assert rec.status_code == 201, rec.text
    assert rec.json()["summary"] == {"matched": 1, "partial": 0, "buyerOnly": 1, "sellerOnly": 1, "total": 3}
    snapshot = client.get(f"{API}/inventoryReport/{rec.json()['sellerReport']['id']}", headers=seller_headers).json()
    assert (snapshot["role"], snapshot["source"], snapshot["rowCount"]) == ("seller", "productInventory", 2)


SERVICE = st.sampled_from([f"S{n}" for n in range(12)])
ROW = st.fixed_dictionaries(
    {"serviceId": SERVICE},
    optional={"bandwidthMbps": st.sampled_from([10, 10.3, 11, 100]), "siteA": st.sampled_from(["a", "A", "b"]),
              "status": st.sampled_from(["active", "terminated"])},
)  # fmt: skip


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({row["serviceId"].lower(): row for row in rows}.values())


@hypothesis_settings(max_examples=25, deadline=None)
@given(buyer=st.lists(ROW, max_size=10).map(_unique), seller=st.lists(ROW, max_size=10).map(_unique))
def test_duckdb_classification_agrees_with_the_rules(
    tmp_path_factory: Any, buyer: list[dict[str, Any]], seller: list[dict[str, Any]]
) -> None:
    data_dir: Path = tmp_path_factory.mktemp("rec")
    matching = parse_terms(make_terms()).matching
    reports = [store_rows(data_dir, rows) for rows in (buyer, seller)]
    results = compute_results(data_dir, matching, reports[0].path, reports[1].path, reports[0].row_count)
    want = expected(buyer, seller)
    counts = {
        kind: sum(1 for v in want.values() if v[0] == kind)
        for kind in ("matched", "partial", "buyerOnly", "sellerOnly")
    }
    assert results.counts == counts
    every = StoredResults(results.path, (matching, reports[0].path, reports[1].path))
    con = report_files.connect(data_dir)
    try:
        stored = con.execute(f"SELECT * FROM read_parquet('{results.path}')").fetchall()
        derived = con.execute(every.records_sql()).fetchall()
        by_kind = {kind: con.execute(every.records_sql(kind)).fetchall() for kind in counts}
    finally:
        con.close()
    got = {key: (kind, [d["field"] for d in diffs]) for key, kind, diffs in derived}
    assert got == want and len(derived) == len(want)
    assert {kind: len(rows) for kind, rows in by_kind.items()} == counts
    exceptions = {key: value for key, value in want.items() if value[0] != "matched"}
    assert [key for key, _, _ in stored] == sorted(exceptions, key=str.encode)  # only exceptions, in key order
    assert results.results_hash == reference_results_hash(stored)


def test_results_hash_of_awkward_keys_and_values(tmp_path: Path) -> None:
    """Keys and values that escaping, quoting or byte order could get wrong: the stored results hash to what the
    documented form gives in plain Python, and the file is in UTF-8 byte order of the keys."""
    keys = ["é", "Z", "a|b", "a\\b", "b", "a", "\u00e9x", "日本", "tab\tkey", "new\nline", '"q",c']
    buyer = [{"serviceId": key, "siteA": f"{key}-site", "bandwidthMbps": n} for n, key in enumerate(keys)]
    seller = [
        {"serviceId": key, "siteA": f"{key}-SITE" if n % 2 else "other", "bandwidthMbps": n, "status": "x"}
        for n, key in enumerate(keys[2:])
    ]
    matching = parse_terms(make_terms()).matching
    buyer_report, seller_report = store_rows(tmp_path, buyer), store_rows(tmp_path, seller)
    results = compute_results(tmp_path, matching, buyer_report.path, seller_report.path, buyer_report.row_count)
    assert results.counts["matched"] == 0  # siteA differs on every key of both sides: nothing left implied
    con = report_files.connect(tmp_path)
    stored = con.execute(f"SELECT * FROM read_parquet('{results.path}')").fetchall()
    con.close()
    service_keys = [key.lower().replace("\\", "\\\\").replace("|", "\\|") for key in keys]  # report_files.key_sql
    assert [key for key, _, _ in stored] == sorted(service_keys, key=str.encode)
    assert {key for key, kind, _ in stored if kind == "buyerOnly"} == {"é", "z"}
    assert results.results_hash == reference_results_hash(stored)


def test_the_inventory_snapshot_reads_mef_bandwidth_profiles(
    client: Any, buyer_headers: Any, seller_headers: Any
) -> None:
    from datetime import UTC, datetime

    from sonata_dlt.api.context import runtime
    from sonata_dlt.storage.inventory import Product, ProductVersion

    approved_agreement(client, buyer_headers, seller_headers)
    rt = runtime()
    bilateral_id = rt.parties.bilaterals[0].id
    start = datetime(2025, 2, 1, tzinfo=UTC)
    cir = {"irValue": 1, "irUnits": "GBPS"}
    configurations = {
        "P-E": {"@type": "accessEline",
                "uniEp": {"ingressBandwidthProfilePerClassOfServiceName": [{"bwpFlow": {"cir": cir}}]}},
        "P-U": {"@type": "operatorUni", "ingressBandwidthProfile": {"cir": {"irValue": 70, "irUnits": "KBPS"}}},
        "P-I": {"@type": "basicInternetAccess", "ipUni": {"ingressBandwidthProfileEnvelope": [{"cir": cir}]}},
    }  # fmt: skip
    with rt.db.write() as session:
        for product_id, configuration in configurations.items():
            document = {"id": product_id, "status": "active", "startDate": "2025-02-01T00:00:00.000Z",
                        "productConfiguration": configuration}  # fmt: skip
            session.add(Product(id=product_id, bilateral_id=bilateral_id, document=document, status="active",
                                start_date=start, last_update_date=start))  # fmt: skip
            session.flush()
            session.add(ProductVersion(product_id=product_id, version=1, bilateral_id=bilateral_id, resource_version=1,
                                       valid_from=start, product_order_id="PO", product_order_item_id="1",
                                       action="add", document=document))  # fmt: skip
    rows = [
        {"serviceId": "p-e", "bandwidthMbps": 1000, "status": "active"},
        {"serviceId": "p-u", "bandwidthMbps": "0.07", "status": "active"},
        {"serviceId": "p-i", "bandwidthMbps": 100, "status": "active"},
    ]
    b = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": rows}, headers=buyer_headers).json()
    body = {"buyerReportId": b["id"], "sellerSource": "productInventory"}
    rec = client.post(f"{API}/reconciliation", json=body, headers=buyer_headers)
    assert rec.status_code == 201, rec.text
    assert rec.json()["summary"] == {"matched": 2, "partial": 1, "buyerOnly": 0, "sellerOnly": 0, "total": 3}
    records = client.get(
        f"{API}/reconciliation/{rec.json()['id']}/record", params={"classification": "partial"}, headers=buyer_headers
    ).json()
    assert records[0]["serviceKey"] == "p-i"
    assert records[0]["differences"] == [
        {"field": "bandwidthMbps", "buyerValue": "100.000000", "sellerValue": "1000.000000"}
    ]


def test_results_of_the_full_form_v3_are_read_from_their_file_alone(tmp_path: Path) -> None:
    """Reconciliations stored before form v4 hold every result, matched ones included: nothing is derived."""
    from sonata_dlt.bilateral.reconciliation.runs import stored_results
    from sonata_dlt.storage.billing_inputs import Reconciliation

    path = tmp_path / "reconciliations" / "full.parquet"
    path.parent.mkdir()
    con = report_files.connect(tmp_path)
    try:
        con.execute(
            "COPY (SELECT * FROM (VALUES ('a', 'matched', []), ('b', 'buyerOnly', [])) t(serviceKey, classification,"
            f" differences)) TO '{path}' (FORMAT parquet)"
        )
        row = Reconciliation(
            id="r", bilateral_id="x", buyer_report_id="gone", seller_report_id="gone", results_hash="full",
            document={"canonicalForm": "reconciliation-results/v3"},
        )  # fmt: skip
        results = stored_results(None, tmp_path, row)  # type: ignore[arg-type]  # v3 needs no database
        assert results.derive_matched is None
        assert con.execute(results.records_sql("matched")).fetchall() == [("a", "matched", [])]
        assert sorted(con.execute(results.records_sql()).fetchall()) == [("a", "matched", []), ("b", "buyerOnly", [])]
    finally:
        con.close()
