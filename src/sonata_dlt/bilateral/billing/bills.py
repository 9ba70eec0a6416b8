"""Customer bills as MEF 141 documents: building them from a rated bill, reading and listing them.

Documents are built from the rating result and the bilateral only (no clock, no random ids), so the same inputs
give the same bytes: the bill id is derived from the bilateral, the period and the agreement version; each item
id from the bill id and the line's key; ``billDate`` and the first ``lastUpdate`` are the period's end.
Every representation carries all fields MEF's ``CustomerBill`` / ``CustomerBillItem`` require; amounts are
``Money {unit, value}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt import base_paths
from sonata_dlt.bilateral.rating.engine import PRICE_TYPE, Line, LineKind, LineTax, RatedBill, Terms, Totals
from sonata_dlt.bilateral.rating.money import money, rate_money, wire_number
from sonata_dlt.bilateral.rating.periods import add_months, month_start
from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.errors import NotFound
from sonata_dlt.storage.billing import CustomerBill, CustomerBillItem
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import rfc3339
from sonata_dlt.transparency.canonical import canonical_json, canonical_json_trusted, is_plain

BILL_API = base_paths.CUSTOMER_BILL
BILL_STATES = ("generated", "paymentDue", "settled")
ITEM_STATES = ("credit", "disputeBeingInvestigated", "generated", "paymentDue", "settled", "withDrawn")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def bill_id_for(bilateral_id: str, start: datetime, end: datetime, agreement_id: str, agreement_version: int) -> str:
    return "CB-" + _digest(bilateral_id, rfc3339(start), rfc3339(end), agreement_id, str(agreement_version))[:24]


def item_id_for(bill_id: str, line_key: str) -> str:
    return "CBI-" + _digest(bill_id, line_key)[:24]


def bill_href(bill_id: str) -> str:
    return f"{BILL_API}/customerBill/{bill_id}"


def item_href(item_id: str) -> str:
    return f"{BILL_API}/customerBillItem/{item_id}"


def item_document(line: Line, item_id: str, bill_id: str, terms: Terms) -> dict[str, Any]:
    currency, exponent = terms.currency, terms.exponent
    return {
        "id": item_id,
        "href": item_href(item_id),
        "customerBillItemType": PRICE_TYPE[line.kind],
        "description": line.description,
        "periodCoverage": {"startDateTime": rfc3339(line.start), "endDateTime": rfc3339(line.end)},
        "product": {"id": line.product_id},
        "productName": line.product_name,
        "productOrderItem": {"productOrderId": line.order_id, "productOrderItemId": line.order_item_id},
        "state": "generated",
        "taxExcludedAmount": money(line.amount_minor, currency, exponent),
        "unit": line.unit,
        "unitQuantity": wire_number(line.quantity),
        "unitRate": rate_money(line.unit_rate, currency),
        "appliedTax": [
            {
                "category": tax.category,
                "description": tax.description,
                "rate": wire_number(tax.rate),
                "amount": money(tax.amount_minor, currency, exponent),
            }
            for tax in line.taxes
        ],
        "appliedFee": [],
        # Our additions (MEF's schemas allow extra members): which rule produced the line, and its bill.
        "chargeKind": line.kind.value,
        "customerBill": {"id": bill_id, "href": bill_href(bill_id)},
    }


def totals_fields(totals: Totals, terms_currency: str, exponent: int, paid_minor: int = 0) -> dict[str, Any]:
    def m(minor: int) -> dict[str, Any]:
        return money(minor, terms_currency, exponent)

    return {
        "amountDue": m(totals.amount_due),
        "remainingAmount": m(totals.amount_due - paid_minor),
        "credits": m(totals.credits),
        "discounts": m(totals.discounts),
        "fees": m(totals.fees),
        "taxExcludedAmount": m(totals.tax_excluded),
        "taxIncludedAmount": m(totals.tax_included),
        "taxItem": [
            {"taxCategory": category, "taxRate": wire_number(tax_rate), "taxAmount": m(amount)}
            for category, tax_rate, amount in totals.tax_items
        ],
    }


def is_calendar_month(start: datetime, end: datetime) -> bool:
    return start == month_start(start) and end == add_months(start, 1)


def bill_document(
    bilateral: BilateralRef, terms: Terms, rated: RatedBill, bill_id: str, item_ids: Sequence[str], run_id: str
) -> dict[str, Any]:
    start, end = rated.period.start, rated.period.end
    monthly = is_calendar_month(start, end)
    document: dict[str, Any] = {
        "id": bill_id,
        "href": bill_href(bill_id),
        "billNo": f"{start:%Y%m}-{bill_id[3:13].upper()}",
        "billDate": rfc3339(end),
        "billCycle": "monthly" if monthly else "custom",
        "billingPeriod": {"startDateTime": rfc3339(start), "endDateTime": rfc3339(end)},
        "lastUpdate": rfc3339(end),
        "paymentDueDate": rfc3339(end + timedelta(days=terms.payment_days)),
        "category": "normal",
        "runType": "onCycle" if monthly else "offCycle",
        "state": "generated",
        **totals_fields(rated.totals, terms.currency, terms.exponent),
        "appliedPayment": [],
        "billingAccount": {"id": bilateral.id},
        "financialAccount": {"id": f"{bilateral.seller_id}/receivables/{bilateral.buyer_id}"},
        # No printable rendering is produced; the document URL is the bill itself (MEF 141 R26-R29 leave it open).
        "billDocument": {"url": bill_href(bill_id)},
        "customerBillItem": [{"id": item_id, "href": item_href(item_id)} for item_id in item_ids],
        "relatedContactInformation": [],
        "agreement": {"id": terms.agreement_id, "version": terms.agreement_version},
        "billingRun": {"id": run_id},
        "buyerId": bilateral.buyer_id,
        "sellerId": bilateral.seller_id,
    }
    return document


@dataclass(frozen=True)
class BuiltBill:
    """A rated bill's documents. Item documents are kept as their RFC 8785 canonical JSON only (what a run
    stores and fingerprints); ``items`` reads them back, which gives the very documents the API serves."""

    bill_id: str
    document: dict[str, Any]
    canonical: bytes  # canonical_json(document)
    lines: tuple[Line, ...]
    item_ids: list[str]
    item_canonical: list[bytes]

    @property
    def items(self) -> list[tuple[Line, dict[str, Any]]]:
        return [(line, json.loads(text)) for line, text in zip(self.lines, self.item_canonical, strict=True)]


class _ItemWriter:
    """The canonical JSON of a bill's item documents, equal to ``canonical_json(item_document(...))``.

    The text is written from a template rather than by building and encoding a dict per item: the members are
    ``item_document``'s keys, already in RFC 8785 order (sorted ASCII keys order as UTF-16 code units do); every
    string value goes through ``encode_basestring``, the escaping the canonical encoder itself uses; and every
    number (and the timestamps, money objects and tax lists a bill repeats) is the output of ``canonical_json``
    for that value, computed once per distinct value. Tests hold the two equal for any strings and numbers.
    """

    def __init__(self, terms: Terms, bill_id: str) -> None:
        self.terms = terms
        self.currency, self.exponent = terms.currency, terms.exponent
        self.bill_id = bill_id
        self.bill_text = canonical_json({"id": bill_id, "href": bill_href(bill_id)}).decode()
        self.currency_text = encode_basestring(terms.currency)
        self._times: dict[datetime, str] = {}
        self._amounts: dict[int, str] = {}
        self._numbers: dict[Decimal, str] = {}
        self._taxes: dict[tuple[LineTax, ...], str] = {}
        self._heads: dict[tuple[tuple[LineTax, ...], LineKind, str], str] = {}
        self._spans: dict[tuple[datetime, datetime], str] = {}
        self._tails: dict[tuple[int, str, Decimal, Decimal], str] = {}
        self._kinds = {
            kind: (encode_basestring(kind.value), encode_basestring(PRICE_TYPE[kind])) for kind in PRICE_TYPE
        }

    def time(self, moment: datetime) -> str:
        found = self._times.get(moment)
        if found is None:
            found = self._times[moment] = encode_basestring(rfc3339(moment))
        return found

    def money(self, minor: int) -> str:
        found = self._amounts.get(minor)
        if found is None:
            found = self._amounts[minor] = canonical_json(money(minor, self.currency, self.exponent)).decode()
        return found

    def number(self, value: Decimal) -> str:
        found = self._numbers.get(value)
        if found is None:
            found = self._numbers[value] = canonical_json(wire_number(value)).decode()
        return found

    def taxes(self, taxes: tuple[LineTax, ...]) -> str:
        found = self._taxes.get(taxes)
        if found is None:
            value = [
                {
                    "category": tax.category,
                    "description": tax.description,
                    "rate": wire_number(tax.rate),
                    "amount": money(tax.amount_minor, self.currency, self.exponent),
                }
                for tax in taxes
            ]
            found = self._taxes[taxes] = canonical_json(value).decode()
        return found

    def write(self, line: Line) -> tuple[str, bytes]:
        item_id = item_id_for(self.bill_id, line.key)
        # The text between the item's own strings repeats from line to line: each distinct run of it is written
        # once, from the same pieces as above. Item ids and hrefs are ASCII letters, digits, "-" and "/", which
        # encode_basestring leaves as they are, so they are only quoted.
        head_key = (line.taxes, line.kind, line.description)
        head = self._heads.get(head_key)
        if head is None:
            kind_text, price_type_text = self._kinds[line.kind]
            head = self._heads[head_key] = (
                f'{{"appliedFee":[],"appliedTax":{self.taxes(line.taxes)},"chargeKind":{kind_text},'
                f'"customerBill":{self.bill_text},"customerBillItemType":{price_type_text},'
                f'"description":{encode_basestring(line.description)},"href":"{BILL_API}/customerBillItem/'
            )
        span_key = (line.start, line.end)
        span = self._spans.get(span_key)
        if span is None:
            span = self._spans[span_key] = (
                f'"periodCoverage":{{"endDateTime":{self.time(line.end)},"startDateTime":{self.time(line.start)}}},'
                f'"product":{{"id":'
            )
        tail_key = (line.amount_minor, line.unit, line.quantity, line.unit_rate)
        tail = self._tails.get(tail_key)
        if tail is None:
            tail = self._tails[tail_key] = (
                f'"state":"generated","taxExcludedAmount":{self.money(line.amount_minor)},'
                f'"unit":{encode_basestring(line.unit)},"unitQuantity":{self.number(line.quantity)},'
                f'"unitRate":{{"unit":{self.currency_text},"value":{self.number(line.unit_rate)}}}}}'
            )
        text = (
            f'{head}{item_id}","id":"{item_id}",{span}{encode_basestring(line.product_id)}}},'
            f'"productName":{encode_basestring(line.product_name)},'
            f'"productOrderItem":{{"productOrderId":{encode_basestring(line.order_id)},'
            f'"productOrderItemId":{encode_basestring(line.order_item_id)}}},{tail}'
        )
        try:
            return item_id, text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate: the canonical writer raises its precise ValueError.
            return item_id, canonical_json(item_document(line, item_id, self.bill_id, self.terms))


def build(bilateral: BilateralRef, terms: Terms, rated: RatedBill, run_id: str) -> BuiltBill:
    """The bill document and the item documents' canonical JSON of a rated bill (pure)."""
    bill_id = bill_id_for(
        bilateral.id, rated.period.start, rated.period.end, terms.agreement_id, terms.agreement_version
    )
    writer = _ItemWriter(terms, bill_id)
    item_ids: list[str] = []
    texts: list[bytes] = []
    for line in rated.lines:
        item_id, text = writer.write(line)
        item_ids.append(item_id)
        texts.append(text)
    bill = bill_document(bilateral, terms, rated, bill_id, item_ids, run_id)
    # The item references are plain by construction (ASCII keys, str values built from hex digests), so only the
    # rest of the bill is checked before the trusted encoder writes the whole (one entry per item otherwise).
    rest = {key: value for key, value in bill.items() if key != "customerBillItem"}
    canonical = canonical_json_trusted(bill) if is_plain(rest) else canonical_json(bill)
    return BuiltBill(bill_id, bill, canonical, rated.lines, item_ids, texts)


def find_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The ``CustomerBill_Find`` summary the list operation returns."""
    return {
        key: document[key]
        for key in ("id", "href", "billNo", "billingAccount", "billingPeriod", "category", "state")
        if key in document
    }


@dataclass(frozen=True)
class BillFilter:
    billing_account_id: str | None = None
    category: str | None = None
    state: str | None = None
    start_gt: datetime | None = None
    start_lt: datetime | None = None
    end_gt: datetime | None = None
    end_lt: datetime | None = None


def list_bills(
    session: Session, bilateral_ids: Iterable[str], flt: BillFilter, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    conditions: list[Any] = [col(CustomerBill.bilateral_id).in_(list(bilateral_ids))]
    if flt.billing_account_id is not None:
        conditions.append(CustomerBill.billing_account_id == flt.billing_account_id)
    if flt.category is not None:
        conditions.append(CustomerBill.category == flt.category)
    if flt.state is not None:
        conditions.append(CustomerBill.state == flt.state)
    if flt.start_gt is not None:
        conditions.append(col(CustomerBill.period_start) > flt.start_gt)
    if flt.start_lt is not None:
        conditions.append(col(CustomerBill.period_start) < flt.start_lt)
    if flt.end_gt is not None:
        conditions.append(col(CustomerBill.period_end) > flt.end_gt)
    if flt.end_lt is not None:
        conditions.append(col(CustomerBill.period_end) < flt.end_lt)
    rows, total = fetch_page(
        session,
        CustomerBill,
        conditions,
        order_by=(col(CustomerBill.period_start).desc(), col(CustomerBill.id)),
        offset=offset,
        limit=limit,
    )
    return [find_document(row.document) for row in rows], int(total)


def get_bill(session: Session, bilateral_ids: Iterable[str], bill_id: str) -> CustomerBill:
    row = session.get(CustomerBill, bill_id)
    if row is None or row.bilateral_id not in set(bilateral_ids):
        raise NotFound(f"customer bill {bill_id} does not exist")
    return row


def get_item(session: Session, bilateral_ids: Iterable[str], item_id: str) -> CustomerBillItem:
    row = session.get(CustomerBillItem, item_id)
    if row is None or row.bilateral_id not in set(bilateral_ids):
        raise NotFound(f"customer bill item {item_id} does not exist")
    return row


def items_of(session: Session, bill_id: str) -> list[CustomerBillItem]:
    return list(
        session.exec(
            select(CustomerBillItem)
            .where(CustomerBillItem.customer_bill_id == bill_id)
            .order_by(col(CustomerBillItem.position))
        ).all()
    )
