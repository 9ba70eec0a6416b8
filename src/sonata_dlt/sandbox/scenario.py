"""Scenario files (YAML) and their model: who trades, the period, the steps, and the expected figures.

The format is documented with an example in ``scenarios/README.md``; ``scenarios/default.yaml`` is the default
month. Loading validates the whole file up front (pydantic), so a typo fails before any process starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sonata_dlt.errors import ConfigurationError
from sonata_dlt.sandbox.documents import ProductKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Pair(_Strict):
    buyer: str
    seller: str


class AgreementStep(Pair):
    do: Literal["agreement"]
    agreement_id: str = Field(alias="agreementId")
    terms: dict[str, Any]


class OrderStep(Pair):
    do: Literal["order"]
    ref: str
    product: ProductKind
    bandwidth_mbps: int = Field(alias="bandwidthMbps", gt=0)
    site: str
    count: int = Field(default=1, ge=1)  # multiplied by --scale


class RefStep(_Strict):
    """A step on every order of a group (``ref``) placed by an earlier order step."""

    do: Literal["accept", "complete"]
    ref: str


class RejectStep(_Strict):
    do: Literal["reject"]
    ref: str
    reason: str


class CancelStep(_Strict):
    do: Literal["cancel"]
    ref: str
    reason: str
    seller_accepts: bool = Field(default=True, alias="sellerAccepts")


class ChargeStep(_Strict):
    do: Literal["charge"]
    ref: str
    amount: float = Field(gt=0)
    currency: str = "EUR"
    answer: Literal["accept", "decline"]


class ModifyStep(_Strict):
    do: Literal["modify"]
    ref: str
    bandwidth_mbps: int = Field(alias="bandwidthMbps", gt=0)


class TerminateStep(_Strict):
    do: Literal["terminate"]
    ref: str


class Discrepancy(_Strict):
    """A difference the buyer's inventory report seeds against the seller's inventory."""

    ref: str  # the order group whose products the row describes
    field: Literal["bandwidthMbps", "siteA", "status", "omit"]  # omit: the buyer leaves the row out
    value: str | None = None


class ReconcileStep(Pair):
    do: Literal["reconcile"]
    discrepancies: list[Discrepancy] = Field(default_factory=list)
    extra_rows: list[dict[str, Any]] = Field(default_factory=list, alias="extraRows")  # services only the buyer has


class BillStep(Pair):
    """The seller runs billing for the period and issues the bill (``paymentDue``)."""

    do: Literal["bill"]


class Proposal(_Strict):
    outcome: Literal["credit", "debit", "noChange"]
    amount: float | None = Field(default=None, ge=0)  # tax excluded, in the agreement's currency
    description: str

    @model_validator(mode="after")
    def _amount(self) -> Proposal:
        if (self.outcome == "noChange") != (self.amount is None):
            raise ValueError("credit and debit proposals need an amount; noChange takes none")
        return self


class DisputeStep(Pair):
    """A dispute on each reconciliation record / bill item of an order group's products, or on the whole bill;
    ``proposedBy`` (default: the other side) proposes, the other side of the proposer answers."""

    do: Literal["dispute"]
    target: Literal["reconciliationRecord", "customerBillItem", "customerBill"]
    ref: str | None = None  # the order group (records and items); none for a whole bill
    raised_by: Literal["buyer", "seller"] = Field(default="buyer", alias="raisedBy")
    proposed_by: Literal["buyer", "seller"] | None = Field(default=None, alias="proposedBy")
    reason: str
    proposal: Proposal
    answer: Literal["accept", "reject"] = "accept"

    @model_validator(mode="after")
    def _ref(self) -> DisputeStep:
        if (self.target == "customerBill") != (self.ref is None):
            raise ValueError("records and bill items need the ref of an order group; a whole bill takes none")
        return self

    @property
    def proposer(self) -> Literal["buyer", "seller"]:
        if self.proposed_by is not None:
            return self.proposed_by
        return "seller" if self.raised_by == "buyer" else "buyer"


class SettleStep(_Strict):
    do: Literal["settle"]
    between: list[str] = Field(min_length=2, max_length=2)


class VerifyStep(_Strict):
    do: Literal["verify"]
    anchor_wait_seconds: float = Field(default=20.0, alias="anchorWaitSeconds", ge=0)


class BundleStep(Pair):
    do: Literal["bundle"]


Step = Annotated[
    AgreementStep
    | OrderStep
    | RefStep
    | RejectStep
    | CancelStep
    | ChargeStep
    | ModifyStep
    | TerminateStep
    | ReconcileStep
    | BillStep
    | DisputeStep
    | SettleStep
    | VerifyStep
    | BundleStep,
    Field(discriminator="do"),
]


class Bound(_Strict):
    equals: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if self.equals is None and self.min is None and self.max is None:
            raise ValueError("give equals, min or max")
        return self

    def check(self, actual: float) -> bool:
        return (
            (self.equals is None or actual == self.equals)
            and (self.min is None or actual >= self.min)
            and (self.max is None or actual <= self.max)
        )

    def describe(self) -> str:
        parts = [f"= {self.equals:g}"] if self.equals is not None else []
        parts += [f">= {self.min:g}"] if self.min is not None else []
        parts += [f"<= {self.max:g}"] if self.max is not None else []
        return " and ".join(parts)


MONTHS = {"this-month": 0, "next-month": 1, "month-after-next": 2}


class Period(_Strict):
    start: datetime
    end: datetime

    @field_validator("start", "end", mode="before")
    @classmethod
    def _relative(cls, value: Any) -> Any:
        # "this-month" / "next-month" / "month-after-next": the first instant of the current / next / following
        # UTC month. Orders complete in real time: a period of the current month contains them (prorated by the
        # clock); the next month is one they are in force for from start to end (whole monthly rates).
        if value in MONTHS:
            now = datetime.now(UTC)
            index = now.year * 12 + now.month - 1 + MONTHS[value]
            return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds need a time zone (use Z for UTC)")
        if self.end <= self.start:
            raise ValueError("period end must be after its start")
        return self


class Scenario(_Strict):
    name: str
    description: str = ""
    operators: list[str] = Field(min_length=2)
    period: Period
    steps: list[Step] = Field(min_length=1)
    # figure name -> a number (exact at --scale 1, multiplied by --scale) or {equals|min|max} (not scaled)
    expectations: dict[str, float | Bound] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        known = set(self.operators)
        groups: set[str] = set()
        for index, step in enumerate(self.steps):
            where = f"steps[{index}] ({step.do})"
            for party in _parties(step):
                if party not in known:
                    raise ValueError(f"{where}: {party} is not one of the operators {sorted(known)}")
            if isinstance(step, OrderStep):
                if step.ref in groups:
                    raise ValueError(f"{where}: ref {step.ref!r} is already used")
                groups.add(step.ref)
            for ref in _refs(step):
                if ref not in groups:
                    raise ValueError(f"{where}: ref {ref!r} names no earlier order step")
        return self

    def bound(self, name: str, scale: int) -> Bound:
        value = self.expectations[name]
        return value if isinstance(value, Bound) else Bound(equals=value * scale)


def _parties(step: BaseModel) -> list[str]:
    if isinstance(step, Pair):
        return [step.buyer, step.seller]
    if isinstance(step, SettleStep):
        return list(step.between)
    return []


def _refs(step: BaseModel) -> list[str]:
    if isinstance(step, ReconcileStep):
        return [d.ref for d in step.discrepancies]
    ref = getattr(step, "ref", None)
    return [ref] if isinstance(ref, str) and not isinstance(step, OrderStep) else []


def load_scenario(path: Path) -> Scenario:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read scenario {path}: {exc}") from exc
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"scenario {path} is not valid:\n{exc}") from exc


def default_scenario_path() -> Path:
    """scenarios/default.yaml of the source checkout (the sandbox is a developer tool run from a checkout)."""
    return Path(__file__).resolve().parents[3] / "scenarios" / "default.yaml"
