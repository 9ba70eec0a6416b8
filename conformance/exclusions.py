"""Known defects of MEF's published Sonata specs, excluded narrowly: one check, on one operation, with a reason.

Each exclusion is printed in every report. Nothing here switches a check off for a whole spec.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exclusion:
    spec_title: str  # the spec's info.title, so our corrected specs are never affected
    operation_id: str
    check: str
    reason: str


# MEF declares offset / limit as bare int32, so schemathesis treats a negative page position as valid data; MEF 123
# §7.1.2 defines them as 0-based positions and counts, our specs say minimum 0, and the server answers 400
# invalidQuery. Only the list operations of MEF's files carry them.
_NEGATIVE_PAGING = (
    "offset / limit have no minimum in MEF Grace (a defect: MEF 123 §7.1.2 makes them 0-based positions and "
    "counts); the server refuses negative values with 400 invalidQuery, as our specs document"
)
_MEF_LIST_OPERATIONS = (
    ("Product Ordering Management", "listProductOrder"),
    ("Product Ordering Management", "listCancelProductOrder"),
    ("Product Ordering Management", "listCharge"),
    ("Product Ordering Management", "listModifyProductOrderItemRequestedDeliveryDate"),
    ("Product Inventory Management", "listProduct"),
    ("Billing Management", "listCustomerBill"),
)

# MEF declares EventSubscriptionInput.callback as a bare string; a server cannot deliver to "" or "x", so it refuses
# them with the documented 400 invalidBody (our specs declare format: uri).
_CALLBACK_NOT_A_URL = (
    "callback is a bare string in MEF Grace; the server refuses values that are not absolute http(s) URLs with "
    "400 invalidBody (our specs declare format: uri)"
)

EXCLUSIONS: tuple[Exclusion, ...] = (
    Exclusion("Product Ordering Management", "registerListener", "positive_data_acceptance", _CALLBACK_NOT_A_URL),
    Exclusion("Billing Management", "registerListener", "positive_data_acceptance", _CALLBACK_NOT_A_URL),
    *(
        Exclusion(title, operation_id, "positive_data_acceptance", _NEGATIVE_PAGING)
        for title, operation_id in _MEF_LIST_OPERATIONS
    ),
    Exclusion(
        "Billing Management",
        "retrieveCustomerBill",
        "response_schema_conformance",
        "MEF Grace billingManagement.api.yaml declares the 200 body of GET /customerBill/{id} as an array of "
        "CustomerBill (NOTES.md §6.7); servers return the single object that MEF 141 describes",
    ),
    Exclusion(
        "Billing Management",
        "retrieveCustomerBillItem",
        "response_schema_conformance",
        "MEF Grace billingManagement.api.yaml declares the 200 body of GET /customerBillItem/{id} as an array "
        "(NOTES.md §6.7); servers return the single CustomerBillItem",
    ),
)


def for_spec(title: str) -> list[Exclusion]:
    return [exclusion for exclusion in EXCLUSIONS if exclusion.spec_title == title]


def schemathesis_config(exclusions: list[Exclusion]) -> str:
    """schemathesis.toml text switching off exactly these checks on exactly these operations."""
    blocks = []
    for exclusion in exclusions:
        blocks.append(
            "[[operations]]\n"
            f'include-operation-id = "{exclusion.operation_id}"\n'
            f"checks.{exclusion.check}.enabled = false\n"
        )
    return "\n".join(blocks)
