"""The base paths the code builds hrefs from are the ones our specs declare."""

from __future__ import annotations

import pytest
import yaml

from sonata_dlt import base_paths
from sonata_dlt.api.specs import base_path_of, spec_directory

SPEC_OF = {
    "PRODUCT_ORDERING": "productOrderManagement.api.yaml",
    "PRODUCT_INVENTORY": "productInventoryManagement.api.yaml",
    "CUSTOMER_BILL": "customerBillManagement.api.yaml",
    "SELLER_FULFILMENT": "sellerFulfilment.api.yaml",
    "SMART_BILATERAL": "smartBilateral.api.yaml",
    "VERIFIABLE_LOG": "verifiableLog.api.yaml",
    "PRODUCT_ORDERING_NOTIFICATION": "productOrderNotification.api.yaml",
    "CUSTOMER_BILL_NOTIFICATION": "customerBillNotification.api.yaml",
}


@pytest.mark.parametrize("name", sorted(SPEC_OF))
def test_base_path_matches_its_spec(name: str) -> None:
    spec = yaml.safe_load((spec_directory() / SPEC_OF[name]).read_text(encoding="utf-8"))
    assert getattr(base_paths, name) == base_path_of(spec)


def test_every_base_path_is_checked() -> None:
    declared = {name for name in vars(base_paths) if name.isupper() and name != "SONATA"}
    assert declared == set(SPEC_OF)
