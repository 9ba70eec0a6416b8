"""A billing run's stored inputs read fast give what reading the ORM rows whole gives.

``StoredInputs.versions`` extracts only the members ``product_key`` reads, in SQL, and decodes each distinct text and
timestamp once; here it is compared with ``inventory.versions_active_between`` and ``product_key`` applied to the
whole documents, for documents of every shape the key reader handles (on SQLite and, with the marker's database,
PostgreSQL).
"""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Any

import pytest
from sqlmodel import select

from billing.conftest import add_product
from billing.factories import MARCH, utc
from sonata_dlt.bilateral.billing.billing_run import RunRequest, create_run
from sonata_dlt.bilateral.billing.inputs import StoredInputs, product_key
from sonata_dlt.bilateral.rating.engine import Period, ProductVersion
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict
from sonata_dlt.settings import DEMO_SELLER_ID, Role
from sonata_dlt.sonata import inventory
from sonata_dlt.storage.inventory import Product
from sonata_dlt.storage.inventory import ProductVersion as VersionRow

SELLER = Party(DEMO_SELLER_ID, Role.SELLER)

DOCUMENTS: list[dict[str, Any]] = [
    {"productOffering": {"id": "accessEline", "name": "Access E-Line"}, "productConfiguration": {"bandwidth": "1Gbps"}},
    {  # MEF committed rates, nested
        "productOffering": {"id": "accessEline"},
        "productConfiguration": {
            "uniEp": {
                "ingressBandwidthProfilePerClassOfServiceName": [
                    {"bwpFlow": {"cir": {"irValue": 600, "irUnits": "MBPS"}}}
                ]
            }
        },
    },
    {"productConfiguration": {"@type": "urn:mef:uni", "bandwidth": {"amount": 10, "units": "Gbps"}}},  # no offering
    {"productOffering": None, "productConfiguration": None},
    {"productOffering": {"id": "ipvc", "name": "IP «VC» ü 東京"}, "productConfiguration": {"colour": "blue"}},
    {"id": "bare"},
]


def _store(runtime: Runtime, bilateral: BilateralRef) -> None:
    """Products P0..P5 with one document shape each: two versions, the second ending at P1's termination."""
    with runtime.db.write() as session:
        for number, document in enumerate(DOCUMENTS):
            product_id = f"P{number}"
            terminated = utc(2025, 3, 20) if number == 1 else None
            session.add(
                Product(
                    id=product_id,
                    bilateral_id=bilateral.id,
                    version=1,
                    document={"id": product_id},
                    status="terminated" if terminated else "active",
                    start_date=utc(2025, 1, 1),
                    last_update_date=utc(2025, 1, 1),
                    termination_date=terminated,
                )
            )
            session.flush()
            spans: list[tuple[datetime, datetime | None]] = [
                (utc(2025, 1, 1), utc(2025, 3, 10, 12, 30)),
                (utc(2025, 3, 10, 12, 30), utc(2025, 3, 20) if number % 2 else None),
            ]
            if number == 5:
                spans = [(utc(2025, 1, 1), utc(2025, 2, 1))]  # not active in March: not read
            for version, (valid_from, valid_to) in enumerate(spans, start=1):
                session.add(
                    VersionRow(
                        product_id=product_id,
                        version=version,
                        bilateral_id=bilateral.id,
                        resource_version=version,
                        valid_from=valid_from,
                        valid_to=valid_to,
                        product_order_id=f"PO-{number}",
                        product_order_item_id=str(version),
                        action="add" if version == 1 else "modify",
                        document={"id": product_id, **document},
                    )
                )


def _whole_documents(runtime: Runtime, bilateral: BilateralRef, period: Period) -> list[ProductVersion]:
    """The plain reading: ORM rows, whole documents through product_key."""
    with runtime.db.read() as session:
        rows = inventory.versions_active_between(session, bilateral.id, period.start, period.end)
        ended = dict(session.exec(select(Product.id, Product.termination_date)).all())
    expected = []
    for row in rows:
        product_type, bandwidth = product_key(row.document)
        name = str((row.document.get("productOffering") or {}).get("name") or product_type)
        expected.append(
            ProductVersion(
                row.product_id,
                row.version,
                product_type,
                bandwidth,
                name,
                row.valid_from,
                row.valid_to,
                row.product_order_id,
                row.product_order_item_id,
                terminated=row.valid_to is not None and ended.get(row.product_id) == row.valid_to,
            )
        )
    return expected


def test_versions_read_fast_equal_the_whole_documents_read(
    billing_runtime: Runtime, demo_bilateral: BilateralRef
) -> None:
    _store(billing_runtime, demo_bilateral)
    period = Period(*MARCH)
    with billing_runtime.db.read() as session:
        fast = StoredInputs().versions(session, demo_bilateral, period)
    expected = _whole_documents(billing_runtime, demo_bilateral, period)
    assert fast == expected
    assert len(fast) == 10 and [v.terminated for v in fast].count(True) == 1
    assert {(v.product_type, v.bandwidth, v.name) for v in fast} == {
        ("accessEline", "1Gbps", "Access E-Line"),
        ("accessEline", "600Mbps", "accessEline"),
        ("urn:mef:uni", "10000Mbps", "urn:mef:uni"),
        ("unknown", "-", "unknown"),
        ("ipvc", "-", "IP «VC» ü 東京"),
    }
    assert all(v.start.tzinfo is not None for v in fast)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_run_leaves_the_garbage_collector_as_it_found_it(
    billing_runtime: Runtime, demo_bilateral: BilateralRef, enabled: bool
) -> None:
    add_product(billing_runtime, demo_bilateral, "P1", [(utc(2025, 1, 1), None, "accessEline", "100Mbps")])
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        create_run(billing_runtime, SELLER, demo_bilateral, RunRequest(Period(*MARCH)))
        assert gc.isenabled() is enabled
        with pytest.raises(Conflict):  # a refused run restores it too
            create_run(billing_runtime, SELLER, demo_bilateral, RunRequest(Period(*MARCH)))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
