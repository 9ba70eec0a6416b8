"""MEF 123 state machines, as tables (research notes §3, from MEF's ``productOrderFlow.puml`` and siblings).

Every state change in Ordering goes through ``require``: a transition not in the table is refused with 409
``conflict`` before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from sonata_dlt.errors import Conflict

ORDER_STATES = (
    "acknowledged",
    "assessingCancellation",
    "cancelled",
    "completed",
    "failed",
    "held.assessingCharge",
    "inProgress",
    "partial",
    "pending.assessingModification",
    "pendingCancellation",
    "rejected",
)
ORDER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "rejected"}),
    "inProgress": frozenset(
        {
            "completed",
            "failed",
            "partial",
            "held.assessingCharge",
            "pending.assessingModification",
            "assessingCancellation",
            "pendingCancellation",
        }
    ),
    "held.assessingCharge": frozenset({"inProgress"}),
    "pending.assessingModification": frozenset({"inProgress"}),
    "assessingCancellation": frozenset({"inProgress", "pendingCancellation"}),
    "pendingCancellation": frozenset({"cancelled"}),
}
ORDER_TERMINAL = frozenset({"completed", "failed", "partial", "cancelled", "rejected"})

ITEM_STATES = (
    "acknowledged",
    "cancelled",
    "completed",
    "failed",
    "held",
    "inProgress",
    "pending",
    "rejected",
    "rejected.validated",
    "rejected.unassessed",
)
ITEM_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "rejected", "rejected.validated", "rejected.unassessed"}),
    "inProgress": frozenset({"completed", "failed", "held", "pending"}),
    "held": frozenset({"inProgress", "failed"}),
    "pending": frozenset({"inProgress", "cancelled", "failed"}),
}
ITEM_TERMINAL = frozenset({"completed", "failed", "cancelled", "rejected", "rejected.validated", "rejected.unassessed"})

# CancelProductOrder and ModifyProductOrderItemRequestedDeliveryDate share MEFChargeableTaskStateType.
TASK_STATES = ("acknowledged", "done", "done.declined", "inProgress.assessingCharge", "rejected")
TASK_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "acknowledged": frozenset({"rejected", "done", "inProgress.assessingCharge"}),
    "inProgress.assessingCharge": frozenset({"done", "done.declined"}),
}

CHARGE_STATES = ("awaitingResponse", "completed", "timeout", "withdrawnBySeller")
CHARGE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "awaitingResponse": frozenset({"completed", "timeout", "withdrawnBySeller"}),
}
CHARGE_ITEM_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "awaitingResponse": frozenset({"acceptedByBuyer", "declinedByBuyer", "withdrawnBySeller"}),
}

_TABLES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "productOrder": ORDER_TRANSITIONS,
    "productOrderItem": ITEM_TRANSITIONS,
    "cancelProductOrder": TASK_TRANSITIONS,
    "modifyProductOrderItemRequestedDeliveryDate": TASK_TRANSITIONS,
    "charge": CHARGE_TRANSITIONS,
    "chargeItem": CHARGE_ITEM_TRANSITIONS,
}


def allowed(kind: str, current: str, target: str) -> bool:
    return target in _TABLES[kind].get(current, frozenset())


def require(kind: str, current: str, target: str, subject: str) -> None:
    """Refuse (409 conflict) a transition the MEF state machine of ``kind`` does not have."""
    if not allowed(kind, current, target):
        raise Conflict(f"{subject} is {current}; MEF 123 does not allow it to become {target}")
