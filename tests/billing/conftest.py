"""Billing fixtures: a running app whose billing inputs are the products stored in the test and the given terms."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from sqlmodel import Session

from billing.factories import make_terms
from sonata_dlt.bilateral.billing.inputs import BILLING_INPUTS, StoredInputs
from sonata_dlt.bilateral.rating.engine import Period, Terms, UsageTotal
from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.storage.inventory import Product, ProductVersion
from sonata_dlt.storage.types import rfc3339

MEF_BILLING = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "sonata" / "billingManagement.api.yaml"
)


@dataclass
class GivenInputs(StoredInputs):
    """Product versions from the database (the inventory's history); terms, holds and usage as the test says."""

    terms_by_bilateral: dict[str, Terms] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    usage_totals: list[UsageTotal] = field(default_factory=list)

    def terms(self, session: Session, bilateral: BilateralRef, period: Period) -> Terms:
        return self.terms_by_bilateral.get(bilateral.id) or make_terms()

    def holds(
        self, session: Session, bilateral: BilateralRef, period: Period, product_ids: Sequence[str]
    ) -> dict[str, str]:
        return {pid: reason for pid, reason in self.held.items() if pid in product_ids}

    def usage(self, session: Session, bilateral: BilateralRef, period: Period) -> list[UsageTotal]:
        return list(self.usage_totals)


def add_product(
    runtime: Runtime,
    bilateral: BilateralRef,
    product_id: str,
    versions: Sequence[tuple[datetime, datetime | None, str, str]],
    *,
    terminated_at: datetime | None = None,
) -> None:
    """A product with its configuration history: (valid from, valid to, product type, bandwidth) per version."""
    with runtime.db.write() as session:
        start = versions[0][0]
        session.add(
            Product(
                id=product_id,
                bilateral_id=bilateral.id,
                version=1,
                document={"id": product_id, "status": "terminated" if terminated_at else "active"},
                status="terminated" if terminated_at else "active",
                start_date=start,
                last_update_date=start,
                termination_date=terminated_at,
            )
        )
        session.flush()
        for number, (valid_from, valid_to, product_type, bandwidth) in enumerate(versions, start=1):
            session.add(
                ProductVersion(
                    product_id=product_id,
                    version=number,
                    bilateral_id=bilateral.id,
                    resource_version=number,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    product_order_id=f"PO-{product_id}",
                    product_order_item_id=str(number),
                    action="add" if number == 1 else "modify",
                    document={
                        "id": product_id,
                        "startDate": rfc3339(start),
                        "productOffering": {"id": product_type, "name": "Access E-Line"},
                        "productConfiguration": {"@type": product_type, "bandwidth": bandwidth},
                    },
                )
            )


@pytest.fixture
def inputs() -> GivenInputs:
    return GivenInputs()


@pytest.fixture
def billing_runtime(settings: Settings, inputs: GivenInputs, make_runtime: Callable[[Settings], Runtime]) -> Runtime:
    runtime = make_runtime(settings)
    runtime.components[BILLING_INPUTS] = inputs
    return runtime


@pytest.fixture
def billing_client(settings: Settings, billing_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from sonata_dlt.api import app as app_module
    from sonata_dlt.api.app import create_app

    # Only the billing APIs: these tests must not depend on the other APIs' handlers being deployed.
    billing_apis = ("bilateral.customer_bill", "bilateral.smart_bilateral")
    mounts = tuple(m for m in app_module.MOUNTS if m.package in billing_apis)
    monkeypatch.setattr(app_module, "MOUNTS", mounts)
    app = create_app(settings, billing_runtime, run_workers=False)
    with app.test_client() as client:
        yield client


@pytest.fixture
def demo_bilateral(billing_runtime: Runtime) -> BilateralRef:
    return billing_runtime.parties.bilaterals[0]


@pytest.fixture(scope="session")
def mef_validate() -> Callable[[str, Any], None]:
    """Validate a document against one of MEF's (Grace) billingManagement schemas."""
    spec = yaml.safe_load(MEF_BILLING.read_text(encoding="utf-8"))

    def validate(schema_name: str, instance: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
        OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).validate(instance)

    return validate
