"""Inventory reports: JSON, streamed CSV and NDJSON uploads, content hashes, line-numbered errors, nothing partial."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sonata_dlt.bilateral.agreement_terms import parse_terms
from sonata_dlt.bilateral.report_columns import REPORT_COLUMNS
from sonata_dlt.bilateral.reports import report_files, report_uploads, row_hashes
from sonata_dlt.errors import Unprocessable
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.transparency.canonical import canonical_json
from tests.billing.reference_hashes import REPORT_COLUMNS as DOCUMENTED_KINDS
from tests.billing.reference_hashes import report_text
from tests.billing.smart_bilateral import (
    API,
    APRIL_START,
    MARCH_START,
    approved_agreement,
    log_size,
    make_terms,
    store_rows,
    streaming_client,
)

PERIOD = {"periodStart": MARCH_START, "periodEnd": APRIL_START}
ROWS = [
    {"serviceId": "SVC-1", "productType": "accessEline", "bandwidthMbps": 100, "siteA": "PAR-1", "status": "active",
     "startDate": "2025-01-15T10:00:00Z"},
    {"serviceId": "SVC-2", "buyerReference": "b\tref|x", "bandwidthMbps": "1000.5", "siteA": "LON-2"},
    {"serviceId": "SVC-3", "endDate": "2025-03-10T00:00:00+01:00"},
]  # fmt: skip


def _csv(rows: int, start: int = 0) -> Iterator[bytes]:
    yield b"serviceId,productType,bandwidthMbps,siteA,status\n"
    for n in range(start, start + rows):
        yield f"SVC-{n:06d},accessEline,{100 + n % 7},SITE-{n % 13},active\n".encode()


def _stored(data_dir: Path) -> set[str]:
    folder = data_dir / "reports"
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_json_rows_are_stored_under_the_hash_of_their_canonical_json(
    client: Any, buyer_headers: Any, seller_headers: Any, app: Any, settings: Any
) -> None:
    approved_agreement(client, buyer_headers, seller_headers)
    size = log_size(app)
    first = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": ROWS}, headers=buyer_headers)
    assert first.status_code == 201, first.text
    report = first.json()
    assert (report["role"], report["rowCount"], report["source"]) == ("buyer", 3, "json")
    # RFC 8785 of the rows array, written out by hand: members sorted, no spaces, the TAB escaped.
    assert report["contentHash"] == sha256(
        b'[{"bandwidthMbps":100,"productType":"accessEline","serviceId":"SVC-1","siteA":"PAR-1",'
        b'"startDate":"2025-01-15T10:00:00Z","status":"active"},'
        b'{"bandwidthMbps":"1000.5","buyerReference":"b\\tref|x","serviceId":"SVC-2","siteA":"LON-2"},'
        b'{"endDate":"2025-03-10T00:00:00+01:00","serviceId":"SVC-3"}]'
    )
    assert report["canonicalForm"] == "inventory-report-submission/v4"
    assert log_size(app) == size + 1
    assert _stored(settings.data_dir) == {f"{report['contentHash']}.csv"}

    same = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": ROWS}, headers=seller_headers).json()
    assert same["contentHash"] == report["contentHash"]  # the same submission: stored once
    assert same["id"] != report["id"] and same["role"] == "seller"
    assert _stored(settings.data_dir) == {f"{report['contentHash']}.csv"}
    shuffled = list(reversed(ROWS))
    second = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": shuffled}, headers=seller_headers).json()
    assert second["contentHash"] == sha256(canonical_json(shuffled)) != report["contentHash"]
    changed = [dict(ROWS[0], bandwidthMbps=101), *ROWS[1:]]
    third = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": changed}, headers=buyer_headers).json()
    assert third["contentHash"] != report["contentHash"]
    assert client.get(f"{API}/inventoryReport/{report['id']}", headers=seller_headers).json() == report
    assert (
        client.get(f"{API}/inventoryReport", params={"role": "buyer"}, headers=buyer_headers).headers["X-Total-Count"]
        == "2"
    )
    assert (
        client.get(f"{API}/inventoryReport", params={"role": "seller"}, headers=buyer_headers).headers["X-Total-Count"]
        == "2"
    )
    # Immutable: the API offers no way to change or delete a report.
    assert client.delete(f"{API}/inventoryReport/{report['id']}", headers=buyer_headers).status_code == 405
    assert client.patch(f"{API}/inventoryReport/{report['id']}", json={}, headers=buyer_headers).status_code == 405


def test_a_streamed_csv_upload_of_20k_rows(client: Any, buyer_headers: Any, seller_headers: Any, settings: Any) -> None:
    approved_agreement(client, buyer_headers, seller_headers)
    answer = client.post(
        f"{API}/inventoryReport/upload",
        params=PERIOD,
        content=_csv(20_000),  # a generator: the client sends it chunked, the server streams it to disk
        headers={**seller_headers, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["rowCount"] == 20_000
    body = b"".join(_csv(20_000))
    assert answer.json()["contentHash"] == sha256(body)  # what sha256sum says of the file
    assert (settings.data_dir / "reports" / f"{sha256(body)}.csv").read_bytes() == body  # kept byte for byte


@pytest.fixture
def ndjson_client(settings: Any, monkeypatch: Any) -> Iterator[Any]:
    runtime, app = streaming_client(settings, monkeypatch)
    try:
        with app.test_client() as client:
            yield client
    finally:
        runtime.close()


def test_ndjson_upload(ndjson_client: Any, buyer_headers: Any, seller_headers: Any) -> None:
    client = ndjson_client
    approved_agreement(client, buyer_headers, seller_headers)
    body = "".join(json.dumps(row) + "\n" for row in ROWS).encode()
    answer = client.post(
        f"{API}/inventoryReport/upload", params=PERIOD, content=body,
        headers={**buyer_headers, "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.json()["contentHash"] == sha256(body)
    assert answer.json()["source"] == "ndjson"


def _refused(client: Any, headers: Any, body: bytes, media: str = "text/csv") -> list[dict[str, Any]]:
    answer = client.post(
        f"{API}/inventoryReport/upload", params=PERIOD, content=body, headers={**headers, "Content-Type": media}
    )
    assert answer.status_code == 422, answer.text
    issues: list[dict[str, Any]] = answer.json()
    return issues


def test_duplicate_keys_name_the_key_and_both_lines_and_store_nothing(
    client: Any, buyer_headers: Any, seller_headers: Any, app: Any, settings: Any
) -> None:
    approved_agreement(client, buyer_headers, seller_headers)  # key serviceId, case-insensitive
    size, files = log_size(app), _stored(settings.data_dir)
    rows = list(_csv(50))
    rows.insert(31, b"svc-000007,accessEline,100,X,active\n")  # line 32 repeats line 9 (SVC-000007) up to case
    issues = _refused(client, buyer_headers, b"".join(rows))
    assert issues[0]["propertyPath"] == "line 32"
    assert "duplicate key 'svc-000007'" in issues[0]["reason"] and "line 9" in issues[0]["reason"]
    assert log_size(app) == size and _stored(settings.data_dir) == files
    assert client.get(f"{API}/inventoryReport", headers=buyer_headers).headers["X-Total-Count"] == "0"


def test_malformed_rows_are_named_by_line(client: Any, buyer_headers: Any, seller_headers: Any, settings: Any) -> None:
    approved_agreement(client, buyer_headers, seller_headers)
    rows = list(_csv(30))
    rows[12] = b"SVC-X,accessEline,fast,SITE,active\n"  # line 13: not a decimal
    rows[20] = b"SVC-Y,accessEline,1,SITE,active,extra\n"  # line 21: one column too many
    issues = _refused(client, buyer_headers, b"".join(rows))
    assert [issue["propertyPath"] for issue in issues] == ["line 13", "line 21"]
    assert "bandwidthMbps" in issues[0]["reason"]
    empty_key = _refused(client, buyer_headers, b"serviceId,siteA\nA,1\n,2\n")
    assert empty_key[0]["propertyPath"] == "line 3" and "key column serviceId is empty" in empty_key[0]["reason"]
    header = _refused(client, buyer_headers, b"serviceId,circuit\nA,1\n")
    assert header[0]["propertyPath"] == "line 1" and "circuit" in header[0]["reason"]
    json_rows = client.post(
        f"{API}/inventoryReport",
        json={**PERIOD, "rows": [{"serviceId": "A"}, {"serviceId": "A"}]},
        headers=buyer_headers,
    )
    assert json_rows.status_code == 422 and json_rows.json()[0]["propertyPath"] == "/rows/1"
    assert not _stored(settings.data_dir)


def test_ndjson_errors_are_named_by_line(
    ndjson_client: Any, buyer_headers: Any, seller_headers: Any, settings: Any
) -> None:
    client = ndjson_client
    approved_agreement(client, buyer_headers, seller_headers)
    ndjson = _refused(
        client, buyer_headers, b'{"serviceId": "A"}\n{"serviceId": 5}\nnot json\n', "application/x-ndjson"
    )
    assert [issue["propertyPath"] for issue in ndjson] == ["line 2/serviceId", "line 3"]
    body = b'{"serviceId": "A"}\n{"serviceId": "B"}\n{"serviceId": "a"}\n'
    duplicate = _refused(client, buyer_headers, body, "application/x-ndjson")
    assert duplicate[0]["propertyPath"] == "line 3" and "line 1" in duplicate[0]["reason"]
    assert not _stored(settings.data_dir)


def test_a_report_needs_an_approved_agreement_and_a_sane_period(
    client: Any, buyer_headers: Any, seller_headers: Any
) -> None:
    proposed = client.post(
        f"{API}/agreement",
        json={"agreementId": "MSA", "effectiveFrom": "2025-01-01T00:00:00Z", "terms": make_terms()},
        headers=buyer_headers,
    ).json()
    client.post(f"{API}/agreement/{proposed['id']}/approve", headers=buyer_headers)
    missing = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": ROWS}, headers=buyer_headers)
    assert missing.status_code == 422
    assert "missing the seller approval" in missing.json()[0]["reason"]
    client.post(f"{API}/agreement/{proposed['id']}/approve", headers=seller_headers)
    backwards = {"periodStart": APRIL_START, "periodEnd": MARCH_START, "rows": ROWS}
    answer = client.post(f"{API}/inventoryReport", json=backwards, headers=buyer_headers)
    assert answer.status_code == 422 and answer.json()[0]["propertyPath"] == "/periodEnd"


def test_isolation_between_parties_of_other_bilaterals(make_settings: Any) -> None:
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
            approved_agreement(client, buyer1, seller)
            report = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": ROWS}, headers=buyer1).json()
            assert client.get(f"{API}/inventoryReport/{report['id']}", headers=buyer2).status_code == 404
            assert client.get(f"{API}/inventoryReport", headers=buyer2).headers["X-Total-Count"] == "0"
            # BUYER-2's bilateral has no agreement: its own report is refused, not checked against BUYER-1's.
            refused = client.post(f"{API}/inventoryReport", json={**PERIOD, "rows": ROWS}, headers=buyer2)
            assert refused.status_code == 422
            other = client.get(f"{API}/inventoryReport/{report['id']}", params={"buyerId": "BUYER-2"}, headers=seller)
            assert other.status_code == 404
            assert client.get(f"{API}/inventoryReport/{report['id']}", headers=seller).status_code == 200
    finally:
        runtime.close()


AWKWARD = [
    {"serviceId": 'q"uote,comma', "buyerReference": "line\nbreak\r\ttab\\back|pipe", "siteA": "日本-é",
     "bandwidthMbps": "0.0000005", "startDate": "1969-12-31T23:59:59.5Z"},
    {"serviceId": "-", "buyerReference": "3:abc", "productType": "-", "bandwidthMbps": "-0.0000005",
     "startDate": "2025-03-10T00:00:00+01:00", "endDate": "2025-03-10T00:00:00"},
    {"serviceId": "zero", "bandwidthMbps": "-0", "siteZ": " padded ", "status": "1:x"},
    {"serviceId": "big", "bandwidthMbps": "999999999999.999999", "endDate": "2025-12-31T23:59:59.999999Z"},
]  # fmt: skip


def test_awkward_values_are_stored_exactly_as_documented(tmp_path: Path) -> None:
    """Quotes, separators, newlines, non-ASCII, values that look like CSV syntax, rounding at the seventh decimal,
    negative zero, timestamps before 1970 or with offsets: the stored report reads back as the documented values."""
    stored = store_rows(tmp_path, AWKWARD)
    assert stored.row_count == len(AWKWARD)
    text = {
        "text": "{}",
        "decimal": "CAST({} AS VARCHAR)",
        "timestamp": "CAST(epoch_us({}) AS VARCHAR)",
    }
    columns = ", ".join(text[DOCUMENTED_KINDS[name]].format(f'"{name}"') for name in REPORT_COLUMNS)
    con = report_files.connect(tmp_path)
    try:
        got = con.execute(f'SELECT {columns} FROM {report_files.rows_sql(stored.path)} ORDER BY "serviceId"').fetchall()
    finally:
        con.close()
    want = sorted(
        (tuple(report_text(row.get(name), kind) for name, kind in DOCUMENTED_KINDS.items()) for row in AWKWARD),
        key=lambda cells: str(cells[0]),
    )
    assert [tuple(cells) for cells in got] == want
    # Reports stored by forms v2 and v3 are typed Parquet copies: they read back the same.
    legacy = tmp_path / "legacy" / "reports" / f"{stored.content_hash}.parquet"
    legacy.parent.mkdir(parents=True)
    con = report_files.connect(tmp_path)
    try:
        con.execute(f"COPY (SELECT * FROM {report_files.rows_sql(stored.path)}) TO '{legacy}' (FORMAT parquet)")
        assert report_files.stored_report(tmp_path / "legacy", stored.content_hash) == legacy
        again = con.execute(f'SELECT {columns} FROM {report_files.rows_sql(legacy)} ORDER BY "serviceId"').fetchall()
    finally:
        con.close()
    assert again == got


def test_duplicate_composite_keys_are_named_by_line(tmp_path: Path) -> None:
    matching = {"keyFields": [{"field": "serviceId", "caseInsensitive": True}, {"field": "siteA"}],
                "comparedFields": []}  # fmt: skip
    body = "serviceId,siteA\nS-1,A\ns-1,B\nS-2,A\ns-1,A\nS-3,\n"  # line 5 repeats line 2 up to case; line 6: no siteA
    path = tmp_path / "up.csv"
    path.write_text(body)
    with pytest.raises(Unprocessable) as refused:
        report_files.store_csv(tmp_path, path, parse_terms(make_terms(inventoryMatching=matching)).matching, "0" * 64)
    paths = [issue.property_path for issue in refused.value.issues]
    assert paths == ["line 5", "line 6"]
    assert "duplicate key 's-1|A'" in refused.value.issues[0].reason and "line 2" in refused.value.issues[0].reason
    assert not _stored(tmp_path)
    path.write_text("serviceId,siteA\nS-1,A\ns-1,B\nS-2,A\n")
    accepted = report_files.store_csv(
        tmp_path, path, parse_terms(make_terms(inventoryMatching=matching)).matching, "1" * 64
    )
    assert accepted.row_count == 3


def test_a_failing_hash_query_neither_hangs_nor_leaves_its_pipe(tmp_path: Path) -> None:
    """The encodings reach hashlib through a named pipe: a COPY that fails before opening it must still end."""
    con = report_files.connect(tmp_path)
    try:
        with pytest.raises(duckdb.Error):
            row_hashes.encodings_hash(con, tmp_path, "h", "SELECT e FROM read_parquet('missing.parquet')")
        empty = row_hashes.encodings_hash(con, tmp_path, "h", "SELECT 'x' AS e WHERE false")
    finally:
        con.close()
    assert empty == hashlib.sha256(b"h\n").hexdigest()
    assert not list(tmp_path.glob("encodings-*"))


@pytest.mark.parametrize(
    ("row", "cells", "problem"),
    [
        ({"serviceId": "A", "bandwidthMbps": 100}, {"bandwidthMbps": "100"}, None),
        ({"serviceId": "A", "bandwidthMbps": 2.5}, {"bandwidthMbps": "2.5"}, None),
        ({"serviceId": "A", "bandwidthMbps": "10.25"}, {"bandwidthMbps": "10.25"}, None),
        ({"serviceId": "A", "bandwidthMbps": True}, None, "bandwidthMbps must be a number"),
        ({"serviceId": "A", "bandwidthMbps": 10**12}, None, "bandwidthMbps is out of range"),
        ({"serviceId": "A", "bandwidthMbps": -(10**12)}, None, "bandwidthMbps is out of range"),
        ({"serviceId": 5}, None, "serviceId must be a string"),
        ({"serviceId": "A", "startDate": "2025-01-01T00:00:00Z"}, {"startDate": "2025-01-01T00:00:00Z"}, None),
        ({"serviceId": "A", "startDate": "yesterday"}, None, "startDate must be an RFC 3339 date-time"),
        ({"serviceId": "A", "circuit": "x"}, None, "unknown column 'circuit'"),
    ],
)
def test_ndjson_cells_are_checked_by_type(
    tmp_path: Path, row: dict[str, Any], cells: dict[str, str] | None, problem: str | None
) -> None:
    source = [json.dumps(row).encode() + b"\n"]
    target = tmp_path / "rows.csv"
    if problem is None:
        assert report_uploads.ndjson_to_csv(source, target) == 1
        with target.open(encoding="utf-8", newline="") as handle:
            header, written = list(csv.reader(handle))
        assert {name: value for name, value in zip(header, written, strict=True) if value} == {
            "serviceId": "A",
            **(cells or {}),
        }
    else:
        with pytest.raises(Unprocessable) as refused:
            report_uploads.ndjson_to_csv(source, target)
        assert problem in refused.value.issues[0].reason


def test_a_report_from_another_file_system_is_copied_into_place(tmp_path: Path, monkeypatch: Any) -> None:
    """A rename across file systems fails with EXDEV: the file is then copied beside its final name and renamed."""
    import errno
    import os

    real_replace = os.replace

    def replace(source: Any, target: Any) -> None:
        if Path(source).parent != Path(target).parent:  # the move from the upload's folder: "another device"
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, target)

    monkeypatch.setattr(report_files.os, "replace", replace)
    stored = store_rows(tmp_path, ROWS)
    assert stored.row_count == len(ROWS) and stored.path.exists()
    assert not list(stored.path.parent.glob(".*"))  # no partial copy left behind
    assert not list(report_files.scratch_dir(tmp_path).glob("*.csv"))  # the source is gone
