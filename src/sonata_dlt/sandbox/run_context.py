"""What the step modules (``billing``, ``verification``) need of a scenario run, as a Protocol.

``runner.Run`` provides it; the step modules depend on this shape rather than on the runner, so the runner can
import them without a circle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from sonata_dlt.sandbox.topology import Identity, Topology


@dataclass
class IssuedBill:
    run_id: str
    bill_id: str
    currency: str
    items: list[dict[str, Any]] = field(default_factory=list)  # as the buyer reads them


class PlacedOrderView(Protocol):
    @property
    def buyer(self) -> str: ...

    @property
    def seller(self) -> str: ...

    @property
    def product_id(self) -> str | None: ...


class RunContext(Protocol):
    topology: Topology
    http: aiohttp.ClientSession
    figures: dict[str, float]
    counters: Counter[str]
    ledger: dict[str, Any]
    reconciliations: dict[tuple[str, str], str]
    bills: dict[tuple[str, str], IssuedBill]

    @property
    def groups(self) -> Mapping[str, Sequence[PlacedOrderView]]: ...

    async def request(
        self,
        method: str,
        path: str,
        who: Identity,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any: ...

    def period_body(self) -> dict[str, str]: ...
