"""Billing run throughput: N products with three versions each (two bandwidth changes in the month).

Not a test: it prints a table. Figures, in one process on one fresh SQLite database (or ``--database-url``):

1. the pure rating engine alone (inputs in memory -> bill lines and totals);
2. engine + MEF documents (``bills.build``), still in memory;
3. the whole run as the server does it (``create_run``): load the versions from the inventory tables, rate,
   build, insert the bill, its items and the run, and append one log leaf per resource, in one transaction
   (with Python's cyclic collector paused, as every run pauses it; figures 1 and 2 run with it on);
4. the same run with the log switched off (``record_log=false``), to show what recording costs.

Items per second = bill items produced / wall time. Target: >= 20,000 items/s for the whole run.
Run with ``python bench/bench_billing_run.py`` (100,000 products); ``--products`` to change the size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from sonata_dlt.bilateral.billing import bills
from sonata_dlt.bilateral.billing.billing_run import RunRequest, create_run
from sonata_dlt.bilateral.billing.inputs import BILLING_INPUTS, StoredInputs
from sonata_dlt.bilateral.rating.engine import (
    Discount,
    Period,
    Price,
    ProductVersion,
    TaxRule,
    Terms,
    UsageTotal,
    rate,
)
from sonata_dlt.bilateral.rating.money import Rounding
from sonata_dlt.bilateral.rating.periods import Proration
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import DEMO_SELLER_ID, Role, Settings
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.inventory import Product
from sonata_dlt.storage.inventory import ProductVersion as VersionRow

MARCH = Period(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
CUTS = (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC), datetime(2025, 3, 21, tzinfo=UTC), None)
BANDWIDTHS = ("100Mbps", "1000Mbps", "10000Mbps")
TERMS = Terms(
    agreement_id="MSA-BENCH",
    agreement_version=1,
    currency="EUR",
    exponent=2,
    rounding=Rounding.HALF_EVEN,
    proration=Proration.SECONDS,
    prices={
        ("accessEline", bw): Price(Decimal(price)) for bw, price in zip(BANDWIDTHS, ("300", "900", "2500"), strict=True)
    },
    discounts=(Discount("VOL", "volume discount", Decimal("5")),),
    taxes=(TaxRule("country", "VAT", Decimal(20)),),
)


class BenchInputs(StoredInputs):
    """Versions from the database like a real run; the terms fixed here (no agreement round trip to set up)."""

    def terms(self, session: Session, bilateral: BilateralRef, period: Period) -> Terms:
        return TERMS

    def holds(
        self, session: Session, bilateral: BilateralRef, period: Period, product_ids: Sequence[str]
    ) -> dict[str, str]:
        return {}

    def usage(self, session: Session, bilateral: BilateralRef, period: Period) -> list[UsageTotal]:
        return []


def memory_versions(products: int) -> list[ProductVersion]:
    return [
        ProductVersion(
            f"P{i:07d}",
            n + 1,
            "accessEline",
            BANDWIDTHS[n],
            "Access E-Line",
            CUTS[n],
            CUTS[n + 1],
            f"PO-{i}",
            str(n + 1),
        )
        for i in range(products)
        for n in range(3)
    ]


def seed(runtime: Runtime, bilateral: BilateralRef, products: int) -> None:
    start = CUTS[0]
    with runtime.db.write() as session:
        for first in range(0, products, 10_000):
            ids = [f"P{i:07d}" for i in range(first, min(first + 10_000, products))]
            session.execute(
                insert(Product),
                [
                    {
                        "id": pid,
                        "bilateral_id": bilateral.id,
                        "version": 1,
                        "document": {"id": pid},
                        "status": "active",
                        "start_date": start,
                        "last_update_date": start,
                        "created_at": start,
                        "updated_at": start,
                    }
                    for pid in ids
                ],
            )
            session.execute(
                insert(VersionRow),
                [
                    {
                        "product_id": pid,
                        "version": n + 1,
                        "bilateral_id": bilateral.id,
                        "resource_version": n + 1,
                        "valid_from": CUTS[n],
                        "valid_to": CUTS[n + 1],
                        "product_order_id": f"PO-{pid}",
                        "product_order_item_id": str(n + 1),
                        "action": "add" if n == 0 else "modify",
                        "document": {
                            "id": pid,
                            "productOffering": {"id": "accessEline", "name": "Access E-Line"},
                            "productConfiguration": {"bandwidth": {"amount": int(BANDWIDTHS[n][:-4]), "units": "Mbps"}},
                        },
                    }
                    for pid in ids
                    for n in range(3)
                ],
            )


def whole_run(database_url: str, data_dir: Path, products: int, record: bool) -> tuple[int, float]:
    settings = Settings.load(database_url=database_url, data_dir=data_dir, demo=True, record_log=record)
    runtime = start_runtime(settings)
    try:
        runtime.components[BILLING_INPUTS] = BenchInputs()
        bilateral = runtime.parties.bilaterals[0]
        seed(runtime, bilateral, products)
        started = time.perf_counter()
        run = create_run(runtime, Party(DEMO_SELLER_ID, Role.SELLER), bilateral, RunRequest(MARCH))
        return int(run["itemCount"]), time.perf_counter() - started
    finally:
        runtime.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file per measurement")
    args = parser.parse_args(argv)

    versions = memory_versions(args.products)
    started = time.perf_counter()
    rated = rate(TERMS, MARCH, versions)
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    bills.build(BilateralRef("b", "BUYER-1", "SELLER-1", "o"), TERMS, rated, "BR-1")
    build_s = time.perf_counter() - started
    items = len(rated.lines)

    rows: list[tuple[str, int, float]] = [
        ("rating engine alone", items, engine_s),
        ("engine + MEF documents", items, engine_s + build_s),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for label, record in (("whole run, log recorded", True), ("whole run, log off", False)):
            url = args.database_url or f"sqlite:///{Path(tmp) / f'bench-{record}.sqlite'}"
            count, seconds = whole_run(url, Path(tmp) / f"data-{record}", args.products, record)
            rows.append((label, count, seconds))

    print(f"billing run: {args.products:,} products x 3 versions, {items:,} bill items")
    print(f"{'measurement':<28}{'items':>10}{'seconds':>10}{'items/s':>12}")
    for label, count, seconds in rows:
        print(f"{label:<28}{count:>10,}{seconds:>10.2f}{count / seconds:>12,.0f}")
    engine_rate = items / engine_s
    run_rate = rows[2][1] / rows[2][2]
    print(
        f"ratio engine alone / whole recorded run: {engine_rate / run_rate:.2f}x;"
        f" target >= 20,000 items/s for the whole run: {'met' if run_rate >= 20_000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
