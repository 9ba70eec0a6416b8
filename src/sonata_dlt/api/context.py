"""Per-process runtime and per-request party, as handlers see them."""

from __future__ import annotations

from contextvars import ContextVar

from sonata_dlt.core.parties import Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Unauthorized

_runtime: Runtime | None = None
party_var: ContextVar[Party | None] = ContextVar("sonata_party", default=None)


def install_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("create_app() has not installed a runtime")
    return _runtime


def current_party() -> Party:
    party = party_var.get()
    if party is None:  # the middleware authenticates every non-public path; reaching here is a wiring bug
        raise Unauthorized("an Authorization: Bearer token is required")
    return party
